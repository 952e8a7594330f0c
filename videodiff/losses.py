"""The training objective of eq. (2): a weighted MSE between ``x_hat`` and ``x`` over uniformly sampled ``t``.

With the ``eps`` parameterisation (the paper's choice) the loss is the plain MSE in ``eps`` space, which is eq. (2)
with weight ``w(lambda) = e^{lambda}`` (the SNR); with ``v`` it is the MSE in ``v`` space, ``w = 1 + e^{lambda}``.
``t`` is drawn uniformly on ``[0, 1]`` and mapped through the log-SNR schedule (the cosine schedule of [24]);
optionally with low-discrepancy sampling (Kingma et al. 2021): ``t_i = (u + i / B) mod 1`` with one shared ``u``.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .context import context_inputs, frames_mask
from .diffusion import q_sample
from .parameterization import check_parameterization, target

__all__ = ["sample_t", "diffusion_loss"]


def sample_t(
    batch: int, *, generator: torch.Generator | None = None, low_discrepancy: bool = False, device=None
) -> Tensor:
    """Times ``t ~ U[0, 1]`` of shape ``(batch,)``; stratified (low-discrepancy) if asked."""
    if low_discrepancy:
        u = torch.rand((), generator=generator, device=device)
        return torch.remainder(u + torch.arange(batch, device=device) / batch, 1.0)
    return torch.rand(batch, generator=generator, device=device)


def diffusion_loss(
    net: Callable[..., Tensor],
    x: Tensor,
    logsnr: Tensor,
    eps: Tensor,
    *,
    parameterization: str = "eps",
    known: Tensor | None = None,
    **net_kwargs,
) -> Tensor:
    """Per-example loss of eq. (2) for clean data ``x`` ``(B, ...)``, log-SNRs ``(B,)`` and noise ``eps``.

    Returns shape ``(B,)``: the mean over all non-batch axes of the squared error of the network's prediction of
    ``eps`` (or ``v``). ``net_kwargs`` (``cond``, ``frame_mask``) are passed to the network.
    ``known`` ``(B, F)`` (explicit frame-conditional training, :mod:`videodiff.context`): those frames enter the
    network clean with the clean-data log-SNR and the mean runs over the other frames only (a clip with every frame
    known contributes 0).
    """
    check_parameterization(parameterization)
    z_t = q_sample(x, logsnr, eps)  # eq. (1)
    goal = target(parameterization, x, eps, logsnr)  # eps or v (videodiff/parameterization.py)
    if known is None:
        out = net(z_t, logsnr, **net_kwargs)
        return (out.float() - goal.float()).pow(2).flatten(1).mean(1)
    z_in, net_logsnr = context_inputs(z_t, logsnr, x, known)  # given frames clean (videodiff/context.py)
    out = net(z_in, net_logsnr, **net_kwargs)
    err = (out.float() - goal.float()).pow(2) * ~frames_mask(known, x)  # only the frames to be generated count
    per_frame = x[0, :, 0].numel()
    return err.flatten(1).sum(1) / ((~known).sum(-1).clamp(min=1) * per_frame).float()
