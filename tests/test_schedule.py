import math

import pytest
import torch

from videodiff.schedule import (
    ScheduleConfig,
    alpha_sigma,
    logsnr_cosine,
    logsnr_cosine_shifted,
    t_from_logsnr_cosine,
    time_grid,
)

T = torch.linspace(0, 1, 1001, dtype=torch.float64)


def test_alpha_sigma_variance_preserving_and_logsnr_identity():
    lam = logsnr_cosine(T)
    alpha, sigma = alpha_sigma(lam)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(T), rtol=0, atol=1e-12)
    inner = (lam.abs() < 30)
    torch.testing.assert_close(torch.log(alpha**2 / sigma**2)[inner], lam[inner], rtol=0, atol=1e-9)


def test_cosine_endpoints_and_monotone():
    lam = logsnr_cosine(T, -15.0, 12.0)
    assert lam[0].item() == pytest.approx(12.0, abs=1e-9)
    assert lam[-1].item() == pytest.approx(-15.0, abs=1e-9)
    assert bool((lam[1:] < lam[:-1]).all())


def test_cosine_matches_alpha_cos_in_the_interior():
    # With the clip range very wide, alpha_t = cos(pi t / 2): the cosine schedule of Nichol & Dhariwal.
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    alpha, _ = alpha_sigma(logsnr_cosine(t, -60.0, 60.0))
    torch.testing.assert_close(alpha, torch.cos(math.pi * t / 2), rtol=0, atol=1e-9)


def test_inverse_schedule_round_trip():
    torch.testing.assert_close(t_from_logsnr_cosine(logsnr_cosine(T)), T, rtol=0, atol=1e-9)


def test_shifted_schedule_is_offset_by_log_resolution_ratio():
    shifted = logsnr_cosine_shifted(T, image_size=128, base_size=64)
    torch.testing.assert_close(shifted - logsnr_cosine(T), torch.full_like(T, 2 * math.log(0.5)))


@pytest.mark.parametrize("kind", ["cosine", "cosine_shifted", "cosine_interpolated"])
def test_schedule_config_kinds_are_decreasing(kind):
    lam = ScheduleConfig(kind=kind, image_size=128)(T)
    assert bool((lam[1:] < lam[:-1]).all())


def test_schedule_config_rejects_unknown_kind():
    with pytest.raises(ValueError, match="schedule.kind"):
        ScheduleConfig(kind="linear")


def test_time_grid():
    g = time_grid(4)
    torch.testing.assert_close(g, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        time_grid(0)
