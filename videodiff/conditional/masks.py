"""Masks for conditional generation (paper Sec. 3.1): which entries of a video are known.

One mechanism serves every application: the known values ``x_a`` come as a full-size tensor and a mask of the same
shape, or one that broadcasts against it (e.g. ``(1, 1, F, 1, 1)`` per frame). Temporal extension marks the first
frames, interpolation every k-th frame, inpainting single pixels. Masks are boolean or float in ``[0, 1]``; entries
with mask 1 belong to ``x^a``, entries with mask 0 to ``x^b``.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

__all__ = ["as_mask", "frame_mask", "is_binary", "blend"]


def as_mask(mask: Tensor, like: Tensor) -> Tensor:
    """``mask`` as a float tensor in the dtype and device of ``like``, checked to broadcast against it."""
    mask = torch.as_tensor(mask, device=like.device)
    try:
        torch.broadcast_shapes(mask.shape, like.shape)
    except RuntimeError as e:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast against {tuple(like.shape)}") from e
    if torch.broadcast_shapes(mask.shape, like.shape) != like.shape:
        raise ValueError(f"mask of shape {tuple(mask.shape)} would enlarge the data shape {tuple(like.shape)}")
    mask = mask.to(like.dtype)
    if bool(((mask < 0) | (mask > 1)).any()):
        raise ValueError("mask values must lie in [0, 1] (1 = known)")
    return mask


def frame_mask(num_frames: int, known: Iterable[int], *, ndim: int = 5, frame_axis: int = 2) -> Tensor:
    """Boolean per-frame mask, shape ``(1, 1, F, 1, 1)`` for ``(B, C, F, H, W)`` videos: True at frames ``known``."""
    m = torch.zeros(num_frames, dtype=torch.bool)
    idx = list(known)
    if idx:
        if min(idx) < 0 or max(idx) >= num_frames:
            raise ValueError(f"known frame indices {idx} out of range for {num_frames} frames")
        m[idx] = True
    shape = [1] * ndim
    shape[frame_axis] = num_frames
    return m.reshape(shape)


def is_binary(mask: Tensor) -> bool:
    """True when every mask value is exactly 0 or 1."""
    return bool(((mask == 0) | (mask == 1)).all())


def blend(x_b: Tensor, x_a: Tensor, mask: Tensor, binary: bool | None = None) -> Tensor:
    """``mask * x_a + (1 - mask) * x_b``: known entries from ``x_a``, the rest from ``x_b``.

    For 0/1 masks this is a selection, so known entries equal ``x_a`` bit for bit.
    """
    if binary if binary is not None else is_binary(mask):
        return torch.where(mask.bool(), x_a, x_b)
    return x_b + mask * (x_a - x_b)
