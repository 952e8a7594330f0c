"""Progressive distillation (Salimans & Ho, ICLR 2022, Algorithm 2) as pure functions on tensors.

A student that samples with ``N`` DDIM steps learns to match, with **one** DDIM step, what a teacher does in **two**
DDIM steps of the ``2N``-step grid. For ``z_t`` at grid point ``t`` and the teacher's points ``t' = t - 1/(2N)`` and
``t'' = t - 1/N``, both steps deterministic DDIM (``eta = 0``):

    z_t'  = alpha_t' x_hat(z_t)  + sigma_t'  (z_t  - alpha_t  x_hat(z_t))  / sigma_t
    z_t'' = alpha_t'' x_hat(z_t') + sigma_t'' (z_t' - alpha_t' x_hat(z_t')) / sigma_t'

and the student's one step from ``t`` lands on ``z_t''`` exactly when its ``x_hat`` is

    x~ = (z_t'' - (sigma_t'' / sigma_t) z_t) / (alpha_t'' - (sigma_t'' / sigma_t) alpha_t)

(the target of Algorithm 2). The last step of a sampler (``t'' = 0``) returns ``x_hat`` itself
(:func:`videodiff.sampling.common.run_sampler`), so there the target is the teacher's last ``x_hat``, ``x~ = z_t''``.

The loss is eq. (2) in the student's own output space (its parameterisation, :mod:`videodiff.parameterization`)
reweighted to one of the paper's weightings of the x-space error ``||x~ - x_hat||^2``:

* ``truncated_snr``: ``w = max(SNR, 1)`` ("truncated SNR weighting");
* ``snr_plus_one``: ``w = 1 + SNR``, the plain MSE in v space ("SNR+1 weighting").

A student that predicts ``eps`` pays ``SNR`` per unit of x-space error, one that predicts ``v`` pays ``1 + SNR``; the
factor ``w / w_param`` (computed from log-SNR, never dividing by a vanishing ``alpha``) turns its output-space MSE into
the chosen weighting. The teacher is any ``denoise(z_t, logsnr, **kwargs) -> x_hat`` (a guided one, eq. 5, for text
models), so the Gaussian data of :mod:`videodiff.gaussian` check it against closed forms.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .diffusion import broadcast_to, eps_from_x
from .parameterization import check_parameterization, target
from .schedule import alpha_sigma

__all__ = ["WEIGHTINGS", "ddim_step", "teacher_target", "student_target", "loss_weight", "distillation_loss",
           "round_steps", "grid_points"]

WEIGHTINGS = ("truncated_snr", "snr_plus_one")


def ddim_step(z_t: Tensor, x_hat: Tensor, logsnr_t: Tensor, logsnr_s: Tensor) -> Tensor:
    """One deterministic DDIM step ``z_t -> z_s`` per example (log-SNRs ``(B,)``):
    ``z_s = alpha_s x_hat + sigma_s eps_hat``, ``eps_hat = (z_t - alpha_t x_hat) / sigma_t``."""
    alpha_s, sigma_s = alpha_sigma(logsnr_s)
    eps_hat = eps_from_x(z_t, x_hat, logsnr_t)
    return broadcast_to(alpha_s, z_t) * x_hat + broadcast_to(sigma_s, z_t) * eps_hat  # DDIM update (eta = 0)


@torch.no_grad()
def teacher_target(teacher: Callable[..., Tensor], z_t: Tensor, logsnr_t: Tensor, logsnr_mid: Tensor,
                   logsnr_s: Tensor, last: Tensor, **kwargs) -> Tensor:
    """The student's ``x_hat`` target ``x~`` of Algorithm 2: two teacher DDIM steps ``t -> t' -> t''`` (log-SNRs
    ``logsnr_t < logsnr_mid < logsnr_s``, each ``(B,)``), inverted through one DDIM step ``t -> t''``. ``last``
    ``(B,)`` bool marks examples whose ``t''`` is the sampler's final point (target: the teacher's ``x_hat`` there).
    ``kwargs`` go to the teacher (the condition of a text model)."""
    x_1 = teacher(z_t, logsnr_t.to(z_t.dtype), **kwargs)
    z_mid = ddim_step(z_t, x_1, logsnr_t, logsnr_mid)  # teacher step 1: t -> t'
    x_2 = teacher(z_mid, logsnr_mid.to(z_t.dtype), **kwargs)
    z_s = ddim_step(z_mid, x_2, logsnr_mid, logsnr_s)  # teacher step 2: t' -> t''
    (alpha_t, sigma_t), (alpha_s, sigma_s) = alpha_sigma(logsnr_t), alpha_sigma(logsnr_s)
    ratio = sigma_s / sigma_t
    x_tilde = (z_s - broadcast_to(ratio, z_t) * z_t) / broadcast_to(alpha_s - ratio * alpha_t, z_t)
    return torch.where(last.reshape(last.shape + (1,) * (z_t.ndim - 1)), x_2, x_tilde)  # the last step returns x_hat itself


def student_target(parameterization: str, z_t: Tensor, x_tilde: Tensor, logsnr: Tensor) -> Tensor:
    """What the student's network must output at ``(z_t, logsnr)`` for its ``x_hat`` to be ``x_tilde``."""
    eps_tilde = eps_from_x(z_t, x_tilde, logsnr)
    return target(parameterization, x_tilde, eps_tilde, logsnr)


def loss_weight(weighting: str, parameterization: str, logsnr: Tensor) -> Tensor:
    """``w(lambda) / w_param(lambda)``: the factor that turns the output-space MSE of ``parameterization``
    (``eps``: ``SNR`` x the x-space error, ``v``: ``1 + SNR`` x it) into the x-space ``weighting``."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    check_parameterization(parameterization)
    logsnr = logsnr.to(torch.float64)
    log_w = logsnr.clamp_min(0.0) if weighting == "truncated_snr" else F.softplus(logsnr)  # log max(SNR,1), log(1+SNR)
    log_param = logsnr if parameterization == "eps" else F.softplus(logsnr)
    return torch.exp(log_w - log_param)


def grid_points(teacher_grid: Tensor, k: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(logsnr_t, logsnr_mid, logsnr_s, last)`` of student step ``k`` ``(B,)`` on the teacher's increasing log-SNR
    grid of ``2N + 1`` points (the sampler's order: index 0 is ``t = 1``)."""
    n = (teacher_grid.numel() - 1) // 2
    if teacher_grid.numel() != 2 * n + 1 or n < 1:
        raise ValueError(f"the teacher grid needs 2N + 1 points, got {teacher_grid.numel()}")
    return teacher_grid[2 * k], teacher_grid[2 * k + 1], teacher_grid[2 * k + 2], k == n - 1


def distillation_loss(student: Callable[..., Tensor], teacher: Callable[..., Tensor], x: Tensor, eps: Tensor,
                      k: Tensor, teacher_grid: Tensor, *, parameterization: str, weighting: str,
                      teacher_kwargs: dict | None = None, **net_kwargs) -> tuple[Tensor, Tensor]:
    """Per-example loss ``(B,)`` of one distillation step, and the target ``x~``.

    ``x`` ``(B, ...)``: data; ``eps``: standard noise; ``k`` ``(B,)``: each example's student step (0 = the first, from
    ``t = 1``); ``teacher_grid``: the teacher's ``2N + 1`` increasing log-SNRs. ``student(z_t, logsnr, **net_kwargs)``
    is the student's *network* (its raw output, read through ``parameterization``); ``teacher`` a denoiser.
    """
    logsnr_t, logsnr_mid, logsnr_s, last = grid_points(teacher_grid.to(x.device), k)
    alpha_t, sigma_t = alpha_sigma(logsnr_t)
    z_t = broadcast_to(alpha_t, x) * x + broadcast_to(sigma_t, x) * eps  # eq. (1)
    x_tilde = teacher_target(teacher, z_t, logsnr_t, logsnr_mid, logsnr_s, last,
                             **(net_kwargs if teacher_kwargs is None else teacher_kwargs))
    goal = student_target(parameterization, z_t, x_tilde, logsnr_t)
    out = student(z_t, logsnr_t.to(x.dtype), **net_kwargs)
    mse = (out.float() - goal.float()).pow(2).flatten(1).mean(1)
    return loss_weight(weighting, parameterization, logsnr_t).to(mse.dtype) * mse, x_tilde


def round_steps(start_steps: int, target_steps: int) -> list[int]:
    """The students' step counts, one per round: ``start/2, start/4, ..., target`` (``start = target * 2^R``)."""
    if target_steps < 1 or start_steps <= target_steps:
        raise ValueError(f"need 1 <= target_steps < start_steps, got {target_steps} and {start_steps}")
    steps, n = [], start_steps
    while n > target_steps:
        if n % 2:
            raise ValueError(f"start_steps ({start_steps}) must be target_steps ({target_steps}) times a power of 2")
        n //= 2
        steps.append(n)
    if n != target_steps:
        raise ValueError(f"start_steps ({start_steps}) must be target_steps ({target_steps}) times a power of 2")
    return steps
