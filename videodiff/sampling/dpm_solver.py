"""DPM-Solver++(2M): a second-order multistep solver of the probability-flow ODE, in data-prediction form.

The paper samples with the ancestral sampler of eq. (4) (Sec. 2), built on the posterior of eq. (3), at 128-256
steps. Its deterministic limit is DDIM (:mod:`videodiff.sampling.ddim`), a first-order solver of the diffusion ODE.
DPM-Solver++ (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
arXiv:2211.01095, Algorithm 2) integrates the same ODE to second order with one denoiser call per step, by
reusing the previous step's ``x_hat``.

In the half-log-SNR ``l = lambda / 2 = log(alpha / sigma)`` the exact solution of the ODE from ``t`` to ``s < t`` is

    z_s = (sigma_s / sigma_t) z_t + sigma_s * integral_{l_t}^{l_s} e^{l} x_hat(z_l) dl .

Holding ``x_hat`` constant over the step gives DDIM, ``z_s = (sigma_s / sigma_t) z_t + alpha_s (1 - e^{-h}) x_hat_t``
with ``h = l_s - l_t = (lambda_s - lambda_t) / 2``. The (2M) rule replaces ``x_hat_t`` by a linear extrapolation
through the previous prediction ``x_hat_p`` (made at ``l_p = l_t - h_p``):

    D = (1 + 1 / (2 r)) x_hat_t - 1 / (2 r) x_hat_p,   r = h_p / h,
    z_s = (sigma_s / sigma_t) z_t + alpha_s (1 - e^{-h}) D .

The first step has no previous prediction and is a DDIM step. As in every sampler here, the last step returns
``x_hat`` itself (:func:`videodiff.sampling.common.run_sampler`), which is the first-order (DDIM) step to ``t = 0``.
The multistep state (the previous ``x_hat`` and its log-SNR) lives in a small object made per call, so the solver
runs inside the shared loop and works with step hooks (the replacement method), callbacks and any denoiser wrapper
(classifier-free guidance, eq. 5; reconstruction guidance, eq. 6-7). It is deterministic: it never draws noise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion import broadcast_to
from .common import run_sampler

__all__ = ["sample_dpmpp2m", "DPMSolverPP2M"]


class DPMSolverPP2M:
    """The (2M) update rule with its multistep state; one instance per sampling run.

    ``update(z_t, x_hat, logsnr_t, logsnr_s, noise) -> z_s`` as :func:`run_sampler` expects (``noise`` is unused).
    ``order=1`` makes every step a DDIM step (for comparisons).
    """

    def __init__(self, order: int = 2):
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order}")
        self.order = order
        self.prev: tuple[Tensor, Tensor] | None = None  # (logsnr_p, x_hat_p) of the previous step

    def __call__(self, z_t: Tensor, x_hat: Tensor, logsnr_t: Tensor, logsnr_s: Tensor, noise=None) -> Tensor:
        logsnr_t = torch.as_tensor(logsnr_t, dtype=torch.float64)
        logsnr_s = torch.as_tensor(logsnr_s, dtype=torch.float64)
        h = 0.5 * (logsnr_s - logsnr_t)  # step in half-log-SNR, l = log(alpha / sigma)
        d = x_hat  # first step: DDIM
        if self.order == 2 and self.prev is not None:
            logsnr_p, x_hat_p = self.prev
            r = 0.5 * (logsnr_t - logsnr_p) / h  # r = h_p / h
            c = broadcast_to(0.5 / r, x_hat)
            d = (1.0 + c) * x_hat - c * x_hat_p  # D = (1 + 1/(2r)) x_hat_t - 1/(2r) x_hat_p
        self.prev = (logsnr_t, x_hat)
        ratio = torch.exp(0.5 * (torch.nn.functional.logsigmoid(-logsnr_s)
                                 - torch.nn.functional.logsigmoid(-logsnr_t)))  # sigma_s / sigma_t
        coef = torch.sigmoid(logsnr_s).sqrt() * -torch.expm1(-h)  # alpha_s (1 - e^{-h})
        return broadcast_to(ratio, z_t) * z_t + broadcast_to(coef, d) * d  # DPM-Solver++(2M) step


def sample_dpmpp2m(denoise, z: Tensor, logsnrs: Tensor, *, order: int = 2, **kwargs) -> Tensor:
    """DPM-Solver++(2M) along the increasing log-SNR grid ``logsnrs``; other arguments as :func:`sample_ancestral`.

    Deterministic given ``z``: ``generator`` is only passed on to step hooks (e.g. the replacement method's draws).
    """
    return run_sampler(DPMSolverPP2M(order), denoise, z, logsnrs, desc="dpm-solver++(2m)", **kwargs)
