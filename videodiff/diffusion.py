"""The Gaussian forward process and its reverse-time posterior (paper Sec. 2, eq. 1 and 3), as pure functions.

All functions take ``logsnr`` with one value per example (shape ``(B,)``) or a scalar, and broadcast it over the
remaining axes of the data, e.g. videos ``(B, C, F, H, W)``. Stable forms: ``alpha^2 = sigmoid(lambda)``,
``1 - e^{lambda_t - lambda_s}`` as ``-expm1(lambda_t - lambda_s)``.

Parameterisations: ``eps`` (the paper's choice, ``x = (z - sigma eps) / alpha``) and ``v`` (Salimans & Ho 2022,
``v = alpha eps - sigma x``, so ``x = alpha z - sigma v`` and ``eps = sigma z + alpha v``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .schedule import alpha_sigma

__all__ = [
    "broadcast_to",
    "q_sample",
    "q_posterior",
    "forward_variance",
    "posterior_variance",
    "eps_from_x",
    "x_from_eps",
    "v_from_x_eps",
    "x_from_v",
    "eps_from_v",
]


def broadcast_to(coef: Tensor, x: Tensor) -> Tensor:
    """Reshape a per-example coefficient ``(B,)`` (or scalar) so it broadcasts against ``x`` ``(B, ...)``."""
    coef = torch.as_tensor(coef, device=x.device)
    if coef.ndim == 0:
        return coef.to(x.dtype)
    return coef.to(x.dtype).reshape(coef.shape + (1,) * (x.ndim - coef.ndim))


def q_sample(x: Tensor, logsnr: Tensor, eps: Tensor) -> Tensor:
    """Draw ``z_t ~ q(z_t | x) = N(alpha_t x, sigma_t^2 I)`` (eq. 1) with the given standard noise ``eps``."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(alpha, x) * x + broadcast_to(sigma, x) * eps


def forward_variance(logsnr_t: Tensor, logsnr_s: Tensor) -> Tensor:
    """``sigma_{t|s}^2 = (1 - e^{lambda_t - lambda_s}) sigma_t^2``, the variance of ``q(z_t | z_s)`` (eq. 1), s < t."""
    return -torch.expm1(logsnr_t - logsnr_s) * torch.sigmoid(-logsnr_t)


def posterior_variance(logsnr_t: Tensor, logsnr_s: Tensor) -> Tensor:
    """``sigma~^2_{s|t} = (1 - e^{lambda_t - lambda_s}) sigma_s^2``, the variance of ``q(z_s | z_t, x)`` (eq. 3)."""
    return -torch.expm1(logsnr_t - logsnr_s) * torch.sigmoid(-logsnr_s)


def q_posterior(z_t: Tensor, x: Tensor, logsnr_t: Tensor, logsnr_s: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and variance of ``q(z_s | z_t, x)`` for ``s < t`` (eq. 3).

    ``mu = e^{lambda_t - lambda_s} (alpha_s / alpha_t) z_t + (1 - e^{lambda_t - lambda_s}) alpha_s x`` and
    ``var = (1 - e^{lambda_t - lambda_s}) sigma_s^2``. The variance is returned broadcastable against ``z_t``.
    """
    alpha_t, _ = alpha_sigma(logsnr_t)
    alpha_s, _ = alpha_sigma(logsnr_s)
    r = torch.exp(logsnr_t - logsnr_s)  # e^{lambda_t - lambda_s} in (0, 1]
    one_minus_r = -torch.expm1(logsnr_t - logsnr_s)
    mean = broadcast_to(r * alpha_s / alpha_t, z_t) * z_t + broadcast_to(one_minus_r * alpha_s, x) * x
    return mean, broadcast_to(posterior_variance(logsnr_t, logsnr_s), z_t)


def eps_from_x(z_t: Tensor, x: Tensor, logsnr: Tensor) -> Tensor:
    """``eps = (z_t - alpha x) / sigma``."""
    alpha, sigma = alpha_sigma(logsnr)
    return (z_t - broadcast_to(alpha, x) * x) / broadcast_to(sigma, x)


def x_from_eps(z_t: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """``x = (z_t - sigma eps) / alpha`` (the eps-prediction parameterisation of Sec. 2)."""
    alpha, sigma = alpha_sigma(logsnr)
    return (z_t - broadcast_to(sigma, z_t) * eps) / broadcast_to(alpha, z_t)


def v_from_x_eps(x: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """``v = alpha eps - sigma x``."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(alpha, x) * eps - broadcast_to(sigma, x) * x


def x_from_v(z_t: Tensor, v: Tensor, logsnr: Tensor) -> Tensor:
    """``x = alpha z_t - sigma v``."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(alpha, z_t) * z_t - broadcast_to(sigma, z_t) * v


def eps_from_v(z_t: Tensor, v: Tensor, logsnr: Tensor) -> Tensor:
    """``eps = sigma z_t + alpha v``."""
    alpha, sigma = alpha_sigma(logsnr)
    return broadcast_to(sigma, z_t) * z_t + broadcast_to(alpha, z_t) * v
