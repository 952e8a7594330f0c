"""Run a protocol of :mod:`.protocols_paper` (BAIR, Kinetics-600, UCF-101) on given real clips and a model's
``predict(given, method) -> (N, K, C, T, H, W)`` (the path of :mod:`.protocol_run`) or
``generate(num) -> (num, C, T, H, W)`` (unconditional UCF-101). Networks come in as arguments (``i3d``, ``c3d``) or
are loaded when FVD is asked for, so the runner knows no model and no file layout.

Prediction protocols report, per method and for the **last-frame copy** baseline (every predicted frame is the last
given one), the FVD of each sample index k against the real clips, their mean over k and the pooled FVD
(:func:`videodiff.evaluation.protocol_run._fvd_rows`, the SMMNIST protocols' code). UCF-101 reports the C3D IS at 1
and 10 splits, the C3D FID and the I3D FVD of the samples, and the C3D IS of the real clips.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from .protocols_paper import PaperProtocol

__all__ = ["run_paper_protocol", "format_paper_protocol"]


def _i3d_features(i3d, cache_dir, batch_size, progress) -> Callable:
    from ..metrics.fvd import cached_i3d_features
    from ..metrics.i3d import load_i3d
    from .video_sets import tensor_to_uint8

    model = i3d if i3d is not None else load_i3d()
    return lambda v: cached_i3d_features(tensor_to_uint8(v), model, cache_dir, batch_size=batch_size,
                                         progress=progress)


def _prediction_rows(protocol, real, predict, methods, samples, features, keep_predictions) -> list[dict]:
    from .protocol_run import _fvd_rows, baseline_predictions

    n = real.shape[0]
    given = real[:, :, : protocol.given]
    preds, table = {}, []
    for method in methods if predict is not None else ():
        t0 = time.perf_counter()
        pred = predict(given, method)  # (N, K, C, T, H, W)
        wall = round(time.perf_counter() - t0, 1)
        if pred.shape[:2] != (n, samples) or pred.shape[2:] != real.shape[1:]:
            raise ValueError(f"predict returned {tuple(pred.shape)}; expected ({n}, {samples}, "
                             f"{', '.join(map(str, real.shape[1:]))})")
        preds[method] = pred
        table.append({"method": method, "samples": samples, "predict_wall_s": wall,
                      "given_max_abs_change": float((pred[:, :, :, : protocol.given] - given[:, None]).abs().max())})
        if keep_predictions is not None:
            keep_predictions[method] = pred
    copy = baseline_predictions(given, protocol.predicted)["last-frame copy"]  # (N, 1, C, T, H, W)
    preds["last-frame copy"] = copy
    table.append({"method": "last-frame copy", "samples": 1})
    if features is not None:
        real_feats = features(real)
        for row in table:
            pred = preds[row["method"]]
            row.update(_fvd_rows(pred, real_feats, features))
            row["fvd_sets"] = {"real_clips": n, "samples_per_set": int(pred.shape[0]), "sets": int(pred.shape[1])}
    return table


def _generation_rows(protocol, real, generate, samples, c3d, features, batch_size, progress) -> list[dict]:
    from ..metrics.fid import clip_activations, fid_from_features
    from ..metrics.fvd import fvd_from_features
    from ..metrics.inception_score import inception_score
    from .video_sets import tensor_to_uint8

    t0 = time.perf_counter()
    fake = generate(samples)  # (S, C, T, H, W)
    wall = round(time.perf_counter() - t0, 1)
    if fake.shape != (samples, *real.shape[1:]):
        raise ValueError(f"generate returned {tuple(fake.shape)}; expected ({samples}, "
                         f"{', '.join(map(str, real.shape[1:]))})")
    row = {"method": "model", "samples": samples, "generate_wall_s": wall}
    real_row = {"method": "real data", "samples": int(real.shape[0])}
    if c3d is not None:
        act = {name: clip_activations(tensor_to_uint8(v), c3d, batch_size, progress)
               for name, v in (("real", real), ("fake", fake))}
        for r, key in ((row, "fake"), (real_row, "real")):
            logits = act[key]["logits"]
            for s in sorted({1, min(10, len(logits))}):
                mean, std = inception_score(logits, s)
                r[f"is_{s}_splits"] = {"mean": round(mean, 4), "std": round(std, 4)}
            r["is_clips"] = len(logits)
        row["fid_c3d"] = round(fid_from_features(act["real"]["pool"], act["fake"]["pool"]), 3)
        row["fid_sets"] = {"real_clips": int(real.shape[0]), "samples": samples}
    if features is not None:
        row["fvd"] = round(fvd_from_features(features(real), features(fake)), 3)
        row["fvd_sets"] = {"real_clips": int(real.shape[0]), "samples": samples}
    return [row, real_row]


def run_paper_protocol(
    protocol: PaperProtocol,
    real: torch.Tensor,
    real_record: dict,
    *,
    predict: Callable[[torch.Tensor, str], torch.Tensor] | None = None,
    generate: Callable[[int], torch.Tensor] | None = None,
    methods: tuple[str, ...] = ("gradient",),
    samples: int | None = None,
    fvd: bool = True,
    i3d=None,
    c3d=None,
    cache_dir: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
    keep_predictions: dict | None = None,
) -> dict:
    """Score ``protocol`` on ``real`` clips ``(N, C, T, H, W)`` (``real_record``: how they were chosen, from
    :func:`.protocols_paper.load_protocol_clips`). Fewer clips or samples than the protocol's, a missing C3D or FVD
    turned off are recorded as deviations."""
    n = real.shape[0]
    k = protocol.samples if samples is None else samples
    if real.shape[1:] != (protocol.channels, protocol.frames, protocol.image_size, protocol.image_size):
        raise ValueError(f"real clips {tuple(real.shape)}; protocol {protocol.name} needs (N, {protocol.channels}, "
                         f"{protocol.frames}, {protocol.image_size}, {protocol.image_size})")
    features = _i3d_features(i3d, cache_dir, batch_size, progress) if fvd else None
    if protocol.conditional:
        table = _prediction_rows(protocol, real, predict, methods, k, features, keep_predictions)
    else:
        if generate is None:
            raise ValueError(f"protocol {protocol.name} is unconditional: it needs generate(num)")
        table = _generation_rows(protocol, real, generate, k, c3d, features, batch_size, progress)
    deviations = []
    if n != protocol.videos:
        deviations.append(f"{n} real clips instead of {protocol.videos}")
    if k != protocol.samples:
        what = "samples per clip" if protocol.conditional else "samples"
        deviations.append(f"{k} {what} instead of {protocol.samples}")
    if not fvd:
        deviations.append("FVD not computed")
    if not protocol.conditional and c3d is None:
        deviations.append("no C3D: IS and FID not computed")
    rec = {"name": protocol.name, "description": protocol.description, "dataset": protocol.dataset,
           "split": protocol.split, "clips": n, "conditioning_frames": protocol.given,
           "predicted_frames": protocol.predicted, "frames": protocol.frames,
           "resolution": [protocol.image_size, protocol.image_size],
           "samples_per_clip": k if protocol.conditional else None,
           "samples": k * (n if protocol.conditional else 1), "given": protocol.given,
           "predicted": protocol.predicted, "videos": n, "selection": protocol.selection,
           "metrics": dict(protocol.metrics), "choices": list(protocol.choices), "deviations": deviations,
           "data": real_record}
    if protocol.conditional:
        rec["methods"] = list(methods if predict is not None else ())
    if c3d is not None:
        rec["c3d"] = {"weights_file": getattr(c3d, "weights_path", None),
                      "weights_sha256": getattr(c3d, "weights_sha256", None),
                      "note": "the IS and FID are comparable with the literature only with tgan2's C3D weights"}
    return {"protocol": rec, "results": table,
            "published": [{"method": p.method, **p.metrics, "source": p.source, **({"note": p.note} if p.note else {})}
                          for p in protocol.published]}


def _cell(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return f"{v['mean']:.{digits}f} +- {v['std']:.{digits}f}"
    return f"{v:.{digits}f}"


def format_paper_protocol(results: dict) -> str:
    """A plain-text table of a :func:`run_paper_protocol` result, the published rows under it."""
    p = results["protocol"]
    dev = f"  (deviations: {'; '.join(p['deviations'])})" if p["deviations"] else ""
    if p["conditioning_frames"]:
        lines = [f"{p['name']}: {p['given']} -> {p['predicted']} frames, {p['clips']} clips x {p['samples_per_clip']} "
                 f"samples{dev}", f"{'method':<36} {'FVD mean-of-K':>14} {'FVD pooled':>11}"]
        lines += [f"{e['method']:<36} {_cell(e.get('fvd_mean_of_k')):>14} {_cell(e.get('fvd_pooled')):>11}"
                  for e in results["results"]]
        lines += [f"{r['method'] + ' (published)':<36} {_cell(r.get('fvd')):>14}" for r in results["published"]]
        return "\n".join(lines)
    lines = [f"{p['name']}: unconditional {p['frames']}x{p['resolution'][0]}x{p['resolution'][1]}, {p['samples']} "
             f"samples, {p['clips']} real clips{dev}",
             f"{'method':<36} {'IS (<=10 splits)':>18} {'IS (1 split)':>14} {'FID (C3D)':>10} {'FVD':>9}"]
    for e in results["results"]:
        ten = next((v for key, v in e.items() if key.startswith("is_") and key.endswith("_splits")
                    and key != "is_1_splits"), None)
        lines.append(f"{e['method']:<36} {_cell(ten):>18} {_cell(e.get('is_1_splits')):>14} "
                     f"{_cell(e.get('fid_c3d'), 1):>10} {_cell(e.get('fvd'), 1):>9}")
    for r in results["published"]:
        is_ = f"{r['is']:.2f} +- {r['is_std']:.2f}" if "is" in r else "-"
        lines.append(f"{r['method'] + ' (published)':<36} {is_:>18} {'':>14} {_cell(r.get('fid'), 1):>10}")
    return "\n".join(lines)

