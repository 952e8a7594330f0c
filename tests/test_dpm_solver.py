"""DPM-Solver++(2M) against exact mathematics: Gaussian data, its exact denoiser and its exact probability-flow map.

With the exact (affine) denoiser a deterministic sampler is an affine map of ``z_1``, so its output law is known
exactly (:func:`affine_sampler_moments`, no Monte-Carlo error), and the exact ODE solution is
:meth:`GaussianData.flow`. Measured here (D = 16, default cosine grid; W2 to the data, N(mu, Sigma)):

    steps            5      10      20      40
    DDIM          0.548   0.295   0.153   0.078
    DPM++(2M)     0.417   0.150   0.040   0.007

On a log-SNR-uniform grid the error against the exact ODE map falls by 1.94, 1.97 (DDIM) and 3.65, 3.93
(DPM-Solver++(2M)) per doubling from 20 to 80 steps: first and second order.
"""

import pytest
import torch

from videodiff.conditional import frame_mask, sample_conditional
from videodiff.config import SampleConfig
from videodiff.gaussian import GaussianData, affine_sampler_moments, ar1_covariance
from videodiff.metrics.frechet import frechet_distance
from videodiff.sampling import SAMPLERS, sample, sample_ddim, sample_dpmpp2m, sampler_options
from videodiff.sampling.guidance import classifier_free_guidance
from videodiff.schedule import ScheduleConfig, time_grid

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

SHAPE = (1, 4, 2, 2)  # (C, F, H, W): a tiny Gaussian "video"
SCHED = ScheduleConfig()


def _data(rho=0.8, scale=0.5):
    pix = torch.full((4, 4), 0.3, dtype=torch.float64).fill_diagonal_(1.0)
    return GaussianData(torch.linspace(-0.5, 0.5, 16, dtype=torch.float64), scale**2 * ar1_covariance(4, rho, pix),
                        SHAPE)


def _w2(mean, cov, data):
    return frechet_distance(mean.numpy(), cov.numpy(), data.mean.numpy(), data.cov.numpy()) ** 0.5


def _map_error(sampler, data, logsnrs):
    """Max |sampler(z) - exact(z)| over z = 0 and unit vectors; exact = ODE flow to logsnrs[-2], then x_hat there
    (the samplers return x_hat at the last step)."""
    z = torch.cat([torch.zeros(1, data.dim), torch.eye(data.dim)]).double().reshape(-1, *SHAPE)
    lam = logsnrs[-2].expand(z.shape[0])
    exact = data.denoise(data.flow(z, logsnrs[0], logsnrs[-2]), lam)
    return (sampler(data.denoise, z, logsnrs) - exact).abs().max().item()


def test_dpmpp2m_beats_ddim_at_few_steps():
    data = _data()
    for steps, factor in ((10, 1.7), (20, 3.0)):  # measured 1.97 and 3.86
        lam = SCHED(time_grid(steps))
        (m_d, c_d), (m_p, c_p) = (affine_sampler_moments(s, data, lam) for s in (sample_ddim, sample_dpmpp2m))
        w2_ddim, w2_dpm = _w2(m_d, c_d, data), _w2(m_p, c_p, data)
        assert w2_dpm * factor < w2_ddim, (steps, w2_dpm, w2_ddim)
    cov_err = [(c - data.cov).abs().max().item() for c in (c_d, c_p)]  # 20 steps: measured 0.035 and 0.0037
    assert cov_err[1] * 5 < cov_err[0], cov_err
    assert w2_dpm < 0.06 and cov_err[1] < 0.01


def test_dpmpp2m_is_second_order_and_ddim_first_order():
    data = _data()
    grids = [torch.linspace(-10.0, 10.0, n + 1, dtype=torch.float64) for n in (20, 40, 80)]
    for sampler, lo, hi in ((sample_ddim, 1.7, 2.3), (sample_dpmpp2m, 3.3, 4.6)):
        err = [_map_error(sampler, data, lam) for lam in grids]
        ratios = [err[i] / err[i + 1] for i in range(2)]  # measured 1.94, 1.97 (DDIM); 3.65, 3.93 (2M)
        assert all(lo < r < hi for r in ratios), (sampler.__name__, err, ratios)
    # On the default (time-uniform cosine) grid the order shows more slowly, but 2M is always the closer one.
    for steps in (10, 20, 40):
        lam = SCHED(time_grid(steps))
        assert 2 * _map_error(sample_dpmpp2m, data, lam) < _map_error(sample_ddim, data, lam)


def test_first_step_and_order1_are_ddim():
    data = _data()
    z = torch.randn(5, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lam = SCHED(time_grid(12))
    torch.testing.assert_close(sample_dpmpp2m(data.denoise, z, lam, order=1), sample_ddim(data.denoise, z, lam))
    lam2 = SCHED(time_grid(2))  # one update (the first, DDIM) then the last step's x_hat
    torch.testing.assert_close(sample_dpmpp2m(data.denoise, z, lam2), sample_ddim(data.denoise, z, lam2))
    assert not torch.allclose(sample_dpmpp2m(data.denoise, z, lam), sample_ddim(data.denoise, z, lam))


def test_deterministic_seeded_and_draws_no_noise():
    data = _data()
    kw = dict(steps=8, sampler="dpmpp2m", dtype=torch.float64)
    a = sample(data.denoise, (4, *SHAPE), SCHED, generator=torch.Generator().manual_seed(3), **kw)
    b = sample(data.denoise, (4, *SHAPE), SCHED, generator=torch.Generator().manual_seed(3), **kw)
    c = sample(data.denoise, (4, *SHAPE), SCHED, generator=torch.Generator().manual_seed(4), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    sample_dpmpp2m(data.denoise, torch.zeros(2, *SHAPE, dtype=torch.float64), SCHED(time_grid(6)), generator=g)
    assert torch.equal(g.get_state(), state)  # the ODE solver draws nothing from the caller's generator


def test_sample_by_name_recovers_gaussian_moments_in_20_steps():
    data = _data()
    x = sample(data.denoise, (4000, *SHAPE), SCHED, steps=20, sampler="dpmpp2m",
               generator=torch.Generator().manual_seed(1), dtype=torch.float64).reshape(4000, -1)
    # The test_samplers.py tolerances (3-4 sd of Monte-Carlo noise), which DDIM at 20 steps misses (cov err 0.035).
    assert (x.mean(0) - data.mean).abs().max() < 0.03
    assert (torch.cov(x.T) - data.cov).abs().max() < 0.03


def test_replacement_hook_with_exact_conditional_denoiser():
    """Step hook (the replacement method) + callbacks: with the exact E[x | z_t, x^a] the unknown frames follow the
    exact conditional p(x^b | x^a), and the known frames are x^a exactly."""
    n, data = 3000, _data(rho=0.9)
    mask = frame_mask(4, [0])  # the first frame known
    x_a = torch.zeros(n, *SHAPE, dtype=torch.float64)
    x_a[:, :, 0] = 0.6
    known = mask[0].expand(SHAPE)
    m, c = data.conditional(known, x_a[0][known])
    unknown = ~known.reshape(-1)
    cond = GaussianData(m, c, (int(unknown.sum()),))

    def oracle(z, logsnr, **kw):
        out = x_a.reshape(n, -1).clone()
        out[:, unknown] = cond.denoise(z.reshape(n, -1)[:, unknown], logsnr)
        return out.reshape(z.shape)

    seen = []
    x = sample_conditional(oracle, (n, *SHAPE), SCHED, x_a=x_a, mask=mask, method="replacement", steps=20,
                           sampler="dpmpp2m", generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                           callback=lambda i, z_s, x_hat: seen.append(i))
    assert seen == list(range(20))
    assert torch.equal(x[:, :, 0], x_a[:, :, 0])
    xb = x.reshape(n, -1)[:, unknown]
    assert (xb.mean(0) - m).abs().max() < 0.03
    assert (torch.cov(xb.T) - c).abs().max() < 0.03


def test_works_inside_guidance_wrappers():
    data, other = _data(), _data(rho=0.0)

    def den(z, logsnr, cond=None):  # a "conditional model": cond = 1 -> data, cond = 0 -> other
        keep = cond.reshape(-1, *([1] * (z.ndim - 1))).bool()
        return torch.where(keep, data.denoise(z, logsnr), other.denoise(z, logsnr))

    z = torch.randn(6, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    lam, cond = SCHED(time_grid(10)), torch.ones(6, dtype=torch.float64)
    plain = sample_dpmpp2m(den, z, lam, extra_args={"cond": cond})
    torch.testing.assert_close(sample_dpmpp2m(classifier_free_guidance(den, 0.0), z, lam, extra_args={"cond": cond}),
                               plain)
    guided = sample_dpmpp2m(classifier_free_guidance(den, 2.0), z, lam, extra_args={"cond": cond})
    assert torch.isfinite(guided).all() and not torch.allclose(guided, plain)
    # Reconstruction guidance (eq. 6) wraps the denoiser; the replacement hook keeps the known frames exact.
    x_a = torch.full((6, *SHAPE), 0.4, dtype=torch.float64)
    x = sample_conditional(data.denoise, (6, *SHAPE), SCHED, x_a=x_a, mask=frame_mask(4, [0, 1]), method="gradient",
                           steps=10, sampler="dpmpp2m", generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.equal(x[:, :, :2], x_a[:, :, :2]) and torch.isfinite(x).all()


def test_registered_in_config_cli_and_options():
    from videodiff.cli import build_parser

    assert "dpmpp2m" in SAMPLERS
    assert SampleConfig(sampler="dpmpp2m").sampler == "dpmpp2m"
    assert sampler_options("dpmpp2m", gamma=0.3, eta=0.0) == {}
    assert sampler_options("ancestral", gamma=0.3, eta=0.0) == {"gamma": 0.3}
    assert sampler_options("ddim", gamma=0.3, eta=None) == {}
    args = build_parser().parse_args(["sample", "--checkpoint", "x", "--out", "y.mp4", "--sampler", "dpmpp2m"])
    assert args.sampler == "dpmpp2m"
    with pytest.raises(ValueError, match="sampler"):
        sampler_options("euler")
