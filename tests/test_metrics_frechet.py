"""Fréchet distance between Gaussians (FVD/FID): closed forms, symmetry, singular and complex cases."""
import numpy as np
import pytest

from videodiff.metrics.frechet import frechet_distance, frechet_distance_from_features, gaussian_stats


pytestmark = pytest.mark.usefixtures("one_thread")


def test_gaussian_stats_float64():
    f = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = gaussian_stats(f)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (4, 4)
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False))
    _, s1 = gaussian_stats(f[:1])
    assert not s1.any()


def test_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 with s the standard deviations
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: sum over dimensions
    v1, v2 = np.array([1.0, 2.0, 0.5]), np.array([4.0, 0.5, 0.5])
    mu1, mu2 = np.zeros(3), np.array([1.0, -1.0, 2.0])
    expected = 6.0 + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)


def test_identical_symmetric_and_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 8))
    b = rng.normal(size=(150, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    assert abs(frechet_distance_from_features(a, a)) < 1e-8
    assert frechet_distance_from_features(a, b) == pytest.approx(frechet_distance_from_features(b, a), rel=1e-8)
    delta = rng.normal(size=8)
    assert frechet_distance_from_features(a, a + delta) == pytest.approx(delta @ delta, rel=1e-8)


def test_singular_covariances_fall_back_to_offset():
    # all features identical within each set: zero covariances, FD = squared mean distance (FVD references)
    a, b = np.zeros((8, 400)), np.ones((8, 400))
    assert frechet_distance_from_features(a, b) == pytest.approx(400.0, abs=1e-3)


def test_imaginary_component_raises():
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))
