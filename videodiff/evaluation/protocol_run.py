"""Run a named prediction protocol (:mod:`.protocols`): predict the test split's continuations, score them as the
published tables do (:mod:`videodiff.metrics.prediction`), beside two baselines and the real-vs-real floor.

* **last-frame copy**: every predicted frame is the last given frame;
* **empty**: every predicted frame is background. On SMMNIST it already scores SSIM ~0.7 and a higher PSNR than the
  copy (mostly-black frames), which is why neither metric is read alone;
* **real vs real**: the FVD between the test clips and other clips of the same construction (the floor an FVD
  estimate reaches with this many videos).

The model enters as ``predict(given_videos, method) -> (N, K, C, T, H, W)``, so the runner knows no model.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ..metrics.prediction import best_of_k, bootstrap_mean_ci, continuation_scores
from .protocols import Protocol, load_split, split_record

__all__ = ["run_protocol", "format_protocol", "format_cell", "baseline_predictions"]


def baseline_predictions(given: torch.Tensor, predicted: int) -> dict[str, torch.Tensor]:
    """``{"last-frame copy", "empty"}`` predictions ``(N, 1, C, F_given + predicted, H, W)`` from ``given`` clips."""
    n, c, g, h, w = given.shape
    copy = torch.cat([given, given[:, :, -1:].expand(n, c, predicted, h, w)], 2)
    empty = torch.cat([given, torch.full((n, c, predicted, h, w), -1.0)], 2)
    return {"last-frame copy": copy[:, None], "empty": empty[:, None]}


def _summary(values: np.ndarray, resamples: int) -> dict:
    mean, lo, hi = bootstrap_mean_ci(values, resamples=resamples)
    return {"mean": round(mean, 4), "ci95": [round(lo, 4), round(hi, 4)]}


def fvd_rows_from_features(real_feats: np.ndarray, per_k: list[np.ndarray]) -> dict:
    """The FVD of each sample index k (the real set against the k-th samples' features ``per_k[k]``), their mean and
    std over k, and pooled (all samples against the real set)."""
    from ..metrics.fvd import fvd_from_features

    fvds = [fvd_from_features(real_feats, f) for f in per_k]
    out = {"fvd_mean_of_k": round(float(np.mean(fvds)), 3), "fvd_per_k": [round(v, 3) for v in fvds],
           "fvd_std_of_k": round(float(np.std(fvds, ddof=1)), 3) if len(fvds) > 1 else None}
    if len(per_k) > 1:
        out["fvd_pooled"] = round(fvd_from_features(real_feats, np.concatenate(per_k)), 3)
    return out


def _fvd_rows(clips: torch.Tensor, real_feats: np.ndarray, features: Callable) -> dict:
    """:func:`fvd_rows_from_features` of the clips ``(N, K, ...)``, sample index by sample index."""
    return fvd_rows_from_features(real_feats, [features(clips[:, k]) for k in range(clips.shape[1])])


def run_protocol(
    protocol: Protocol,
    predict: Callable[[torch.Tensor, str], torch.Tensor] | None,
    *,
    methods: tuple[str, ...] = ("gradient",),
    videos: int | None = None,
    samples: int | None = None,
    fvd: bool = True,
    i3d=None,
    cache_dir: str | None = None,
    batch_size: int = 8,
    resamples: int = 2000,
    progress: bool = True,
    keep_predictions: dict | None = None,
) -> dict:
    """Score ``methods`` of ``predict`` (None: baselines and floor only) under ``protocol``; ``videos``/``samples``
    below the protocol's are recorded as deviations. ``keep_predictions``: a dict that receives each method's
    predictions ``(N, K, C, T, H, W)``."""
    from .video_sets import tensor_to_uint8

    n = protocol.videos if videos is None else videos
    k = protocol.samples if samples is None else samples
    real = load_split(protocol.split, n)[:, :, : protocol.frames]  # (N, C, T, H, W)
    given, truth = real[:, :, : protocol.given], real[:, :, protocol.given :]
    rows = {}
    timings = {}
    for method in methods if predict is not None else ():
        t0 = time.perf_counter()
        pred = predict(given, method)  # (N, K, C, T, H, W)
        timings[method] = round(time.perf_counter() - t0, 1)
        if pred.shape[:2] != (n, k) or pred.shape[3] != protocol.frames:
            raise ValueError(f"predict returned {tuple(pred.shape)}; expected ({n}, {k}, C, {protocol.frames}, H, W)")
        drift = float((pred[:, :, :, : protocol.given] - given[:, None]).abs().max())
        rows[method] = {"pred": pred, "given_max_abs_change": drift}
        if keep_predictions is not None:
            keep_predictions[method] = pred
    for name, pred in baseline_predictions(given, protocol.predicted).items():
        rows[name] = {"pred": pred}
    features = None
    if fvd:
        from ..metrics.fvd import cached_i3d_features, fvd_from_features
        from ..metrics.i3d import load_i3d

        model = i3d if i3d is not None else load_i3d()
        features = lambda v: cached_i3d_features(tensor_to_uint8(v), model, cache_dir,  # noqa: E731
                                                 batch_size=batch_size, progress=progress)
        real_feats = features(real)
        floor = load_split(protocol.floor_split, n)[:, :, : protocol.frames]
        floor_fvd = round(fvd_from_features(real_feats, features(floor)), 3)
    table = []
    for name, row in rows.items():
        pred = row.pop("pred")
        scores = continuation_scores(pred[:, :, :, protocol.given :], truth)
        entry = {"method": name, "samples": int(pred.shape[1]),
                 "ssim_best_of_k": _summary(best_of_k(scores["ssim"]).numpy(), resamples),
                 "psnr_best_of_k": _summary(best_of_k(scores["psnr"]).numpy(), resamples),
                 "ssim_mean_of_k": _summary(scores["ssim"].mean(1).numpy(), resamples),
                 "psnr_mean_of_k": _summary(scores["psnr"].mean(1).numpy(), resamples), **row}
        if name in timings:
            entry["predict_wall_s"] = timings[name]
        if features is not None:
            entry.update(_fvd_rows(pred, real_feats, features))
        table.append(entry)
    if features is not None:
        table.append({"method": "real vs real (floor)", "fvd_mean_of_k": floor_fvd})
    rec = split_record(protocol.split)
    deviations = []
    if n != protocol.videos:
        deviations.append(f"{n} test videos instead of {protocol.videos}")
    if k != protocol.samples:
        deviations.append(f"{k} samples per video instead of {protocol.samples}")
    if not fvd:
        deviations.append("FVD not computed")
    return {"protocol": {"name": protocol.name, "description": protocol.description, "given": protocol.given,
                         "predicted": protocol.predicted, "videos": n, "samples": k,
                         "split": {"file": f"{protocol.split}.json", "seed": rec["seed"],
                                   "sha256_trajectories": rec["sha256_trajectories"], "options": rec["options"]},
                         "floor_split": f"{protocol.floor_split}.json", "deviations": deviations,
                         "ssim": "binarised frames, 11x11 Gaussian (1.5), valid region, mean over predicted frames",
                         "psnr": "10 log10(1 / MSE), MSE over all predicted frames in [0, 1]",
                         "fvd": "TF-Hub I3D, given + predicted frames, per sample index k, mean over k; pooled: "
                                "all N*K against the N real", "intervals": "95% percentile bootstrap over videos"},
            "results": table,
            "published": [p.__dict__ for p in protocol.published]}


def format_cell(entry: dict, key: str, digits: int = 3, missing: str = "-") -> str:
    """``entry[key]`` as text: ``mean [low, high]`` for a summary with an interval, else the number."""
    v = entry.get(key)
    if v is None:
        return missing
    if isinstance(v, dict):
        return f"{v['mean']:.{digits}f} [{v['ci95'][0]:.{digits}f}, {v['ci95'][1]:.{digits}f}]"
    return f"{v:.{digits}f}"


def format_protocol(results: dict) -> str:
    """A plain-text table of a :func:`run_protocol` result, the published rows under it."""
    p = results["protocol"]
    lines = [f"{p['name']}: {p['given']} -> {p['predicted']} frames, {p['videos']} videos x {p['samples']} samples"
             + (f"  (deviations: {'; '.join(p['deviations'])})" if p["deviations"] else ""),
             f"{'method':<24} {'SSIM best-of-K':<24} {'PSNR best-of-K':<26} {'FVD mean-of-K':>14}"]
    for e in results["results"]:
        lines.append(f"{e['method']:<24} {format_cell(e, 'ssim_best_of_k'):<24} "
                     f"{format_cell(e, 'psnr_best_of_k'):<26} {format_cell(e, 'fvd_mean_of_k', 2):>14}")
    for r in results["published"]:
        lines.append(f"{r['method'] + ' (published)':<24} {r['ssim']:<24.3f} {r['psnr']:<26.2f} {r['fvd']:>14.2f}")
    return "\n".join(lines)
