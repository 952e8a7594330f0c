"""Run a protocol of :mod:`.protocols_paper` (BAIR, Kinetics-600, UCF-101) on real clips and a model's
``predict(given, method, start) -> (b, K, C, T, H, W)`` (``VideoPipeline.predict``, the path of :mod:`.protocol_run`)
or ``generate(num, start) -> (num, C, T, H, W)`` (unconditional UCF-101). Networks come in as arguments (``i3d``,
``c3d``) or are loaded when FVD is asked for, so the runner knows no model and no file layout.

The full protocols are large (BAIR: 25,600 continuations; Kinetics-600: 50,000 real clips, 39 GB as float32), so
clips are read, predicted, embedded and dropped chunk by chunk (:data:`CHUNK_CONTINUATIONS` continuations at a
time); only I3D/C3D features are kept. Prediction protocols report, per method and for the **last-frame copy**
baseline (every predicted frame is the last given one), the FVD of each sample index k against the real clips, their
mean over k and the pooled FVD (:func:`videodiff.evaluation.protocol_run.fvd_rows_from_features`, as the SMMNIST protocols).
UCF-101 reports the C3D IS at 1 and 10 splits, the C3D FID and the I3D FVD of the samples, and the real clips' IS.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from .protocol_run import fvd_rows_from_features
from .protocols_paper import PaperProtocol

__all__ = ["run_paper_protocol", "format_paper_protocol", "fvd_rows_from_features", "chunk_seed",
           "CHUNK_CONTINUATIONS"]


CHUNK_CONTINUATIONS = 256  # continuations (clips x samples) predicted, embedded and dropped at a time


def chunk_seed(seed: int, start: int) -> int:
    """The ``seed`` given to ``VideoPipeline.predict``/``generate`` for the chunk of clips from ``start``: continuation
    ``k`` of clip ``n`` draws from ``sample_seed(chunk_seed(seed, start), (n - start) * K + k)``, unique per
    ``(seed, n, k)``; the chunk size is the protocol's (:data:`CHUNK_CONTINUATIONS`), not a flag."""
    return seed * 1_000_003 + start


def _i3d_features(i3d, cache_dir, batch_size, progress) -> Callable:
    from ..metrics.fvd import cached_i3d_features
    from ..metrics.i3d import load_i3d
    from .video_sets import tensor_to_uint8

    model = i3d if i3d is not None else load_i3d()
    return lambda v: cached_i3d_features(tensor_to_uint8(v), model, cache_dir, batch_size=batch_size,
                                         progress=progress)


class _TensorClips:
    """Clips already in memory, served like :class:`.protocols_paper.ProtocolClips`."""

    def __init__(self, videos: torch.Tensor, record: dict | None):
        self.videos, self._record = videos, dict(record or {})

    def __len__(self) -> int:
        return len(self.videos)

    def chunks(self, size: int):
        for start in range(0, len(self), size):
            yield start, self.videos[start : start + size]

    def record(self) -> dict:
        return self._record


def _prediction_rows(protocol, clips, predict, methods, samples, features, keep_predictions, chunk) -> list[dict]:
    from .protocol_run import baseline_predictions

    methods = tuple(methods if predict is not None else ())
    names = methods + ("last-frame copy",)
    feats = {m: [[] for _ in range(samples if m in methods else 1)] for m in names}
    real_feats, wall, drift, shape = [], dict.fromkeys(methods, 0.0), dict.fromkeys(methods, 0.0), None
    kept = {m: [] for m in methods}
    for start, real in clips.chunks(chunk):
        shape = real.shape[1:]
        given = real[:, :, : protocol.given]
        preds = {}
        for method in methods:
            t0 = time.perf_counter()
            pred = predict(given, method, start)  # (b, K, C, T, H, W)
            wall[method] += time.perf_counter() - t0
            if pred.shape[:2] != (len(real), samples) or pred.shape[2:] != shape:
                raise ValueError(f"predict returned {tuple(pred.shape)}; expected ({len(real)}, {samples}, "
                                 f"{', '.join(map(str, shape))})")
            drift[method] = max(drift[method], float((pred[:, :, :, : protocol.given] - given[:, None]).abs().max()))
            preds[method] = pred
            if keep_predictions is not None:
                kept[method].append(pred)
        preds["last-frame copy"] = baseline_predictions(given, protocol.predicted)["last-frame copy"]
        if features is not None:
            real_feats.append(features(real))
            for name, pred in preds.items():
                for k in range(pred.shape[1]):
                    feats[name][k].append(features(pred[:, k]))
    if keep_predictions is not None:
        keep_predictions.update({m: torch.cat(v) for m, v in kept.items() if v})
    n = len(clips)
    table = [{"method": m, "samples": samples, "predict_wall_s": round(wall[m], 1), "given_max_abs_change": drift[m]}
             for m in methods] + [{"method": "last-frame copy", "samples": 1}]
    if features is not None:
        real_all = np.concatenate(real_feats)
        for row in table:
            per_k = [np.concatenate(f) for f in feats[row["method"]]]
            row.update(fvd_rows_from_features(real_all, per_k))
            row["fvd_sets"] = {"real_clips": n, "samples_per_set": int(len(per_k[0])), "sets": len(per_k)}
    return table


def _generation_rows(protocol, clips, generate, samples, c3d, features, batch_size, progress, chunk) -> list[dict]:
    from ..metrics.fid import clip_activations, fid_from_features
    from ..metrics.fvd import fvd_from_features
    from ..metrics.inception_score import inception_score
    from .video_sets import tensor_to_uint8

    acts = {"real": [], "fake": []}  # C3D (fc7, fc8 logits) per chunk
    i3d = {"real": [], "fake": []}

    def embed(key, videos):
        if c3d is not None:
            a = clip_activations(tensor_to_uint8(videos), c3d, batch_size, progress)
            acts[key].append((a["pool"], a["logits"]))
        if features is not None:
            i3d[key].append(features(videos))

    shape = None
    for _, real in clips.chunks(chunk):
        shape = real.shape[1:]
        embed("real", real)
    wall = 0.0
    for start in range(0, samples, chunk):
        num = min(chunk, samples - start)
        t0 = time.perf_counter()
        fake = generate(num, start)  # (num, C, T, H, W)
        wall += time.perf_counter() - t0
        if fake.shape != (num, *shape):
            raise ValueError(f"generate returned {tuple(fake.shape)}; expected ({num}, {', '.join(map(str, shape))})")
        embed("fake", fake)
    n = len(clips)
    row = {"method": "model", "samples": samples, "generate_wall_s": round(wall, 1)}
    real_row = {"method": "real data", "samples": n}
    if c3d is not None:
        pool = {k: np.concatenate([p for p, _ in v]) for k, v in acts.items()}
        for r, key in ((row, "fake"), (real_row, "real")):
            logits = np.concatenate([lg for _, lg in acts[key]])
            for s in sorted({1, min(10, len(logits))}):
                mean, std = inception_score(logits, s)
                r[f"is_{s}_splits"] = {"mean": round(mean, 4), "std": round(std, 4)}
            r["is_clips"] = len(logits)
        row["fid_c3d"] = round(fid_from_features(pool["real"], pool["fake"]), 3)
        row["fid_sets"] = {"real_clips": n, "samples": samples}
    if features is not None:
        row["fvd"] = round(fvd_from_features(np.concatenate(i3d["real"]), np.concatenate(i3d["fake"])), 3)
        row["fvd_sets"] = {"real_clips": n, "samples": samples}
    return [row, real_row]


def run_paper_protocol(
    protocol: PaperProtocol,
    clips,
    real_record: dict | None = None,
    *,
    predict: Callable[[torch.Tensor, str, int], torch.Tensor] | None = None,
    generate: Callable[[int, int], torch.Tensor] | None = None,
    methods: tuple[str, ...] = ("gradient",),
    samples: int | None = None,
    fvd: bool = True,
    i3d=None,
    c3d=None,
    cache_dir: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
    keep_predictions: dict | None = None,
    chunk: int | None = None,
) -> dict:
    """Score ``protocol`` on ``clips`` (a :class:`.protocols_paper.ProtocolClips`, or real clips ``(N, C, T, H, W)``
    with their ``real_record``), chunk by chunk: ``predict(given, method, start) -> (b, K, C, T, H, W)`` for the
    ``b`` clips from index ``start``, or ``generate(num, start) -> (num, C, T, H, W)``; only features are kept.
    Fewer clips or samples than the protocol's, no C3D, or FVD turned off are recorded as deviations."""
    if isinstance(clips, torch.Tensor):
        if clips.shape[1:] != (protocol.channels, protocol.frames, protocol.image_size, protocol.image_size):
            raise ValueError(f"real clips {tuple(clips.shape)}; protocol {protocol.name} needs (N, "
                             f"{protocol.channels}, {protocol.frames}, {protocol.image_size}, {protocol.image_size})")
        clips = _TensorClips(clips, real_record)
    n = len(clips)
    k = protocol.samples if samples is None else samples
    chunk = chunk or max(1, CHUNK_CONTINUATIONS // (k if protocol.conditional else 1))
    features = _i3d_features(i3d, cache_dir, batch_size, progress) if fvd else None
    if protocol.conditional:
        table = _prediction_rows(protocol, clips, predict, methods, k, features, keep_predictions, chunk)
    else:
        if generate is None:
            raise ValueError(f"protocol {protocol.name} is unconditional: it needs generate(num, start)")
        table = _generation_rows(protocol, clips, generate, k, c3d, features, batch_size, progress, chunk)
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
           "data": clips.record(), "chunk_clips": chunk,
           "seeds": "continuation k of clip n (or generated video n) draws from sample_seed(seed * 1000003 + start, "
                    "(n - start) * K + k), start the first clip of its chunk of chunk_clips"}
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

