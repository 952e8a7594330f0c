"""Displays for conditional generation: conditioning frames marked with a coloured border, side-by-side grids.

Like Fig. 2 and 4 of the paper, but with the frames a sample was conditioned on outlined (red by default) so a
viewer can tell given frames from generated ones.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..frames import video_grid
from .downsample import upsample_nearest

__all__ = ["mark_frames", "align_frames", "comparison_grid", "frame_strip"]

RED = (1.0, -1.0, -1.0)
GRAY = (-0.4, -0.4, -0.4)


def mark_frames(video: Tensor, known, *, color=RED, other=GRAY, width: int = 1) -> Tensor:
    """``(B, C, F, H, W)`` in [-1, 1] -> RGB ``(B, 3, F, H + 2w, W + 2w)`` with a ``color`` border on ``known``
    frames (a bool sequence of length F) and an ``other`` border on the rest (``None``: no border there)."""
    b, c, f, h, w = video.shape
    rgb = video.detach().float().cpu().expand(b, 3, f, h, w)
    fill = torch.tensor(other if other is not None else (-1.0, -1.0, -1.0))
    out = fill.reshape(1, 3, 1, 1, 1).expand(b, 3, f, h + 2 * width, w + 2 * width).clone()
    known = torch.as_tensor(list(known), dtype=torch.bool)
    out[:, :, known] = torch.tensor(color).reshape(1, 3, 1, 1, 1)
    out[:, :, :, width : width + h, width : width + w] = rgb
    if other is None:  # no border on generated frames: paint it black
        out[:, :, ~known, :width] = -1
    return out


def align_frames(frames: Tensor, positions, total: int, size: int | None = None) -> Tensor:
    """Place ``frames`` ``(B, C, L, h, w)`` at frame ``positions`` of a black video of ``total`` frames (nearest
    upsampled to ``size`` when given): how a conditioning input lines up with the output."""
    if size is not None and frames.shape[-1] != size:
        frames = upsample_nearest(frames, size)
    b, c, _, h, w = frames.shape
    out = torch.full((b, c, total, h, w), -1.0, dtype=frames.dtype, device=frames.device)
    out[:, :, list(positions)] = frames
    return out


def comparison_grid(rows: list[Tensor], known: list, *, pad: int = 2) -> np.ndarray:
    """Side by side: column ``j`` shows ``rows[j]`` ``(B, C, F, H, W)`` (all of the same F, H, W) with the frames
    in ``known[j]`` (bool per frame, or None) outlined; each grid row is one example. uint8 ``(F, H', W', 3)``."""
    cols = [mark_frames(v, k if k is not None else [False] * v.shape[2]) for v, k in zip(rows, known)]
    tiles = torch.stack(cols, 1).flatten(0, 1)  # (B * ncol, 3, F, H, W), example-major
    return video_grid(tiles, nrow=len(cols), pad=pad, pad_value=1.0)


def frame_strip(video: Tensor, known=None, *, max_rows: int | None = None, pad: int = 1) -> np.ndarray:
    """A still image like Fig. 4: one row per example, frames left to right, ``known`` frames outlined.
    uint8 ``(H', W', 3)``."""
    if max_rows is not None:
        video = video[:max_rows]
    b, c, f, h, w = video.shape
    marked = mark_frames(video, known if known is not None else [False] * f)  # (B, 3, F, H+2, W+2)
    frames = marked.permute(0, 2, 1, 3, 4).reshape(b * f, 3, 1, *marked.shape[-2:])  # (B*F, 3, 1, h, w)
    return video_grid(frames, nrow=f, pad=pad)[0]
