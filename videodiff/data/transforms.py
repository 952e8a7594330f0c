"""Clip transforms: uint8 frames from disk -> float ``(C, F, H, W)`` videos in [-1, 1].

Pure functions of their inputs (no randomness): the video-folder dataset crops at the center.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, as PIL's convert("L") uses.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def clip_span(num_frames: int, frameskip: int) -> int:
    """Frames a clip covers in the source video: every ``frameskip``-th frame, ``num_frames`` of them."""
    return (num_frames - 1) * frameskip + 1


def center_crop_square(frames: np.ndarray) -> np.ndarray:
    """Crop uint8 ``(F, H, W, C)`` frames to the centered ``min(H, W)`` square."""
    h, w = frames.shape[1:3]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return frames[:, top : top + s, left : left + s]


def resize_frames(frames: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``(F, H, W, C)`` -> uint8 ``(F, C, size, size)`` with antialiased bilinear (area-like when
    shrinking). Resizing the uint8 channels-last frames uses torch's fast path (~20x the float one)."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (F, C, H, W) channels-last
    if video.shape[-2:] == (size, size):
        return video
    return F.interpolate(video, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def to_channels(video: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert float ``(F, C, H, W)`` between RGB and gray (BT.601 luma); ``channels`` is 1 or 3."""
    c = video.shape[1]
    if c == channels:
        return video
    if c == 3 and channels == 1:
        return torch.einsum("fchw,c->fhw", video, _LUMA.to(video))[:, None]
    if c == 1 and channels == 3:
        return video.expand(-1, 3, -1, -1)
    raise ValueError(f"cannot convert {c} channels to {channels}")


def frames_to_clip(frames: np.ndarray, image_size: int, channels: int) -> torch.Tensor:
    """uint8 ``(F, H, W, C)`` -> ``(channels, F, image_size, image_size)`` float32 in [-1, 1].

    Center-crops the square first, then resizes it: the same as resizing the shorter side to
    ``image_size`` and center-cropping, with less work.
    """
    video = resize_frames(center_crop_square(frames), image_size).float() / 127.5 - 1  # (F, C, H, W)
    return to_channels(video, channels).permute(1, 0, 2, 3).contiguous()  # (C, F, H, W)
