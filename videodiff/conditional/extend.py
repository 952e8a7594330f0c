"""Autoregressive temporal extension (paper Sec. 3.1 and 4.4, Table 4, Fig. 4): long videos from an F-frame model.

Each new block of ``F`` frames is sampled conditioned on the last ``context`` frames of the video so far, with the
gradient method (eq. 6) or the replacement method. The start can be real frames (``video``) or an unconditional
sample of ``F`` frames.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..denoiser import Denoise
from .blocks import extension_plan, run_plan

__all__ = ["extend"]


def extend(
    denoise: Denoise,
    schedule: Callable[[Tensor], Tensor],
    *,
    total_frames: int,
    block_frames: int,
    context: int | None = None,
    video: Tensor | None = None,
    num_videos: int | None = None,
    frame_shape: tuple[int, int, int] | None = None,
    method: str = "gradient",
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    progress: bool = True,
    **kwargs,
) -> Tensor:
    """Extend ``video`` ``(B, C, L, H, W)`` (or, without it, fresh samples) to ``(B, C, total_frames, H, W)``.

    Args:
        denoise: an unconditional denoiser of ``block_frames``-frame videos (any wrapper, e.g. guidance).
        schedule: maps times to log-SNR (the model's ``cfg.diffusion.schedule``).
        context: frames each block conditions on (default ``block_frames // 2``).
        video: the given first frames; the output starts with them unchanged.
        num_videos, frame_shape: without ``video``, how many videos of which ``(C, H, W)`` to start from scratch.
        method: ``"gradient"`` (eq. 6, with ``w_r``) or ``"replacement"`` (with ``variant``).
        kwargs: ``w_r``, ``variant``, ``steps``, ``sampler``, ``options`` (the sampler's, e.g. ``{"gamma": 0.3}``),
            ``extra_args`` (the denoiser's, e.g. ``{"cond": c}``): those of :func:`sample_conditional`.
    """
    context = block_frames // 2 if context is None else context
    if video is None:
        if num_videos is None or frame_shape is None:
            raise ValueError("extend needs either video or both num_videos and frame_shape")
        c, h, w = frame_shape
        given = 0
        out = torch.zeros(num_videos, c, total_frames, h, w, device=device or "cpu", dtype=dtype or torch.float32)
    else:
        if video.ndim != 5:
            raise ValueError(f"video must be (B, C, F, H, W), got shape {tuple(video.shape)}")
        b, c, given, h, w = video.shape
        given = min(given, total_frames)
        out = torch.zeros(b, c, total_frames, h, w, device=device or video.device, dtype=dtype or video.dtype)
        out[:, :, :given] = video[:, :, :given].to(out)
    plan = extension_plan(total_frames, block_frames, context, given)
    return run_plan(denoise, schedule, plan, out, method=method, generator=generator, progress=progress,
                    desc=f"extend ({method})", **kwargs)
