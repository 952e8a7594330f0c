"""videodiff.metrics.paired: per-frame PSNR / SSIM against closed forms and an independent float64 implementation of
Wang et al. (2004), the t-interval against scipy, and `videodiff eval --metrics psnr,ssim` end to end."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from conftest import assert_one_line_error
from videodiff.cli import main
from videodiff.metrics.paired import frame_pair_metrics, mean_ci, psnr, ssim, ssim_window

pytestmark = pytest.mark.usefixtures("one_thread")


def _videos(shape, seed=0, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo


def _wang_ssim(a, b, data_range=1.0, size=11, sigma=1.5):
    """Reference SSIM of image pairs (N, C, H, W) with intensities in [0, data_range], written from the paper
    (eq. 13 with Gaussian-weighted statistics, eq. 14-15): valid filtering, mean over positions and channels."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    w2 = torch.outer(g, g) / torch.outer(g, g).sum()  # (size, size), sums to 1
    c = a.shape[1]
    window = w2.expand(c, 1, size, size)

    def mean(z):
        return F.conv2d(z, window, groups=c)  # valid: the window stays inside the image

    mu_a, mu_b = mean(a), mean(b)
    var_a, var_b = mean(a**2) - mu_a**2, mean(b**2) - mu_b**2
    cov = mean(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def _frames(v):  # (B, C, F, H, W) in [-1, 1] -> (B*F, C, H, W) in [0, 1]
    b, c, f, h, w = v.shape
    return ((v + 1) / 2).transpose(1, 2).reshape(b * f, c, h, w)


# ------------------------------------------------------------------------------------------------------ PSNR


def test_psnr_of_a_known_offset():
    truth = _videos((2, 3, 4, 8, 8), lo=-0.5, hi=0.5)
    for d in (0.01, 0.1, 0.5):
        p = psnr(truth + d, truth)
        assert p.shape == (2, 4) and p.dtype == torch.float64
        assert torch.allclose(p, torch.full_like(p, 10 * math.log10(4 / d**2)), atol=1e-9, rtol=0)
    # data range 1 on the same offset: 10 log10(1 / d^2)
    assert torch.allclose(psnr(truth + 0.1, truth, data_range=1.0), torch.full((2, 4), 20.0, dtype=torch.float64))


def test_identical_frames():
    v = _videos((2, 3, 3, 16, 16))
    assert torch.isinf(psnr(v, v)).all() and (psnr(v, v) > 0).all()  # +inf, no cap
    s = ssim(v, v)
    assert s.shape == (2, 3) and torch.equal(s, torch.ones_like(s))
    m = frame_pair_metrics(v, v.float())  # float32 truth is cast to float64
    assert set(m) == {"mse", "psnr", "ssim"} and all(t.shape == (2, 3) for t in m.values())
    assert torch.allclose(m["ssim"], torch.ones(2, 3, dtype=torch.float64), atol=1e-7)


def test_shape_mismatch_is_a_value_error():
    with pytest.raises(ValueError, match=r"\(1, 1, 2, 8, 8\) and \(1, 1, 3, 8, 8\)"):
        psnr(torch.zeros(1, 1, 2, 8, 8), torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="B, C, F, H, W"):
        ssim(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))


# ------------------------------------------------------------------------------------------------------ SSIM


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_an_independent_implementation_of_wang(channels):
    truth = _videos((3, channels, 2, 32, 32), seed=1)
    pred = (truth + 0.3 * _videos(truth.shape, seed=2)).clamp(-1, 1)
    s = ssim(pred, truth)
    ref = _wang_ssim(_frames(pred), _frames(truth)).reshape(3, 2)
    assert (s - ref).abs().max() < 1e-6
    assert 0.1 < s.mean() < 0.99  # noise: well below 1


def test_ssim_symmetric_and_below_one_for_noise():
    a = _videos((2, 1, 3, 24, 20), seed=3)
    b = (a + 0.1 * _videos(a.shape, seed=4)).clamp(-1, 1)
    assert torch.allclose(ssim(a, b), ssim(b, a), atol=1e-12, rtol=0)
    assert (ssim(a, b) < 1).all() and (ssim(a, b) > 0.5).all()
    assert (ssim(a, _videos(a.shape, seed=5)) < 0.2).all()  # unrelated noise


def test_ssim_on_uint8_scale_is_the_published_convention():
    """SSIM on [-1, 1] frames equals SSIM on [0, 1] pixels (range 1) and on uint8-valued pixels (range 255)."""
    a = _videos((1, 1, 2, 16, 16), seed=6)
    b = (a + 0.2 * _videos(a.shape, seed=7)).clamp(-1, 1)
    s = ssim(a, b)
    assert torch.allclose(s.flatten(), _wang_ssim(_frames(a), _frames(b)), atol=1e-12)
    assert torch.allclose(s.flatten(), _wang_ssim(_frames(a) * 255, _frames(b) * 255, data_range=255.0), atol=1e-12)


@pytest.mark.parametrize("hw", [(8, 8), (8, 12), (5, 5)])
def test_small_frames_shrink_the_window(hw):
    k, sigma = ssim_window(*hw)
    assert k == min(11, min(hw) - (1 - min(hw) % 2)) and sigma == pytest.approx(1.5 * k / 11)
    a = _videos((2, 1, 2, *hw), seed=8)
    b = (a + 0.2 * _videos(a.shape, seed=9)).clamp(-1, 1)
    s = ssim(a, b)
    assert s.shape == (2, 2) and torch.isfinite(s).all() and (s < 1).all()
    ref = _wang_ssim(_frames(a), _frames(b), size=k, sigma=sigma).reshape(2, 2)
    assert (s - ref).abs().max() < 1e-6
    assert torch.allclose(ssim(a, a), torch.ones(2, 2, dtype=torch.float64), atol=1e-12)
    assert ssim_window(64, 32) == (11, 1.5)


# --------------------------------------------------------------------------------------------------- mean_ci


def test_mean_ci_is_scipys_t_interval():
    v = np.random.default_rng(0).normal(3.0, 2.0, (10, 4))  # (clips, frames)
    per_clip = v.mean(1)
    lo, hi = stats.t.interval(0.95, len(per_clip) - 1, loc=per_clip.mean(), scale=stats.sem(per_clip))
    mean, half = mean_ci(torch.from_numpy(v))
    assert mean == pytest.approx(per_clip.mean(), abs=1e-12)
    assert (mean - half, mean + half) == pytest.approx((lo, hi), abs=1e-12)
    lo90, hi90 = stats.t.interval(0.9, 9, loc=per_clip.mean(), scale=stats.sem(per_clip))
    assert mean_ci(per_clip, level=0.9)[1] == pytest.approx((hi90 - lo90) / 2, abs=1e-12)
    m1, h1 = mean_ci([2.5])
    assert m1 == 2.5 and math.isnan(h1)
    m, h = mean_ci([1.0, float("inf")])
    assert m == math.inf and math.isnan(h)
    with pytest.raises(ValueError):
        mean_ci([])


# ------------------------------------------------------------------------------------------------------- CLI


def _write_sets(tmp_path, fake_shape=(4, 3, 16, 16)):
    """real.pt: float (4, 1, 3, 16, 16) in [-1, 1] on the uint8 grid; fake.npy: uint8 (N, F, H, W, 1), the real
    videos (cut to ``fake_shape``) plus noise. Returns both as float64 library videos."""
    real = torch.round((_videos((4, 1, 3, 16, 16), seed=10) + 1) * 127.5) / 127.5 - 1
    torch.save(real.float(), tmp_path / "real.pt")
    n, f, h, w = fake_shape
    fake = torch.zeros(n, 1, f, h, w, dtype=torch.float64)
    fake[:, :, :3] = real[:n, :, :f, :h, :w]
    fake = fake + 0.2 * _videos(fake.shape, seed=11)
    fake_u8 = ((fake.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (N, 1, F, H, W)
    np.save(tmp_path / "fake.npy", fake_u8.permute(0, 2, 3, 4, 1).numpy())  # (N, F, H, W, 1)
    return real, fake_u8.double() / 127.5 - 1


def test_cli_eval_psnr_ssim_end_to_end(tmp_path, capsys):
    real, fake = _write_sets(tmp_path)
    out = tmp_path / "res.json"
    rc = main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.npy"),
               "--metrics", "psnr,ssim", "--json", str(out), "--no-progress", "--batch-size", "3"])
    assert rc == 0
    res = json.loads(out.read_text())
    m = res["metrics"]
    assert set(m) == {"psnr", "ssim"}
    p, s = psnr(fake, real), ssim(fake, real)  # (4, 3)
    for name, ref in (("psnr", p), ("ssim", s)):
        r = m[name]
        assert r["pairs"] == 4 and len(r["per_frame"]) == 3 and r["ci_level"] == 0.95
        assert r["value"] == pytest.approx(ref.mean().item(), abs=1e-9)
        assert r["per_frame"] == pytest.approx(ref.mean(0).tolist(), abs=1e-9)
        assert r["ci_half_width"] == pytest.approx(mean_ci(ref)[1], abs=1e-9) and r["ci_half_width"] > 0
    assert m["ssim"]["protocol"]["window"] == 11 and m["ssim"]["protocol"]["border"].startswith("valid")
    assert 10 < m["psnr"]["value"] < 40 and 0 < m["ssim"]["value"] < 1
    printed = capsys.readouterr().out
    assert "psnr" in printed and "95% interval, 4 pairs" in printed


def test_cli_eval_paired_with_classifier_metrics(tmp_path):
    """psnr/ssim mix with the unpaired metrics in one run (8 frames of 32x32: the shipped classifier's size)."""
    v = _videos((3, 1, 8, 32, 32), seed=12)
    torch.save(v.float(), tmp_path / "real.pt")
    torch.save((v + 0.1).clamp(-1, 1).float(), tmp_path / "fake.pt")
    out = tmp_path / "res.json"
    assert main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.pt"),
                 "--metrics", "psnr,ssim,cfvd", "--json", str(out), "--no-progress"]) == 0
    m = json.loads(out.read_text())["metrics"]
    assert set(m) == {"psnr", "ssim", "cfvd"} and m["psnr"]["pairs"] == 3 and m["cfvd"]["value"] >= 0


@pytest.mark.parametrize("fake_shape, words", [((3, 3, 16, 16), ["4 videos x 3 frames", "3 videos x 3 frames"]),
                                               ((4, 4, 16, 16), ["4 videos x 4 frames", "4 videos x 3 frames"]),
                                               ((4, 3, 16, 12), ["16x12", "16x16"])])
def test_cli_eval_unpaired_sets_fail_in_one_line(tmp_path, capsys, fake_shape, words):
    _write_sets(tmp_path, fake_shape)
    rc = main(["eval", "--real", str(tmp_path / "real.pt"), "--fake", str(tmp_path / "fake.npy"),
               "--metrics", "ssim", "--no-progress"])
    assert rc == 2
    assert_one_line_error(capsys, "--real", "real.pt", "--fake", "fake.npy", "pair", *words)


def test_cli_eval_checkpoint_refuses_paired_metrics(tmp_path, capsys):
    (tmp_path / "ckpt.pt").write_bytes(b"not read: the metrics are refused first")
    assert main(["eval", "--checkpoint", str(tmp_path / "ckpt.pt"), "--metrics", "cfvd,psnr", "--no-progress"]) == 2
    assert_one_line_error(capsys, "psnr", "--checkpoint", "--real", "--fake")
