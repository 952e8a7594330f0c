"""Convolutional building blocks of the factorized 3D U-Net (paper Sec. 3).

Every 3x3 convolution of an image U-Net becomes a space-only 1x3x3 convolution. With frames folded into the batch
(``(B*F, C, H, W)``) that is exactly a 2D 3x3 convolution, which is what these blocks run. GroupNorm statistics are
per frame for the same reason: a norm that pooled over frames would let appended image frames influence the video
frames, breaking the independence that joint image-video training relies on (Sec. 3, 4.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["GroupNorm", "group_norm", "Conv2d", "ResBlock", "Downsample", "Upsample"]

# Largest H*W at which a bf16 CPU convolution runs as one matmul (Conv2d below): at 4x4 the matmul path was 2.3-2.6x
# faster forward + backward for 16 and 128 frames, at 8x8 0.97x and 0.46x (benchmarks/layout_ops.py, AMX Xeon).
MATMUL_CONV_MAX_PIXELS = 16


def _patches(x: Tensor, k: int) -> Tensor:
    """``(N, C, H, W)`` -> ``(N*H*W, k*k*C)``: the ``k x k`` zero-padded neighbourhood of every pixel, in
    ``(row, column, channel)`` order (im2col)."""
    n, c, h, w = x.shape
    x = x.permute(0, 2, 3, 1)  # a view for a channels-last x
    if k > 1:
        x = F.pad(x, (0, 0, k // 2, k // 2, k // 2, k // 2))
        x = torch.cat([x[:, i:i + h, j:j + w] for i in range(k) for j in range(k)], dim=-1)
    return x.reshape(n * h * w, k * k * c)


class _MatmulConv(torch.autograd.Function):
    """Stride-1 "same" convolution as one matmul over im2col patches. Its backward is two more: the weight gradient
    from the saved patches, and the input gradient as the same kind of convolution of the output gradient with the
    flipped, transposed kernel (no scatter, so ``torch.compile`` traces it as plain matmuls)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        n, c, h, w = x.shape
        out, k = weight.shape[0], weight.shape[-1]
        cols = _patches(x, k)
        ctx.save_for_backward(cols, weight)
        ctx.geometry = (n, c, h, w, k)
        w2 = weight.permute(0, 2, 3, 1).reshape(out, k * k * c)
        return torch.addmm(bias, cols, w2.t()).reshape(n, h, w, out).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor):
        cols, weight = ctx.saved_tensors
        n, c, h, w, k = ctx.geometry
        g = grad.permute(0, 2, 3, 1).reshape(n * h * w, -1)
        grad_w = (g.t() @ cols).reshape(-1, k, k, c).permute(0, 3, 1, 2)
        flipped = weight.flip(2, 3).permute(2, 3, 0, 1).reshape(-1, c)  # (k*k*out, c), rows (row, column, out)
        grad_x = (_patches(grad, k) @ flipped).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return grad_x, grad_w, g.sum(0)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) that runs small bf16 maps on the CPU as one matmul.

    oneDNN's bf16 convolutions reach a fraction of the bf16 matmul rate on maps of 4x4 and below (the bottom of
    the U-Net: 16 frames x 16 pixels per video), and their weight gradient there is slower still. For stride-1
    1x1 and 3x3 ("same") convolutions of at most :data:`MATMUL_CONV_MAX_PIXELS` pixels in bf16 (input or CPU
    autocast) this layer computes the same convolution as an im2col matmul; elsewhere it is ``nn.Conv2d``.
    """

    def _as_matmul(self, x: Tensor) -> bool:
        k = self.kernel_size[0]
        return (x.device.type == "cpu" and x.dim() == 4 and x.shape[-2] * x.shape[-1] <= MATMUL_CONV_MAX_PIXELS
                and self.kernel_size == (k, k) and k in (1, 3) and self.padding == (k // 2, k // 2)
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1 and self.bias is not None
                and self.padding_mode == "zeros"
                and (x.dtype == torch.bfloat16 or (torch.is_autocast_enabled("cpu")
                                                   and torch.get_autocast_dtype("cpu") == torch.bfloat16)))

    def forward(self, x: Tensor) -> Tensor:
        if self._as_matmul(x):
            bf16 = torch.bfloat16
            return _MatmulConv.apply(x.to(bf16), self.weight.to(bf16), self.bias.to(bf16))
        return super().forward(x)


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` (same parameters and state-dict keys) that runs bf16 channels-last CPU inputs in NCHW.

    PyTorch's CPU GroupNorm kernel is slow on bf16 channels-last tensors: forward + backward took 1.9-3.9x the time
    of the same tensor in NCHW *including* the two layout copies (``python benchmarks/layout_ops.py``, AMX Xeon),
    while oneDNN's bf16 convolutions are fastest channels-last. So under bf16 on the CPU (where
    :func:`videodiff.precision.prepare_network` makes the network channels-last) the norm alone runs on an NCHW copy
    and hands back channels-last; the values are the same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 4 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def group_norm(channels: int) -> GroupNorm:
    """GroupNorm with up to 32 groups (fewer for narrow layers)."""
    groups = 32
    while channels % groups:
        groups //= 2
    return GroupNorm(groups, channels, eps=1e-5)


class ResBlock(nn.Module):
    """Wide-ResNet-style residual block (ref. [48]) of two 1x3x3 convolutions, conditioned on an embedding.

    ``h = conv(SiLU(GN(x)))``; ``h = GN(h) * (1 + scale) + shift`` with ``(scale, shift)`` from the embedding of
    ``lambda_t`` and ``c``; ``h = conv(dropout(SiLU(h)))``; output ``skip(x) + h``.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """``x``: ``(B*F, C, H, W)``; ``emb``: ``(B*F, emb_dim)`` (the per-video embedding repeated per frame)."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve height and width (not frames) with a stride-2 1x3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double height and width (not frames): nearest-neighbour upsampling then a 1x3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
