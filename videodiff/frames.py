"""Float videos to uint8 frames, and videos tiled into one grid video: pure tensor functions, no files (the writers
in :mod:`videodiff.io` and the comparison grids of :mod:`videodiff.conditional.visualize` share them)."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["to_uint8", "video_grid"]


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """``(C, F, H, W)`` float in [-1, 1] -> uint8 ``(F, H, W, C)`` (values clamped, rounded)."""
    if video.ndim != 4:
        raise ValueError(f"to_uint8 expects a (C, F, H, W) video, got shape {tuple(video.shape)}")
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()  # (F, H, W, C)


def video_grid(
    videos: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: float = 1.0
) -> np.ndarray:
    """Tile ``(B, C, F, H, W)`` videos into one uint8 ``(F, H', W', 3)`` video.

    ``nrow`` is the number of videos per grid row (torchvision's convention; default ceil(sqrt(B))).
    ``pad`` pixels of ``pad_value`` (in the videos' [-1, 1] scale, 1.0 = white) separate and border the
    cells; empty cells are filled with it too. One channel is expanded to RGB.
    """
    if videos.ndim == 4:
        videos = videos[None]
    if videos.ndim != 5 or videos.shape[1] not in (1, 3):
        raise ValueError(f"video_grid expects (B, C, F, H, W) with C in (1, 3), got {tuple(videos.shape)}")
    b, c, f, h, w = videos.shape
    ncol = min(b, nrow or math.ceil(math.sqrt(b)))
    rows = math.ceil(b / ncol)
    videos = videos.detach().float().cpu().clamp(-1, 1).expand(b, 3, f, h, w)
    grid = torch.full((3, f, rows * (h + pad) + pad, ncol * (w + pad) + pad), float(pad_value))
    for i in range(b):
        y, x = pad + (i // ncol) * (h + pad), pad + (i % ncol) * (w + pad)
        grid[:, :, y : y + h, x : x + w] = videos[i]
    return to_uint8(grid)  # (F, H', W', 3)
