"""The ancestral sampler of paper eq. (4), with the stochasticity hyperparameter ``gamma``.

Starting from ``z_1 ~ N(0, I)``, for consecutive grid points ``s < t`` (uniformly spaced in time from 1 to 0):
``z_s = mu_{s|t}(z_t, x_hat(z_t)) + sqrt((sigma~^2_{s|t})^{1-gamma} (sigma^2_{t|s})^gamma) eps``, where
``mu_{s|t}`` and ``sigma~^2_{s|t}`` are the posterior of eq. (3) and ``sigma^2_{t|s}`` the forward variance of eq. (1).
``gamma = 0`` uses the posterior variance, ``gamma = 1`` the (larger) forward variance; Ho & Salimans (2021, CFG)
use ``gamma = 0.3``, our default. The last step returns ``x_hat`` itself (no noise is added at ``t = 0``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion import forward_variance, posterior_variance, q_posterior
from .common import run_sampler

__all__ = ["sample_ancestral"]


def sample_ancestral(denoise, z: Tensor, logsnrs: Tensor, *, gamma: float = 0.3, **kwargs) -> Tensor:
    """Run eq. (4) from ``z`` (noise at ``logsnrs[0]``) along the increasing log-SNR grid ``logsnrs`` (N+1 values).

    ``logsnrs`` holds the log-SNR at the grid times ``t_0 = 1 > t_1 > ... > t_N = 0``; ``gamma`` in [0, 1] is the
    eq. (4) stochasticity. Other keyword arguments (``generator``, ``step_hook``, ``callback``, ``progress`` and
    ``extra_args``, the denoiser's) are those of :func:`videodiff.sampling.common.run_sampler`.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")

    def update(z_t, x_hat, logsnr_t, logsnr_s, noise):
        mean, _ = q_posterior(z_t, x_hat, logsnr_t, logsnr_s)  # eq. (3)
        post_var = posterior_variance(logsnr_t, logsnr_s)  # sigma~^2_{s|t}, eq. (3)
        fwd_var = forward_variance(logsnr_t, logsnr_s)  # sigma^2_{t|s}, eq. (1)
        log_var = (1.0 - gamma) * torch.log(post_var) + gamma * torch.log(fwd_var)
        return mean + torch.exp(0.5 * log_var).to(z_t.dtype) * noise()  # eq. (4)

    return run_sampler(update, denoise, z, logsnrs, desc="ancestral", **kwargs)
