"""Frame-pair metrics for tasks with ground truth (spatial super-resolution, temporal interpolation and extension,
paper Sec. 3.1 and 4.4): per-frame MSE, PSNR and SSIM between a prediction and its true video, and a t-interval
over clips.

Videos are ``(B, C, F, H, W)`` floats in [-1, 1] (the library's layout), so the data range is 2.0; PSNR on them
equals PSNR on [0, 1] pixels with range 1, or on uint8 pixels with range 255. Every function returns float64
``(B, F)``: one value per frame of each clip.

* ``psnr``: ``10 log10(data_range² / MSE)``, the MSE taken over C, H, W in float64. **Identical frames give
  +inf** (no cap): average such values only where they cannot occur, or look at ``mse``.
* ``ssim``: Wang et al. 2004 (IEEE TIP 13(4)): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, and the
  mean of the SSIM map over the positions where the window lies inside the frame ("valid" filtering, as the
  authors' ``ssim_index.m``); the mean over channels for colour frames. SSIM is not shift-invariant (its
  luminance term assumes intensities >= 0), so the frames, taken to span ``[-data_range/2, data_range/2]``, are
  shifted to ``[0, data_range]`` first: the value equals SSIM on [0, 1] or uint8 pixels, as usually published
  (on [-1, 1] as they are, random 32x32 pairs score 0.62 instead of 0.89). The map equals torchmetrics'
  (``structural_similarity_index_measure(..., return_full_image=True)``) cropped by the window's half-width, and
  scikit-image's ``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``: torchmetrics
  itself reflect-pads the frame and averages over every pixel, which gives other numbers (higher ones on Moving
  MNIST's black backgrounds). **Frames smaller than 11 pixels** use the largest odd window ``k``
  that fits, with sigma scaled with it (``1.5 * k / 11``, the same Gaussian shape; torchmetrics ties a
  Gaussian window's size to its sigma), e.g. k = 7, sigma 0.95 on 8x8 frames.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["psnr", "ssim", "frame_pair_metrics", "mean_ci", "ssim_window", "PAIRED_METRICS", "check_pairs",
           "paired_metrics"]

PAIRED_METRICS = ("psnr", "ssim")  # what paired_metrics computes (registry entries: metrics/builtin.py)
WINDOW, SIGMA, K1, K2 = 11, 1.5, 0.01, 0.03  # Wang et al. 2004


def _check(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, truth = torch.as_tensor(pred), torch.as_tensor(truth)
    if pred.ndim != 5 or pred.shape != truth.shape:
        raise ValueError(f"frame-pair metrics need two videos (B, C, F, H, W) of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(truth.shape)}")
    return pred.double(), truth.to(pred.device).double()


def _mse(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    return (pred - truth).square().mean(dim=(1, 3, 4))  # (B, F)


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    return 10 * torch.log10(data_range**2 / mse)  # +inf where mse == 0


def psnr(pred: torch.Tensor, truth: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-frame PSNR in dB, float64 ``(B, F)``, of videos ``(B, C, F, H, W)``; +inf for identical frames."""
    pred, truth = _check(pred, truth)
    return _psnr_from_mse(_mse(pred, truth), data_range)


def ssim_window(height: int, width: int) -> tuple[int, float]:
    """(window size, sigma) that :func:`ssim` uses on ``height x width`` frames: Wang's 11 and 1.5, or for
    smaller frames the largest odd size that fits with sigma scaled by the same factor."""
    k = min(WINDOW, height, width)
    k -= 1 - k % 2  # odd
    return k, SIGMA * k / WINDOW


def _ssim_images(a: torch.Tensor, b: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM of float64 image pairs ``(N, C, H, W)`` over the valid positions: ``(N,)``. The Gaussian-weighted
    moments come from one separable "valid" convolution of the five maps ``a, b, a², b², ab`` (the 2-D Gaussian is
    the outer product of the 1-D one); torchmetrics' SSIM gives the same map (its reflect-padded borders cropped)
    at ~100x the time in float64 on the CPU."""
    import torch.nn.functional as F

    k, sigma = ssim_window(a.shape[-2], a.shape[-1])
    n, c, h, w = a.shape
    x = torch.arange(k, dtype=torch.float64, device=a.device) - (k - 1) / 2
    g = torch.exp(-x**2 / (2 * sigma**2))
    g = g / g.sum()
    maps = torch.stack([a, b, a * a, b * b, a * b], 1).reshape(n * 5 * c, 1, h, w)
    m = F.conv2d(F.conv2d(maps, g.view(1, 1, 1, k)), g.view(1, 1, k, 1))  # valid: (N*5*C, 1, H-k+1, W-k+1)
    mu_a, mu_b, e_aa, e_bb, e_ab = m.reshape(n, 5, c, h - k + 1, w - k + 1).unbind(1)
    var_a, var_b, cov = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b  # population moments
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    smap = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return smap.flatten(1).mean(1)


def ssim(pred: torch.Tensor, truth: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Per-frame SSIM, float64 ``(B, F)``, of videos ``(B, C, F, H, W)`` (module docstring: window, borders,
    small frames); exactly 1 for identical frames."""
    pred, truth = _check(pred, truth)
    b, c, f, h, w = pred.shape
    # Wang's luminance term assumes intensities >= 0: [-r/2, r/2] -> [0, r]
    flat = lambda v: (v + data_range / 2).transpose(1, 2).reshape(b * f, c, h, w)  # noqa: E731  (B*F, C, H, W)
    return _ssim_images(flat(pred), flat(truth), data_range).reshape(b, f)


def frame_pair_metrics(pred: torch.Tensor, truth: torch.Tensor, data_range: float = 2.0) -> dict[str, torch.Tensor]:
    """``{"mse", "psnr", "ssim"}``, each float64 ``(B, F)``, of videos ``(B, C, F, H, W)``."""
    pred, truth = _check(pred, truth)
    mse = _mse(pred, truth)
    return {"mse": mse, "psnr": _psnr_from_mse(mse, data_range), "ssim": ssim(pred, truth, data_range)}


def mean_ci(values, level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the ``level`` Student-t interval) over the first axis of ``values``: one value per
    clip, or ``(B, ...)`` whose trailing axes are averaged per clip first. The half-width is NaN for a single
    clip, and for values holding +inf (PSNR of identical frames), whose mean is then +inf."""
    from scipy import stats

    v = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64)
    if v.ndim == 0 or len(v) == 0:
        raise ValueError(f"mean_ci needs one value per clip along the first axis, got shape {v.shape}")
    v = v.reshape(len(v), -1).mean(1)  # (B,) per-clip values
    n, mean = len(v), float(v.mean())
    if n < 2 or not np.isfinite(v).all():
        return mean, math.nan
    return mean, float(stats.t.ppf((1 + level) / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))


# ------------------------------------------------------------------------------------- paired video sets (eval)


def _describe(v: np.ndarray) -> str:
    return f"{v.shape[0]} videos x {v.shape[1]} frames x {v.shape[2]}x{v.shape[3]}"


def check_pairs(real: np.ndarray, fake: np.ndarray, real_name: str = "real", fake_name: str = "fake") -> None:
    """ValueError naming both sets unless uint8 ``(N, F, H, W, 3)`` sets pair up by order (same N, F, H, W)."""
    if real.shape != fake.shape:
        raise ValueError(f"psnr/ssim pair the i-th fake video with the i-th real one, but {real_name} holds "
                         f"{_describe(real)} and {fake_name} {_describe(fake)} (N, F, H x W); give sets of one "
                         f"count, length and size (--num and --frames cut them)")


def paired_metrics(real: np.ndarray, fake: np.ndarray, metrics=PAIRED_METRICS, *, batch_size: int = 16,
                   device="cpu", level: float = 0.95) -> dict:
    """``{name: {"value", "ci_half_width", "ci_level", "per_frame", "pairs", "protocol"}}`` for uint8
    ``(N, F, H, W, 3)`` sets paired by order: ``value`` is the mean over pairs and frames, the interval is the
    t-interval over the pairs' means (:func:`mean_ci`), ``per_frame`` the mean over pairs of each frame."""
    check_pairs(real, fake)
    metrics = [m for m in metrics if m in PAIRED_METRICS]
    if torch.device(device).type == "mps":
        device = "cpu"  # float64 math; MPS has no float64
    per_pair: dict[str, list] = {m: [] for m in metrics}
    bs = max(int(batch_size), 1)
    for i in range(0, len(real), bs):
        r, f = (torch.from_numpy(v[i:i + bs]).to(device).permute(0, 4, 1, 2, 3).double() / 127.5 - 1
                for v in (real, fake))  # (B, 3, F, H, W) in [-1, 1]
        for m in metrics:
            per_pair[m].append((psnr if m == "psnr" else ssim)(f, r).cpu())
    h, w = real.shape[2:4]
    k, sigma = ssim_window(h, w)
    notes = {"psnr": {"metric": "PSNR (dB), per frame, MSE over channels and pixels", "inf_frames": 0},
             "ssim": {"metric": "SSIM (Wang et al. 2004), per frame", "window": k, "sigma": sigma, "k1": K1, "k2": K2,
                      "border": "valid (window inside the frame)", "intensities": "[0, 1]-scaled pixels",
                      "implementation": "separable Gaussian moments, valid region (= torchmetrics' map cropped)"}}
    out = {}
    for m in metrics:
        v = torch.cat(per_pair[m]).numpy()  # (N, F)
        mean, half = mean_ci(v, level)
        protocol = {**notes[m], "data_range": "uint8 pixels (range 255)", "pairing": "i-th fake with i-th real",
                    "interval": f"{level:.0%} Student-t over the {len(v)} pairs' means"}
        if m == "psnr":
            protocol["inf_frames"] = int(np.isinf(v).sum())
            if protocol["inf_frames"]:
                protocol["note"] = f"{protocol['inf_frames']} identical frame pairs: PSNR +inf"
        out[m] = {"value": mean, "ci_half_width": half, "ci_level": level, "per_frame": v.mean(0).tolist(),
                  "pairs": len(v), "protocol": protocol}
    return out
