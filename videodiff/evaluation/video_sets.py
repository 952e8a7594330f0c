"""Video sets for evaluation: uint8 ``(N, F, H, W, 3)`` arrays loaded from whatever holds generated or real videos.

:func:`load_video_set` reads them from

* a ``.pt`` tensor (``videodiff sample --save-tensor``: float ``(N, C, F, H, W)`` in [-1, 1]) or ``.npy`` array;
* one video file holding a grid of videos (``io.video_grid``: ``pad``-pixel white borders between and around
  the cells); rows and columns are inferred from the padding or given;
* a folder of videos (each file one video, or a grid when it has the padding), or of ``.pt``/``.npy`` files;
* a run directory (``videodiff train``): the newest ``samples/step_*`` tensor or grid;

and :func:`dataset_videos` draws them from a dataset config (e.g. the held-out split of a run's data).
"""
from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..io import load_tensor_file, read_video

__all__ = ["VideoSet", "load_video_set", "parse_grid", "find_grid", "tensor_to_uint8", "dataset_videos",
           "results_header"]

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
    if 0 in v.shape:
        raise ValueError(f"the tensor holds no videos (shape {tuple(v.shape)})")
    if v.dtype != torch.uint8 and not v.is_floating_point():  # bool, int64, ...: not pixels we can read unambiguously
        raise ValueError(f"expected float videos in [-1, 1] or uint8 (N, F, H, W, C), got a {v.dtype} tensor")
    if v.dtype == torch.uint8:
        if v.shape[-1] not in (1, 3):
            raise ValueError(f"uint8 videos must be (N, F, H, W, C) with C in (1, 3), got {tuple(v.shape)}")
        out = v
    else:
        if v.shape[1] not in (1, 3):
            raise ValueError(f"float videos must be (N, C, F, H, W) with C in (1, 3), got {tuple(v.shape)}")
        if not torch.isfinite(v).all():  # NaN would become black frames and a finite, meaningless score
            raise ValueError("the videos hold NaN or infinite values")
        lo, hi = float(v.min()), float(v.max())
        if lo < -1.001 or hi > 1.001:  # beyond round-off: another value range, not something to clamp silently
            hint = " (8-bit pixels? divide by 127.5 and subtract 1, or save them as uint8)" if hi > 2 else ""
            raise ValueError(f"float videos must be in [-1, 1], got values in [{lo:.4g}, {hi:.4g}]{hint}")
        out = ((v.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1)
    out = out.cpu().numpy()
    return np.repeat(out, 3, -1) if out.shape[-1] == 1 else out


def _load_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        obj = torch.from_numpy(np.load(path))
    else:
        obj = load_tensor_file(path, "video tensor")
        if isinstance(obj, dict):
            obj = next((obj[k] for k in ("videos", "video", "samples") if k in obj), None)
            if obj is None:
                raise ValueError(f"{path}: a dict without a 'videos' tensor")
        if not isinstance(obj, torch.Tensor):
            raise ValueError(f"{path}: expected a video tensor, got {type(obj).__name__}")
    try:
        return tensor_to_uint8(obj)  # checks the shape and refuses NaN / infinite values
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


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


def _check_headers(files: list[Path], frames: int | None, source: str) -> None:
    """Resolutions and frame counts from the files' headers (no decoding): a mixed folder fails here, naming two
    files that differ, instead of after every frame of every file has been decoded."""
    from ..io import video_info

    heads = {p: video_info(p) for p in files}  # (num_frames, height, width, fps)
    sizes = {(h, w): p for p, (_, h, w, _) in heads.items()}
    if len(sizes) > 1:
        (s1, p1), (s2, p2) = list(sizes.items())[:2]
        raise ValueError(f"{source}: videos differ in resolution ({p1.name}: {s1[1]}x{s1[0]}, {p2.name}: "
                         f"{s2[1]}x{s2[0]}); use one resolution per set, or evaluate streamed (without --no-stream) with "
                         f"--resize S to resize the short side to S and center-crop SxS")
    counts = {p: n for p, (n, _, _, _) in heads.items()}
    shortest = min(counts, key=counts.get)
    if frames is not None and counts[shortest] < frames:
        raise ValueError(f"{source}: {shortest.name} has {counts[shortest]} frames, fewer than --frames {frames}")
    if frames is None and len(set(counts.values())) > 1:
        raise ValueError(f"{source}: videos differ in length ({shortest.name}: {counts[shortest]} frames, "
                         f"{max(counts, key=counts.get).name}: {max(counts.values())}); pass --frames "
                         f"{counts[shortest]} (or fewer) to cut them to a common length")


def _stack(parts: list[np.ndarray], source: str) -> np.ndarray:
    shapes = sorted({p.shape[1:] for p in parts})
    if len(shapes) > 1:
        raise ValueError(f"{source}: videos differ in shape ({shapes[0][:3]} ... {shapes[-1][:3]} as F, H, W); "
                         f"pass --frames to cut them to a common length, and use one resolution per set")
    return np.concatenate(parts)


def _skip_unreadable(files: list[Path], unreadable: list[dict], bad_files: str, what: str) -> list[Path]:
    """The files of a folder whose headers can be read; the others are recorded in ``unreadable`` (``bad_files``
    ``"skip"``) or stop with their error (``"error"``)."""
    from ..io import VideoReadError, video_info

    good = []
    for p in files:
        if p.suffix.lower() in ARRAY_FILES:
            good.append(p)
            continue
        try:
            video_info(p)
            good.append(p)
        except VideoReadError as e:
            _record_unreadable(p, e, unreadable, bad_files, what)
    return good


def _record_unreadable(path: Path, error: Exception, unreadable: list[dict], bad_files: str, what: str) -> None:
    reason = " ".join(str(error).split())
    if bad_files == "error":
        raise ValueError(f"{what}: {reason} (--bad-files error; the default, skip, leaves such files out and "
                         f"records them)") from None
    unreadable.append({"file": path.name, "reason": reason})


def load_video_set(path, *, frames: int | None = None, num: int | None = None, grid_rows: int | None = None,
                   grid_cols: int | None = None, what: str = "path", progress: bool = False,
                   bad_files: str = "skip") -> VideoSet:
    """Read a set of videos from ``path`` (see the module docstring) as uint8 ``(N, F, H, W, 3)``.

    ``frames``: keep the first ``frames`` of every video (error if one is shorter); ``num``: the first ``num``
    videos (fewer if fewer exist, recorded in ``info``). ``what`` names the option in error messages. In a folder,
    a file that cannot be read is left out and recorded (``info["files_unreadable"]``, with a note) when
    ``bad_files`` is ``"skip"`` (default), and stops the load with its error when it is ``"error"``; a single
    file that cannot be read is always an error.
    """
    from ..io import VideoReadError

    if bad_files not in ("skip", "error"):
        raise ValueError(f"--bad-files must be one of skip, error, got {bad_files!r}")
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
            unreadable: list[dict] = []
            seen = len(files)
            files = _skip_unreadable(files, unreadable, bad_files, what)
            if files and not arrays:
                _check_headers(files, frames, f"{what} {path}")  # before decoding anything
            parts, kinds = [], set()
            it = files
            if progress and len(files) > 1:
                from tqdm.auto import tqdm
                it = tqdm(files, desc=f"reading {path.name}", unit="file")
            total = 0
            for p in it:
                try:
                    v, k = _read_file(p, frames, grid_rows, grid_cols, grid=None)
                except (VideoReadError, ValueError) as e:  # corrupt past its header, or a bad tensor file
                    _record_unreadable(p, e, unreadable, bad_files, what)
                    continue
                parts.append(v)
                kinds.add(k)
                total += len(v)
                if num is not None and total >= num:
                    break
            if not parts:
                raise ValueError(f"{what} {path}: none of its {seen} files can be read (first: "
                                 f"{unreadable[0]['reason'] if unreadable else 'none'})")
            videos = _stack(parts, f"{what} {path}")
            info.update(kind="folder of " + "/".join(sorted(kinds)), files=len(parts))
            if unreadable:
                info.update(files_unreadable=unreadable, files_unreadable_count=len(unreadable))
                names = [u["file"] for u in unreadable]
                print(f"note: {what} {path}: skipped {len(names)} unreadable file(s) ({', '.join(names[:5])}"
                      f"{', ...' if len(names) > 5 else ''}); their names and reasons are in the results "
                      f"(files_unreadable); --bad-files error makes this fatal", file=sys.stderr)
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

    from ..data import build_dataset

    if data_cfg.kind == "moving_mnist":
        data_cfg = dataclasses.replace(data_cfg, test_clips=max(num, 1), train_clips=max(num, 1))
    ds = build_dataset(data_cfg, split)
    n = min(num, len(ds))
    it = range(n)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"{split} clips", unit="clip")
    videos = tensor_to_uint8(torch.stack([ds[i]["video"] for i in it]))
    if data_cfg.kind == "moving_mnist":
        name, held_out = f"{data_cfg.kind} {split} split", split == "test"
    else:  # a folder's "test" split draws other clip starts from the same files: not held out
        name, held_out = f"{data_cfg.kind} clips of the training videos ({split} clip starts)", False
    return VideoSet(videos, name, {"kind": "dataset", "split": split, "held_out": held_out})


# ---------------------------------------------------------------------------------------------------- metrics


def results_header(real: dict, fake: dict) -> dict:
    """The head of every evaluation result: the two sets' descriptions, the package version and the UTC date."""
    from .. import __version__

    return {"real": real, "fake": fake, "videodiff_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
