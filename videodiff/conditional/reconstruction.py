"""The gradient method / reconstruction guidance (paper Sec. 3.1, eq. 6 and 7): a wrapper around a denoiser.

The replacement method updates ``z_t^b`` along ``x_hat^b(z_t) ~ E[x^b | z_t]`` while what is needed is
``E[x^b | z_t, x^a] = E[x^b | z_t] + (sigma_t^2 / alpha_t) grad_{z_t^b} log q(x^a | z_t)``. Approximating
``q(x^a | z_t) ~ N(x_hat^a(z_t), sigma_t^2 I / w_r)`` gives the adjusted denoiser

    x~^b(z_t) = x_hat^b(z_t) - (w_r / (2 alpha_t)) grad_{z_t^b} || x^a - x_hat^a(z_t) ||^2          (6)

(``w_r = 1`` in the paper). For spatial super-resolution the loss is put on a downsampled prediction and the
gradient is taken with respect to all of ``z_t``:

    x~(z_t) = x_hat(z_t) - (w_r / (2 alpha_t)) grad_{z_t} || y - D x_hat(z_t) ||^2                   (7)

Both terms may be active at once (the cascade of Fig. 2: high-res context frames directly, low-res frames through
``D``); the losses add. Known entries of the output are ``x^a`` itself (the exact ``E[x^a | z_t, x^a]``; pass
``known_output="x_hat"`` to keep the model's ``x_hat^a`` instead). With the samplers of this package both choices
give the same samples, because the replacement hook overwrites ``z_s^a`` after every step.

The wrapper is a denoiser itself, ``denoise(z_t, logsnr, **kwargs)``, so it composes with any sampler and with
other wrappers such as classifier-free guidance (extra keyword arguments are passed through). It turns gradients on
internally (samplers run under ``torch.no_grad()``) and never needs the network's parameter gradients.

Exactness for Gaussian data (see tests/test_conditional.py): with ``P_t = Cov[x | z_t]``, eq. (6) equals the exact
``E[x^b | z_t, x^a]`` when ``P_t^{aa} = sigma_t^2 I / w_r``. That holds as ``t -> 0`` for ``w_r = 1`` (``P_t ->
sigma_t^2 I``); for eq. (7) with ``D D^T = c I`` (area pooling by k: ``c = 1/k^2``) the matching weight is
``w_r = 1/c``, i.e. ``w_r = k^2`` rather than 1.

Trained networks: an eps-parameterised ``x_hat = (z_t - sigma_t eps)/alpha_t`` turns errors of the network's
Jacobian into ``1/alpha_t`` errors of ``d x_hat / d z_t``, and eq. (6) divides by ``alpha_t`` again, so near t = 1
the correction can be enormous (measured up to 1e6 on the Moving MNIST benchmark model). ``clip=(-1, 1)`` bounds
``x~`` to the data range; the CLI does so by default when the model clips ``x_hat`` (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..denoiser import Denoise
from ..diffusion import broadcast_to
from ..schedule import alpha_sigma
from .masks import as_mask, blend, is_binary

__all__ = ["ReconstructionGuidance", "reconstruction_guidance"]


class ReconstructionGuidance:
    """Adjusted denoiser ``x~(z_t)`` of eq. (6) and/or eq. (7).

    Args:
        denoise: the unconditional denoiser ``denoise(z_t, logsnr, **kwargs) -> x_hat``.
        x_a, mask: directly known values and their mask (eq. 6); ``mask`` broadcasts against ``x_a``.
        w_r: reconstruction weight of eq. (6) (1 in the paper).
        y, y_mask, down: low-resolution known values, an optional mask on them (e.g. which frames are constrained)
            and the differentiable downsampling ``D`` (eq. 7).
        w_r_low: weight of the eq. (7) term (default: ``w_r``).
        known_output: ``"x_a"`` (default) or ``"x_hat"``: what the known entries of the output hold.
        clip: clamp ``x~`` to this range after the guidance step, e.g. ``(-1, 1)``. Meant for an inner denoiser built
            with ``clip_x=False``: a clamped ``x_hat`` has zero gradient wherever it saturates, so with a clipping
            denoiser the loss cannot pull saturated pixels (e.g. a digit the model has put on the background).
    """

    def __init__(
        self,
        denoise: Denoise,
        *,
        x_a: Tensor | None = None,
        mask: Tensor | None = None,
        w_r: float = 1.0,
        y: Tensor | None = None,
        y_mask: Tensor | None = None,
        down: Callable[[Tensor], Tensor] | None = None,
        w_r_low: float | None = None,
        known_output: str = "x_a",
        clip: tuple[float, float] | None = None,
    ):
        if (x_a is None) != (mask is None):
            raise ValueError("x_a and mask go together: give both or neither")
        if x_a is None and y is None:
            raise ValueError("reconstruction guidance needs known values: x_a with mask (eq. 6) and/or y (eq. 7)")
        if y is not None and down is None:
            raise ValueError("y (low-resolution known values) needs a downsampling function down (eq. 7)")
        if known_output not in ("x_a", "x_hat"):
            raise ValueError(f"known_output must be 'x_a' or 'x_hat', got {known_output!r}")
        if w_r < 0 or (w_r_low is not None and w_r_low < 0):
            raise ValueError(f"reconstruction weights must be >= 0, got w_r={w_r}, w_r_low={w_r_low}")
        self.denoise = denoise
        self.mask = None if mask is None else as_mask(mask, x_a)
        self.binary = self.mask is not None and is_binary(self.mask)
        self.x_a = None if x_a is None else torch.where(self.mask > 0, x_a, torch.zeros_like(x_a))
        self.y = y
        self.y_mask = None if y_mask is None else as_mask(y_mask, y)
        self.down = down
        self.w_r = float(w_r)
        self.w_r_low = self.w_r if w_r_low is None else float(w_r_low)
        self.known_output = known_output
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))

    def loss(self, x_hat: Tensor) -> Tensor:
        """``w_r ||mask (x^a - x_hat)||^2 + w_r_low ||y_mask (y - D x_hat)||^2``, summed over the batch."""
        total = x_hat.new_zeros(())
        if self.x_a is not None:
            total = total + self.w_r * (self.mask.to(x_hat.dtype) * (self.x_a.to(x_hat.dtype) - x_hat)).square().sum()
        if self.y is not None:
            r = self.y.to(x_hat.dtype) - self.down(x_hat)
            if self.y_mask is not None:
                r = self.y_mask.to(x_hat.dtype) * r
            total = total + self.w_r_low * r.square().sum()
        return total

    def __call__(self, z_t: Tensor, logsnr: Tensor, **kwargs) -> Tensor:
        with torch.enable_grad():
            z = z_t.detach().requires_grad_(True)
            x_hat = self.denoise(z, logsnr, **kwargs)
            # Examples are independent, so the gradient of the batch sum is each example's own gradient.
            (grad,) = torch.autograd.grad(self.loss(x_hat), z)
        alpha, _ = alpha_sigma(torch.as_tensor(logsnr, dtype=torch.float64, device=z_t.device))
        x_tilde = x_hat.detach() - grad / (2.0 * broadcast_to(alpha, grad))  # eq. (6) / (7), w_r inside the loss
        if self.clip is not None:
            x_tilde = x_tilde.clamp(*self.clip)
        if self.x_a is not None:
            known = self.x_a.to(x_tilde.dtype) if self.known_output == "x_a" else x_hat.detach()
            x_tilde = blend(x_tilde, known, self.mask.to(x_tilde.dtype), self.binary)  # the gradient acts on x~^b only
        return x_tilde


def reconstruction_guidance(denoise: Denoise, **kwargs) -> ReconstructionGuidance:
    """Functional alias: ``reconstruction_guidance(denoise, x_a=..., mask=..., w_r=...)`` -> adjusted denoiser."""
    return ReconstructionGuidance(denoise, **kwargs)
