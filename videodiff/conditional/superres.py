"""Spatial super-resolution by eq. (7) and the cascade of Fig. 2 (paper Sec. 3.1).

An unconditional high-resolution model is guided by a reconstruction loss on the downsampled prediction,
``|| y - D x_hat(z_t) ||^2``, differentiated with respect to all of ``z_t``. The cascade does super-resolution and
autoregressive extension in one pass: low-resolution frames at frameskip ``k`` (e.g. samples of a low-resolution
model) constrain every ``k``-th frame through ``D``, and the last ``context`` high-resolution frames of the
previous window are conditioned on directly (eq. 6 with replacement). ``upsample`` is the cascade with ``k = 1``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..denoiser import Denoise
from .blocks import cascade_plan, run_plan
from .downsample import Downsample

__all__ = ["cascade", "upsample"]


def cascade(
    denoise: Denoise,
    schedule: Callable[[Tensor], Tensor],
    video_low: Tensor,
    *,
    size: int,
    factor: int = 1,
    block_frames: int,
    context: int | None = None,
    down_mode: str = "bilinear",
    w_r: float = 1.0,
    w_r_low: float | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
    **kwargs,
) -> Tensor:
    """``video_low`` ``(B, C, L, h, w)`` at frameskip ``factor`` -> ``(B, C, (L - 1) * factor + 1, size, size)``.

    Args:
        denoise: unconditional denoiser of ``block_frames``-frame videos at ``size x size``.
        size: output resolution; ``D`` downsamples it to ``(h, w)`` with ``down_mode`` ("bilinear" | "area").
        factor: temporal upsampling factor (1: spatial super-resolution only).
        context: high-resolution frames of the previous window conditioned on (default ``block_frames // 2``;
            only used when the video is longer than one window).
        w_r: weight of the direct term (eq. 6) on context frames (1 in the paper).
        w_r_low: weight of the low-resolution term (eq. 7). Default ``(size / h) * (size / w)``: eq. (7) is exact as
            ``t -> 0`` when ``w_r_low D D^T = I``, which this gives for area downsampling (``D D^T = I / k^2``); it
            is also stable for bilinear. The paper's literal eq. (7) is ``w_r_low = 1`` (a weaker pull towards y,
            see BENCHMARKS.md and tests/test_conditional.py).
        kwargs: ``method`` ("gradient": eq. 7, default; "replacement": the low frequencies of ``z_s`` replaced
            after every step, :class:`~videodiff.conditional.replacement.LowResReplacementHook`, area ``D`` only),
            ``steps``, ``sampler``, ``options`` (the sampler's), ``variant``, ``extra_args`` (the denoiser's).
    """
    if video_low.ndim != 5:
        raise ValueError(f"video_low must be (B, C, F, h, w), got shape {tuple(video_low.shape)}")
    method = kwargs.pop("method", "gradient")
    if method not in ("gradient", "replacement"):
        raise ValueError(f"method must be 'gradient' (eq. 7) or 'replacement' (low frequencies), got {method!r}")
    b, c, num_low, h, w = video_low.shape
    context = block_frames // 2 if context is None else context
    plan = cascade_plan(num_low, factor, block_frames, context)
    if w_r_low is None:
        w_r_low = (size / h) * (size / w)
    total = (num_low - 1) * factor + 1
    low = torch.zeros(b, c, total, h, w, device=video_low.device, dtype=video_low.dtype)
    low[:, :, ::factor] = video_low
    out = torch.zeros(b, c, total, size, size, device=video_low.device, dtype=video_low.dtype)
    return run_plan(denoise, schedule, plan, out, low_video=low, down=Downsample((h, w), down_mode),
                    method=method, w_r=w_r, w_r_low=w_r_low, generator=generator, progress=progress,
                    desc=f"cascade x{factor} {h}->{size}" if factor > 1 else f"upsample {h}->{size}", **kwargs)


def upsample(
    denoise: Denoise,
    schedule: Callable[[Tensor], Tensor],
    video_low: Tensor,
    *,
    size: int,
    block_frames: int,
    **kwargs,
) -> Tensor:
    """Spatial super-resolution of ``video_low`` ``(B, C, L, h, w)`` to ``size`` by eq. (7); see :func:`cascade`."""
    return cascade(denoise, schedule, video_low, size=size, factor=1, block_frames=block_frames, **kwargs)
