"""What the network's output means, in one place (paper Sec. 2): the prediction target of the loss (eq. 2) and the
``x_hat`` a prediction implies, for each parameterisation.

* ``eps`` (the paper's choice): the network predicts the noise; ``x_hat = (z_t - sigma eps_hat) / alpha``. Its
  plain MSE in eps space is eq. (2) with weight ``w(lambda) = e^lambda`` (the SNR).
* ``v`` (Salimans & Ho 2022): the network predicts ``v = alpha eps - sigma x``; ``x_hat = alpha z_t - sigma v_hat``.
  Its MSE in v space is eq. (2) with ``w = 1 + e^lambda``.

:class:`videodiff.denoiser.Denoiser` (sampling) and :func:`videodiff.losses.diffusion_loss` (training) both go
through these two functions, so a new parameterisation is one entry in :data:`PARAMETERIZATIONS`. The conversions
themselves are pure functions of :mod:`videodiff.diffusion`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from torch import Tensor

from .diffusion import v_from_x_eps, x_from_eps, x_from_v

__all__ = ["Parameterization", "PARAMETERIZATIONS", "check_parameterization", "x_from_output", "target"]


class Parameterization(NamedTuple):
    """``x_from_output(z_t, out, logsnr) -> x_hat`` and ``target(x, eps, logsnr) -> what the network predicts``."""

    x_from_output: Callable[[Tensor, Tensor, Tensor], Tensor]
    target: Callable[[Tensor, Tensor, Tensor], Tensor]


def _eps_target(x: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    return eps


PARAMETERIZATIONS: dict[str, Parameterization] = {
    "eps": Parameterization(x_from_eps, _eps_target),
    "v": Parameterization(x_from_v, v_from_x_eps),
}


def check_parameterization(name: str, option: str = "parameterization") -> str:
    """``name`` if it is a known parameterisation, else a ValueError naming ``option`` and the choices."""
    if name not in PARAMETERIZATIONS:
        raise ValueError(f"{option} must be one of {tuple(PARAMETERIZATIONS)}, got {name!r}")
    return name


def x_from_output(name: str, z_t: Tensor, out: Tensor, logsnr: Tensor) -> Tensor:
    """The ``x_hat`` that the network output ``out`` at ``(z_t, logsnr)`` implies under parameterisation ``name``."""
    return PARAMETERIZATIONS[check_parameterization(name)].x_from_output(z_t, out, logsnr)


def target(name: str, x: Tensor, eps: Tensor, logsnr: Tensor) -> Tensor:
    """What the network is trained to output for clean ``x`` noised with ``eps`` at ``logsnr`` (eq. 2's target)."""
    return PARAMETERIZATIONS[check_parameterization(name)].target(x, eps, logsnr)
