"""Frame-conditional models trained explicitly: given frames enter the network clean (paper Sec. 3.1).

The paper samples ``p(x^b | x^a)`` from an unconditional model (replacement, gradient method) and notes that "this
conditional model could be trained explicitly". This module is that explicit route, in the form of RaMViD (Hoeppe et
al. 2022) and of per-frame noise levels: in training each clip draws a number ``n`` of *context frames*
(``train.context_frames``); its first ``n`` frames are given to the network **uncorrupted**, with the log-SNR of
clean data (:data:`CONTEXT_LOGSNR`, the schedule's clipping point) in their own frame embedding, and the loss of
eq. (2) covers only the other frames. The network is unchanged (it already embeds the log-SNR per frame, as it embeds
``c`` per frame for joint training); ``n = 0`` is the paper's unconditional objective, so one model does both.

At sampling time (:class:`videodiff.denoiser.Denoiser` with ``context=`` and ``context_mask=``) the known frames are
put into ``z_t`` clean with that log-SNR at every step and ``x_hat`` of those frames *is* the given frames, so any
sampler (ancestral, DDIM, DPM-Solver++) runs unchanged and the given frames come out exactly; the network sees the
given frames themselves, not noisy copies of them, which is what the replacement method lacks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CONTEXT_LOGSNR", "context_inputs", "frames_mask", "known_first"]

# The log-SNR a clean context frame is embedded with: the cosine schedule's clipping point (lambda(0) = 20,
# videodiff/schedule.py), i.e. "no noise" as far as the network has ever seen.
CONTEXT_LOGSNR = 20.0


def frames_mask(known: Tensor, like: Tensor) -> Tensor:
    """``known`` ``(B, F)`` or ``(F,)`` (True = given frame) as a boolean mask broadcastable to ``like``
    ``(B, C, F, H, W)``."""
    if known.ndim == 1:
        known = known[None]
    if known.shape[-1] != like.shape[2]:
        raise ValueError(f"context mask has {known.shape[-1]} frames, the video {like.shape[2]}")
    return known.to(device=like.device, dtype=torch.bool)[:, None, :, None, None]


def context_inputs(z_t: Tensor, logsnr: Tensor, context: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
    """The network's inputs when the frames ``known`` ``(B, F)`` / ``(F,)`` are given as ``context``.

    Returns ``z`` with those frames replaced by ``context`` (clean) and the per-frame log-SNR ``(B, F)``: ``logsnr``
    ``(B,)`` for the frames being denoised, :data:`CONTEXT_LOGSNR` for the given ones.
    """
    b, f = z_t.shape[0], z_t.shape[2]
    mask = frames_mask(known, z_t)
    z_in = torch.where(mask, context.to(z_t.dtype), z_t)
    per_frame = torch.as_tensor(logsnr, dtype=torch.float32, device=z_t.device).expand(b)[:, None].expand(b, f)
    per_frame = torch.where(mask[:, 0, :, 0, 0].expand(b, f), torch.full_like(per_frame, CONTEXT_LOGSNR), per_frame)
    return z_in, per_frame


def known_first(counts: Tensor, frames: int) -> Tensor:
    """``(B, frames)`` boolean: clip ``i``'s first ``counts[i]`` frames are given."""
    return torch.arange(frames, device=counts.device)[None] < counts[:, None]
