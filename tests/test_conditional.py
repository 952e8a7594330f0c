"""Exact tests of conditional sampling (paper Sec. 3.1, eq. 6 and 7) with Gaussian "videos" and images.

For Gaussian data ``GaussianData.denoise`` is the exact ``E[x | z_t]`` and ``p(x^b | x^a)`` is known in closed form,
so the real samplers and conditioning code can be compared with exact mathematics. Distances are reported against
their noise floor: with N samples of ``N(m, C)`` the sample mean is off by ``sqrt(tr C / N)`` and the sample
covariance by ``sqrt(((tr C)^2 + ||C||_F^2) / N)`` (Frobenius) on average.

Measured here (N = 3000, 128 ancestral steps, gamma = 0.3; AR(1) rho = 0.95 over 6 frames of 2 pixels, the first
2 frames known; noise floors 0.024 / 0.038). Sec. 3.1's argument holds: replacement leaves x^b incoherent with x^a.

    method                      |mean - m|   ||cov - C||_F
    replacement (eq. 1 draws)      1.335        1.152
    replacement (eq. 3 draws)      1.338        1.410
    gradient (eq. 6), w_r = 1      0.274        0.112

More settings (DDIM, other w_r, more known frames, the exact-denoiser reference) are in BENCHMARKS.md, printed by
``python benchmarks/extension.py --gaussian``.
"""

import pytest
import torch
import torch.nn.functional as F

from videodiff.conditional import (
    Downsample,
    ReconstructionGuidance,
    ReplacementHook,
    frame_mask,
    sample_conditional,
)
from videodiff.gaussian import GaussianData, ar1_covariance
from videodiff.schedule import ScheduleConfig, alpha_sigma, time_grid
from videodiff.sampling import sample_ancestral

N = 3000
STEPS = 128
SCHED = ScheduleConfig()
F_, H, W, K = 6, 1, 2, 2  # a Gaussian "video" of 6 frames of 1x2 pixels; the first K frames are known
SHAPE = (1, F_, H, W)


def _video_data(rho=0.95):
    pix = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    return GaussianData(torch.zeros(F_ * H * W, dtype=torch.float64), ar1_covariance(F_, rho, pix), SHAPE)


def _known_values(n):
    x_a = torch.zeros(n, *SHAPE, dtype=torch.float64)
    x_a[:, :, :K] = torch.tensor([1.5, 1.0], dtype=torch.float64)  # far from the prior mean: a strong condition
    return x_a


def _floors(cov, n):
    return (torch.trace(cov) / n).sqrt().item(), ((torch.trace(cov) ** 2 + cov.square().sum()) / n).sqrt().item()


def _distances(x, idx, m, c):
    xb = x.reshape(x.shape[0], -1)[:, idx]
    return (xb.mean(0) - m).norm().item(), (torch.cov(xb.T) - c).norm().item()


@pytest.fixture(scope="module")
def video_case():
    data = _video_data()
    mask = frame_mask(F_, range(K))  # (1, 1, F, 1, 1)
    x_a = _known_values(N)
    known = mask[0].expand(SHAPE)
    m, c = data.conditional(known, x_a[0][known])
    unknown = ~known.reshape(-1)

    cond = GaussianData(m, c, (int(unknown.sum()),))

    def oracle(z, logsnr, **kw):  # the exact E[x | z_t, x^a]: what the gradient method approximates
        out = x_a.reshape(N, -1).clone()
        out[:, unknown] = cond.denoise(z.reshape(N, -1)[:, unknown], logsnr)
        return out.reshape(z.shape)

    return dict(data=data, mask=mask, x_a=x_a, m=m, c=c, unknown=unknown, oracle=oracle)


def _run(den, case, seed=1, **kw):
    return sample_conditional(den, (N, *SHAPE), SCHED, x_a=case["x_a"], mask=case["mask"], steps=STEPS,
                              generator=torch.Generator().manual_seed(seed), dtype=torch.float64, **kw)


@pytest.mark.parametrize("sampler,extra", [("ancestral", {"gamma": 0.3}), ("ddim", {"eta": 0.0})])
@pytest.mark.parametrize("method,variant", [("replacement", "marginal"), ("replacement", "posterior"),
                                            ("gradient", "marginal")])
def test_known_entries_are_exact(method, variant, sampler, extra):
    data = _video_data()
    x_a = _known_values(8) + 0.01 * torch.randn(8, *SHAPE, dtype=torch.float64)
    x = sample_conditional(data.denoise, (8, *SHAPE), SCHED, x_a=x_a, mask=frame_mask(F_, [0, 3]), method=method,
                           variant=variant, steps=10, sampler=sampler, generator=torch.Generator().manual_seed(0),
                           dtype=torch.float64, options=extra)
    assert torch.equal(x[:, :, [0, 3]], x_a[:, :, [0, 3]])
    assert not torch.equal(x[:, :, 1], x_a[:, :, 1])


def test_exact_conditional_denoiser_reaches_the_noise_floor(video_case):
    # Validates the machinery (hook, sampler, moments): with the exact E[x | z_t, x^a] the samples match p(x^b|x^a).
    mean_floor, cov_floor = _floors(video_case["c"], N)
    d_mean, d_cov = _distances(_run(video_case["oracle"], video_case, method="replacement"), video_case["unknown"],
                               video_case["m"], video_case["c"])
    assert d_mean < 3 * mean_floor and d_cov < 3 * cov_floor, (d_mean, d_cov, mean_floor, cov_floor)


def test_gradient_method_beats_replacement_on_exact_conditional(video_case):
    """The paper's argument of Sec. 3.1: replacement misses the grad log q(x^a | z_t) term and is incoherent."""
    data, m, c, idx = video_case["data"], video_case["m"], video_case["c"], video_case["unknown"]
    mean_floor, cov_floor = _floors(c, N)
    rep = _distances(_run(data.denoise, video_case, method="replacement"), idx, m, c)
    rep_post = _distances(_run(data.denoise, video_case, method="replacement", variant="posterior"), idx, m, c)
    grad = _distances(_run(data.denoise, video_case, method="gradient", w_r=1.0), idx, m, c)
    print(f"\nfloors {mean_floor:.4f}/{cov_floor:.4f}  replacement {rep}  replacement-posterior {rep_post}  "
          f"gradient {grad}")
    # Each distance carries sampling noise of about one floor; demand a gap of 10 floors.
    for other in (rep, rep_post):
        assert grad[0] + 10 * mean_floor < other[0]
        assert grad[1] + 10 * cov_floor < other[1]
    # Replacement is far from the truth (tens of floors); the gradient method is close but not exact.
    assert rep[0] > 30 * mean_floor and grad[0] < 0.3 * rep[0]


def test_gradient_denoiser_is_eq6_in_closed_form():
    """x~^b = x_hat^b + (w_r / alpha) A_ba (x^a - x_hat^a) with A = dE[x|z]/dz = alpha S (alpha^2 S + sigma^2 I)^-1."""
    data = _video_data()
    x_a = _known_values(3)
    mask = frame_mask(F_, range(K))
    z = torch.randn(3, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    logsnr = torch.tensor(0.7, dtype=torch.float64)
    for w_r in (1.0, 3.0):
        den = ReconstructionGuidance(data.denoise, x_a=x_a, mask=mask, w_r=w_r)
        with torch.no_grad():  # samplers call it without gradients
            x_tilde = den(z, logsnr.expand(3))
        alpha, sigma = alpha_sigma(logsnr)
        s = data.cov
        a_mat = alpha * s @ torch.linalg.inv(alpha**2 * s + sigma**2 * torch.eye(s.shape[0], dtype=s.dtype))
        known = mask[0].expand(SHAPE).reshape(-1)
        x_hat = data.denoise(z, logsnr).reshape(3, -1)
        resid = (x_a.reshape(3, -1) - x_hat)[:, known]
        want_b = x_hat[:, ~known] + (w_r / alpha) * resid @ a_mat[~known][:, known].T
        torch.testing.assert_close(x_tilde.reshape(3, -1)[:, ~known], want_b)
        torch.testing.assert_close(x_tilde.reshape(3, -1)[:, known], x_a.reshape(3, -1)[:, known])


def test_guidance_composes_and_passes_kwargs_through():
    data = _video_data()
    seen = []

    def inner(z, logsnr, *, cond=None, **kw):
        seen.append(cond)
        return data.denoise(z, logsnr) * (1.0 if cond is None else 1.1)

    def cfg_like(den, w):  # another wrapper (classifier-free guidance has this form, eq. 5)
        return lambda z, logsnr, cond=None, **kw: (1 + w) * den(z, logsnr, cond=cond) - w * den(z, logsnr, cond=None)

    x_a, mask = _known_values(2), frame_mask(F_, range(K))
    guided = ReconstructionGuidance(cfg_like(inner, 0.5), x_a=x_a, mask=mask)
    lam = SCHED(time_grid(4))
    z = torch.randn(2, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hook = ReplacementHook(x_a, mask, final_logsnr=float(lam[-1]))
    out = sample_ancestral(guided, z, lam, step_hook=hook, extra_args={"cond": "text"},
                           generator=torch.Generator().manual_seed(1))
    assert "text" in seen and None in seen
    assert torch.equal(out[:, :, :K], x_a[:, :, :K])
    # Guidance wrapped the other way round works too (both are plain denoisers).
    outer = cfg_like(ReconstructionGuidance(inner, x_a=x_a, mask=mask), 0.5)
    assert outer(z, lam[1].expand(2), cond="text").shape == z.shape


def test_composes_with_the_packages_classifier_free_guidance():
    from videodiff.sampling.guidance import classifier_free_guidance

    data = _video_data()

    def text_model(z, logsnr, cond_keep=None, **kw):  # conditional prediction shifted by +0.2, null by 0
        shift = 0.2 * cond_keep.to(z.dtype).reshape(-1, *[1] * (z.ndim - 1))
        return data.denoise(z, logsnr) + shift

    x_a, mask = _known_values(3), frame_mask(F_, range(K))
    cfg = classifier_free_guidance(text_model, 1.0)  # x~ = x_hat + 2 * 0.2 (linear in w)
    guided = ReconstructionGuidance(cfg, x_a=x_a, mask=mask)
    z = torch.randn(3, *SHAPE, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lam = torch.full((3,), 0.5, dtype=torch.float64)
    with torch.no_grad():
        got = guided(z, lam)
        want = ReconstructionGuidance(lambda z_, l_, **kw: data.denoise(z_, l_) + 0.4, x_a=x_a, mask=mask)(z, lam)
    torch.testing.assert_close(got, want)  # the constant shift has no Jacobian: same correction, shifted x_hat
    x = sample_conditional(cfg, (3, *SHAPE), SCHED, x_a=x_a, mask=mask, steps=4,
                           generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(x[:, :, :K], x_a[:, :, :K])


def test_pixel_masks_inpaint_and_where_eq6_overshoots():
    """The same mechanism with a per-pixel mask (inpainting): the left pixel of every frame is known.

    Known pixels come out exact. This case also shows the limit of eq. (6)'s approximation
    q(x^a | z_t) ~ N(x_hat^a, sigma_t^2 I): it is exact when Cov[x^a | z_t] = sigma_t^2 I, but here the known
    pixels are strongly correlated among themselves (AR(1), rho 0.9, over 6 frames) and only weakly with the
    unknown ones (0.3), and x^a lies along the top eigenvector of Cov[x^a] (about 5 sigma_t^2 at high noise).
    The gradient step is then about 5x too large early on and the samples overshoot: measured mean error 0.79
    (w_r = 1), 0.31 (w_r = 0.5), 0.21 for replacement, floor 0.05 (n = 2000).
    """
    data = _video_data(rho=0.9)
    n = 1000
    mask = torch.zeros(1, *SHAPE, dtype=torch.bool)
    mask[..., 0] = True  # the left pixel of every frame is known
    x_a = torch.full((n, *SHAPE), 0.8, dtype=torch.float64)
    m, c = data.conditional(mask[0], x_a[0][mask[0]])
    mean_floor, _ = _floors(c, n)
    err = {}
    for method in ("gradient", "replacement"):
        x = sample_conditional(data.denoise, (n, *SHAPE), SCHED, x_a=x_a, mask=mask, steps=64, method=method,
                               generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        assert torch.equal(x[mask.expand_as(x)], x_a[mask.expand_as(x_a)])
        err[method], _ = _distances(x, ~mask[0].reshape(-1), m, c)
    assert err["replacement"] + 5 * mean_floor < err["gradient"], err


# -------------------------------------------------------------------------------------- super-resolution (eq. 7)


def _image_case(mode):
    s1 = ar1_covariance(4, 0.8)
    shape = (1, 1, 4, 4)  # one 4x4 frame; (C, F, H, W)
    data = GaussianData(torch.zeros(16, dtype=torch.float64), torch.kron(s1, s1), shape)
    down = Downsample(2, mode)
    d_mat = down(torch.eye(16, dtype=torch.float64).reshape(16, *shape)).reshape(16, -1).T  # D: (4, 16), linear
    y0 = down(data.sample(1, torch.Generator().manual_seed(0)))
    gain = data.cov @ d_mat.T @ torch.linalg.inv(d_mat @ data.cov @ d_mat.T)
    m = gain @ y0.reshape(-1)  # exact p(x | D x = y): N(m, C), C of rank 12
    c = data.cov - gain @ d_mat @ data.cov
    return data, down, shape, y0, m, (c + c.T) / 2


def _sr_distances(x, down, y0, m, c):
    flat = x.reshape(x.shape[0], -1)
    resid = (down(x) - y0).reshape(x.shape[0], -1).square().mean().sqrt().item()
    return (flat.mean(0) - m).norm().item(), (torch.cov(flat.T) - c).norm().item(), resid


@pytest.mark.parametrize("mode,w_r", [("area", 4.0), ("bilinear", 4.0), ("area", 1.0)])
def test_eq7_superresolution_approaches_exact_conditional(mode, w_r):
    data, down, shape, y0, m, c = _image_case(mode)
    mean_floor, cov_floor = _floors(c, N)
    y = y0.expand(N, *shape[:-2], 2, 2)
    x = sample_conditional(data.denoise, (N, *shape), SCHED, y=y, down=down, w_r=w_r, steps=STEPS,
                           generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    guided = _sr_distances(x, down, y0, m, c)
    x_unc = sample_conditional(data.denoise, (N, *shape), SCHED, steps=STEPS,
                               generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    unconditional = _sr_distances(x_unc, down, y0, m, c)
    naive = _sr_distances(  # bilinear upsampling of y: a deterministic guess
        F.interpolate(y0.reshape(1, 1, 2, 2), size=(4, 4), mode="bilinear").reshape(1, *shape).expand(N, *shape),
        down, y0, m, c)
    print(f"\n{mode} w_r={w_r}: floors {mean_floor:.3f}/{cov_floor:.3f} eq7 {guided} unconditional {unconditional} "
          f"naive {naive}")
    assert guided[0] < naive[0] - 5 * mean_floor and guided[1] < naive[1] - 5 * cov_floor
    assert guided[0] < unconditional[0] - 5 * mean_floor and guided[1] < unconditional[1] - 5 * cov_floor
    if w_r == 4.0:  # w_r = k^2 makes eq. 7 exact as t -> 0 for area (D D^T = I/4): near-exact samples
        assert guided[0] < 8 * mean_floor and guided[1] < 3 * cov_floor
        assert guided[2] < (1e-3 if mode == "area" else 0.05)
    else:  # the paper's w_r = 1 pulls towards y four times too weakly for this D: better than baselines, not exact
        assert guided[2] < naive[2]


def test_low_frequency_replacement_is_exact_when_frequencies_are_independent():
    """The replacement method's analogue for super-resolution (LowResReplacementHook, area D): D x = y exactly, and
    for white data (low and high frequencies of a projection independent) the exact p(x | D x = y)."""
    shape = (1, 1, 4, 4)
    data = GaussianData(torch.zeros(16, dtype=torch.float64), torch.eye(16, dtype=torch.float64), shape)
    down = Downsample(2, "area")
    d_mat = down(torch.eye(16, dtype=torch.float64).reshape(16, *shape)).reshape(16, -1).T
    y0 = down(data.sample(1, torch.Generator().manual_seed(0)))
    gain = d_mat.T @ torch.linalg.inv(d_mat @ d_mat.T)
    m, c = gain @ y0.reshape(-1), torch.eye(16, dtype=torch.float64) - gain @ d_mat
    mean_floor, cov_floor = _floors(c, N)
    x = sample_conditional(data.denoise, (N, *shape), SCHED, y=y0.expand(N, 1, 1, 2, 2), down=down,
                           method="replacement", steps=STEPS, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    dm, dc, resid = _sr_distances(x, down, y0, m, c)
    assert resid < 1e-10
    assert dm < 5 * mean_floor and dc < 3 * cov_floor, (dm, dc, mean_floor, cov_floor)


def test_low_frequency_replacement_on_correlated_data_and_its_limits():
    """On correlated data the low-frequency replacement still matches D x = y exactly and beats unconditional
    samples, and it needs area downsampling (bilinear D has no projection to replace through)."""
    data, down, shape, y0, m, c = _image_case("area")
    mean_floor, _ = _floors(c, N)
    kw = dict(steps=STEPS, dtype=torch.float64)
    x = sample_conditional(data.denoise, (N, *shape), SCHED, y=y0.expand(N, 1, 1, 2, 2), down=down,
                           method="replacement", generator=torch.Generator().manual_seed(1), **kw)
    unc = sample_conditional(data.denoise, (N, *shape), SCHED, generator=torch.Generator().manual_seed(1), **kw)
    rep, unconditional = _sr_distances(x, down, y0, m, c), _sr_distances(unc, down, y0, m, c)
    assert rep[2] < 1e-10
    assert rep[0] < unconditional[0] - 5 * mean_floor
    with pytest.raises(ValueError, match="area"):
        sample_conditional(data.denoise, (4, *shape), SCHED, y=y0.expand(4, 1, 1, 2, 2),
                           down=Downsample(2, "bilinear"), method="replacement", steps=4)
