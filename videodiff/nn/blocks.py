"""Convolutional building blocks of the factorized 3D U-Net (paper Sec. 3).

Every 3x3 convolution of an image U-Net becomes a space-only 1x3x3 convolution. With frames folded into the batch
(``(B*F, C, H, W)``) that is exactly a 2D 3x3 convolution, which is what these blocks run. GroupNorm statistics are
per frame for the same reason: a norm that pooled over frames would let appended image frames influence the video
frames, breaking the independence that joint image-video training relies on (Sec. 3, 4.2).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["group_norm", "ResBlock", "Downsample", "Upsample"]


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups (fewer for narrow layers)."""
    groups = 32
    while channels % groups:
        groups //= 2
    return nn.GroupNorm(groups, channels, eps=1e-5)


class ResBlock(nn.Module):
    """Wide-ResNet-style residual block (ref. [48]) of two 1x3x3 convolutions, conditioned on an embedding.

    ``h = conv(SiLU(GN(x)))``; ``h = GN(h) * (1 + scale) + shift`` with ``(scale, shift)`` from the embedding of
    ``lambda_t`` and ``c``; ``h = conv(dropout(SiLU(h)))``; output ``skip(x) + h``.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = group_norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

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
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double height and width (not frames): nearest-neighbour upsampling then a 1x3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
