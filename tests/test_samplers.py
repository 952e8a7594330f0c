"""Samplers driven by the exact denoiser of Gaussian data must reproduce that data's mean and covariance."""

import pytest
import torch

from videodiff.gaussian import GaussianData, ar1_covariance
from videodiff.sampling import sample, sample_ancestral, sample_ddim
from videodiff.schedule import ScheduleConfig, time_grid

SHAPE = (1, 4, 2, 2)  # (C, F, H, W): a tiny Gaussian "video"
N = 4000


def _data(rho=0.8, scale=0.5):
    d = 16
    pix = torch.full((4, 4), 0.3, dtype=torch.float64).fill_diagonal_(1.0)
    cov = scale**2 * ar1_covariance(4, rho, pix)
    mean = torch.linspace(-0.5, 0.5, d, dtype=torch.float64)
    return GaussianData(mean, cov, SHAPE)


def _moments(x):
    x = x.reshape(x.shape[0], -1).double()
    return x.mean(0), torch.cov(x.T)


def _assert_matches(samples, data, mean_tol=0.03, cov_tol=0.03):
    m, c = _moments(samples)
    assert (m - data.mean).abs().max() < mean_tol, (m - data.mean).abs().max()
    assert (c - data.cov).abs().max() < cov_tol, (c - data.cov).abs().max()


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0])
def test_ancestral_recovers_gaussian_moments(gamma):
    data = _data()
    sched = ScheduleConfig()
    x = sample(data.denoise, (N, *SHAPE), sched, steps=200, sampler="ancestral", options={"gamma": gamma},
               generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # Tolerances: sd of a mean is 0.5/sqrt(4000) = 0.008; of a covariance entry ~ 0.25*1.4/63 = 0.006.
    _assert_matches(x, data)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_recovers_gaussian_moments(eta):
    data = _data()
    x = sample(data.denoise, (N, *SHAPE), ScheduleConfig(), steps=200, sampler="ddim", options={"eta": eta},
               generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _assert_matches(x, data)


def test_wrong_denoiser_is_detected():
    # The moment test can fail: sampling with the denoiser of differently correlated data misses the covariance.
    data, wrong = _data(rho=0.8), _data(rho=0.0)
    x = sample(wrong.denoise, (N, *SHAPE), ScheduleConfig(), steps=200, generator=torch.Generator().manual_seed(3),
               dtype=torch.float64)
    with pytest.raises(AssertionError):
        _assert_matches(x, data)


def test_ddim_eta1_equals_ancestral_gamma0():
    data = _data()
    lam = ScheduleConfig()(time_grid(20))
    z = torch.randn(8, *SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    a = sample_ancestral(data.denoise, z, lam, gamma=0.0, generator=torch.Generator().manual_seed(5))
    b = sample_ddim(data.denoise, z, lam, eta=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)


def test_ddim_deterministic_and_seeded_sampling_reproducible():
    data = _data()
    lam = ScheduleConfig()(time_grid(10))
    z = torch.randn(3, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample_ddim(data.denoise, z, lam), sample_ddim(data.denoise, z, lam))
    a = sample_ancestral(data.denoise, z, lam, generator=torch.Generator().manual_seed(7))
    b = sample_ancestral(data.denoise, z, lam, generator=torch.Generator().manual_seed(7))
    c = sample_ancestral(data.denoise, z, lam, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_step_hook_and_callback_are_called():
    data = _data()
    lam = ScheduleConfig()(time_grid(5))
    seen = []
    z = torch.randn(2, *SHAPE, dtype=torch.float64)
    out = sample_ancestral(data.denoise, z, lam, step_hook=lambda z_s, **kw: torch.zeros_like(z_s),
                           callback=lambda i, z_s, x_hat: seen.append(i))
    assert seen == [0, 1, 2, 3, 4]
    assert bool((out == 0).all())


def test_bad_grid_rejected():
    data = _data()
    with pytest.raises(ValueError, match="increase"):
        sample_ancestral(data.denoise, torch.zeros(1, *SHAPE), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="gamma"):
        sample_ancestral(data.denoise, torch.zeros(1, *SHAPE), torch.tensor([0.0, 1.0]), gamma=2.0)
