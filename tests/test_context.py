"""Explicit frame-conditional models (videodiff/context.py; paper Sec. 3.1 "could be trained explicitly").

Checked: the network's per-frame log-SNR (equal values = the per-video call), the inputs a context model sees (given
frames clean, log-SNR of clean data), the loss over the generated frames only, the denoiser returning the given
frames exactly, the training draw of context counts, and -- against exact mathematics -- that the ``context``
sampling method with the exact Gaussian context model ``E[x^b | z_t^b, x^a]`` draws from ``p(x^b | x^a)``.
"""

from __future__ import annotations

import pytest
import torch

from videodiff.conditional import frame_mask, sample_conditional
from videodiff.config import load_config
from videodiff.context import CONTEXT_LOGSNR, context_inputs, known_first
from videodiff.denoiser import Denoiser
from videodiff.diffusion import q_sample
from videodiff.gaussian import GaussianData, ar1_covariance
from videodiff.losses import diffusion_loss
from videodiff.nn import UNet3D, UNetConfig
from videodiff.parameterization import target
from videodiff.schedule import ScheduleConfig, alpha_sigma
from videodiff.train.randomness import draw_step_noise


def _tiny_unet():
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                            attn_resolutions=(4,), head_dim=8, dropout=0.0))
    for p in net.parameters():  # conv_out starts at zero: give every weight a value so outputs depend on inputs
        torch.nn.init.normal_(p, std=0.1)
    return net.eval()


def test_per_frame_logsnr_equal_values_match_the_per_video_call():
    net = _tiny_unet()
    z = torch.randn(2, 1, 5, 8, 8)
    lam = torch.tensor([-1.0, 3.0])
    with torch.no_grad():
        a = net(z, lam)
        b = net(z, lam[:, None].expand(2, 5).contiguous())
        c = net(z, torch.tensor([[-1.0, -1, -1, -1, 20.0], [3.0, 3, 3, 3, 3]]))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert (a[0] - c[0]).abs().amax() > 1e-4  # one frame's log-SNR changes the video's output (temporal attention)
    torch.testing.assert_close(a[1], c[1], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="per-frame logsnr"):
        net(z, torch.zeros(2, 4))


def test_context_inputs_put_the_given_frames_in_clean():
    z, x = torch.randn(2, 1, 4, 3, 3), torch.randn(2, 1, 4, 3, 3)
    known = known_first(torch.tensor([1, 3]), 4)
    z_in, lam = context_inputs(z, torch.tensor([0.5, -2.0]), x, known)
    assert torch.equal(z_in[0, :, :1], x[0, :, :1]) and torch.equal(z_in[0, :, 1:], z[0, :, 1:])
    assert torch.equal(z_in[1, :, :3], x[1, :, :3]) and torch.equal(z_in[1, :, 3:], z[1, :, 3:])
    assert lam.tolist() == [[CONTEXT_LOGSNR, 0.5, 0.5, 0.5], [CONTEXT_LOGSNR] * 3 + [-2.0]]


def test_loss_counts_only_the_generated_frames():
    seen = {}

    def net(z, lam, **kw):  # predicts zeros: the loss is the mean squared target over the counted frames
        seen.update(z=z, lam=lam)
        return torch.zeros_like(z)

    torch.manual_seed(1)
    x, eps = torch.randn(2, 1, 4, 3, 3), torch.randn(2, 1, 4, 3, 3)
    lam = torch.tensor([1.0, -1.0])
    known = known_first(torch.tensor([2, 0]), 4)
    loss = diffusion_loss(net, x, lam, eps, parameterization="v", known=known)
    assert torch.equal(seen["z"][0, :, :2], x[0, :, :2])  # the network saw the given frames clean
    assert torch.equal(seen["z"][0, :, 2:], q_sample(x, lam, eps)[0, :, 2:])
    assert seen["lam"].tolist() == [[CONTEXT_LOGSNR] * 2 + [1.0] * 2, [-1.0] * 4]
    goal = target("v", x, eps, lam)
    torch.testing.assert_close(loss[0], goal[0, :, 2:].pow(2).mean())
    torch.testing.assert_close(loss[1], goal[1].pow(2).mean())  # n = 0: the unconditional loss of eq. (2)
    torch.testing.assert_close(loss[1], diffusion_loss(net, x, lam, eps, parameterization="v")[1])


def test_denoiser_returns_the_given_frames_and_checks_its_arguments():
    net = _tiny_unet()
    den = Denoiser(net, "v")
    z, ctx = torch.randn(2, 1, 5, 8, 8), torch.rand(2, 1, 5, 8, 8) * 2 - 1
    mask = known_first(torch.tensor([2, 4]), 5)
    with torch.no_grad():
        x_hat = den(z, torch.tensor([0.0, 1.0]), context=ctx, context_mask=mask)
        plain = den(z, torch.tensor([0.0, 1.0]))
    assert torch.equal(x_hat[0, :, :2], ctx[0, :, :2]) and torch.equal(x_hat[1, :, :4], ctx[1, :, :4])
    assert (x_hat[0, :, 2:] - plain[0, :, 2:]).abs().amax() > 1e-5  # the generated frames see the context
    with pytest.raises(ValueError, match="go together"):
        den(z, torch.tensor(0.0), context=ctx)


def test_training_draws_context_counts_per_clip_without_moving_the_other_noise():
    kw = dict(seed=3, step=7, global_batch=6)
    plain = draw_step_noise(range(6), (1, 2, 2, 2), **kw)
    ctx = draw_step_noise(range(6), (1, 2, 2, 2), context_choices=(0, 5, 10), **kw)
    assert plain.context is None and torch.equal(plain.eps, ctx.eps) and torch.equal(plain.t, ctx.t)
    assert set(ctx.context.tolist()) <= {0, 5, 10}
    again = draw_step_noise(range(3, 6), (1, 2, 2, 2), context_choices=(0, 5, 10), **kw)
    assert torch.equal(again.context, ctx.context[3:])  # keyed by position in the global batch
    many = draw_step_noise(range(300), (1, 1, 1, 1), seed=0, step=0, global_batch=300, context_choices=(0, 5, 10))
    counts = torch.bincount(many.context, minlength=11)[[0, 5, 10]]
    assert counts.min() > 70, counts  # each choice about 100 of 300


F_, K, N = 6, 2, 3000
SHAPE = (1, F_, 1, 2)


def test_context_method_with_the_exact_context_model_draws_the_exact_conditional():
    """Gaussian "videos" (AR(1) over frames): the Bayes-optimal context model is ``E[x^b | z_t^b, x^a]``, whose
    sampler output must be ``p(x^b | x^a)`` (closed form) up to Monte-Carlo error."""
    pix = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    data = GaussianData(torch.zeros(F_ * 2, dtype=torch.float64), ar1_covariance(F_, 0.95, pix), SHAPE)
    x_a = torch.zeros(N, *SHAPE, dtype=torch.float64)
    x_a[:, :, :K] = torch.tensor([1.5, 1.0], dtype=torch.float64)
    mask = frame_mask(F_, range(K))
    known = mask[0].expand(SHAPE)
    m, c = data.conditional(known, x_a[0][known])
    unknown = ~known.reshape(-1)
    cond = GaussianData(m, c, (int(unknown.sum()),))
    calls = []

    def exact_context_net(z_in, lam, **kw):  # outputs eps; reads which frames are given from their log-SNR
        given = lam == CONTEXT_LOGSNR  # (B, F)
        assert given[:, :K].all() and not given[:, K:].any()
        assert torch.equal(z_in[:, :, :K], x_a[:, :, :K])  # the given frames clean
        lam_b = lam[:, K]
        calls.append(1)
        x_hat = x_a.reshape(N, -1).clone()
        x_hat[:, unknown] = cond.denoise(z_in.reshape(N, -1)[:, unknown], lam_b)
        alpha, sigma = alpha_sigma(lam_b.to(torch.float64))
        return (z_in - alpha.view(-1, 1, 1, 1, 1) * x_hat.reshape(z_in.shape)) / sigma.view(-1, 1, 1, 1, 1)

    den = Denoiser(exact_context_net, "eps", clip_x=False)
    out = sample_conditional(den, (N, *SHAPE), ScheduleConfig(), x_a=x_a, mask=mask, method="context", steps=64,
                             sampler="ddim", generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert calls and torch.equal(out[:, :, :K], x_a[:, :, :K])
    xb = out.reshape(N, -1)[:, unknown]
    mean_floor = (torch.trace(c) / N).sqrt().item()
    cov_floor = ((torch.trace(c) ** 2 + c.square().sum()) / N).sqrt().item()
    d_mean, d_cov = (xb.mean(0) - m).norm().item(), (torch.cov(xb.T) - c).norm().item()
    assert d_mean < 3 * mean_floor and d_cov < 3 * cov_floor, (d_mean, d_cov, mean_floor, cov_floor)


def test_context_method_refuses_partial_frames_and_low_resolution_conditioning():
    den = Denoiser(lambda z, lam, **kw: torch.zeros_like(z), "eps")
    x_a = torch.zeros(1, 1, 4, 2, 2)
    part = torch.zeros(1, 1, 4, 2, 2, dtype=torch.bool)
    part[..., 0, 0] = True
    with pytest.raises(ValueError, match="whole frames"):
        sample_conditional(den, (1, 1, 4, 2, 2), ScheduleConfig(), x_a=x_a, mask=part, method="context", steps=2)
    with pytest.raises(ValueError, match="low-resolution"):
        sample_conditional(den, (1, 1, 4, 2, 2), ScheduleConfig(), y=torch.zeros(1, 1, 4, 1, 1),
                           y_mask=frame_mask(4, [0]), down=lambda v: v, method="context", steps=2)


def _tiny_run(tmp_path, context_frames):
    from videodiff.checkpoint import save_checkpoint
    from videodiff.config import config_to_dict
    from videodiff.pipeline import build_model

    over = ["data.num_frames=4", "data.image_size=8", "model.base_channels=8", "model.channel_mults=[1,2]",
            "model.num_res_blocks=1", "model.attn_resolutions=[4]", "model.head_dim=8", "sample.steps=2",
            f"train.context_frames={context_frames}"]
    cfg = load_config(None, over)
    torch.manual_seed(0)
    net = build_model(cfg)
    run = tmp_path / ("ctx" if context_frames != "[]" else "plain")
    save_checkpoint(run, 1, net, net, torch.optim.AdamW(net.parameters()), {}, config_to_dict(cfg))
    return run


def test_pipeline_defaults_to_context_for_a_context_model_and_refuses_it_otherwise(tmp_path, capsys):
    from videodiff import VideoPipeline
    from videodiff.cli import main

    ctx, plain = VideoPipeline.from_pretrained(_tiny_run(tmp_path, "[0,2]"), precision="fp32"), \
        VideoPipeline.from_pretrained(_tiny_run(tmp_path, "[]"), precision="fp32")
    assert ctx.default_method() == "context" and plain.default_method() == "gradient"
    video = torch.rand(1, 1, 2, 8, 8) * 2 - 1
    out = ctx.predict(video, given=2, frames=6, samples=2, seed=1)  # autoregressive: 2 windows of 4 frames
    assert out.shape == (1, 2, 1, 6, 8, 8) and torch.equal(out[:, :, :, :2], video[:, None].expand(1, 2, 1, 2, 8, 8))
    assert torch.equal(out, ctx.predict(video, given=2, frames=6, samples=2, seed=1, method="context"))
    with pytest.raises(ValueError, match="train.context_frames"):
        plain.predict(video, given=2, frames=6, method="context")
    inp = tmp_path / "in.pt"
    torch.save(video, inp)
    assert main(["predict", "--checkpoint", str(tmp_path / "ctx"), "--input", str(inp), "--given", "2", "--frames",
                 "5", "--out", str(tmp_path / "p.gif")]) == 0
    assert "(context, " in capsys.readouterr().out
    assert main(["predict", "--checkpoint", str(tmp_path / "plain"), "--input", str(inp), "--given", "2",
                 "--frames", "5", "--method", "context", "--out", str(tmp_path / "p.gif")]) == 2
    assert "train.context_frames" in capsys.readouterr().err


def test_config_refuses_context_counts_that_leave_no_frame():
    with pytest.raises(ValueError, match="below data.num_frames"):
        load_config(None, ["data.num_frames=4", "train.context_frames=[0,4]"])
    with pytest.raises(ValueError, match="counts >= 0"):
        load_config(None, ["train.context_frames=[-1]"])


def test_context_training_resumes_bit_exactly_and_differs_from_unconditional(tmp_path):
    import json

    from tests.test_train import TINY
    from videodiff.train import train

    def losses(run):
        return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    common = TINY + ["train.ckpt_every=2", "train.context_frames=[0,1,3]", "train.loggers=[]", "sample.num=1"]
    train(load_config(None, common + ["train.steps=4"]), tmp_path / "full", progress=False)
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "part", progress=False)
    train(load_config(None, common + ["train.steps=4"]), tmp_path / "part", progress=False)  # resumes at 2
    assert losses(tmp_path / "full") == losses(tmp_path / "part")
    plain = [c for c in common if not c.startswith("train.context_frames")]
    train(load_config(None, plain + ["train.steps=4"]), tmp_path / "plain", progress=False)
    assert losses(tmp_path / "plain") != losses(tmp_path / "full")


def test_last_known_frames_are_the_latest_given_ones_repeated_at_every_frame():
    from videodiff.context import concat_inputs, last_known

    ctx = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 1, 5, 1, 1).expand(2, 1, 5, 2, 2)
    known = known_first(torch.tensor([3, 1]), 5)
    out = last_known(ctx, known, 2)  # (B, 2, F, H, W)
    assert out.shape == (2, 2, 5, 2, 2)
    assert out[0, :, 4, 0, 0].tolist() == [2.0, 1.0] and out[0, :, 0, 0, 0].tolist() == [2.0, 1.0]
    assert out[1, :, 3, 0, 0].tolist() == [5.0, 0.0]  # video 1 has one given frame (index 0 = value 5): then zeros
    full = concat_inputs(torch.zeros(2, 1, 5, 2, 2), ctx, known, 2)
    assert full.shape == (2, 4, 5, 2, 2) and full[:, 3, :, 0, 0].tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]
    assert torch.equal(concat_inputs(torch.ones(1, 1, 3, 2, 2), None, None, 2)[:, 1:], torch.zeros(1, 3, 3, 2, 2))


def test_concat_model_widens_from_the_plain_network_and_starts_equal_to_it():
    from videodiff.train.init_from import init_from_state as _init_from

    torch.manual_seed(0)
    small = UNetConfig(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                       attn_resolutions=(4,), head_dim=8, dropout=0.0)
    plain = UNet3D(small).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)
    wide = UNet3D(UNetConfig(**{**small.__dict__, "context_concat": 2})).eval()
    assert wide.conv_in.weight.shape[1] == 4
    _init_from(wide, plain.state_dict(), "plain")
    z, lam = torch.randn(2, 1, 4, 8, 8), torch.tensor([0.0, 1.0])
    ctx, known = torch.randn(2, 1, 4, 8, 8), known_first(torch.tensor([1, 2]), 4)
    with torch.no_grad():
        a = Denoiser(plain, "v")(z, lam, context=ctx, context_mask=known)
        b = Denoiser(wide, "v")(z, lam, context=ctx, context_mask=known)
        c = Denoiser(wide, "v")(z, lam)  # unconditional use of the concat model: zero context channels
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # the new input channels start at zero weight
    assert c.shape == z.shape and Denoiser(wide, "v").concat == 2
