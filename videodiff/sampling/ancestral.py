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
from .common import StepHook, Callback, iterate_steps

__all__ = ["sample_ancestral"]


@torch.no_grad()
def sample_ancestral(
    denoise,
    z: Tensor,
    logsnrs: Tensor,
    *,
    gamma: float = 0.3,
    generator: torch.Generator | None = None,
    step_hook: StepHook | None = None,
    callback: Callback | None = None,
    progress: bool = False,
    **denoise_kwargs,
) -> Tensor:
    """Run eq. (4) from ``z`` (noise at ``logsnrs[0]``) along the increasing log-SNR grid ``logsnrs`` (N+1 values).

    Args:
        denoise: ``denoise(z_t, logsnr, **denoise_kwargs) -> x_hat``, any callable.
        z: the starting latent ``z_1``, e.g. ``torch.randn`` of the video shape ``(B, C, F, H, W)``.
        logsnrs: log-SNR at the grid times ``t_0 = 1 > t_1 > ... > t_N = 0``.
        gamma: eq. (4) stochasticity in [0, 1].
        step_hook: ``hook(z_s, logsnr_s=..., z_t=..., logsnr_t=..., x_hat=..., generator=...) -> z_s``, called after
            every step (the replacement method of Sec. 3.1 is such a hook).
        callback: ``callback(i, z_s, x_hat)`` after every step, for progress displays and visualisation.
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    for i, logsnr_t, logsnr_s, last in iterate_steps(logsnrs, progress, "ancestral"):
        x_hat = denoise(z, logsnr_t.to(z.dtype).expand(z.shape[0]), **denoise_kwargs)
        if last:
            z_s = x_hat
        else:
            mean, _ = q_posterior(z, x_hat, logsnr_t, logsnr_s)  # eq. (3)
            post_var = posterior_variance(logsnr_t, logsnr_s)  # sigma~^2_{s|t}, eq. (3)
            fwd_var = forward_variance(logsnr_t, logsnr_s)  # sigma^2_{t|s}, eq. (1)
            log_var = (1.0 - gamma) * torch.log(post_var) + gamma * torch.log(fwd_var)
            noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z_s = mean + torch.exp(0.5 * log_var).to(z.dtype) * noise  # eq. (4)
        if step_hook is not None:
            z_s = step_hook(z_s, logsnr_s=logsnr_s, z_t=z, logsnr_t=logsnr_t, x_hat=x_hat, generator=generator)
        if callback is not None:
            callback(i, z_s, x_hat)
        z = z_s
    return z
