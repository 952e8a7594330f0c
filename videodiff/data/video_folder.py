"""Clips from a folder of video files (mp4/avi/webm/mkv/mov/gif, found recursively).

Item ``i`` takes video ``i % n`` and a clip start drawn from ``(seed, split, i)``: deterministic per index,
so any DataLoader worker count gives the same data. A clip is ``num_frames`` frames spaced ``frameskip``
apart (paper Sec. 4), decoded from the keyframe before its start up to its last frame, center-cropped
square, resized to ``image_size`` and scaled to [-1, 1]. Frame counts come from each file's header, probed
once at construction, which also finds unreadable and too-short files: ``on_error="raise"`` stops there
with the file's name, ``"skip"`` leaves them out with one warning and lists them in ``dataset.skipped``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io import VideoReadError, read_video, video_info
from .constants import VIDEO_EXTENSIONS
from .transforms import clip_span, frames_to_clip


def find_videos(root: str | Path, extensions=VIDEO_EXTENSIONS) -> list[Path]:
    """Files under ``root`` (recursively) whose extension is in ``extensions``, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root} does not exist or is not a directory")
    exts = {e.lower() for e in extensions}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts and p.is_file())
    if not files:
        raise FileNotFoundError(f"no videos with extensions {', '.join(sorted(exts))} found under {root}")
    return files


def read_clip(path, start: int, num_frames: int, frameskip: int, image_size: int, channels: int):
    """Decode ``num_frames`` frames of ``path`` from ``start`` at ``frameskip`` and make a ``(C, F, H, W)`` clip in
    [-1, 1] (center crop, resize); a video that ends early raises :class:`VideoReadError` naming the file."""
    frames = read_video(path, start=start, max_frames=num_frames, step=frameskip)  # (F, H, W, 3)
    if len(frames) < num_frames:
        raise VideoReadError(f"{path}: only {len(frames)} frames from frame {start} at frameskip "
                             f"{frameskip}, need {num_frames}")
    return frames_to_clip(frames, image_size, channels)  # (C, F, H, W)


def first_readable(ds, index: int, read, failed) -> dict:
    """``read(v)`` of the first video ``v = index, index + 1, ...`` (cyclically) of ``ds.videos`` not in
    ``ds.skipped`` whose read does not raise :class:`VideoReadError`. With ``ds.on_error == "skip"`` a failing video
    is added to ``ds.skipped`` with a warning and the next one is tried; with ``"raise"`` the error propagates.
    When every video fails: ``VideoReadError(failed())``."""
    n = len(ds.videos)
    for attempt in range(n):
        v = (index + attempt) % n
        if ds.videos[v] in ds.skipped:
            continue
        try:
            return read(v)
        except VideoReadError as e:
            if ds.on_error == "raise":
                raise
            ds.skipped.append(ds.videos[v])
            warnings.warn(f"skipping unreadable video: {e}", stacklevel=3)
    raise VideoReadError(failed())


class VideoFolder(Dataset):
    """``clips_per_video * len(videos)`` clips. Items: ``video`` float32 ``(channels, num_frames,
    image_size, image_size)`` in [-1, 1], ``path`` (str), ``start`` (first source frame), ``index`` and, with
    ``captions``, ``caption``: the text of the video's same-name ``.txt`` file, or ``""`` (the null condition c = 0)
    for a video without one."""

    def __init__(
        self,
        root: str | Path,
        *,
        num_frames: int = 16,
        image_size: int = 64,
        channels: int = 3,
        frameskip: int = 1,
        extensions=VIDEO_EXTENSIONS,
        on_error: str = "raise",
        clips_per_video: int = 1,
        split: str = "train",
        seed: int = 0,
        captions: bool = False,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.root, self.on_error = Path(root), on_error
        self.split_id = ("train", "test").index(split)
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.frameskip, self.clips_per_video, self.seed = frameskip, clips_per_video, seed
        self.captions = captions
        self.span = clip_span(num_frames, frameskip)
        self.videos: list[str] = []
        self.frame_counts: list[int] = []
        self.skipped: list[str] = []
        reasons: list[str] = []
        for path in find_videos(self.root, extensions):
            try:
                count = video_info(path)[0]
                if count < self.span:
                    longest = (count - 1) // max(num_frames - 1, 1) if num_frames > 1 else frameskip
                    hint = (f"set data.frameskip={longest} or lower" if 1 <= longest < frameskip
                            else "lower data.num_frames")
                    raise VideoReadError(
                        f"{path}: too short: {count} frames, a clip of {num_frames} frames at frameskip "
                        f"{frameskip} needs {self.span}; {hint} to use it, or data.on_error=skip to skip such files"
                    )
            except VideoReadError as e:
                if on_error == "raise":
                    raise
                self.skipped.append(str(path))
                reasons.append(str(e))
                continue
            self.videos.append(str(path))
            self.frame_counts.append(count)
        if reasons:
            warnings.warn(f"skipped {len(reasons)} unusable videos under {self.root}:\n  " + "\n  ".join(reasons),
                          stacklevel=2)
        if not self.videos:
            first = f"; first: {reasons[0]}" if reasons else ""
            raise FileNotFoundError(f"no usable videos under {self.root} ({len(self.skipped)} skipped{first})")

    def __len__(self) -> int:
        return self.clips_per_video * len(self.videos)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips")
        rng = np.random.default_rng([self.seed, self.split_id, index])
        # In "skip" mode a file that fails only now (e.g. truncated past its header) is dropped and the
        # next video is used instead; "raise" mode propagates the error naming the file.
        def read(v: int) -> dict:
            start = int(rng.integers(0, self.frame_counts[v] - self.span + 1))
            return self._clip(v, start, index)

        return first_readable(self, index, read, lambda: f"every video under {self.root} failed to read")

    def _clip(self, v: int, start: int, index: int) -> dict:
        path = self.videos[v]
        video = read_clip(path, start, self.num_frames, self.frameskip, self.image_size, self.channels)
        item = {"video": video, "path": path, "start": start, "index": index}
        if self.captions:
            text = Path(path).with_suffix(".txt")
            item["caption"] = text.read_text().strip() if text.is_file() else ""
        return item
