"""Evaluation that streams (issue 17): the metrics of :mod:`.evaluate` between two clip sources
(:mod:`.clip_source`), with features computed chunk by chunk so that only features are kept.

The numbers equal those of :func:`.evaluate.compute_metrics` on the same clips held whole (each network sees the
same clips; only the batching differs, within float32 rounding). Paired metrics (psnr, ssim) need both
sets whole and are not streamed. The results carry a ``protocol`` with the clip spec (frames, frameskip, resize
and crop, sampling, seed, clip counts, files seen and skipped), and FVD carries the I3D reference check.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .clip_source import RESIZE_METHOD, ArrayClips, ClipSpec, FolderClips
from ..metrics.paired import PAIRED_METRICS

__all__ = ["open_clips", "compute_metrics_streamed", "evaluate_paths_streamed"]


def open_clips(path, spec: ClipSpec, *, what: str = "path", grid_rows=None, grid_cols=None, progress: bool = False):
    """A folder of video files -> :class:`FolderClips` (decoded clip by clip); anything else (tensor, grid video,
    run directory, folder of tensors) is loaded whole by :func:`videodiff.evaluation.video_sets.load_video_set` ->
    :class:`ArrayClips`."""
    from .video_sets import ARRAY_FILES, VIDEO_FILES, _run_samples, load_video_set

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path}: no such file or directory")
    if path.is_dir() and _run_samples(path) is None:
        entries = [p for p in path.iterdir() if p.is_file()]
        if not any(p.suffix.lower() in ARRAY_FILES for p in entries):
            videos = sorted(p for p in entries if p.suffix.lower() in VIDEO_FILES)
            if videos:
                return FolderClips(path, spec, files=videos, what=what, grid_rows=grid_rows, grid_cols=grid_cols,
                                   progress=progress)
    vs = load_video_set(path, frames=spec.frames, num=spec.num, grid_rows=grid_rows, grid_cols=grid_cols, what=what,
                        progress=progress)
    return ArrayClips(vs, spec, what=what, progress=progress)


def _peek(src, gens: list):
    """(chunks iterator, (F, H, W)): the first chunk is decoded now so that shapes are known before networks load.
    The generator is appended to ``gens`` so that the caller closes it (and its progress bar) on errors."""
    it = src.chunks()
    gens.append(it)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{src.what}: no clips")
    return itertools.chain([first], it), first.shape[1:4]


def _stub(n: int, shape) -> torch.Tensor:
    """A zero-stride uint8 tensor of shape (n, F, H, W, 3): what the protocol-record helpers read (shape, len)."""
    return torch.zeros((), dtype=torch.uint8).expand(n, *shape, 3)


def _need_inception(metrics) -> str:
    return (f"{' and '.join(m for m in metrics if m in ('fid', 'is'))} need InceptionV3 weights: pass --inception "
            f"PATH (pytorch-fid's pt_inception-2015-12-05 .pth; no package ships them)")


def _extractors(metrics, shapes, *, inception, classifier, fvd_repeat_frames, batch_size, cache_dir, device):
    """{family: (model, fn(chunk) -> {name: features})} for the metric families asked for."""
    from ..metrics.i3d import repeat_factor

    out = {}
    t = min(s[0] for s in shapes)
    if "fvd" in metrics:
        k = repeat_factor(t, fvd_repeat_frames, "clips")
        from ..metrics import i3d
        from ..metrics.fvd import cached_i3d_features

        model = i3d.load_i3d().to(device)

        def fvd_fn(c, k=k, model=model):
            c = np.repeat(c, k, axis=1) if k > 1 else c
            return {"i3d": cached_i3d_features(c, model, None if cache_dir is None else str(cache_dir),
                                               batch_size=batch_size, progress=False)}
        out["fvd"] = (model, fvd_fn, k)
    if "cfvd" in metrics or "cis" in metrics:
        from ..metrics.classifier import classifier_outputs, default_classifier_name, load_classifier

        name = classifier or default_classifier_name(shapes[1][0], shapes[1][1])
        model = load_classifier(name, device=device)
        for label, s in zip(("real", "fake"), shapes):
            if s[0] < model.cfg.num_frames:
                raise ValueError(f"classifier {model.name} needs {model.cfg.num_frames} frames, the {label} clips "
                                 f"have {s[0]}; pass --classifier with a shorter one")

        def clf_fn(c, model=model):
            o = classifier_outputs(c, model, max(batch_size, 32))
            return {"clf_features": o["features"], "clf_logits": o["digit_logits"]}
        out["classifier"] = (model, clf_fn, None)
    if "fid" in metrics or "is" in metrics:
        from ..metrics.fid import activations
        from ..metrics.inception import load_inception

        if inception is None:
            raise ValueError(_need_inception(metrics))
        if not Path(inception).is_file():
            raise FileNotFoundError(f"--inception {inception}: no such file")
        model = load_inception(str(inception)).to(device).eval()

        def inc_fn(c, model=model):
            res = {}
            for frames in ("avg", "first"):
                a = activations(c, model, frames, batch_size)
                res[f"pool_{frames}"], res[f"logits_{frames}"] = a["pool"], a["logits"]
            return res
        out["inception"] = (model, inc_fn, None)
    return out


def _features(chunks, extractors) -> dict:
    feats: dict[str, list] = {}
    for chunk in chunks:
        for _, fn, _ in extractors.values():
            for name, f in fn(chunk).items():
                feats.setdefault(name, []).append(np.asarray(f))
        del chunk
    return {k: np.concatenate(v) for k, v in feats.items()}


def compute_metrics_streamed(real, fake, metrics=("fvd", "cfvd"), *, inception=None, classifier=None,
                             fvd_repeat_frames: bool = False, batch_size: int = 16, cache_dir=None,
                             device: str = "auto", progress: bool = False) -> dict:
    """:func:`.evaluate.compute_metrics` between two clip sources (:func:`open_clips`), chunk by chunk."""
    from .evaluate import _check_metrics, _is_dict
    from ..metrics.frechet import frechet_distance_from_features
    from ..pipeline import pick_device

    metrics = _check_metrics(metrics)
    paired = [m for m in metrics if m in PAIRED_METRICS]
    if paired:
        raise ValueError(f"{', '.join(paired)} pair whole sets; they are computed with --no-stream")
    dev = pick_device(device)
    for label, src in (("real", real), ("fake", fake)):
        if len(src) < 2:
            raise ValueError(f"{label} set has {len(src)} clip(s); Fréchet distances need at least 2 per set")
    if ("fid" in metrics or "is" in metrics) and inception is None:
        raise ValueError(_need_inception(metrics))  # before anything is decoded
    gens: list = []
    try:
        real_chunks, shape_r = _peek(real, gens)
        fake_chunks, shape_f = _peek(fake, gens)
        ex = _extractors(metrics, (shape_r, shape_f), inception=inception, classifier=classifier,
                         fvd_repeat_frames=fvd_repeat_frames, batch_size=batch_size, cache_dir=cache_dir, device=dev)
        fr = _features(real_chunks, ex)
        ff = _features(fake_chunks, ex)
    finally:
        for g in gens:
            g.close()  # closes the progress bars before an error message is printed
    r, f = _stub(real.count, shape_r), _stub(fake.count, shape_f)
    results: dict = {}
    if "classifier" in ex:
        from ..metrics.classifier import protocol_record

        model = ex["classifier"][0]
        if "cfvd" in metrics:
            results["cfvd"] = {"value": frechet_distance_from_features(fr["clf_features"], ff["clf_features"]),
                               "protocol": protocol_record("cFVD", model, real=r, fake=f)}
        if "cis" in metrics:
            results["cis"] = {"fake": _is_dict(ff["clf_logits"]), "real": _is_dict(fr["clf_logits"]),
                              "protocol": {**protocol_record("cIS", model, real=r, fake=f),
                                           "splits_requested": [1, 10], "max_value": 10 / model.cfg.num_digits}}
    if "inception" in ex:
        from ..metrics.fid import protocol_record

        model = ex["inception"][0]
        for frames in ("avg", "first"):
            if "fid" in metrics:
                results[f"fid_{frames}"] = {
                    "value": frechet_distance_from_features(fr[f"pool_{frames}"], ff[f"pool_{frames}"]),
                    "protocol": protocol_record(f"FID-{frames}", r, f, model, frames)}
            if "is" in metrics:
                results[f"is_{frames}"] = {
                    "fake": _is_dict(ff[f"logits_{frames}"]), "real": _is_dict(fr[f"logits_{frames}"]),
                    "protocol": {**protocol_record(f"IS-{frames}", f, None, model, frames), "reduce": "logits",
                                 "splits_requested": [1, 10]}}
    if "fvd" in ex:
        from ..metrics.fvd import protocol_record, reference_check
        from ..metrics.i3d import MIN_FRAMES

        model, _, k = ex["fvd"]
        rk, fk = _stub(real.count, (shape_r[0] * k, *shape_r[1:])), _stub(fake.count, (shape_f[0] * k, *shape_f[1:]))
        protocol = {**protocol_record(rk, fk, model, "tf1"), "frames_repeated": k,
                    "i3d_reference": reference_check(model, batch_size)}
        if k > 1:
            protocol["note"] = (f"every frame repeated {k} times to reach I3D's {MIN_FRAMES}: not comparable with "
                                f"published FVD")
        results["fvd"] = {"value": frechet_distance_from_features(fr["i3d"], ff["i3d"]), "protocol": protocol}
    return results


def evaluate_paths_streamed(real, fake, metrics=("fvd", "cfvd"), *, spec: ClipSpec, grid_rows=None, grid_cols=None,
                            progress: bool = False, **kw) -> dict:
    """:func:`.evaluate.evaluate_paths`, streamed: the sets' descriptions, ``"protocol"`` (how the clips
    were cut) and ``"metrics"``."""
    from .evaluate import _check_metrics, _header_from

    metrics = _check_metrics(metrics)
    opts = dict(grid_rows=grid_rows, grid_cols=grid_cols, progress=progress)
    r = open_clips(real, spec, what="--real", **opts)
    f = open_clips(fake, spec, what="--fake", **opts)
    res = compute_metrics_streamed(r, f, metrics, progress=progress, **kw)
    dr, df = r.describe(), f.describe()
    protocol = {"streamed": True, "frames": spec.frames, "frameskip": spec.frameskip,
                "resize": None if spec.resize is None else {"size": spec.resize, "crop": "center",
                                                            "method": RESIZE_METHOD},
                "sampling": spec.sampling, "clips_per_video": spec.clips_per_video,
                "seed": spec.seed if spec.sampling == "random" else None, "num_clips_requested": spec.num,
                "short_videos": spec.short_videos, "chunk": spec.chunk, "clip_spec": asdict(spec),
                "clips": {"real": dr["num"], "fake": df["num"]}}
    for label, d in (("real", dr), ("fake", df)):
        protocol[label] = {k: d[k] for k in ("files_seen", "files_used", "files_skipped", "clips_candidates")
                           if k in d}
    return {**_header_from(dr, df), "protocol": protocol, "metrics": res}
