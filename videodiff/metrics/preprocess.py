"""Input pipelines of the evaluation networks (Sec. 4: FVD, FID/IS on frames).

The original FVD code (google-research/frechet_video_distance ``preprocess``) takes videos with values in
0..255, resizes every frame with TF1 ``tf.image.resize_bilinear`` (align_corners=False,
half_pixel_centers=False) and scales with ``2 * x / 255 - 1``. TF1's legacy bilinear resize samples the
source at ``dst * (in / out)`` with no half-pixel offset, which is *not* what
``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)`` does (that one uses
``(dst + 0.5) * in / out - 0.5``), so :func:`resize_bilinear_tf1` implements it explicitly. The
PyTorch-style resize (used by e.g. StyleGAN-V/VideoGPT FVD ports and pytorch-fid) is available as
``resize="torch"``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_MODES = ("tf1", "torch")


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1 ``resize_bilinear(align_corners=False, half_pixel_centers=False)`` on (N, C, H, W), in float32.

    For output index i: src = i * (in / out) (float32), lower = floor(src), upper = min(ceil(src), in - 1),
    lerp = src - lower; rows and columns are blended as top + (bottom - top) * y_lerp, with
    top = top_left + (top_right - top_left) * x_lerp, as TF's kernel does.
    """
    x = x.float()
    (h_in, w_in), (h_out, w_out) = x.shape[-2:], size

    def weights(n_in, n_out):
        scale = torch.tensor(n_in / n_out, dtype=torch.float32)
        src = torch.arange(n_out, dtype=torch.float32) * scale
        lower = torch.floor(src)
        upper = torch.clamp(torch.ceil(src), max=n_in - 1)
        return lower.long(), upper.long(), (src - lower).to(x.device)

    y0, y1, ly = weights(h_in, h_out)
    x0, x1, lx = weights(w_in, w_out)
    y0, y1, x0, x1 = (t.to(x.device) for t in (y0, y1, x0, x1))
    top, bottom = x.index_select(-2, y0), x.index_select(-2, y1)  # (N, C, h_out, w_in)
    lx = lx.view(1, 1, 1, -1)
    top = top.index_select(-1, x0) + (top.index_select(-1, x1) - top.index_select(-1, x0)) * lx
    bottom = bottom.index_select(-1, x0) + (bottom.index_select(-1, x1) - bottom.index_select(-1, x0)) * lx
    return top + (bottom - top) * ly.view(1, 1, -1, 1)  # (N, C, h_out, w_out)


def resize_frames(x: torch.Tensor, size: tuple[int, int], mode: str = "tf1") -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) frames; 'tf1' (reference FVD/FID graphs) or 'torch' (align_corners=False)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    if tuple(x.shape[-2:]) == tuple(size):
        return x.float()
    if mode == "tf1":
        return resize_bilinear_tf1(x, size)
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=False)


def as_uint8_range_tensor(videos) -> torch.Tensor:
    """numpy/torch array with values in 0..255 (uint8 or float) -> CPU torch tensor (no copy if possible)."""
    if isinstance(videos, np.ndarray):
        videos = torch.from_numpy(np.ascontiguousarray(videos))
    if not isinstance(videos, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(videos).__name__}")
    return videos


def preprocess_videos(videos, size: int = 224, resize: str = "tf1", min_frames: int = 1) -> torch.Tensor:
    """FVD preprocessing: (B, T, H, W, 3) with values 0..255 -> (B, 3, T, size, size) float32 in [-1, 1].

    Resizes every frame bilinearly (``resize`` mode) and then scales with ``x / 255 * 2 - 1``, the order of
    the reference code (the resize of uint8 input happens in float, no rounding in between).
    """
    v = as_uint8_range_tensor(videos)
    if v.ndim != 5 or v.shape[-1] != 3:
        raise ValueError(f"videos must be (B, T, H, W, 3), got {tuple(v.shape)}")
    b, t, h, w, _ = v.shape
    if t < min_frames:
        raise ValueError(f"videos have {t} frames; at least {min_frames} are required by the I3D network")
    frames = v.reshape(b * t, h, w, 3).permute(0, 3, 1, 2)  # (B*T, 3, H, W)
    frames = resize_frames(frames, (size, size), resize)
    frames = frames * (2.0 / 255.0) - 1.0
    return frames.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()  # (B, 3, T, S, S)


def preprocess_images(images, size: int = 299, resize: str = "tf1") -> torch.Tensor:
    """(N, H, W, 3) with values 0..255 -> (N, 3, size, size) float32, still in 0..255 (the network normalises)."""
    x = as_uint8_range_tensor(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got {tuple(x.shape)}")
    return resize_frames(x.permute(0, 3, 1, 2), (size, size), resize).contiguous()
