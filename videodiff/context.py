"""Frame-conditional models trained explicitly: given frames enter the network clean (paper Sec. 3.1).

The paper samples ``p(x^b | x^a)`` from an unconditional model (replacement, gradient method) and notes that "this
conditional model could be trained explicitly". This module is that explicit route, in the form of RaMViD (Hoeppe et
al. 2022) and of per-frame noise levels: in training each clip draws a number ``n`` of *context frames*
(``train.context_frames``); its first ``n`` frames are given to the network **uncorrupted**, with the log-SNR of
clean data (:data:`CONTEXT_LOGSNR`, the schedule's clipping point) in their own frame embedding, and the loss of
eq. (2) covers only the other frames. The network is unchanged (it already embeds the log-SNR per frame, as it embeds
``c`` per frame for joint training); ``n = 0`` is the paper's unconditional objective, so one model does both.
Optionally (``model.context_concat = k``, as MCVD's concatenation) every frame's input also carries the last ``k``
given frames and a "given" flag as extra channels, so the first convolution sees the digits at full resolution
instead of only through temporal attention at the low-resolution levels.

At sampling time (:class:`videodiff.denoiser.Denoiser` with ``context=`` and ``context_mask=``) the known frames are
put into ``z_t`` clean with that log-SNR at every step and ``x_hat`` of those frames *is* the given frames, so any
sampler (ancestral, DDIM, DPM-Solver++) runs unchanged and the given frames come out exactly; the network sees the
given frames themselves, not noisy copies of them, which is what the replacement method lacks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CONTEXT_LOGSNR", "context_inputs", "concat_inputs", "context_concat", "frames_mask", "known_first",
           "last_known"]

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


def last_known(context: Tensor, known: Tensor, n: int) -> Tensor:
    """``(B, C * n, F, H, W)``: each video's last ``n`` known frames (the latest first; zeros where it has fewer),
    repeated at every frame position, for the concatenated input of ``model.context_concat``."""
    b, c, f, h, w = context.shape
    known = known.expand(b, f) if known.ndim == 2 else known[None].expand(b, f)
    idx = torch.arange(f, device=context.device)
    order = torch.where(known.to(context.device), idx, -1).topk(min(n, f), dim=1).values  # (B, n): -1 = none
    frames = context.gather(2, order.clamp(min=0)[:, None, :, None, None].expand(b, c, -1, h, w))
    frames = frames * (order >= 0)[:, None, :, None, None].to(frames.dtype)
    if n > f:
        frames = torch.cat([frames, frames.new_zeros(b, c, n - f, h, w)], 2)
    return frames.reshape(b, c * n, 1, h, w).expand(b, c * n, f, h, w)


def concat_inputs(z_in: Tensor, context: Tensor | None, known: Tensor | None, n: int) -> Tensor:
    """``z_in`` with ``model.context_concat = n`` context channels: :func:`last_known` and a 0/1 "given" flag per
    frame; without context (unconditional use of such a model) both are zeros."""
    b, c, f, h, w = z_in.shape
    if context is None:
        return torch.cat([z_in, z_in.new_zeros(b, c * n + 1, f, h, w)], 1)
    flag = frames_mask(known, z_in).to(z_in.dtype).expand(b, 1, f, h, w)
    return torch.cat([z_in, last_known(context.to(z_in.dtype), known, n), flag], 1)


def context_inputs(z_t: Tensor, logsnr: Tensor, context: Tensor, known: Tensor,
                   concat: int = 0) -> tuple[Tensor, Tensor]:
    """The network's inputs when the frames ``known`` ``(B, F)`` / ``(F,)`` are given as ``context``.

    Returns ``z`` with those frames replaced by ``context`` (clean) and the per-frame log-SNR ``(B, F)``: ``logsnr``
    ``(B,)`` for the frames being denoised, :data:`CONTEXT_LOGSNR` for the given ones. ``concat`` (the network's
    ``model.context_concat``): the channels of :func:`concat_inputs` appended.
    """
    b, f = z_t.shape[0], z_t.shape[2]
    mask = frames_mask(known, z_t)
    z_in = torch.where(mask, context.to(z_t.dtype), z_t)
    if concat:
        z_in = concat_inputs(z_in, context, known, concat)
    per_frame = torch.as_tensor(logsnr, dtype=torch.float32, device=z_t.device).expand(b)[:, None].expand(b, f)
    per_frame = torch.where(mask[:, 0, :, 0, 0].expand(b, f), torch.full_like(per_frame, CONTEXT_LOGSNR), per_frame)
    return z_in, per_frame


def context_concat(net) -> int:
    """``model.context_concat`` of ``net`` (a UNet3D, or one wrapped by DDP / FSDP / torch.compile); 0 otherwise."""
    for attr in ("module", "_orig_mod"):
        while hasattr(net, attr) and not hasattr(net, "cfg"):
            net = getattr(net, attr)
    return int(getattr(getattr(net, "cfg", None), "context_concat", 0) or 0)


def known_first(counts: Tensor, frames: int) -> Tensor:
    """``(B, frames)`` boolean: clip ``i``'s first ``counts[i]`` frames are given."""
    return torch.arange(frames, device=counts.device)[None] < counts[:, None]
