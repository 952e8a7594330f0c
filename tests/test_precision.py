"""Precision and compilation (videodiff/precision.py): what ``auto`` picks, bf16 and compiled forwards against fp32
eager, the joint frame mask's independence under both, training in bf16 against fp32, bit-exact resume in bf16,
and the config / CLI surface. Tolerances are stated per test; bf16 keeps 8 bits of mantissa (relative rounding
2^-9 = 0.2 % per operation)."""

import pytest
import torch

import videodiff.precision as precision
from conftest import randomize_zero_init
from videodiff.config import TrainConfig, load_config
from videodiff.denoiser import Denoiser
from videodiff.nn import UNet3D, UNetConfig, joint_frame_mask
from videodiff.precision import autocast, compile_network, prepare_network, resolve_precision

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
BF16_REL = 0.03  # ||bf16 - fp32|| / ||fp32|| of the tiny U-Net's output (measured: about 0.005)


def tiny_unet(cond_dim=0, frame_positions=0) -> UNet3D:
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=16, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(8,),
                     head_dim=8, dropout=0.0, cond_dim=cond_dim, frame_positions=frame_positions)
    return randomize_zero_init(UNet3D(cfg), std=0.2).eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_auto_picks_bf16_only_with_native_support(monkeypatch):
    assert resolve_precision("fp32", "cpu") is None and resolve_precision("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16"):
        resolve_precision("fp16", "cpu")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))  # an AVX2-only EPYC
    assert resolve_precision("auto", "cpu") is None
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx2", "amx_bf16", "avx512_bf16"}))
    assert resolve_precision("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(precision, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert resolve_precision("auto", "cpu") is torch.bfloat16


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_forward_matches_fp32_within_tolerance(device):
    net = tiny_unet(cond_dim=4).to(device)
    g = torch.Generator().manual_seed(1)
    z, lam, c = (t.to(device) for t in (torch.randn(2, 1, 4, 16, 16, generator=g), torch.tensor([-3.0, 2.0]),
                                         torch.randn(2, 4, generator=g)))
    with torch.no_grad():
        ref = net(z, lam, cond=c)
        with autocast(device, torch.bfloat16):
            plain = net(z, lam, cond=c)
        prepare_network(net, torch.bfloat16)  # channels-last on the CPU, as the library runs bf16 there
        assert net.conv_in.weight.is_contiguous(memory_format=torch.channels_last) == (device == "cpu")
        with autocast(device, torch.bfloat16):
            cl = net(z, lam, cond=c)
    assert plain.dtype == torch.bfloat16  # autocast did run the network in bf16
    assert 0 < _rel(plain, ref) < BF16_REL and 0 < _rel(cl, ref) < BF16_REL


def test_denoiser_returns_fp32_and_keeps_the_schedule_math_in_fp32():
    net = tiny_unet()
    z, lam = torch.randn(2, 1, 4, 16, 16), torch.tensor([-1.0, 4.0])
    with torch.no_grad():
        ref = Denoiser(net, "eps", clip_x=False)(z, lam)
        got = Denoiser(net, "eps", clip_x=False, autocast_dtype=torch.bfloat16)(z, lam)
    assert got.dtype == torch.float32
    # x_hat = (z - sigma eps) / alpha amplifies eps's error by sigma/alpha = e^{-lambda/2}: compare per example.
    for i in range(2):
        assert _rel(got[i], ref[i]) < BF16_REL * max(1.0, float(torch.exp(-lam[i] / 2)))


def _image_frame_influence(net, f: int, n: int, ctx, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per source frame, the gradient mass reaching image frame ``f`` and video frame 0 (joint mask of f + n)."""
    z = torch.randn(1, 1, f + n, 16, 16, generator=torch.Generator().manual_seed(2)).to(device).requires_grad_()
    with ctx:
        out = net(z, torch.tensor([0.5], device=device), frame_mask=joint_frame_mask(f, n, device))
    g_img, = torch.autograd.grad(out[:, :, f].float().square().sum(), z, retain_graph=True)
    g_vid, = torch.autograd.grad(out[:, :, 0].float().square().sum(), z)
    return g_img.abs().sum(dim=(0, 1, 3, 4)), g_vid.abs().sum(dim=(0, 1, 3, 4))


@pytest.mark.parametrize("device", DEVICES)
def test_joint_mask_keeps_image_frames_independent_under_bf16(device):
    net = prepare_network(tiny_unet().to(device), torch.bfloat16)
    f, n = 3, 2
    g_img, g_vid = _image_frame_influence(net, f, n, autocast(device, torch.bfloat16), device)
    others = [j for j in range(f + n) if j != f]
    assert g_img[f] > 0 and g_img[others].max() == 0  # exactly zero: no path from any other frame
    assert g_vid[1:f].min() > 0 and g_vid[f:].max() == 0  # video frames attend to each other, not to images


def test_unet_forward_has_no_graph_breaks():
    """``fullgraph=True`` (what compile_network relies on for speed): dynamo traces the whole forward in one graph,
    with and without the frame mask, per-video and per-frame conditioning and the frame-position embedding."""
    net = tiny_unet(cond_dim=4, frame_positions=8)
    z, lam = torch.randn(2, 1, 5, 16, 16), torch.tensor([0.1, -0.2])
    cases = [dict(), dict(cond=torch.randn(2, 4)), dict(cond=torch.randn(2, 5, 4), frame_mask=joint_frame_mask(3, 2))]
    for kw in cases:
        explained = torch._dynamo.explain(net)(z, lam, **kw)
        assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons


def test_compiled_forward_matches_eager_and_follows_the_frame_count():
    """Inductor on the CPU, as ``--compile`` runs it: the same outputs as eager (fp32: float rounding only), for
    4 frames and then for another frame count (extension windows, appended image frames), where the joint mask
    still keeps image frames independent: changing every other frame leaves an image frame's output bit-identical."""
    torch._dynamo.reset()
    net = tiny_unet()
    inputs = {f: torch.randn(1, 1, f, 16, 16, generator=torch.Generator().manual_seed(f)) for f in (4, 6)}
    mask = joint_frame_mask(4, 2)
    with torch.no_grad():
        eager = {f: net(z, torch.tensor([0.3]), frame_mask=mask if f == 6 else None) for f, z in inputs.items()}
        compile_network(net)
        for f, z in inputs.items():
            got = net(z, torch.tensor([0.3]), frame_mask=mask if f == 6 else None)
            torch.testing.assert_close(got, eager[f], rtol=1e-4, atol=1e-5)
        z2 = torch.randn_like(inputs[6])
        z2[:, :, 4] = inputs[6][:, :, 4]  # only image frame 4 is kept
        other = net(z2, torch.tensor([0.3]), frame_mask=mask)
    assert torch.equal(other[:, :, 4], got[:, :, 4])
    assert (other[:, :, 5] - got[:, :, 5]).abs().max() > 1e-3  # the check can fail: frame 5 did change
    with pytest.raises(ValueError, match="no UNet3D"):
        compile_network(torch.nn.Linear(2, 2))


def test_train_amp_key_still_reads_and_precision_is_checked():
    assert TrainConfig(amp="bf16").precision == "bf16"
    assert TrainConfig().precision == "auto" and TrainConfig(amp="none").precision == "auto"
    with pytest.raises(ValueError, match="contradicts train.precision=fp32"):
        TrainConfig(amp="bf16", precision="fp32")
    with pytest.raises(ValueError, match="train.precision must be one of auto | fp32 | bf16"):
        load_config(None, ["train.precision=half"])
    with pytest.raises(ValueError, match="sample.precision must be one of"):
        load_config(None, ["sample.precision=fp16"])


def test_bf16_training_reaches_the_fp32_loss(tmp_path):
    """The same seed, data and noise in both precisions: the mean loss over the last 20 of 80 steps agrees within
    10 % (measured on the AMX CPU: 0.0686 against 0.0658, 4 %), and both fall well below where they start."""
    from test_train import TINY, _losses
    from videodiff.train import train

    over = TINY + ["data.train_clips=4", "train.steps=80", "train.lr=3e-3", "model.dropout=0.0",
                   "train.ckpt_every=1000", "diffusion.low_discrepancy=true"]
    runs = {}
    for p in ("fp32", "bf16"):
        train(load_config(None, over + [f"train.precision={p}"]), tmp_path / p, progress=False)
        losses = _losses(tmp_path / p)
        runs[p] = (sum(losses[:10]) / 10, sum(losses[-20:]) / 20)
    (first32, last32), (first16, last16) = runs["fp32"], runs["bf16"]
    assert abs(first16 - first32) < 0.02 * first32  # the same start (same weights and noise)
    assert last32 < 0.5 * first32 and abs(last16 - last32) < 0.10 * last32, runs


def test_resume_is_bit_exact_in_bf16(tmp_path):
    """Within one precision setting resume continues the exact loss sequence and weights (bf16 on the CPU runs the
    network channels-last and AdamW fused; the optimizer moments get the parameters' layout back on load)."""
    from test_train import TINY, _losses
    from videodiff.checkpoint import load_checkpoint
    from videodiff.train import train

    common = TINY + ["train.ckpt_every=3", "train.precision=bf16"]
    train(load_config(None, common + ["train.steps=6"]), tmp_path / "full", progress=False)
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "part", progress=False)
    train(load_config(None, common + ["train.steps=6"]), tmp_path / "part", progress=False)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_loaded_moments_take_the_parameters_layout():
    """The fused AdamW kernel pairs a channels-last parameter with a contiguous moment element by element in memory
    (a different element): _match_state_layout restores the layout, and the step equals the unfused one."""
    from videodiff.train.loop import _match_state_layout

    w0 = torch.randn(8, 4, 3, 3).to(memory_format=torch.channels_last)
    g = torch.randn(8, 4, 3, 3).to(memory_format=torch.channels_last)
    results = []
    for fused in (True, False):
        p = w0.clone(memory_format=torch.preserve_format).requires_grad_()
        opt = torch.optim.AdamW([p], lr=0.1, fused=fused)
        p.grad = g.clone(memory_format=torch.preserve_format)
        opt.step()
        state = opt.state_dict()
        for k in ("exp_avg", "exp_avg_sq"):
            state["state"][0][k] = state["state"][0][k].contiguous()  # as a checkpoint stores them
        opt = torch.optim.AdamW([p], lr=0.1, fused=fused)
        opt.load_state_dict(state)
        _match_state_layout(opt)
        assert opt.state[p]["exp_avg"].stride() == p.stride()
        opt.step()
        results.append(p.detach().clone())
    torch.testing.assert_close(results[0], results[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_training_in_bf16_and_compiled(tmp_path):
    """On a GPU: a short bf16 run, then the same run compiled, reach the same losses (to bf16 rounding)."""
    from test_train import TINY, _losses
    from videodiff.train import train

    over = TINY + ["train.device=cuda", "train.precision=bf16", "train.steps=20", "model.dropout=0.0",
                   "train.ckpt_every=1000"]
    train(load_config(None, over), tmp_path / "eager", progress=False)
    train(load_config(None, over + ["train.compile=true"]), tmp_path / "compiled", progress=False)
    a, b = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(a) == len(b) == 20 and abs(sum(a[-5:]) - sum(b[-5:])) < 0.1 * sum(a[-5:])
