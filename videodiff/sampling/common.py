"""The loop every sampler shares: walk the log-SNR grid, denoise, apply the sampler's update, hooks, callbacks.

A sampler is an *update rule* ``update(z_t, x_hat, logsnr_t, logsnr_s, noise) -> z_s`` run by :func:`run_sampler`.
The last step returns ``x_hat`` itself (no noise is added at ``t = 0``). ``noise()`` draws standard Gaussian noise
of the latent's shape from the caller's generator, so samplers never touch global RNG state.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..denoiser import Denoise

__all__ = ["StepHook", "Callback", "Update", "iterate_steps", "run_sampler", "draw_noise", "loose_keywords_error"]


def loose_keywords_error(where: str, loose: dict) -> str:
    """The message for keywords that are neither a run argument nor ``options`` / ``extra_args``: sampler options
    and denoiser arguments once travelled mixed in ``**kwargs``; they now have one way each."""
    names = ", ".join(sorted(loose))
    return (f"{where} got unexpected keyword(s) {names}: pass a sampler's own options as options={{...}} (e.g. "
            f"options={{'gamma': 0.3}}) and the denoiser's arguments as extra_args={{...}} (e.g. "
            f"extra_args={{'text_emb': ...}}); loose keywords are no longer sorted")

StepHook = Callable[..., Tensor]
Callback = Callable[[int, Tensor, Tensor], None]
Update = Callable[[Tensor, Tensor, Tensor, Tensor, Callable[[], Tensor]], Tensor]


def draw_noise(shape, generator, *, device, dtype) -> Tensor:
    """Standard Gaussian noise of ``shape``. ``generator``: one ``torch.Generator`` (or None) for the whole batch, or a
    list of one per sample (axis 0), so that each sample's noise depends on its own generator only (not on the
    batch it is drawn in)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, device=device, dtype=dtype) for g in generator])
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


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


@torch.no_grad()
def run_sampler(
    update: Update,
    denoise: Denoise,
    z: Tensor,
    logsnrs: Tensor,
    *,
    desc: str,
    generator: torch.Generator | None = None,
    step_hook: StepHook | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    extra_args: dict | None = None,
    **loose,
) -> Tensor:
    """Run ``update`` from ``z`` (noise at ``logsnrs[0]``) along the increasing log-SNR grid ``logsnrs``.

    Args:
        update: the sampler's rule, e.g. eq. (4) for the ancestral sampler.
        denoise: ``denoise(z_t, logsnr, **extra_args) -> x_hat``, any callable (the ``Denoise`` protocol).
        step_hook: ``hook(z_s, logsnr_s=..., z_t=..., logsnr_t=..., x_hat=..., generator=...) -> z_s``, called after
            every step (the replacement method of Sec. 3.1 is such a hook).
        callback: ``callback(i, z_s, x_hat)`` after every step, for progress displays and visualisation.
        extra_args: keyword arguments of ``denoise`` (``text_emb``, ``cond``, ...), k-diffusion's ``extra_args``.
    """
    if loose:
        raise TypeError(loose_keywords_error("the sampler", loose))
    extra_args = extra_args or {}

    def noise() -> Tensor:
        return draw_noise(z.shape, generator, device=z.device, dtype=z.dtype)

    for i, logsnr_t, logsnr_s, last in iterate_steps(logsnrs, progress, desc):
        x_hat = denoise(z, logsnr_t.to(z.dtype).expand(z.shape[0]), **extra_args)
        z_s = x_hat if last else update(z, x_hat, logsnr_t, logsnr_s, noise)
        if step_hook is not None:
            z_s = step_hook(z_s, logsnr_s=logsnr_s, z_t=z, logsnr_t=logsnr_t, x_hat=x_hat, generator=generator)
        if callback is not None:
            callback(i, z_s, x_hat)
        z = z_s
    return z
