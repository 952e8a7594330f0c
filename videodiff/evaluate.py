"""Evaluation of generated videos against real ones (paper Sec. 4): loading video sets from disk, and FVD,
FID/IS (avg and first), classifier-FVD and classifier-IS with their protocol records.

Video sets are uint8 ``(N, F, H, W, 3)`` arrays. :func:`load_video_set` reads them from

* a ``.pt`` tensor (``videodiff sample --save-tensor``: float ``(N, C, F, H, W)`` in [-1, 1]) or ``.npy`` array;
* one video file holding a grid of videos (``io.video_grid``: ``pad``-pixel white borders between and around
  the cells); rows and columns are inferred from the padding or given;
* a folder of videos (each file one video, or a grid when it has the padding), or of ``.pt``/``.npy`` files;
* a run directory (``videodiff train``): the newest ``samples/step_*`` tensor or grid.

:func:`compute_metrics` measures any of ``METRICS`` between two such sets:

* ``fvd``: I3D (TF-Hub weights, :mod:`videodiff.metrics.fvd`); it needs >= 9 frames. ``fvd_repeat_frames``
  repeats every frame ``ceil(9 / F)`` times for shorter videos (recorded, not comparable with published FVD);
* ``fid`` / ``is``: InceptionV3 from a user-supplied weights file, on all frames (avg) and the first frame
  (first), as in Tables 2-3; IS is reported for the fake set and, as a reference, the real set;
* ``cfvd`` / ``cis``: the project's Moving MNIST classifier (:mod:`videodiff.metrics.classifier`).
"""
from __future__ import annotations

import datetime
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .io import read_video

__all__ = ["METRICS", "VideoSet", "load_video_set", "parse_grid", "find_grid", "tensor_to_uint8", "dataset_videos",
           "compute_metrics", "evaluate_paths", "evaluate_checkpoint", "format_results", "write_results"]

METRICS = ("fvd", "fid", "is", "cfvd", "cis")
VIDEO_FILES = (".mp4", ".gif", ".avi", ".webm", ".mkv", ".mov")
ARRAY_FILES = (".pt", ".pth", ".npy")
GRID_PAD = 2  # io.video_grid's default padding
PAD_THRESHOLD = 200  # a padding line is white (255); lossy codecs (H.264) ring near edges, so allow some slack


@dataclass
class VideoSet:
    videos: np.ndarray  # uint8 (N, F, H, W, 3)
    source: str
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        n, f, h, w, _ = self.videos.shape
        return {"source": self.source, "num": int(n), "frames": int(f), "resolution": [int(h), int(w)], **self.info}


# ------------------------------------------------------------------------------------------------------- grids


def _pad_lines(frames: np.ndarray, axis: int) -> np.ndarray:
    """Boolean per row (axis=0) or column (axis=1) of uint8 ``(F, H, W, 3)`` frames: the line is white. Lossy
    codecs (H.264 with 4:2:0 chroma) smear cell content into the padding, so "white" means that 90% of the
    line's values over all frames and channels are >= PAD_THRESHOLD, not all of them."""
    lines = np.moveaxis(frames, axis + 1, 0).reshape(frames.shape[axis + 1], -1)
    return np.percentile(lines, 10, axis=1) >= PAD_THRESHOLD


def _fit(n_lines: int, is_pad: np.ndarray, count: int | None, pad: int) -> list[tuple[int, int]]:
    """(cells, cell size) along one axis consistent with white bands at every ``k * (size + pad)``."""
    fits = []
    for extra in (0, 1):  # the mp4 writer pads odd sizes with one repeated (white) line
        usable = n_lines - extra
        for cells in ([count] if count else range(1, usable // (pad + 1) + 1)):
            size, rem = divmod(usable - pad, cells)
            size -= pad
            if rem or size < 1:
                continue
            bands = np.concatenate([np.arange(k * (size + pad), k * (size + pad) + pad) for k in range(cells + 1)])
            if is_pad[bands].all() and is_pad[usable:].all():
                fits.append((cells, size))
    return fits


def find_grid(frames: np.ndarray, rows: int | None = None, cols: int | None = None,
              pad: int = GRID_PAD) -> tuple[int, int, int, int] | None:
    """Locate an ``io.video_grid`` layout in uint8 ``(F, H, W, 3)`` frames: ``(rows, cols, h, w)``, or None.

    A grid has ``pad`` white lines around and between its cells. Among the layouts consistent with the white
    lines the one with the most cells is taken (a cell's content would need whole white lines exactly where
    a finer grid puts its bands to fool this); ``rows``/``cols`` fix a dimension.
    """
    row_pad, col_pad = _pad_lines(frames, 0), _pad_lines(frames, 1)
    row_fits = _fit(frames.shape[1], row_pad, rows, pad)
    col_fits = _fit(frames.shape[2], col_pad, cols, pad)
    if not row_fits or not col_fits:
        return None
    (r, h), (c, w) = max(row_fits), max(col_fits)
    if rows is None and cols is None:
        # A mostly white video fits many layouts; a grid's cells are mostly not white lines.
        inner = [np.mean(is_pad[[i for i in range(k * (size + pad) + pad, (k + 1) * (size + pad))]])
                 for is_pad, n, size in ((row_pad, r, h), (col_pad, c, w)) for k in range(n)]
        if np.mean(inner) > 0.5:
            return None
    return r, c, h, w


def parse_grid(frames: np.ndarray, rows: int | None = None, cols: int | None = None, pad: int = GRID_PAD,
               keep_empty: bool = False, source: str = "grid") -> np.ndarray:
    """Cut a grid video uint8 ``(F, H', W', 3)`` into its cells ``(N, F, h, w, 3)``, in row-major order
    (``io.video_grid``'s order). Trailing cells that are entirely white (the grid's filler for a partial last
    row) are dropped unless ``keep_empty``. Raises ValueError naming ``--grid-rows/--grid-cols`` when the
    padding cannot be found."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, -1)
    found = find_grid(frames, rows, cols, pad)
    if found is None:
        given = f" with --grid-rows {rows}" * (rows is not None) + f" --grid-cols {cols}" * (cols is not None)
        raise ValueError(f"{source}: no video grid ({pad}-pixel white padding around and between cells) found"
                         f"{given} in {frames.shape[2]}x{frames.shape[1]} frames; give --grid-rows and --grid-cols "
                         f"matching the layout, or put one video per file in a folder")
    r, c, h, w = found
    cells = [frames[:, pad + i * (h + pad):pad + i * (h + pad) + h, pad + j * (w + pad):pad + j * (w + pad) + w]
             for i in range(r) for j in range(c)]
    if not keep_empty:
        while len(cells) > 1 and np.percentile(cells[-1], 10) >= PAD_THRESHOLD and len(cells) > (r - 1) * c:
            cells.pop()  # video_grid fills the unused cells of the last row with the padding value
    return np.stack(cells)  # (N, F, h, w, 3)


# ---------------------------------------------------------------------------------------------- loading sets


def tensor_to_uint8(videos) -> np.ndarray:
    """Library videos float ``(N, C, F, H, W)`` in [-1, 1] (C = 1 or 3) -> uint8 ``(N, F, H, W, 3)``, rounded
    as ``io.to_uint8``; uint8 ``(N, F, H, W, C)`` input is passed through (gray expanded to RGB)."""
    v = torch.as_tensor(videos) if not isinstance(videos, torch.Tensor) else videos
    if v.ndim != 5:
        raise ValueError(f"expected 5-d videos (N, C, F, H, W) float or (N, F, H, W, C) uint8, got {tuple(v.shape)}")
    if v.dtype == torch.uint8:
        if v.shape[-1] not in (1, 3):
            raise ValueError(f"uint8 videos must be (N, F, H, W, C) with C in (1, 3), got {tuple(v.shape)}")
        out = v
    else:
        if v.shape[1] not in (1, 3):
            raise ValueError(f"float videos must be (N, C, F, H, W) with C in (1, 3), got {tuple(v.shape)}")
        out = ((v.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)
    out = out.cpu().numpy()
    return np.repeat(out, 3, -1) if out.shape[-1] == 1 else out


def _load_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return tensor_to_uint8(torch.from_numpy(np.load(path)))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict):
        obj = next((obj[k] for k in ("videos", "video", "samples") if k in obj), None)
        if obj is None:
            raise ValueError(f"{path}: a dict without a 'videos' tensor")
    if not isinstance(obj, torch.Tensor):
        raise ValueError(f"{path}: expected a video tensor, got {type(obj).__name__}")
    return tensor_to_uint8(obj)


def _read_file(path: Path, frames: int | None, rows, cols, grid: bool | None) -> tuple[np.ndarray, str]:
    """One file -> (videos (n, F, H, W, 3), kind). ``grid``: True (must be a grid), None (grid if padded)."""
    if path.suffix.lower() in ARRAY_FILES:
        return _load_array(path), "tensor"
    v = read_video(path, max_frames=frames)
    if v.shape[-1] == 1:
        v = np.repeat(v, 3, -1)
    if grid is True or rows is not None or cols is not None:
        return parse_grid(v, rows, cols, source=str(path)), "grid"
    if find_grid(v) is not None:  # a grid (or one video with the grid's border) as `videodiff sample` writes
        return parse_grid(v, source=str(path)), "grid"
    return v[None], "video"


def _run_samples(path: Path) -> Path | None:
    """The newest sample file of a run directory (tensor before lossless gif before mp4)."""
    samples = path / "samples"
    if not samples.is_dir():
        return None
    for ext in (".pt", ".gif", ".mp4"):
        found = sorted(samples.glob(f"*{ext}"))
        if found:
            return found[-1]
    return None


def _stack(parts: list[np.ndarray], source: str) -> np.ndarray:
    shapes = sorted({p.shape[1:] for p in parts})
    if len(shapes) > 1:
        raise ValueError(f"{source}: videos differ in shape ({shapes[0][:3]} ... {shapes[-1][:3]} as F, H, W); "
                         f"pass --frames to cut them to a common length, and use one resolution per set")
    return np.concatenate(parts)


def load_video_set(path, *, frames: int | None = None, num: int | None = None, grid_rows: int | None = None,
                   grid_cols: int | None = None, what: str = "path", progress: bool = False) -> VideoSet:
    """Read a set of videos from ``path`` (see the module docstring) as uint8 ``(N, F, H, W, 3)``.

    ``frames``: keep the first ``frames`` of every video (error if one is shorter); ``num``: the first ``num``
    videos (fewer if fewer exist, recorded in ``info``). ``what`` names the option in error messages.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path}: no such file or directory")
    info: dict = {}
    if path.is_file():
        videos, kind = _read_file(path, frames, grid_rows, grid_cols, grid=path.suffix.lower() in VIDEO_FILES)
        info["kind"] = kind
    else:
        run_file = _run_samples(path)
        if run_file is not None:
            videos, kind = _read_file(run_file, frames, grid_rows, grid_cols, grid=run_file.suffix != ".pt")
            info.update(kind=f"run samples ({kind})", file=str(run_file))
        else:
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_FILES + ARRAY_FILES)
            arrays = [p for p in files if p.suffix.lower() in ARRAY_FILES]
            files = arrays or files  # a sampling folder: its tensors are exact, its grid videos are previews
            if not files:
                raise FileNotFoundError(f"{what} {path}: no videos ({', '.join(VIDEO_FILES)}) or tensors "
                                        f"({', '.join(ARRAY_FILES)}) in this folder")
            parts, kinds = [], set()
            it = files
            if progress and len(files) > 1:
                from tqdm.auto import tqdm
                it = tqdm(files, desc=f"reading {path.name}", unit="file")
            total = 0
            for p in it:
                v, k = _read_file(p, frames, grid_rows, grid_cols, grid=None)
                parts.append(v)
                kinds.add(k)
                total += len(v)
                if num is not None and total >= num:
                    break
            videos = _stack(parts, f"{what} {path}")
            info.update(kind="folder of " + "/".join(sorted(kinds)), files=len(parts))
    if frames is not None:
        if videos.shape[1] < frames:
            raise ValueError(f"{what} {path}: videos have {videos.shape[1]} frames, fewer than --frames {frames}")
        videos = videos[:, :frames]
    if num is not None:
        if len(videos) < num:
            info["requested"] = num
            print(f"note: {what} {path} holds {len(videos)} videos, fewer than --num {num}; using all of them",
                  file=sys.stderr)
        videos = videos[:num]
    return VideoSet(np.ascontiguousarray(videos), str(path), info)


def dataset_videos(data_cfg, split: str = "test", num: int = 256, progress: bool = False) -> VideoSet:
    """The first ``num`` clips of ``split`` of a data config (Moving MNIST makes as many as asked)."""
    import dataclasses

    from .data import build_dataset

    if data_cfg.kind == "moving_mnist":
        data_cfg = dataclasses.replace(data_cfg, test_clips=max(num, 1), train_clips=max(num, 1))
    ds = build_dataset(data_cfg, split)
    n = min(num, len(ds))
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"{split} clips", unit="clip")
    videos = tensor_to_uint8(torch.stack([ds[i]["video"] for i in it]))
    return VideoSet(videos, f"{data_cfg.kind} {split} split", {"kind": "dataset", "split": split})


# ---------------------------------------------------------------------------------------------------- metrics


def _check_metrics(metrics) -> list[str]:
    metrics = [m.lower() for m in metrics]
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise ValueError(f"unknown metric {bad[0] if bad else None!r}; choose from {', '.join(METRICS)}")
    return metrics


def _fvd(real, fake, repeat: bool, batch_size, cache_dir, device, progress) -> dict:
    from .metrics.fvd import fvd
    from .metrics.i3d import MIN_FRAMES, load_i3d

    t = min(real.shape[1], fake.shape[1])
    k = 1
    if t < MIN_FRAMES:
        if not repeat:
            raise ValueError(f"fvd needs at least {MIN_FRAMES} frames per video (I3D's temporal strides), the "
                             f"videos have {t}; pass --fvd-repeat-frames to repeat each frame "
                             f"{math.ceil(MIN_FRAMES / t)} times (not comparable with published FVD), or use "
                             f"--metrics cfvd")
        k = math.ceil(MIN_FRAMES / t)
        real, fake = np.repeat(real, k, axis=1), np.repeat(fake, k, axis=1)
    model = load_i3d().to(device)
    res = fvd(real, fake, model, batch_size=batch_size, cache_dir=None if cache_dir is None else str(cache_dir),
              progress=progress)
    protocol = {**res.protocol, "frames_repeated": k}
    if k > 1:
        protocol["note"] = f"every frame repeated {k} times to reach I3D's {MIN_FRAMES}: not comparable with published FVD"
    return {"value": res.value, "protocol": protocol}


def _is_dict(scores, splits=(1, 10)) -> dict:
    """IS@k (mean, std over k splits) for the split counts that leave >= 2 samples per split."""
    from .metrics.classifier import usable_splits
    from .metrics.inception_score import inception_score

    return {f"IS@{k}": list(inception_score(scores, k)) for k in usable_splits(len(scores), splits)}


def _inception_metrics(metrics, real, fake, path, batch_size, device, progress) -> dict:
    from .metrics.fid import activations, fid_from_features, protocol_record
    from .metrics.inception import load_inception

    if path is None:
        raise ValueError(f"{' and '.join(m for m in metrics if m in ('fid', 'is'))} need InceptionV3 weights: pass "
                         f"--inception PATH (pytorch-fid's pt_inception-2015-12-05 .pth; no package ships them)")
    if not Path(path).is_file():
        raise FileNotFoundError(f"--inception {path}: no such file")
    model = load_inception(str(path)).to(device).eval()
    out = {}
    for frames in ("avg", "first"):
        act_f = activations(fake, model, frames, batch_size, progress)
        act_r = activations(real, model, frames, batch_size, progress)
        if "fid" in metrics:
            out[f"fid_{frames}"] = {"value": fid_from_features(act_r["pool"], act_f["pool"]),
                                    "protocol": protocol_record(f"FID-{frames}", real, fake, model, frames)}
        if "is" in metrics:
            out[f"is_{frames}"] = {"fake": _is_dict(act_f["logits"]), "real": _is_dict(act_r["logits"]),
                                   "protocol": {**protocol_record(f"IS-{frames}", fake, None, model, frames),
                                                "reduce": "logits", "splits_requested": [1, 10]}}
    return out


def _classifier_metrics(metrics, real, fake, name, batch_size, device, progress) -> dict:
    from .metrics.classifier import (classifier_outputs, default_classifier_name, load_classifier,
                                     protocol_record)
    from .metrics.frechet import frechet_distance_from_features

    name = name or default_classifier_name(fake.shape[1], fake.shape[2])
    model = load_classifier(name, device=device)
    for label, v in (("real", real), ("fake", fake)):
        if v.shape[1] < model.cfg.num_frames:
            raise ValueError(f"classifier {model.name} needs {model.cfg.num_frames} frames, the {label} videos have "
                             f"{v.shape[1]}; pass --classifier with a shorter one")
    out_f = classifier_outputs(fake, model, max(batch_size, 32), progress)
    out_r = classifier_outputs(real, model, max(batch_size, 32), progress)
    out = {}
    if "cfvd" in metrics:
        out["cfvd"] = {"value": frechet_distance_from_features(out_r["features"], out_f["features"]),
                       "protocol": protocol_record("cFVD", model, real=real, fake=fake)}
    if "cis" in metrics:
        out["cis"] = {"fake": _is_dict(out_f["digit_logits"]), "real": _is_dict(out_r["digit_logits"]),
                      "protocol": {**protocol_record("cIS", model, real=real, fake=fake), "splits_requested": [1, 10],
                                   "max_value": 10 / model.cfg.num_digits}}
    return out


def compute_metrics(real: np.ndarray, fake: np.ndarray, metrics=("fvd", "cfvd"), *, inception=None,
                    classifier=None, fvd_repeat_frames: bool = False, batch_size: int = 16, cache_dir=None,
                    device: str = "auto", progress: bool = False) -> dict:
    """{name: {"value" | "fake"/"real": ..., "protocol": {...}}} for uint8 ``(N, F, H, W, 3)`` sets.

    Names: ``fvd``, ``fid_avg``/``fid_first``, ``is_avg``/``is_first`` (IS@1, IS@10 as (mean, std) of the
    fake and the real set), ``cfvd``, ``cis``. Options are checked before any network runs.
    """
    from .pipeline import pick_device

    metrics = _check_metrics(metrics)
    dev = pick_device(device)
    for label, v in (("real", real), ("fake", fake)):
        if v.ndim != 5 or v.shape[-1] != 3 or v.dtype != np.uint8:
            raise ValueError(f"{label} videos must be uint8 (N, F, H, W, 3), got {v.dtype} {v.shape}")
        if len(v) < 2:
            raise ValueError(f"{label} set has {len(v)} video(s); Fréchet distances need at least 2 per set")
    if ("fid" in metrics or "is" in metrics) and inception is None:
        _inception_metrics(metrics, real, fake, None, batch_size, dev, progress)  # raises, naming --inception
    if "fvd" in metrics and min(real.shape[1], fake.shape[1]) < 9 and not fvd_repeat_frames:
        _fvd(real[:, :1], fake[:, :1], False, batch_size, cache_dir, dev, progress)  # raises before heavy work
    results: dict = {}
    if "cfvd" in metrics or "cis" in metrics:
        results.update(_classifier_metrics(metrics, real, fake, classifier, batch_size, dev, progress))
    if "fid" in metrics or "is" in metrics:
        results.update(_inception_metrics(metrics, real, fake, inception, batch_size, dev, progress))
    if "fvd" in metrics:
        results["fvd"] = _fvd(real, fake, fvd_repeat_frames, batch_size, cache_dir, dev, progress)
    return results


def _header(real: VideoSet, fake: VideoSet) -> dict:
    from . import __version__

    return {"real": real.describe(), "fake": fake.describe(), "videodiff_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def evaluate_paths(real, fake, metrics=("fvd", "cfvd"), *, frames=None, num=None, grid_rows=None, grid_cols=None,
                   progress: bool = False, **kw) -> dict:
    """Load two sets (:func:`load_video_set`) and :func:`compute_metrics`; returns the sets' descriptions and
    ``"metrics"``."""
    metrics = _check_metrics(metrics)
    opts = dict(frames=frames, num=num, grid_rows=grid_rows, grid_cols=grid_cols, progress=progress)
    r = load_video_set(real, what="--real", **opts)
    f = load_video_set(fake, what="--fake", **opts)
    return {**_header(r, f), "metrics": compute_metrics(r.videos, f.videos, metrics, progress=progress, **kw)}


def evaluate_checkpoint(checkpoint, metrics=("fvd", "cfvd"), *, real=None, num: int = 256, steps=None,
                        sampler=None, seed: int = 0, frames=None, save_samples=None, grid_rows=None,
                        grid_cols=None, batch_size: int = 16, device: str = "auto", progress: bool = False,
                        **kw) -> dict:
    """Sample ``num`` videos from a checkpoint and evaluate them against ``real`` (a path) or, by default,
    the first ``num`` clips of the held-out (test) split of the checkpoint's data config."""
    from .pipeline import load_model, sample_videos

    metrics = _check_metrics(metrics)
    loaded = load_model(checkpoint, device=device)
    cfg = loaded.config
    if real is not None:
        r = load_video_set(real, frames=frames, num=num, grid_rows=grid_rows, grid_cols=grid_cols, what="--real",
                           progress=progress)
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
        "sampler": sampler or cfg.sample.sampler, "steps": steps or cfg.sample.steps,
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
    for name, r in results["metrics"].items():
        if "value" in r:
            note = f"  ({r['protocol']['note']})" if r["protocol"].get("note") else ""
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
