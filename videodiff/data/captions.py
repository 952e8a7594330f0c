"""Captioned video data for text-to-video training (paper Sec. 4).

* :func:`moving_mnist_caption` / :class:`CaptionedMovingMNIST`: built-in captions for Moving MNIST from each clip's
  metadata, e.g. "digit 3 moving up and digit 7 moving left", in one of several phrasings chosen deterministically
  per clip (so text-to-video can be trained and checked offline). The direction is the digit's initial one (digits
  bounce off the walls later in the clip).
* :class:`CaptionManifest`: a CSV or JSONL manifest over a folder of videos, one clip source per row: ``video``
  (path, relative to the manifest's folder or ``root``), ``caption`` and optional ``start`` / ``end`` frames (the
  clip is drawn inside ``[start, end)``, end exclusive). Items add ``caption`` to the video-folder items.

CSV needs a header naming the columns (``video,caption[,start,end]``); JSONL has one object per line.
"""

from __future__ import annotations

import csv
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from torch.utils.data import Dataset

from ..io import VideoReadError, video_info
from .transforms import clip_span
from .video_folder import read_clip

__all__ = [
    "DIGIT_WORDS",
    "moving_mnist_caption",
    "moving_mnist_phrasings",
    "CaptionedMovingMNIST",
    "ManifestRow",
    "read_manifest",
    "CaptionManifest",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Each direction's phrasings; the first is the compass name itself ("digit 4 moving right").
_DIRECTION_WORDS = {
    "right": ("right", "to the right", "rightwards"),
    "up-right": ("up-right", "up and to the right", "toward the upper right"),
    "up": ("up", "upwards", "toward the top"),
    "up-left": ("up-left", "up and to the left", "toward the upper left"),
    "left": ("left", "to the left", "leftwards"),
    "down-left": ("down-left", "down and to the left", "toward the lower left"),
    "down": ("down", "downwards", "toward the bottom"),
    "down-right": ("down-right", "down and to the right", "toward the lower right"),
}
# (template, direction phrasing index); {d} digit, {word} digit name, {dir} direction.
_TEMPLATES = (
    ("digit {d} moving {dir}", 0),
    ("the number {d} moving {dir}", 1),
    ("a handwritten {word} moving {dir}", 2),
    ("digit {d} going {dir}", 1),
    ("a {word} drifting {dir}", 0),
    ("number {word} moves {dir}", 2),
)


def moving_mnist_phrasings() -> int:
    """Number of phrasings :func:`moving_mnist_caption` chooses from."""
    return len(_TEMPLATES)


def moving_mnist_caption(labels: Sequence[int], directions: Sequence[str], variant: int = 0) -> str:
    """Caption of a Moving MNIST clip: each digit and its initial direction, in phrasing ``variant``.

    ``variant = 0`` is the canonical form, ``"digit 3 moving up and digit 7 moving left"``.
    """
    if len(labels) != len(directions):
        raise ValueError(f"{len(labels)} labels but {len(directions)} directions")
    template, which = _TEMPLATES[variant % len(_TEMPLATES)]
    parts = []
    for label, direction in zip(labels, directions):
        label = int(label)
        if direction not in _DIRECTION_WORDS:
            raise ValueError(f"unknown direction {direction!r}; expected one of {sorted(_DIRECTION_WORDS)}")
        parts.append(template.format(d=label, word=DIGIT_WORDS[label], dir=_DIRECTION_WORDS[direction][which]))
    return " and ".join(parts)


class CaptionedMovingMNIST(Dataset):
    """A Moving MNIST dataset whose items also carry ``caption``; the phrasing of clip ``i`` is drawn from
    ``(seed, i)``, so a clip always has the same caption. ``phrasings=1``: always the canonical form."""

    def __init__(self, dataset: Dataset, *, seed: int = 0, phrasings: int | None = None):
        self.dataset, self.seed = dataset, seed
        self.phrasings = moving_mnist_phrasings() if phrasings is None else phrasings
        if not 1 <= self.phrasings <= moving_mnist_phrasings():
            raise ValueError(f"phrasings must be in 1..{moving_mnist_phrasings()}, got {self.phrasings}")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # expose the wrapped dataset's attributes (num_frames, image_size, ...)
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def caption(self, index: int, item: dict) -> str:
        split_id = getattr(self.dataset, "split_id", 0)
        variant = int(np.random.default_rng([self.seed, split_id, index, 0xCA9]).integers(self.phrasings))
        return moving_mnist_caption(item["labels"].tolist(), item["directions"], variant)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        item["caption"] = self.caption(index, item)
        return item


# ------------------------------------------------------------------------------------------------ manifests


@dataclass(frozen=True)
class ManifestRow:
    video: Path
    caption: str
    start: int = 0
    end: int | None = None  # exclusive; None: the end of the video


def _int_or_none(value, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: frame numbers must be integers, got {value!r}") from None
    if out < 0:
        raise ValueError(f"{where}: frame numbers must be >= 0, got {out}")
    return out


def read_manifest(path: str | Path, root: str | Path | None = None) -> list[ManifestRow]:
    """Rows of a CSV (with header) or JSONL manifest; relative video paths are resolved against ``root`` (default:
    the manifest's folder). Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"caption manifest not found: {path}")
    base = Path(root) if root is not None else path.parent
    if path.suffix.lower() in (".jsonl", ".json"):
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append((n, json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON object: {e}") from None
    elif path.suffix.lower() in (".csv", ".tsv"):
        with path.open(newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            records = [(n, row) for n, row in enumerate(reader, 2)]
    else:
        raise ValueError(f"caption manifest {path} must be .csv, .tsv or .jsonl")
    rows = []
    for n, rec in records:
        where = f"{path}:{n}"
        if not isinstance(rec, dict) or not rec.get("video") or rec.get("caption") is None:
            raise ValueError(f"{where}: each row needs 'video' and 'caption'")
        video = Path(rec["video"]).expanduser()
        start = _int_or_none(rec.get("start"), where) or 0
        end = _int_or_none(rec.get("end"), where)
        if end is not None and end <= start:
            raise ValueError(f"{where}: end ({end}) must be greater than start ({start})")
        rows.append(ManifestRow(video if video.is_absolute() else base / video, str(rec["caption"]), start, end))
    if not rows:
        raise ValueError(f"caption manifest {path} has no rows")
    return rows


class CaptionManifest(Dataset):
    """``clips_per_video * rows`` captioned clips from a manifest (see the module docstring).

    Item ``i`` takes row ``i % rows`` and a clip start drawn from ``(seed, split, i)`` inside the row's
    ``[start, end)`` range. Items: ``video`` float32 ``(channels, num_frames, image_size, image_size)`` in [-1, 1],
    ``caption``, ``path``, ``start``, ``index``. Rows whose range is too short for a clip are errors (with
    ``on_error="raise"``) or left out with a warning.
    """

    def __init__(self, manifest: str | Path, *, root: str | Path | None = None, num_frames: int = 16,
                 image_size: int = 64, channels: int = 3, frameskip: int = 1, clips_per_video: int = 1,
                 split: str = "train", seed: int = 0, on_error: str = "raise"):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.split_id = ("train", "test").index(split)
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.frameskip, self.clips_per_video, self.seed = frameskip, clips_per_video, seed
        self.span = clip_span(num_frames, frameskip)
        self.rows: list[ManifestRow] = []
        self.skipped: list[str] = []
        for row in read_manifest(manifest, root):
            try:
                count = video_info(row.video)[0]
                end = count if row.end is None else min(row.end, count)
                if end - row.start < self.span:
                    raise VideoReadError(f"{row.video}: frames [{row.start}, {end}) are too few for a clip of "
                                         f"{num_frames} frames at frameskip {frameskip} ({self.span} needed)")
            except (VideoReadError, FileNotFoundError) as e:
                if on_error == "raise":
                    raise
                self.skipped.append(f"{row.video}: {e}")
                continue
            self.rows.append(ManifestRow(row.video, row.caption, row.start, end))
        if self.skipped:
            warnings.warn(f"skipped {len(self.skipped)} manifest rows:\n  " + "\n  ".join(self.skipped), stacklevel=2)
        if not self.rows:
            raise FileNotFoundError(f"no usable rows in caption manifest {manifest}")

    def __len__(self) -> int:
        return self.clips_per_video * len(self.rows)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips")
        row = self.rows[index % len(self.rows)]
        rng = np.random.default_rng([self.seed, self.split_id, index])
        start = int(rng.integers(row.start, row.end - self.span + 1))
        video = read_clip(row.video, start, self.num_frames, self.frameskip, self.image_size, self.channels)
        return {"video": video, "caption": row.caption, "path": str(row.video), "start": start, "index": index}
