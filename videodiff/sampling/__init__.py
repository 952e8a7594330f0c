"""Samplers (paper Sec. 2): ancestral (eq. 4), DDIM and DPM-Solver++(2M), named in :mod:`.registry`. Each takes any
``denoise(z_t, logsnr, ...) -> x_hat``."""

from __future__ import annotations

import torch
from torch import Tensor

from ..denoiser import Denoise
from ..schedule import time_grid
from .ancestral import sample_ancestral
from .common import draw_noise, loose_keywords_error
from .ddim import sample_ddim
from .dpm_solver import sample_dpmpp2m
from .registry import (SAMPLERS, SamplerOption, SamplerSpec, check_options, get_sampler, register_sampler,
                       resolve_options, sampler_names, sampler_options, unregister_sampler)

__all__ = ["sample_ancestral", "sample_ddim", "sample_dpmpp2m", "sample", "sampler_options", "SAMPLERS",
           "SamplerSpec", "SamplerOption", "register_sampler", "unregister_sampler", "get_sampler", "sampler_names",
           "resolve_options", "check_options"]


def sample(
    denoise: Denoise,
    shape: tuple[int, ...],
    schedule,
    *,
    steps: int = 256,
    sampler: str = "ancestral",
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    z: Tensor | None = None,
    options: dict | None = None,
    extra_args: dict | None = None,
    step_hook=None,
    callback=None,
    progress: bool = False,
    **loose,
) -> Tensor:
    """Draw ``z_1 ~ N(0, I)`` of ``shape`` and run ``sampler`` on a uniform time grid of ``steps`` steps.

    ``schedule`` maps times to log-SNR (e.g. :class:`videodiff.schedule.ScheduleConfig`). ``generator`` may be a list of
    one generator per sample (each sample's noise then depends on its generator only). ``options``: the sampler's
    own hyperparameters (``{"gamma": 0.3}``; a name the sampler does not take is an error); ``extra_args``: keyword
    arguments of ``denoise`` (``text_emb``, ``cond``, ...). These are the only ways in: any other keyword (the old
    mixed ``**kwargs``, e.g. ``gamma=0.3``) is a TypeError that says where it goes.
    """
    if loose:
        raise TypeError(loose_keywords_error("sample()", loose))
    spec = get_sampler(sampler)
    options = check_options(sampler, options)
    if z is None:
        z = draw_noise(shape, generator, device=device, dtype=dtype)
    logsnrs = schedule(time_grid(steps))
    return spec.fn(denoise, z, logsnrs, generator=generator, step_hook=step_hook, callback=callback,
                   progress=progress, extra_args=extra_args, **options)
