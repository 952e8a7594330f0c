"""The ``distill.*`` options of an experiment: progressive distillation of a trained model into a few-step DDIM
student (Salimans & Ho 2022; :mod:`videodiff.distillation` holds the mathematics, :mod:`.run` the loop)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..distillation import WEIGHTINGS
from ..precision import PRECISIONS

__all__ = ["DistillConfig", "is_student", "student_guidance_range"]


@dataclass
class DistillConfig:
    # The teacher: a shipped model's name or a run directory / checkpoint (its EMA weights). None: not a distillation.
    source: str | None = None
    start_steps: int = 64  # DDIM steps of the first teacher; each round halves them: start/2, start/4, ..., target
    target_steps: int = 4  # DDIM steps of the last student (start_steps = target_steps x 2^rounds)
    steps_per_round: int = 1000  # optimizer steps of each round
    batch_size: int = 8
    lr: float = 1e-4
    warmup_steps: int = 10  # linear LR warm-up at the start of each round (a fresh optimizer per round)
    grad_clip: float = 1.0  # max global gradient norm (0: off)
    ema_decay: float = 0.999  # the student's EMA (warm-up as train.ema_decay); it is the next round's teacher
    # The loss weighting of the x-space error (Salimans & Ho Sec. 4): "truncated_snr" (max(SNR, 1)) or
    # "snr_plus_one" (1 + SNR: the plain MSE in v space).
    weighting: str = "truncated_snr"
    # Text models: the teacher is classifier-free guided (eq. 5) at this weight w, so the student learns the guided
    # prediction and needs one network call per step. 0: the plain conditional teacher.
    guidance: float = 0.0
    # Text models, instead of one fixed w: [w_min, w_max]. Each clip's w is drawn uniformly from the range, the
    # round-1 teacher is guided at it (eq. 5) and the student takes it as an input (model.guidance_input; Meng et al.
    # 2023), so one student serves every w in the range with one network call per step. None: off.
    guidance_range: list[float] | None = None
    seed: int = 0
    precision: str = "fp32"  # the student's and teacher's network arithmetic (videodiff/precision.py)
    log_every: int = 10
    ckpt_every: int = 200  # a checkpoint every N steps, and at the end of every round
    keep_checkpoints: int = 2
    # Wall-clock limit of one invocation in seconds (0: none): the run stops after the step that passes it, with a
    # checkpoint, and the same command resumes it (the limit may change between invocations).
    max_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.source is not None and not str(self.source).strip():
            raise ValueError("distill.source must name a model (a shipped name or a run directory) or be null")
        for name in ("start_steps", "target_steps", "steps_per_round", "batch_size", "log_every", "ckpt_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"distill.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.grad_clip < 0 or not self.lr >= 0 or not self.max_seconds >= 0:
            raise ValueError("distill.warmup_steps, distill.grad_clip, distill.lr and distill.max_seconds must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"distill.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"distill.weighting must be one of {' | '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"distill.precision must be one of {' | '.join(PRECISIONS)}, got {self.precision!r}")
        if self.guidance < 0:
            raise ValueError(f"distill.guidance must be >= 0, got {self.guidance}")
        if self.guidance_range is not None:
            span = self.guidance_range
            if (not isinstance(span, (list, tuple)) or len(span) != 2
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in span)
                    or not 0 <= span[0] < span[1]):
                raise ValueError(f"distill.guidance_range must be [w_min, w_max] with 0 <= w_min < w_max, got {span}")
            if self.guidance > 0:
                raise ValueError("distill.guidance and distill.guidance_range exclude each other: give one fixed w "
                                 "or a range")
            self.guidance_range = [float(v) for v in span]
        n = self.start_steps
        while n > self.target_steps and n % 2 == 0:
            n //= 2
        if n != self.target_steps or self.start_steps == self.target_steps:
            raise ValueError(f"distill.start_steps ({self.start_steps}) must be distill.target_steps "
                             f"({self.target_steps}) times a power of 2 (at least one round)")


def is_student(config) -> bool:
    """Whether an experiment config is a progressively distilled student's (``distill.source`` set)."""
    distill = getattr(config, "distill", None)
    return distill is not None and bool(distill.source)


def student_guidance_range(config) -> tuple[float, float] | None:
    """``(w_min, w_max)`` of a student that takes the guidance weight as an input (``model.guidance_input`` with
    ``distill.guidance_range``), else None."""
    if not is_student(config) or not config.model.guidance_input or not config.distill.guidance_range:
        return None
    low, high = config.distill.guidance_range
    return float(low), float(high)
