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

from ..metrics.registry import MetricRun, check_metric_names, paired_names
from .clip_source import RESIZE_METHOD, ArrayClips, ClipSpec, FolderClips

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
                        progress=progress, bad_files=spec.bad_files)
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


def compute_metrics_streamed(real, fake, metrics=("fvd", "cfvd"), *, inception=None, classifier=None,
                             fvd_repeat_frames: bool = False, batch_size: int = 16, cache_dir=None,
                             device: str = "auto", progress: bool = False) -> dict:
    """:func:`.evaluate.compute_metrics` between two clip sources (:func:`open_clips`), chunk by chunk: the same
    registry entries (:mod:`videodiff.metrics.registry`), fed chunks instead of whole sets."""
    from ..pipeline import pick_device

    metrics = check_metric_names(metrics)
    paired = paired_names(metrics)
    if paired:
        raise ValueError(f"{', '.join(paired)} pair whole sets; they are computed with --no-stream")
    run = MetricRun(metrics, inception=inception, classifier=classifier, fvd_repeat_frames=fvd_repeat_frames,
                    batch_size=batch_size, cache_dir=cache_dir, device=pick_device(device), progress=progress,
                    unit="clip")
    run.check({"real": len(real), "fake": len(fake)})  # before anything is decoded
    gens: list = []
    try:
        real_chunks, shape_r = _peek(real, gens)
        fake_chunks, shape_f = _peek(fake, gens)
        run.load({"real": shape_r, "fake": shape_f})
        fr = run.features("real", real_chunks)
        ff = run.features("fake", fake_chunks)
    finally:
        for g in gens:
            g.close()  # closes the progress bars before an error message is printed
    return run.results(fr, ff)


def evaluate_paths_streamed(real, fake, metrics=("fvd", "cfvd"), *, spec: ClipSpec, grid_rows=None, grid_cols=None,
                            progress: bool = False, **kw) -> dict:
    """:func:`.evaluate.evaluate_paths`, streamed: the sets' descriptions, ``"protocol"`` (how the clips
    were cut) and ``"metrics"``."""
    from .video_sets import results_header

    metrics = check_metric_names(metrics)
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
                "short_videos": spec.short_videos, "bad_files": spec.bad_files, "chunk": spec.chunk, "clip_spec": asdict(spec),
                "clips": {"real": dr["num"], "fake": df["num"]}}
    for label, d in (("real", dr), ("fake", df)):
        protocol[label] = {k: d[k] for k in ("files_seen", "files_used", "files_skipped", "files_unreadable",
                                             "files_unreadable_count", "clips_candidates") if k in d}
    return {**results_header(dr, df), "protocol": protocol, "metrics": res}
