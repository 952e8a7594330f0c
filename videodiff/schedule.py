"""Log-SNR noise schedules and time grids (paper Sec. 2): pure functions of continuous time ``t in [0, 1]``.

The forward process of eq. (1) is specified by its log signal-to-noise ratio ``logsnr = lambda_t =
log(alpha_t^2 / sigma_t^2)``, decreasing in ``t``. For a variance-preserving process
``alpha_t^2 = sigmoid(lambda_t)`` and ``sigma_t^2 = sigmoid(-lambda_t)``, so ``alpha^2 + sigma^2 = 1``.

The paper trains with "t sampled according to a cosine schedule [24]"; in log-SNR form (Kingma et al. 2021,
Salimans & Ho 2022) the cosine schedule ``alpha_t = cos(pi t / 2)`` is ``lambda(t) = -2 log tan(pi t / 2)``,
here clipped to ``[logsnr_min, logsnr_max]`` by rescaling ``t`` so the endpoints are finite.
The *shifted* variant (Hoogeboom et al. 2023, "simple diffusion") adds ``2 log(base / size)`` so that a higher
resolution sees the same effective noise per pixel as the base resolution; the *interpolated* variant blends the
shifts of two resolutions linearly in ``t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ScheduleConfig",
    "alpha_sigma",
    "logsnr_cosine",
    "logsnr_cosine_shifted",
    "logsnr_cosine_interpolated",
    "t_from_logsnr_cosine",
    "time_grid",
]


def _cosine_bounds(logsnr_min: float, logsnr_max: float) -> tuple[float, float]:
    if not logsnr_min < logsnr_max:
        raise ValueError(f"logsnr_min must be < logsnr_max, got {logsnr_min} and {logsnr_max}")
    t_min = math.atan(math.exp(-0.5 * logsnr_max))
    t_max = math.atan(math.exp(-0.5 * logsnr_min))
    return t_min, t_max


def logsnr_cosine(t: Tensor, logsnr_min: float = -20.0, logsnr_max: float = 20.0) -> Tensor:
    """Cosine schedule in log-SNR form: ``lambda(t) = -2 log tan(a t + b)``, clipped to ``[logsnr_min, logsnr_max]``.

    ``lambda(0) = logsnr_max`` and ``lambda(1) = logsnr_min`` exactly; strictly decreasing in between.
    """
    t_min, t_max = _cosine_bounds(logsnr_min, logsnr_max)
    return -2.0 * torch.log(torch.tan(t_min + t * (t_max - t_min)))


def t_from_logsnr_cosine(logsnr: Tensor, logsnr_min: float = -20.0, logsnr_max: float = 20.0) -> Tensor:
    """Inverse of :func:`logsnr_cosine`: the time at which the (unshifted) cosine schedule reaches ``logsnr``."""
    t_min, t_max = _cosine_bounds(logsnr_min, logsnr_max)
    return (torch.atan(torch.exp(-0.5 * logsnr)) - t_min) / (t_max - t_min)


def logsnr_cosine_shifted(
    t: Tensor, image_size: int, base_size: int = 64, logsnr_min: float = -20.0, logsnr_max: float = 20.0
) -> Tensor:
    """Cosine schedule shifted for resolution: ``lambda(t) + 2 log(base_size / image_size)``.

    As in Hoogeboom et al. (2023) the shift is added after clipping, so both endpoints move by the shift.
    """
    return logsnr_cosine(t, logsnr_min, logsnr_max) + 2.0 * math.log(base_size / image_size)


def logsnr_cosine_interpolated(
    t: Tensor,
    image_size: int,
    size_low: int = 32,
    size_high: int = 256,
    logsnr_min: float = -20.0,
    logsnr_max: float = 20.0,
) -> Tensor:
    """Interpolated shifted cosine schedule: ``t * shifted(size_low) + (1 - t) * shifted(size_high)``."""
    low = logsnr_cosine_shifted(t, image_size, size_low, logsnr_min, logsnr_max)
    high = logsnr_cosine_shifted(t, image_size, size_high, logsnr_min, logsnr_max)
    return t * low + (1.0 - t) * high


def alpha_sigma(logsnr: Tensor) -> tuple[Tensor, Tensor]:
    """``alpha = sqrt(sigmoid(lambda))``, ``sigma = sqrt(sigmoid(-lambda))`` (variance preserving, eq. 1)."""
    return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()


def time_grid(num_steps: int, device: torch.device | str | None = None) -> Tensor:
    """Uniformly spaced times from 1 to 0 (``num_steps + 1`` points), the sampler grid of eq. (4)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return torch.linspace(1.0, 0.0, num_steps + 1, device=device, dtype=torch.float64)


@dataclass
class ScheduleConfig:
    """Which log-SNR schedule to use. ``kind``: ``cosine`` | ``cosine_shifted`` | ``cosine_interpolated``."""

    kind: str = "cosine"
    logsnr_min: float = -20.0
    logsnr_max: float = 20.0
    image_size: int = 64  # for the shifted/interpolated kinds: the resolution being modelled
    base_size: int = 64  # cosine_shifted: the resolution whose schedule is plain cosine
    size_low: int = 32  # cosine_interpolated
    size_high: int = 256

    def __post_init__(self) -> None:
        kinds = ("cosine", "cosine_shifted", "cosine_interpolated")
        if self.kind not in kinds:
            raise ValueError(f"diffusion.schedule.kind must be one of {kinds}, got {self.kind!r}")
        _cosine_bounds(self.logsnr_min, self.logsnr_max)

    def __call__(self, t: Tensor) -> Tensor:
        """``lambda(t)`` for times ``t`` (any shape), in the dtype of ``t``."""
        if self.kind == "cosine":
            return logsnr_cosine(t, self.logsnr_min, self.logsnr_max)
        if self.kind == "cosine_shifted":
            return logsnr_cosine_shifted(t, self.image_size, self.base_size, self.logsnr_min, self.logsnr_max)
        return logsnr_cosine_interpolated(
            t, self.image_size, self.size_low, self.size_high, self.logsnr_min, self.logsnr_max
        )
