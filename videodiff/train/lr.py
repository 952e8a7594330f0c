"""Learning-rate schedules of the project's trainers (the diffusion loop, the evaluation classifier)."""
from __future__ import annotations

import math

__all__ = ["lr_at", "LR_DECAYS"]

LR_DECAYS = ("constant", "cosine")


def lr_at(step: int, tc, decay: str = "constant") -> float:
    """Learning rate for optimizer step ``step`` (0-based) of a config with ``lr``, ``warmup_steps`` and ``steps``:
    linear warm-up over ``warmup_steps`` (``lr * (step + 1) / warmup_steps``), then ``decay``: ``constant`` (the
    diffusion loop) or ``cosine`` down to 0 at ``steps`` (the evaluation classifier)."""
    if decay not in LR_DECAYS:
        raise ValueError(f"decay must be one of {LR_DECAYS}, got {decay!r}")
    if decay == "constant" or step < tc.warmup_steps:
        return tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))
    frac = (step - tc.warmup_steps) / max(1, tc.steps - tc.warmup_steps)
    return tc.lr * 0.5 * (1 + math.cos(math.pi * frac))
