"""Exact denoisers for Gaussian data: the closed-form ``E[x | z_t]`` used to test samplers and conditioning.

If ``x ~ N(mu, Sigma)`` (flattened to ``D`` dimensions) and ``z_t = alpha x + sigma eps`` (eq. 1), then
``E[x | z_t] = mu + alpha Sigma (alpha^2 Sigma + sigma^2 I)^{-1} (z_t - alpha mu)``. With this denoiser a correct
sampler must reproduce ``N(mu, Sigma)`` (up to discretisation error), which is how the tests check eq. (3)-(4) and
DDIM against exact mathematics (DESIGN.md). The eigendecomposition ``Sigma = U diag(d) U^T`` makes every call a
pair of matrix products: ``E[x|z] = mu + U diag(alpha d / (alpha^2 d + sigma^2)) U^T (z - alpha mu)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .schedule import alpha_sigma

__all__ = ["GaussianData", "ar1_covariance", "gaussian_kl", "affine_sampler_map", "affine_sampler_moments"]


def ar1_covariance(num_frames: int, rho: float, pixel_cov: Tensor | None = None) -> Tensor:
    """Covariance of an AR(1) process over frames (``Cov[f_i, f_j] = rho^|i-j|``), Kronecker a per-frame covariance.

    A Gaussian "video": frames correlated in time as AR(1), pixels within a frame with ``pixel_cov`` (identity if
    None). The flattened layout is frame-major, matching ``(C=1, F, H, W)`` flattened.
    """
    idx = torch.arange(num_frames, dtype=torch.float64)
    time_cov = rho ** (idx[:, None] - idx[None, :]).abs()
    if pixel_cov is None:
        return time_cov
    return torch.kron(time_cov, pixel_cov.to(torch.float64))


class GaussianData:
    """``x ~ N(mu, Sigma)`` over tensors of shape ``shape``; exact denoiser, sampling and conditionals."""

    def __init__(self, mean: Tensor, cov: Tensor, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        self.dim = int(torch.tensor(self.shape).prod())
        self.mean = mean.to(torch.float64).reshape(self.dim)
        self.cov = cov.to(torch.float64)
        if self.cov.shape != (self.dim, self.dim):
            raise ValueError(f"cov must be ({self.dim}, {self.dim}) for shape {self.shape}, got {tuple(cov.shape)}")
        d, u = torch.linalg.eigh(self.cov)
        self.eigvals = d.clamp_min(0.0)
        self.eigvecs = u

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws, shape ``(n, *shape)``, float64."""
        e = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.mean + (e * self.eigvals.sqrt()) @ self.eigvecs.T
        return x.reshape(n, *self.shape)

    def denoise(self, z_t: Tensor, logsnr: Tensor, *args, **kwargs) -> Tensor:
        """``E[x | z_t]`` for a batch ``z_t`` ``(B, *shape)`` and ``logsnr`` ``(B,)`` or scalar."""
        b = z_t.shape[0]
        z = z_t.reshape(b, self.dim).to(torch.float64)
        alpha, sigma = alpha_sigma(torch.as_tensor(logsnr, dtype=torch.float64).expand(b))
        alpha, sigma = alpha[:, None], sigma[:, None]
        gain = alpha * self.eigvals / (alpha**2 * self.eigvals + sigma**2)  # (B, D) in the eigenbasis
        r = (z - alpha * self.mean) @ self.eigvecs  # (B, D)
        x = self.mean + (gain * r) @ self.eigvecs.T
        return x.reshape(z_t.shape).to(z_t.dtype)

    def flow(self, z_t: Tensor, logsnr_t, logsnr_s) -> Tensor:
        """The exact probability-flow ODE map of ``z_t`` from log-SNR ``logsnr_t`` to ``logsnr_s`` (scalars).

        The marginal of ``z_t`` is ``N(alpha_t mu, alpha_t^2 Sigma + sigma_t^2 I)``; in the eigenbasis the flow scales
        each coordinate of ``z - alpha mu`` by ``sqrt((alpha_s^2 d + sigma_s^2) / (alpha_t^2 d + sigma_t^2))``. The
        deterministic samplers (DDIM, DPM-Solver++) are discretisations of this map.
        """
        b = z_t.shape[0]
        lt, ls = (torch.as_tensor(v, dtype=torch.float64) for v in (logsnr_t, logsnr_s))
        (a_t, s_t), (a_s, s_s) = alpha_sigma(lt), alpha_sigma(ls)
        scale = ((a_s**2 * self.eigvals + s_s**2) / (a_t**2 * self.eigvals + s_t**2)).sqrt()  # (D,)
        r = (z_t.reshape(b, self.dim).to(torch.float64) - a_t * self.mean) @ self.eigvecs
        z_s = a_s * self.mean + (scale * r) @ self.eigvecs.T
        return z_s.reshape(z_t.shape).to(z_t.dtype)

    def conditional(self, known: Tensor, x_a: Tensor) -> tuple[Tensor, Tensor]:
        """Exact ``p(x^b | x^a)``: mean ``(D_b,)`` and covariance ``(D_b, D_b)`` of the unknown entries.

        ``known`` is a boolean mask of shape ``shape`` (True = in ``x^a``); ``x_a`` holds the known values in
        flattened order.
        """
        k = known.reshape(self.dim)
        a, b = k, ~k
        s_aa = self.cov[a][:, a]
        s_ba = self.cov[b][:, a]
        s_bb = self.cov[b][:, b]
        gain = torch.linalg.solve(s_aa, s_ba.T).T
        mean = self.mean[b] + gain @ (x_a.to(torch.float64).reshape(-1) - self.mean[a])
        cov = s_bb - gain @ s_ba.T
        return mean, cov


def gaussian_kl(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> float:
    """``KL(N(mean1, cov1) || N(mean2, cov2))`` in nats (float64; both covariances positive definite)."""
    m1, m2 = mean1.to(torch.float64).reshape(-1), mean2.to(torch.float64).reshape(-1)
    c1, c2 = cov1.to(torch.float64), cov2.to(torch.float64)
    dm = m2 - m1
    trace = torch.trace(torch.linalg.solve(c2, c1))
    maha = dm @ torch.linalg.solve(c2, dm)
    return float(0.5 * (trace + maha - m1.numel() + torch.logdet(c2) - torch.logdet(c1)))


def affine_sampler_map(sampler, data: GaussianData, logsnrs: Tensor, **kwargs) -> tuple[Tensor, Tensor]:
    """``(b, A)`` with ``sampler(data.denoise, z_1, logsnrs, **kwargs) = A z_1 + b`` (flattened, float64).

    With the exact (affine) denoiser of ``data`` a deterministic sampler (DDIM, DPM-Solver++) is an affine map of its
    starting noise; running it once on ``z = 0`` and the ``D`` unit vectors gives ``b`` and the columns of ``A``.
    """
    z = torch.cat([torch.zeros(1, data.dim), torch.eye(data.dim)]).to(torch.float64)
    out = sampler(data.denoise, z.reshape(data.dim + 1, *data.shape), logsnrs, **kwargs).reshape(data.dim + 1, -1)
    b = out[0].to(torch.float64)
    return b, (out[1:].to(torch.float64) - b).T  # (D,), (D, D): column i is the response to the i-th unit vector


def affine_sampler_moments(sampler, data: GaussianData, logsnrs: Tensor, **kwargs) -> tuple[Tensor, Tensor]:
    """Exact mean ``(D,)`` and covariance ``(D, D)`` of a deterministic sampler's output when ``z_1 ~ N(0, I)``:
    the law ``N(b, A A^T)`` of :func:`affine_sampler_map`, known without Monte-Carlo error."""
    b, a = affine_sampler_map(sampler, data, logsnrs, **kwargs)
    return b, a @ a.T
