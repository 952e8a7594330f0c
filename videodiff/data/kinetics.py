"""Kinetics-600 (Carreira et al. 2018) as distributed: a tree of ``.mp4`` under ``data.root`` and the annotation CSV
(``data.options.annotations``: a file, or a folder whose ``*.csv`` are read together) with the columns
``label, youtube_id, time_start, time_end, split`` (``split``: ``train``, ``val`` or ``test``; ``label`` may be
absent or empty for unlabelled test rows).

A row's video is the file whose name is ``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (the name the common
downloaders give the trimmed clip) or ``<youtube_id>.mp4``, anywhere under the root (the tree is scanned once).
Labels are the 0-based index of the label in the sorted set of the CSV's labels (-1: none). Our ``train`` split is
the CSV's ``train`` rows; our ``test`` split its ``data.options.test_split`` rows (``val`` by default: the labelled
held-out set). Missing videos (YouTube removals are common) are an error naming the first, or, with
``data.on_error: skip``, one warning with their count. Clips are read by
:class:`~videodiff.data.listed_videos.ListedVideos`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .listed_videos import ListedVideos

__all__ = ["KineticsOptions", "kinetics_split", "REQUIRED_COLUMNS"]

REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end", "split")


@dataclass
class KineticsOptions:
    """``data.options`` of ``data.kind: kinetics600``."""

    annotations: str | None = None  # the CSV (or a folder of CSVs) with label,youtube_id,time_start,time_end,split
    test_split: str = "val"  # the CSV split our "test" split reads
    train_split: str = "train"

    def __post_init__(self) -> None:
        for name in ("test_split", "train_split"):
            if not getattr(self, name):
                raise ValueError(f"data.options.{name} must name a split of the CSV, got ''")


def _csv_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise FileNotFoundError(f"data.options.annotations {path}: no .csv files in the folder")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"data.options.annotations {path}: no such file or folder")
    return [path]


def read_annotations(path: str | Path) -> list[dict]:
    """The rows of the annotation CSV(s); a missing column or a bad time is an error naming the file and line."""
    rows = []
    for f in _csv_files(Path(path)):
        with open(f, newline="") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in reader.fieldnames or []]
            reader.fieldnames = cols
            missing = [c for c in REQUIRED_COLUMNS if c not in cols]
            if missing:
                raise ValueError(f"{f}: missing column {missing[0]!r} (header: {','.join(cols) or 'none'}; expected "
                                 f"label,youtube_id,time_start,time_end,split)")
            for n, row in enumerate(reader, 2):
                try:
                    row["time_start"], row["time_end"] = int(float(row["time_start"])), int(float(row["time_end"]))
                except (TypeError, ValueError):
                    raise ValueError(f"{f}:{n}: time_start/time_end must be numbers, got {row['time_start']!r}, "
                                     f"{row['time_end']!r}") from None
                row["where"] = f"{f}:{n}"
                rows.append(row)
    return rows


def _index_tree(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in root.rglob("*.mp4") if p.is_file()}


def kinetics_split(root: str | Path, split: str, opts: KineticsOptions) -> tuple[list[Path], list[int], str]:
    """``(paths, labels, source)`` of ``split`` ("train" or "test"); a row without a file gets the path it would
    have under ``root`` (so that the missing file is named)."""
    if opts.annotations is None:
        raise ValueError("data.options.annotations must name the Kinetics CSV (label,youtube_id,time_start,time_end,"
                         "split) when data.kind is 'kinetics600'")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {root}: no such folder of .mp4 videos")
    rows = read_annotations(opts.annotations)
    want = opts.train_split if split == "train" else opts.test_split
    labels = sorted({r["label"] for r in rows if r.get("label")})
    index = {lab: i for i, lab in enumerate(labels)}
    chosen = [r for r in rows if r["split"].strip() == want]
    if not chosen:
        raise ValueError(f"{opts.annotations}: no rows with split {want!r} (data.options."
                         f"{'train' if split == 'train' else 'test'}_split)")
    tree = _index_tree(root)
    paths, labs = [], []
    for r in chosen:
        yid = r["youtube_id"].strip()
        name = f"{yid}_{r['time_start']:06d}_{r['time_end']:06d}"
        paths.append(tree.get(name) or tree.get(yid) or root / (name + ".mp4"))
        labs.append(index.get(r.get("label") or "", -1))
    return paths, labs, f"{opts.annotations} (split {want!r})"


def build_kinetics(root, split: str, opts: KineticsOptions, **clip) -> ListedVideos:
    paths, labels, source = kinetics_split(root, split, opts)
    return ListedVideos(paths, labels, source=source, split=split, **clip)
