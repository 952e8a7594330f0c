"""Clips of the videos a dataset's own split files list, with class labels (UCF-101 and Kinetics-600 build on it).

Nothing is decoded or probed at construction, so a split of hundreds of thousands of files starts at once: the
listed files are only checked to exist (a missing one is an error naming it and the list that names it, or, with
``on_error="skip"``, one warning with the count). Item ``i`` is video ``i % n`` (``clips_per_video`` clips each);
its frame count is read from the file's header when the item is asked for, and the clip's start is drawn from
``(seed, split, i)`` (train) or is the first frame (test, ``first_clip_for_test``). A corrupt or too-short file
raises :class:`~videodiff.io.VideoReadError` naming it, or with ``on_error="skip"`` is dropped with a warning and
the next video is used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..io import VideoReadError, video_info
from .transforms import clip_span
from .video_folder import first_readable, read_clip

__all__ = ["ListedVideos"]


class ListedVideos(Dataset):
    """Clips of ``videos`` (paths) with integer ``labels`` (-1: none). Items: ``video`` float32 ``(C, F, H, W)`` in
    [-1, 1], ``label`` (int), ``path``, ``start``, ``index``."""

    def __init__(self, videos: list[Path], labels: list[int], *, source: str, num_frames: int = 16,
                 image_size: int = 64, channels: int = 3, frameskip: int = 1, split: str = "train", seed: int = 0,
                 on_error: str = "raise", clips_per_video: int = 1, first_clip_for_test: bool = True):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if len(videos) != len(labels):
            raise ValueError("videos and labels differ in length")
        self.split_id = ("train", "test").index(split)
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.frameskip, self.seed, self.on_error, self.clips_per_video = frameskip, seed, on_error, clips_per_video
        self.first_clip = first_clip_for_test and split == "test"
        self.span = clip_span(num_frames, frameskip)
        self.skipped: list[str] = []
        missing = [(p, lab) for p, lab in zip(videos, labels) if not Path(p).is_file()]
        if missing:
            if on_error == "raise":
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise FileNotFoundError(f"{missing[0][0]}: listed in {source} but missing{more}; set "
                                        f"data.on_error=skip to train without missing files")
            warnings.warn(f"{len(missing)} videos listed in {source} are missing (first: {missing[0][0]}); skipped",
                          stacklevel=2)
            gone = {str(p) for p, _ in missing}
            self.skipped += sorted(gone)
            pairs = [(p, lab) for p, lab in zip(videos, labels) if str(p) not in gone]
            videos, labels = [p for p, _ in pairs], [lab for _, lab in pairs]
        if not videos:
            raise FileNotFoundError(f"{source}: no videos to read")
        self.videos, self.labels = [str(p) for p in videos], list(labels)

    def __len__(self) -> int:
        return self.clips_per_video * len(self.videos)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range for {len(self)} clips")
        rng = np.random.default_rng([self.seed, self.split_id, index])

        def read(v: int) -> dict:
            path = self.videos[v]
            count = video_info(path)[0]
            if count < self.span:
                raise VideoReadError(f"{path}: too short: {count} frames, a clip of {self.num_frames} frames at "
                                     f"frameskip {self.frameskip} needs {self.span}")
            start = 0 if self.first_clip else int(rng.integers(0, count - self.span + 1))
            video = read_clip(path, start, self.num_frames, self.frameskip, self.image_size, self.channels)
            return {"video": video, "label": self.labels[v], "path": path, "start": start, "index": index}

        return first_readable(self, index, read,
                              lambda: f"every listed video failed to read ({len(self.skipped)} skipped)")
