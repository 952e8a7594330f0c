"""Samplers (paper Sec. 2): ancestral (eq. 4), DDIM and DPM-Solver++(2M). Each takes any ``denoise(z_t, logsnr,
...) -> x_hat``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..schedule import time_grid
from .ancestral import sample_ancestral
from .common import draw_noise
from .ddim import sample_ddim
from .dpm_solver import sample_dpmpp2m

__all__ = ["sample_ancestral", "sample_ddim", "sample_dpmpp2m", "sample", "sampler_options", "SAMPLERS"]

SAMPLERS = {"ancestral": sample_ancestral, "ddim": sample_ddim, "dpmpp2m": sample_dpmpp2m}
_OPTIONS = {"ancestral": ("gamma",), "ddim": ("eta",), "dpmpp2m": ()}  # each sampler's own hyperparameters


def sampler_options(sampler: str, **options) -> dict:
    """The options among ``options`` (e.g. ``gamma=..., eta=...``) that ``sampler`` takes, leaving out ``None``s.

    Lets callers hold one set of settings (``cfg.sample``) and pass each sampler only its own.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    return {k: v for k, v in options.items() if k in _OPTIONS[sampler] and v is not None}


def sample(
    denoise,
    shape: tuple[int, ...],
    schedule,
    *,
    steps: int = 256,
    sampler: str = "ancestral",
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    z: Tensor | None = None,
    **kwargs,
) -> Tensor:
    """Draw ``z_1 ~ N(0, I)`` of ``shape`` and run ``sampler`` on a uniform time grid of ``steps`` steps.

    ``schedule`` maps times to log-SNR (e.g. :class:`videodiff.schedule.ScheduleConfig`). ``generator`` may be a list of
    one generator per sample (each sample's noise then depends on its generator only). Extra keyword arguments
    go to the sampler (``gamma``, ``eta``, ``step_hook``, ``callback``, ``progress``) and on to ``denoise``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    if z is None:
        z = draw_noise(shape, generator, device=device, dtype=dtype)
    logsnrs = schedule(time_grid(steps))
    return SAMPLERS[sampler](denoise, z, logsnrs, generator=generator, **kwargs)
