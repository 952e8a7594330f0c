"""The CPU fast paths inside the U-Net's layers (videodiff/nn): each computes what the plain PyTorch op computes.

* :class:`videodiff.nn.blocks.Conv2d` runs small bf16 maps as an im2col matmul: its forward and backward are
  checked in float64 by ``gradcheck`` and against ``F.conv2d`` in bf16, and it is taken only where it was measured.
* :class:`videodiff.nn.blocks.GroupNorm` runs bf16 channels-last input on an NCHW copy: bit-identical output.
* :func:`videodiff.nn.attention.attend` writes attention out on the CPU: same values and gradients as SDPA.
"""

import pytest
import torch
import torch.nn.functional as F

from conftest import randomize_zero_init
from videodiff.nn import UNet3D, UNetConfig, joint_frame_mask
from videodiff.nn.attention import attend
from videodiff.nn.blocks import Conv2d, GroupNorm, _MatmulConv
from videodiff.precision import autocast, prepare_network

pytestmark = pytest.mark.usefixtures("one_thread")
BF16 = torch.bfloat16


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).norm() / b.detach().float().norm())


@pytest.mark.parametrize("k", [1, 3])
def test_matmul_conv_is_the_convolution_with_exact_gradients(k):
    g = torch.Generator().manual_seed(k)
    x = torch.randn(3, 5, 4, 3, dtype=torch.float64, generator=g).requires_grad_()  # non-square on purpose
    w = torch.randn(6, 5, k, k, dtype=torch.float64, generator=g).requires_grad_()
    b = torch.randn(6, dtype=torch.float64, generator=g).requires_grad_()
    torch.testing.assert_close(_MatmulConv.apply(x, w, b), F.conv2d(x, w, b, padding=k // 2))
    assert torch.autograd.gradcheck(_MatmulConv.apply, (x, w, b))


@pytest.mark.parametrize("k", [1, 3])
def test_conv2d_takes_the_matmul_path_for_small_bf16_maps_only(k):
    torch.manual_seed(0)
    conv = Conv2d(32, 48, k, padding=k // 2).to(memory_format=torch.channels_last)
    x = torch.randn(6, 32, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    with autocast("cpu", BF16):
        assert conv._as_matmul(x)
        got = conv(x)
        ref = F.conv2d(x, conv.weight, conv.bias, padding=k // 2)
    assert got.dtype == BF16 and got.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn(got.shape)
    got_grads = torch.autograd.grad(got.float(), (x, conv.weight, conv.bias), grad)
    ref_grads = torch.autograd.grad(ref.float(), (x, conv.weight, conv.bias), grad)
    assert _rel(got, ref) < 0.01
    for a, r in zip(got_grads, ref_grads):
        assert a.dtype == torch.float32 and _rel(a, r) < 0.01  # bf16 rounding (2^-9) of one matmul
    assert conv._as_matmul(x.to(BF16))  # a bf16 input outside autocast, too
    assert not conv._as_matmul(x)  # fp32, no autocast
    with autocast("cpu", BF16):
        assert not conv._as_matmul(torch.randn(2, 32, 8, 8))  # 8x8: oneDNN is as fast
        assert not Conv2d(32, 48, 3, stride=2, padding=1)._as_matmul(x)
        assert not Conv2d(32, 48, 3, padding=0)._as_matmul(x)


def test_group_norm_runs_channels_last_bf16_in_nchw_with_the_same_result():
    norm = GroupNorm(8, 32)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5), norm.bias.normal_()
    x = torch.randn(4, 32, 8, 8).to(BF16)
    cl = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    nchw = x.clone().requires_grad_()
    out_cl, out = norm(cl), torch.nn.GroupNorm.forward(norm, nchw)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out_cl, out)
    g = torch.randn(out.shape).to(BF16)
    assert torch.equal(torch.autograd.grad(out_cl, cl, g)[0], torch.autograd.grad(out, nchw, g)[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("with_bias", [False, True])
def test_attend_is_softmax_attention(dtype, with_bias):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(5, 2, 7, 4, dtype=dtype, generator=g).requires_grad_() for _ in range(3))
    bias = None
    if with_bias:  # a relative-position term and a frame mask, as temporal attention passes them
        bias = torch.randn(5, 2, 7, 7, dtype=dtype, generator=g)
        bias = bias.masked_fill(~joint_frame_mask(4, 3), float("-inf")).requires_grad_()
    inputs = (q, k, v) + ((bias,) if with_bias else ())
    got = attend(q, k, v, bias)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(got, ref)
    grad = torch.randn(got.shape, dtype=dtype, generator=g)
    for a, r in zip(torch.autograd.grad(got, inputs, grad), torch.autograd.grad(ref, inputs, grad)):
        torch.testing.assert_close(a, r)


def _bottom_4x4_unet() -> UNet3D:
    torch.manual_seed(0)
    cfg = UNetConfig(image_size=16, base_channels=8, channel_mults=(1, 2, 4), num_res_blocks=1,
                     attn_resolutions=(4,), head_dim=8, dropout=0.0)
    return randomize_zero_init(UNet3D(cfg), std=0.2)


def test_unet_with_4x4_maps_under_bf16_matches_fp32_keeps_image_frames_independent_and_compiles(monkeypatch):
    """A U-Net whose bottom level is 4x4 takes all three fast paths under bf16 on the CPU."""
    calls = []
    apply = _MatmulConv.apply
    monkeypatch.setattr(_MatmulConv, "apply", lambda *a: calls.append(a[0].shape) or apply(*a))
    net = _bottom_4x4_unet()
    z = torch.randn(1, 1, 5, 16, 16, generator=torch.Generator().manual_seed(2)).requires_grad_()
    lam, mask = torch.tensor([0.5]), joint_frame_mask(3, 2)
    ref = net(z, lam, frame_mask=mask)
    prepare_network(net, BF16)
    with autocast("cpu", BF16):
        out = net(z, lam, frame_mask=mask)
        explained = torch._dynamo.explain(net)(z, lam, frame_mask=mask)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert calls and all(shape[-2:] == (4, 4) for shape in calls)  # the bottom level's convolutions
    assert _rel(out, ref) < 0.03  # as test_precision's BF16_REL
    g_img, = torch.autograd.grad(out[:, :, 3].float().square().sum(), z)
    per_frame = g_img.abs().sum(dim=(0, 1, 3, 4))
    assert per_frame[3] > 0 and per_frame[[0, 1, 2, 4]].max() == 0  # image frame 3 sees only itself
