"""DDIM (Song et al. 2021, the paper's ref. [33]), deterministic (``eta = 0``) or stochastic (``eta > 0``).

With ``eps_hat = (z_t - alpha_t x_hat) / sigma_t``:
``z_s = alpha_s x_hat + sqrt(sigma_s^2 - c^2) eps_hat + c eps``, ``c = eta * sigma~_{s|t}`` (the posterior standard
deviation of eq. 3). ``eta = 1`` coincides with the ancestral sampler of eq. (4) at ``gamma = 0``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion import eps_from_x, posterior_variance
from ..schedule import alpha_sigma
from .common import StepHook, Callback, iterate_steps

__all__ = ["sample_ddim"]


@torch.no_grad()
def sample_ddim(
    denoise,
    z: Tensor,
    logsnrs: Tensor,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    step_hook: StepHook | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    **denoise_kwargs,
) -> Tensor:
    """DDIM along the increasing log-SNR grid ``logsnrs``; see :func:`sample_ancestral` for the arguments."""
    if eta < 0.0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    for i, logsnr_t, logsnr_s, last in iterate_steps(logsnrs, progress, "ddim"):
        x_hat = denoise(z, logsnr_t.to(z.dtype).expand(z.shape[0]), **denoise_kwargs)
        if last:
            z_s = x_hat
        else:
            eps_hat = eps_from_x(z, x_hat, logsnr_t)
            alpha_s, sigma_s = alpha_sigma(logsnr_s)
            c2 = eta**2 * posterior_variance(logsnr_t, logsnr_s)
            c2 = torch.minimum(c2, sigma_s**2)
            z_s = alpha_s.to(z.dtype) * x_hat + (sigma_s**2 - c2).sqrt().to(z.dtype) * eps_hat  # DDIM update
            if eta > 0:
                noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
                z_s = z_s + c2.sqrt().to(z.dtype) * noise
        if step_hook is not None:
            z_s = step_hook(z_s, logsnr_s=logsnr_s, z_t=z, logsnr_t=logsnr_t, x_hat=x_hat, generator=generator)
        if callback is not None:
            callback(i, z_s, x_hat)
        z = z_s
    return z
