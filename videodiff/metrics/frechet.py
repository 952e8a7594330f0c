"""Fréchet distance between Gaussians fitted to network features: FVD and FID (Sec. 4).

d² = ||mu1 - mu2||² + tr(S1 + S2 - 2 (S1 S2)^{1/2}), in float64, with ``scipy.linalg.sqrtm`` as in
pytorch-fid / TTUR's FID code: when the product is singular and sqrtm returns non-finite values, the
covariances are offset by ``eps * I``; a complex result is accepted only if its imaginary part is negligible.
When every feature vector of a set is identical, its covariance is zero and d² reduces to the mean term,
as in the FVD reference examples (all-zero vs all-255 videos).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg


@dataclass
class MetricResult:
    """A metric value with the protocol it was measured under (set sizes, frames, resize, weights sha256)."""

    value: float
    protocol: dict = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> (mu (D,), sigma (D, D)) in float64; sigma is the unbiased covariance (zeros if N=1)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 1:
        raise ValueError(f"features must be (N, D) with N >= 1, got {f.shape}")
    mu = f.mean(axis=0)
    sigma = np.cov(f, rowvar=False) if f.shape[0] > 1 else np.zeros((f.shape[1], f.shape[1]))
    return mu, np.atleast_2d(sigma)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Matrix is singular" is expected for rank-deficient covariances
        return scipy.linalg.sqrtm(a)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6, imag_tol: float = 1e-3) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Raises ValueError if the matrix square root keeps a non-negligible imaginary part (max |Im| on the
    diagonal above ``imag_tol``), which signals badly conditioned or too few samples.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps  # product is singular: regularise both covariances
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if imag > imag_tol:
            raise ValueError(f"sqrtm(S1 S2) has a non-negligible imaginary component: {imag:.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(feats1, feats2, **kw) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance(*gaussian_stats(feats1), *gaussian_stats(feats2), **kw)
