"""Evaluation of generated videos against real ones (paper Sec. 4): FVD, FID/IS (avg and first), classifier-FVD and
classifier-IS with their protocol records, between video sets loaded by :mod:`videodiff.evaluation.video_sets`.

:func:`compute_metrics` measures any registered metric (:mod:`videodiff.metrics.registry`; the built-in ones,
``METRICS``, are entries of :mod:`videodiff.metrics.builtin`) between two such sets:

* ``fvd``: I3D (TF-Hub weights, :mod:`videodiff.metrics.fvd`); it needs >= 9 frames. ``fvd_repeat_frames``
  repeats every frame ``ceil(9 / F)`` times for shorter videos (recorded, not comparable with published FVD);
* ``fid`` / ``is``: InceptionV3 from a user-supplied weights file, on all frames (avg) and the first frame
  (first), as in Tables 2-3; IS is reported for the fake set and, as a reference, the real set;
* ``cfvd`` / ``cis``: the project's Moving MNIST classifier (:mod:`videodiff.metrics.classifier`);
* ``psnr`` / ``ssim``: frame-pair metrics (:mod:`videodiff.metrics.paired`) between the i-th fake and the i-th
  real video, for tasks with ground truth (super-resolution, interpolation): mean, t-interval, per-frame means.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..metrics.paired import check_pairs
from ..metrics.registry import MetricRun, check_metric_names, metric_names, paired_names
from .video_sets import (VideoSet, dataset_videos, find_grid, load_video_set, parse_grid, results_header,
                         tensor_to_uint8)

__all__ = ["METRICS", "VideoSet", "load_video_set", "parse_grid", "find_grid", "tensor_to_uint8", "dataset_videos",
           "compute_metrics", "evaluate_paths", "evaluate_checkpoint", "format_results", "write_results"]

METRICS = metric_names()  # the built-in names; --metrics accepts every registered one (metrics.registry)


def compute_metrics(real: np.ndarray, fake: np.ndarray, metrics=("fvd", "cfvd"), *, inception=None,
                    classifier=None, fvd_repeat_frames: bool = False, batch_size: int = 16, cache_dir=None,
                    device: str = "auto", progress: bool = False) -> dict:
    """{name: {"value" | "fake"/"real": ..., "protocol": {...}}} for uint8 ``(N, F, H, W, 3)`` sets.

    Names: ``fvd``, ``fid_avg``/``fid_first``, ``is_avg``/``is_first`` (IS@1, IS@10 as (mean, std) of the
    fake and the real set), ``cfvd``, ``cis``, ``psnr``, ``ssim`` (:func:`videodiff.metrics.paired.paired_metrics`:
    the sets pair by order), and those of any metric registered since (:mod:`videodiff.metrics.registry`).
    Options are checked before any network runs.
    """
    from ..pipeline import pick_device

    metrics = check_metric_names(metrics)
    run = MetricRun(metrics, inception=inception, classifier=classifier, fvd_repeat_frames=fvd_repeat_frames,
                    batch_size=batch_size, cache_dir=cache_dir, device=pick_device(device), progress=progress)
    for label, v in (("real", real), ("fake", fake)):
        if v.ndim != 5 or v.shape[-1] != 3 or v.dtype != np.uint8:
            raise ValueError(f"{label} videos must be uint8 (N, F, H, W, 3), got {v.dtype} {v.shape}")
    run.check({"real": len(real), "fake": len(fake)})
    run.load({"real": real.shape[1:4], "fake": fake.shape[1:4]})
    return run.results(run.features("real", [real], progress), run.features("fake", [fake], progress))


def _header(real: VideoSet, fake: VideoSet) -> dict:
    return results_header(real.describe(), fake.describe())


def evaluate_paths(real, fake, metrics=("fvd", "cfvd"), *, frames=None, num=None, grid_rows=None, grid_cols=None,
                   progress: bool = False, clip_spec=None, bad_files: str = "skip", **kw) -> dict:
    """Load two sets (:func:`load_video_set`) and :func:`compute_metrics`; returns the sets' descriptions and
    ``"metrics"``. With ``clip_spec`` (a :class:`.clip_source.ClipSpec`; its ``frames`` and ``num`` win) the sets
    are streamed instead (:func:`.stream.evaluate_paths_streamed`): folders of videos are decoded clip by clip and
    only features are kept."""
    metrics = check_metric_names(metrics)
    if clip_spec is not None:
        from .stream import evaluate_paths_streamed

        return evaluate_paths_streamed(real, fake, metrics, spec=clip_spec, grid_rows=grid_rows,
                                       grid_cols=grid_cols, progress=progress, **kw)
    opts = dict(frames=frames, num=num, grid_rows=grid_rows, grid_cols=grid_cols, progress=progress,
                bad_files=bad_files)  # unreadable files of a folder: skipped and recorded, or fatal
    r = load_video_set(real, what="--real", **opts)
    f = load_video_set(fake, what="--fake", **opts)
    if paired_names(metrics):
        check_pairs(r.videos, f.videos, f"--real {r.source}", f"--fake {f.source}")
    return {**_header(r, f), "metrics": compute_metrics(r.videos, f.videos, metrics, progress=progress, **kw)}


def evaluate_checkpoint(checkpoint, metrics=("fvd", "cfvd"), *, real=None, num: int = 256, steps=None,
                        sampler=None, seed: int = 0, frames=None, save_samples=None, grid_rows=None,
                        grid_cols=None, batch_size: int = 16, device: str = "auto", progress: bool = False,
                        precision: str | None = None, compile: bool | None = None, bad_files: str = "skip",
                        **kw) -> dict:
    """Sample ``num`` videos from a checkpoint and evaluate them against ``real`` (a path) or, by default,
    the first ``num`` clips of the held-out (test) split of the checkpoint's data config. ``precision`` and
    ``compile``: as :func:`videodiff.pipeline.load_model` (recorded with the samples)."""
    from ..pipeline import load_model, sample_videos

    metrics = check_metric_names(metrics)
    if paired_names(metrics):
        raise ValueError(f"paired metrics ({', '.join(paired_names(metrics))}) compare each fake "
                         f"video with its own real one; --checkpoint samples unconditionally, so nothing pairs: score "
                         f"the output of a task with ground truth with --real TRUTH --fake PRED")
    loaded = load_model(checkpoint, device=device, precision=precision, compile=compile)
    cfg = loaded.config
    if real is not None:
        r = load_video_set(real, frames=frames, num=num, grid_rows=grid_rows, grid_cols=grid_cols, what="--real",
                           progress=progress, bad_files=bad_files)
    else:
        r = dataset_videos(cfg.data, "test", num, progress)
        if frames is not None:
            if r.videos.shape[1] < frames:
                raise ValueError(f"the data has {r.videos.shape[1]} frames per clip, fewer than --frames {frames}")
            r.videos = r.videos[:, :frames]
    samples = sample_videos(loaded.denoiser, cfg, num, steps=steps, sampler=sampler, seed=seed,
                            batch_size=batch_size, progress=progress)
    if save_samples is not None:
        Path(save_samples).parent.mkdir(parents=True, exist_ok=True)
        torch.save(samples, save_samples)
    fv = tensor_to_uint8(samples)
    fv = fv[:, :frames] if frames is not None else fv
    f = VideoSet(fv, f"samples of {loaded.path}", {
        "kind": "checkpoint samples", "checkpoint": str(loaded.path), "step": loaded.step, "seed": seed,
        "sampler": sampler or cfg.sample.sampler, "steps": cfg.sample.steps if steps is None else steps, "precision": loaded.precision,
        "saved_to": None if save_samples is None else str(save_samples)})
    res = compute_metrics(r.videos, f.videos, metrics, batch_size=batch_size, device=device, progress=progress, **kw)
    return {**_header(r, f), "metrics": res}


# ---------------------------------------------------------------------------------------------------- output


def format_results(results: dict) -> str:
    """A short human-readable table of ``results["metrics"]``."""
    lines = [f"real: {results['real']['num']} x {results['real']['frames']}x{results['real']['resolution'][0]}"
             f"x{results['real']['resolution'][1]} from {results['real']['source']}",
             f"fake: {results['fake']['num']} x {results['fake']['frames']}x{results['fake']['resolution'][0]}"
             f"x{results['fake']['resolution'][1]} from {results['fake']['source']}"]
    p = results.get("protocol")
    if p:
        resize = f"resize {p['resize']['size']} (short side, center crop)" if p["resize"] else "native size"
        skipped = "; ".join(f"{len(p[k]['files_skipped'])} {k} file(s) skipped as too short"
                            for k in ("real", "fake") if p[k].get("files_skipped"))
        skipped = "; ".join([skipped] * bool(skipped) + [
            f"{len(p[k]['files_unreadable'])} {k} file(s) skipped as unreadable" for k in ("real", "fake")
            if p[k].get("files_unreadable")])
        lines.append(f"clips: {p['clips']['real']} real, {p['clips']['fake']} fake; {p['sampling']} sampling"
                     + (f" (seed {p['seed']})" if p["seed"] is not None else "") + f", {resize}"
                     + (f", frameskip {p['frameskip']}" if p["frameskip"] > 1 else "")
                     + (f"; {skipped}" if skipped else ""))
    for name, r in results["metrics"].items():
        if "value" in r:
            note = f"  ({r['protocol']['note']})" if r["protocol"].get("note") else ""
            ref = r["protocol"].get("i3d_reference")
            if ref is not None:
                check = ("not the TF-Hub I3D weights" if not ref["tfhub_weights"] else
                         f"TF-Hub I3D weights, reference FVD {ref['value']:.2f} vs {ref['expected']:.2f} "
                         + ("ok" if ref["ok"] else "MISMATCH"))
                note += (f"  [{r['protocol']['num_real']} real / {r['protocol']['num_fake']} fake clips; {check}]")
            if "ci_half_width" in r:
                note = f" ± {r['ci_half_width']:.3f} ({r['ci_level']:.0%} interval, {r['pairs']} pairs)" + note
            lines.append(f"  {name:10s} {r['value']:.3f}{note}")
        else:
            def scores(d):
                return ", ".join(f"{v[0]:.3f}" + (f" ± {v[1]:.3f}" if k != "IS@1" else "") + f" ({k[3:]} split"
                                 + "s" * (k != "IS@1") + ")" for k, v in d.items())
            lines.append(f"  {name:10s} fake {scores(r['fake'])}; real {scores(r['real'])}")
    return "\n".join(lines)


def write_results(results: dict, path) -> None:
    """JSON with every result and its protocol record (atomic write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=float) + "\n")
    tmp.replace(path)
