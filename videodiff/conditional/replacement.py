"""The replacement method for conditional sampling (Song et al. 2021, the paper's ref. [35]; paper Sec. 3.1).

Sampling ``x^b ~ p(x^b | x^a)`` from an unconditional model: ``z_s^b`` is updated by the sampler as usual, while
after every step the known part ``z_s^a`` is replaced by an exact draw from the forward process, either

* ``variant="marginal"``: ``z_s^a ~ q(z_s^a | x^a) = N(alpha_s x^a, sigma_s^2 I)`` (eq. 1), or
* ``variant="posterior"``: ``z_s^a ~ q(z_s^a | x^a, z_t^a)`` (eq. 3), which also follows the correct conditional
  given the previous latent ``z_t^a`` (the latent the sampler stepped from, itself already replaced).

At the last step the samplers return ``x_hat`` (t = 0); there the known entries are set to ``x^a`` exactly.
:class:`ReplacementHook` is a sampler ``step_hook``; the gradient method (eq. 6) is this hook plus an adjusted
denoiser (:mod:`videodiff.conditional.reconstruction`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..diffusion import q_posterior, q_sample
from ..sampling.common import draw_noise
from .masks import as_mask, blend, is_binary

__all__ = ["ReplacementHook", "LowResReplacementHook", "Hooks", "VARIANTS"]

VARIANTS = ("marginal", "posterior")


class ReplacementHook:
    """``step_hook`` replacing the known entries of ``z_s`` by draws from the forward process.

    Args:
        x_a: known values, full size ``(B, C, F, H, W)`` (entries outside ``mask`` are ignored).
        mask: 1/True where ``x_a`` is known; same shape as ``x_a`` or broadcastable (e.g. ``(1, 1, F, 1, 1)``).
        variant: ``"marginal"`` (eq. 1) or ``"posterior"`` (eq. 3), see the module docstring.
        final_logsnr: the log-SNR of the grid's last point (t = 0); a step landing there sets ``x^a`` exactly. The
            samplers of :mod:`videodiff.sampling` return ``x_hat`` itself at t = 0, which is also recognised.
    """

    def __init__(self, x_a: Tensor, mask: Tensor, variant: str = "marginal", final_logsnr: float | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"replacement variant must be one of {VARIANTS}, got {variant!r}")
        self.mask = as_mask(mask, x_a)
        self.binary = is_binary(self.mask)
        self.x_a = torch.where(self.mask > 0, x_a, torch.zeros_like(x_a))  # unknown entries may hold anything
        self.variant = variant
        self.final_logsnr = None if final_logsnr is None else float(final_logsnr)

    def _noise(self, like: Tensor, generator: torch.Generator | None) -> Tensor:
        return draw_noise(like.shape, generator, device=like.device, dtype=like.dtype)  # one generator or one per video

    def _replace(self, z: Tensor, z_a: Tensor) -> Tensor:
        return blend(z, z_a.to(z.dtype), self.mask.to(z.dtype), self.binary)

    def initial(self, z_1: Tensor, logsnr_1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The starting latent with ``z_1^a ~ q(z_1^a | x^a)`` (eq. 1), so the denoiser's first call sees it too."""
        logsnr_1 = torch.as_tensor(logsnr_1, dtype=torch.float64)
        return self._replace(z_1, q_sample(self.x_a.to(z_1.dtype), logsnr_1, self._noise(z_1, generator)))

    def __call__(self, z_s: Tensor, *, logsnr_s: Tensor, z_t: Tensor, logsnr_t: Tensor, x_hat: Tensor | None = None,
                 generator: torch.Generator | None = None, **_) -> Tensor:
        if z_s is x_hat or (self.final_logsnr is not None and float(logsnr_s) >= self.final_logsnr):
            return self._replace(z_s, self.x_a)  # t = 0: the output itself, known entries exact
        x_a = self.x_a.to(z_s.dtype)
        eps = self._noise(z_s, generator)
        if self.variant == "marginal":
            z_a = q_sample(x_a, logsnr_s, eps)  # z_s^a ~ q(z_s^a | x^a), eq. (1)
        else:
            mean, var = q_posterior(z_t, x_a, logsnr_t, logsnr_s)  # q(z_s^a | x^a, z_t^a), eq. (3)
            z_a = mean + var.sqrt().to(z_s.dtype) * eps
        return self._replace(z_s, z_a)


class LowResReplacementHook:
    """``step_hook`` replacing the low frequencies of ``z_s`` by a forward-process draw conditioned on ``y``.

    The replacement method's analogue for super-resolution (the "low-frequency replacement" of ILVR, Choi et al.
    2021; the paper's eq. 7 is the gradient-method form). With ``D`` area pooling by ``k`` and ``U`` nearest
    upsampling (``D U = I``), ``P = U D`` is the orthogonal projection onto block-constant images, and after every
    step ``z_s <- z_s - P z_s + P z'_s`` with ``z'_s ~ q(z_s | x)`` for any ``x`` with ``D x = y`` (``P z'_s`` does not
    depend on which): ``D z_s`` then follows ``q(D z_s | y) = N(alpha_s y, sigma_s^2 I / k^2)``, the eq. (1) draw of
    the known low-resolution part, while the high frequencies follow the sampler. At ``t = 0`` the output is
    projected exactly, ``D x = y``. Only area downsampling has such a projection; ``y_mask`` selects constrained
    frames (``(1, 1, F, 1, 1)``, others untouched).
    """

    def __init__(self, y: Tensor, size: tuple[int, int], y_mask: Tensor | None = None,
                 final_logsnr: float | None = None):
        self.y, self.size = y, tuple(size)
        self.mask = None if y_mask is None else as_mask(y_mask, y)
        if self.mask is not None and tuple(self.mask.shape[-2:]) != (1, 1):
            raise ValueError(f"y_mask must select whole frames (shape (..., F, 1, 1)), got {tuple(self.mask.shape)}")
        self.final_logsnr = None if final_logsnr is None else float(final_logsnr)

    def _up(self, x: Tensor) -> Tensor:
        from .downsample import upsample_nearest

        return upsample_nearest(x, self.size)

    def _project(self, z: Tensor, target_low: Tensor) -> Tensor:
        """``z - U D z + U target_low`` on the constrained frames."""
        from .downsample import Downsample

        new = z - self._up(Downsample(target_low.shape[-2:], "area")(z) - target_low)
        if self.mask is None:
            return new
        return z + self.mask.to(z.dtype) * (new - z)

    def initial(self, z_1: Tensor, logsnr_1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self(z_1, logsnr_s=torch.as_tensor(logsnr_1, dtype=torch.float64), z_t=z_1, logsnr_t=None,
                    generator=generator)

    def __call__(self, z_s: Tensor, *, logsnr_s: Tensor, z_t: Tensor, logsnr_t: Tensor | None,
                 x_hat: Tensor | None = None, generator: torch.Generator | None = None, **_) -> Tensor:
        y = self.y.to(z_s.dtype)
        if z_s is x_hat or (self.final_logsnr is not None and float(logsnr_s) >= self.final_logsnr):
            return self._project(z_s, y)  # t = 0: D x = y exactly
        eps = draw_noise(z_s.shape, generator, device=z_s.device, dtype=z_s.dtype)
        from .downsample import Downsample

        z_low = Downsample(y.shape[-2:], "area")(q_sample(self._up(y), logsnr_s, eps))  # D z'_s, z'_s ~ q(.|U y)
        return self._project(z_s, z_low)


class Hooks:
    """Several step hooks applied in order (each may define ``initial``)."""

    def __init__(self, *hooks):
        self.hooks = [h for h in hooks if h is not None]

    def initial(self, z: Tensor, logsnr: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for h in self.hooks:
            z = h.initial(z, logsnr, generator)
        return z

    def __call__(self, z_s: Tensor, **kw) -> Tensor:
        for i, h in enumerate(self.hooks):
            out = h(z_s, **kw)
            if kw.get("x_hat") is z_s:
                kw["x_hat"] = out  # keep the "t = 0" recognition for the next hook
            z_s = out
        return z_s
