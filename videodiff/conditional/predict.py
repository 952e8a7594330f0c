"""Video prediction (paper Sec. 3.1, 4.4): ``K`` continuations of each of ``B`` videos from their first ``C`` frames.

The paper's conditional results (BAIR 1 -> 15, Kinetics 5 -> 11) come from an unconditional model by the gradient
method (eq. 6), the replacement method as the alternative. Prediction is autoregressive extension (:func:`extend`)
with every given frame kept as context where the model's window allows (``context = min(C, F - 1)``), run once per
sample: each of the ``B * K`` continuations draws its noise from its own generator, so sample ``k`` of video ``b``
does not depend on the batch it was drawn in (``batch_size``) or on how many samples were asked for.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from .extend import extend

__all__ = ["predict", "default_context"]


def default_context(given: int, block_frames: int) -> int:
    """Frames each block conditions on when not set: every given frame the window can hold next to a new one."""
    return max(0, min(given, block_frames - 1))


def predict(
    denoise: Callable[..., Tensor],
    schedule: Callable[[Tensor], Tensor],
    video: Tensor,
    *,
    given: int,
    total_frames: int,
    block_frames: int,
    samples: int = 1,
    generators: Sequence[torch.Generator] | None = None,
    context: int | None = None,
    method: str = "gradient",
    batch_size: int = 16,
    progress: bool = True,
    extra_args: dict | None = None,
    **kwargs,
) -> Tensor:
    """``samples`` continuations of ``video`` ``(B, C, L, H, W)`` from its first ``given`` frames to ``total_frames``.

    Args:
        denoise, schedule: an unconditional denoiser of ``block_frames``-frame windows and its log-SNR schedule.
        generators: ``B * samples`` generators, video-major (sample ``k`` of video ``b`` is ``b * samples + k``);
            None: the global RNG (not reproducible across batch sizes).
        context: frames each block conditions on (default :func:`default_context`).
        method: ``"gradient"`` (eq. 6) or ``"replacement"``; ``kwargs`` go to :func:`extend` (``w_r``, ``steps``,
            ``sampler``, its options, ``guidance_clip``, denoiser keywords).
        batch_size: continuations sampled at once (memory; results do not depend on it with ``generators``).
        extra_args: denoiser keywords with a leading axis of ``B * samples`` (e.g. text embeddings), or of 1.

    Returns ``(B, samples, C, total_frames, H, W)``; frames ``:given`` equal ``video[:, :, :given]`` exactly.
    """
    if video.ndim != 5:
        raise ValueError(f"video must be (B, C, F, H, W), got shape {tuple(video.shape)}")
    b, c, length, h, w = video.shape
    if not 1 <= given <= length:
        raise ValueError(f"given must be in 1..{length} (the input's frames), got {given}")
    if total_frames <= given:
        raise ValueError(f"total_frames ({total_frames}) must exceed the {given} given frames: nothing to predict")
    if samples < 1 or batch_size < 1:
        raise ValueError(f"need samples >= 1 and batch_size >= 1, got samples={samples}, batch_size={batch_size}")
    if generators is not None and len(generators) != b * samples:
        raise ValueError(f"{len(generators)} generators for {b} videos x {samples} samples")
    context = default_context(given, block_frames) if context is None else context
    start = video[:, :, :given].repeat_interleave(samples, dim=0)  # (B*K, C, given, H, W), video-major
    out = []
    for i in range(0, b * samples, batch_size):
        part = start[i : i + batch_size]
        gen = list(generators[i : i + len(part)]) if generators is not None else None
        args = {k: v if v.shape[0] == 1 else v[i : i + len(part)] for k, v in (extra_args or {}).items()}
        out.append(extend(denoise, schedule, total_frames=total_frames, block_frames=block_frames, context=context,
                          video=part, method=method, generator=gen, progress=progress, extra_args=args, **kwargs))
    return torch.cat(out).reshape(b, samples, c, total_frames, h, w)
