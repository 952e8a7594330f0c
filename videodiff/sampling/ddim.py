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
from .common import run_sampler

__all__ = ["sample_ddim"]


def sample_ddim(denoise, z: Tensor, logsnrs: Tensor, *, eta: float = 0.0, **kwargs) -> Tensor:
    """DDIM along the increasing log-SNR grid ``logsnrs``; other arguments as :func:`sample_ancestral`."""
    if eta < 0.0:
        raise ValueError(f"eta must be >= 0, got {eta}")

    def update(z_t, x_hat, logsnr_t, logsnr_s, noise):
        eps_hat = eps_from_x(z_t, x_hat, logsnr_t)
        alpha_s, sigma_s = alpha_sigma(logsnr_s)
        c2 = torch.minimum(eta**2 * posterior_variance(logsnr_t, logsnr_s), sigma_s**2)
        z_s = alpha_s.to(z_t.dtype) * x_hat + (sigma_s**2 - c2).sqrt().to(z_t.dtype) * eps_hat  # DDIM update
        if eta > 0:
            z_s = z_s + c2.sqrt().to(z_t.dtype) * noise()
        return z_s

    return run_sampler(update, denoise, z, logsnrs, desc="ddim", **kwargs)
