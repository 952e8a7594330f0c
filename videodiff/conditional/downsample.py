"""Differentiable spatial downsampling of videos, the ``x_hat^a`` of eq. (7) (paper Sec. 3.1, super-resolution).

The paper backpropagates the reconstruction loss through "a differentiable downsampling algorithm such as bilinear
interpolation". ``mode="bilinear"`` uses antialiased bilinear (a triangle filter as wide as the scale factor, as
PIL and ``data.transforms`` resize), ``mode="area"`` averages disjoint blocks (integer factors only). Both are
linear maps ``D``, which is what makes the exact Gaussian tests of eq. (7) possible.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["Downsample", "DOWNSAMPLE_MODES", "upsample_nearest", "upsample_bicubic"]

DOWNSAMPLE_MODES = ("bilinear", "area")


class Downsample:
    """``D``: videos ``(B, C, F, H, W)`` (or images ``(B, C, H, W)``) -> spatial size ``size`` (int or (h, w))."""

    def __init__(self, size: int | tuple[int, int], mode: str = "bilinear"):
        if mode not in DOWNSAMPLE_MODES:
            raise ValueError(f"downsampling mode must be one of {DOWNSAMPLE_MODES}, got {mode!r}")
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.mode = mode

    def __call__(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        if self.mode == "area" and (h % self.size[0] or w % self.size[1]):
            raise ValueError(f"area downsampling needs integer factors: {h}x{w} -> {self.size[0]}x{self.size[1]}")
        if (h, w) == self.size:
            return x
        flat = x.reshape(x.shape[0], -1, h, w)  # (B, C*F, H, W): filtering is per channel and frame
        if self.mode == "area":
            out = F.avg_pool2d(flat, (h // self.size[0], w // self.size[1]))
        else:
            out = F.interpolate(flat, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        return out.reshape(*x.shape[:-2], *self.size)

    def __repr__(self) -> str:
        return f"Downsample(size={self.size}, mode={self.mode!r})"


def upsample_nearest(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Nearest-neighbour upsampling of ``(B, C, F, h, w)`` to ``size`` (for displays and naive baselines)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    flat = x.reshape(x.shape[0], -1, *x.shape[-2:])
    return F.interpolate(flat, size=size, mode="nearest").reshape(*x.shape[:-2], *size)


def upsample_bicubic(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bicubic upsampling of ``(B, C, F, h, w)`` to ``size``, clamped to [-1, 1]: the baseline of eq. (7)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    flat = x.reshape(x.shape[0], -1, *x.shape[-2:])
    out = F.interpolate(flat, size=size, mode="bicubic", align_corners=False).clamp(-1, 1)
    return out.reshape(*x.shape[:-2], *size)
