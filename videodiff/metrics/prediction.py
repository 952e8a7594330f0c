"""Scores of video prediction with K samples per video, as published for Stochastic Moving MNIST (MCVD, Voleti et al.
2022, ``runners/ncsn_runner.py`` of voletiv/mcvd-pytorch; the numbers its table and later papers compare against).

Per continuation (video ``b``, sample ``k``), over the predicted frames only:

* **SSIM** on binarised frames: pixels in [0, 1] rounded to {0, 1} (MCVD: ``torch.round`` then uint8 {0, 255}),
  then Wang et al.'s SSIM with an 11x11 Gaussian window (sigma 1.5), population covariances and the valid region
  (``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False,
  data_range=255)``; :func:`videodiff.metrics.paired.ssim` computes the same map), averaged over the frames.
* **PSNR** of the video's mean squared error on unrounded [0, 1] pixels: ``10 log10(1 / MSE)`` with the MSE over
  all predicted frames (not a mean of per-frame PSNRs).

Then **best of K** per video (each metric picks its own best sample: max SSIM, max PSNR), averaged over videos.
FVD is the Fréchet distance of I3D features of the given + predicted frames, computed once per sample index ``k``
(the real set against the set of the ``k``-th samples) and averaged over ``k`` (MCVD's ``fvd_traj_mean``); the
pooled FVD (all ``B * K`` against the ``B`` real videos) is reported beside it.
"""

from __future__ import annotations

import numpy as np
import torch

from .paired import ssim

__all__ = ["binarize", "continuation_scores", "best_of_k", "bootstrap_mean_ci"]


def binarize(video: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> {-1, 1}: the pixel in [0, 1] rounded to 0 or 1 (ties at 0.5 to even, as ``torch.round``)."""
    return torch.round((video.clamp(-1, 1) + 1) / 2) * 2 - 1


def continuation_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"ssim", "psnr", "mse"}`` float64 ``(B, K)`` of predictions ``(B, K, C, F, H, W)`` against the true frames
    ``(B, C, F, H, W)`` (both the predicted frames only, in [-1, 1]); ``mse`` on [0, 1] pixels. Identical videos
    have PSNR +inf."""
    if pred.ndim != 6 or pred.shape[:1] + pred.shape[2:] != truth.shape:
        raise ValueError(f"need predictions (B, K, C, F, H, W) and truth (B, C, F, H, W) of matching shapes, got "
                         f"{tuple(pred.shape)} and {tuple(truth.shape)}")
    b, k = pred.shape[:2]
    flat_pred = pred.flatten(0, 1).double()  # (B*K, C, F, H, W)
    flat_truth = truth.double().repeat_interleave(k, dim=0)
    mse = ((flat_pred - flat_truth) / 2).square().flatten(1).mean(1)  # on [0, 1] pixels
    psnr = 10 * torch.log10(1.0 / mse)
    step = max(1, 256 // pred.shape[3])  # ~256 frames at a time: five float64 maps each
    s = torch.cat([ssim(binarize(flat_pred[i : i + step]), binarize(flat_truth[i : i + step]), data_range=2.0)
                   for i in range(0, len(flat_pred), step)]).mean(1)  # mean over frames
    return {"ssim": s.reshape(b, k), "psnr": psnr.reshape(b, k), "mse": mse.reshape(b, k)}


def best_of_k(values: torch.Tensor, higher_is_better: bool = True) -> torch.Tensor:
    """Best value per video over its K samples: ``(B, K)`` -> ``(B,)``."""
    return values.amax(1) if higher_is_better else values.amin(1)


def bootstrap_mean_ci(values, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean over videos and its percentile bootstrap interval (videos resampled with
    replacement, a fixed seed so the interval is reproducible)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("no values to average")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, (resamples, v.size))].mean(1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))
