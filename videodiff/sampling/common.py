"""Shared pieces of the samplers: the step iterator and hook/callback types."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["StepHook", "Callback", "iterate_steps"]

StepHook = Callable[..., Tensor]
Callback = Callable[[int, Tensor, Tensor], None]


def iterate_steps(logsnrs: Tensor, progress: bool, desc: str) -> Iterator[tuple[int, Tensor, Tensor, bool]]:
    """Yield ``(i, logsnr_t, logsnr_s, is_last)`` over consecutive grid points, in float64."""
    logsnrs = torch.as_tensor(logsnrs, dtype=torch.float64)
    if logsnrs.ndim != 1 or logsnrs.numel() < 2:
        raise ValueError(f"logsnrs must be a 1-D grid of at least 2 values, got shape {tuple(logsnrs.shape)}")
    if not bool((logsnrs[1:] > logsnrs[:-1]).all()):
        raise ValueError("logsnrs must increase strictly (time runs from 1 to 0 while log-SNR grows)")
    n = logsnrs.numel() - 1
    steps = range(n)
    if progress:
        steps = tqdm(steps, desc=desc, leave=False)
    for i in steps:
        yield i, logsnrs[i], logsnrs[i + 1], i == n - 1
