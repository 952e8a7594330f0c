"""The randomness of a training step, keyed by position so that it does not depend on how the batch is split.

Each clip's diffusion time ``t``, noise ``eps`` (eq. 1, 2) and conditioning-dropout draws (eq. 5) come from a
generator seeded by ``(train.seed, step, j)``, where ``j`` is the clip's position in the step's global batch. Any
world size and any number of gradient-accumulation micro-batches therefore see the same noise for the same clip, and
a resumed run needs no saved generator state. With low-discrepancy sampling (Kingma et al. 2021) the times are
stratified over the global batch: ``t_j = (u + j / B) mod 1`` with one ``u`` per step.

Dropout inside the network uses the global RNG; it is reseeded per micro-batch from ``(seed, step, first j)``, so it
is reproducible for a given split of the global batch (resume with the same world size and accumulation is exact;
a different split draws different dropout masks).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

__all__ = ["sample_key", "StepNoise", "draw_step_noise", "seed_dropout"]

_M64 = (1 << 64) - 1
_STREAM_SAMPLE, _STREAM_STRATA, _STREAM_DROPOUT, _STREAM_GUIDANCE = 0, 1, 2, 3


def _mix64(z: int) -> int:
    """A 64-bit avalanche mix (SplitMix64's finaliser): nearby inputs give unrelated outputs."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def sample_key(seed: int, step: int, index: int, stream: int = _STREAM_SAMPLE) -> int:
    """A generator seed (63 bits) for ``(seed, step, index, stream)``."""
    h = 0
    for part in (stream, seed, step, index):
        h = _mix64(h ^ (part & _M64))
    return h >> 1


@dataclasses.dataclass
class StepNoise:
    t: Tensor  # (b,) diffusion times in [0, 1]
    eps: Tensor  # (b, C, F, H, W) standard normal noise
    keep: Tensor | None  # conditioning kept: (b,) per video, or (b, F + N) with N image frames; None without text
    context: Tensor | None = None  # (b,) frames given clean per clip (train.context_frames); None without


def draw_step_noise(
    positions: range,
    sample_shape: tuple[int, ...],
    *,
    seed: int,
    step: int,
    global_batch: int,
    low_discrepancy: bool = False,
    drop_prob: float | None = None,
    video_frames: int = 0,
    image_frames: int = 0,
    context_choices: tuple[int, ...] = (),
    device=None,
) -> StepNoise:
    """The noise of the clips at ``positions`` (indices into the step's global batch of ``global_batch`` clips).

    ``drop_prob`` (text-conditioned runs): each video keeps its caption with probability ``1 - drop_prob``, and so
    does each of its ``image_frames`` appended image frames, independently (``keep`` is then ``(b, F + N)``).
    """
    gen = torch.Generator(device=device)
    u, eps, keep, context = [], [], [], []
    for j in positions:
        gen.manual_seed(sample_key(seed, step, j))
        u.append(torch.rand((), generator=gen, device=device))
        eps.append(torch.randn(sample_shape, generator=gen, device=device))
        if drop_prob is not None:
            k = torch.rand(1 + image_frames, generator=gen, device=device) >= drop_prob
            keep.append(torch.cat([k[:1].expand(video_frames), k[1:]]) if image_frames else k[0])
        if context_choices:
            pick = torch.randint(len(context_choices), (), generator=gen, device=device)
            context.append(torch.tensor(context_choices, device=device)[pick])
    if low_discrepancy:
        gen.manual_seed(sample_key(seed, step, 0, _STREAM_STRATA))
        u0 = torch.rand((), generator=gen, device=device)
        j = torch.arange(positions.start, positions.stop, device=device, dtype=torch.float32)
        t = torch.remainder(u0 + j / global_batch, 1.0)
    else:
        t = torch.stack(u)
    return StepNoise(t, torch.stack(eps), torch.stack(keep) if drop_prob is not None else None,
                     torch.stack(context) if context_choices else None)


def seed_dropout(seed: int, step: int, first: int) -> None:
    """Reseed the global RNG (network dropout) for the micro-batch whose first clip is at global position ``first``."""
    torch.manual_seed(sample_key(seed, step, first, _STREAM_DROPOUT))


def draw_guidance(seed: int, step: int, n: int, low: float, high: float, device=None) -> Tensor:
    """``(n,)`` guidance weights of one step's clips, uniform in ``[low, high]`` and keyed by ``(seed, step)`` (a
    resumed run draws the same): the ``w`` of a guidance-distilled student's clips (``distill.guidance_range``)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(sample_key(seed, step, 0, _STREAM_GUIDANCE))
    return low + (high - low) * torch.rand(n, generator=gen, device=device)
