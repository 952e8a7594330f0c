"""BAIR robot pushing (Ebert et al. 2017), as distributed: ``softmotion30_44k/{train,test}/*.tfrecords``.

Each record is a ``tf.train.Example`` of one 30-step episode (read by :mod:`.tfrecord`, no TensorFlow). Its keys,
as the public loaders read them (TFDS ``video/bair_robot_pushing.py``, SVG, FitVid): ``{i}/image_aux1/encoded`` the
**raw** 64x64x3 uint8 RGB bytes of frame ``i`` of the camera every video-prediction paper uses (not a JPEG; the
loaders decode it with ``np.frombuffer`` / ``Image.frombytes``), ``{i}/image_main/encoded`` the second camera,
``{i}/action`` 4 floats, ``{i}/endeffector_pos`` 3 floats, for ``i`` in 0..29. The split is the dataset's own: the
``train`` folder (43,264 episodes) and the ``test`` folder (256), the test set of the published numbers.

:class:`BAIRPushing` indexes the records from their headers once (a few bytes per record; the frames stay on disk)
and reads, checks (both CRCs) and decodes an episode only when its item is asked for. Item ``i`` is episode ``i``;
its clip starts at frame 0 in the test split (prediction protocols condition on the first frames) and at a start
drawn from ``(seed, split, i)`` in the train split. Items: ``video`` float32 ``(C, F, H, W)`` in [-1, 1],
``actions`` ``(F, 4)`` and ``endeffector_pos`` ``(F, 3)`` float32 of the clip's frames (the condition of
action-conditioned prediction), ``path`` (``file:record``), ``start``, ``index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .tfrecord import TFRecordError, parse_example, read_record, record_offsets
from .transforms import clip_span, frames_to_clip

__all__ = ["BAIRPushing", "BAIROptions", "FRAMES_PER_EPISODE", "find_split_files"]

FRAMES_PER_EPISODE = 30
CAMERAS = ("aux1", "main")


@dataclass
class BAIROptions:
    """``data.options`` of ``data.kind: bair``."""

    camera: str = "aux1"  # "aux1": the camera of the published numbers; "main": the second one
    frame_size: int = 64  # the stored frames' side (64 for softmotion30_44k)

    def __post_init__(self) -> None:
        if self.camera not in CAMERAS:
            raise ValueError(f"data.options.camera must be one of {' | '.join(CAMERAS)}, got {self.camera!r}")
        if self.frame_size < 1:
            raise ValueError(f"data.options.frame_size must be >= 1, got {self.frame_size}")


def find_split_files(root: str | Path, split: str) -> list[Path]:
    """The ``*.tfrecords`` of ``split`` under ``root`` (``root/softmotion30_44k/<split>`` or ``root/<split>``)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {root}: no such folder (expected softmotion30_44k/{{train,test}})")
    for folder in (root / "softmotion30_44k" / split, root / split):
        if folder.is_dir():
            files = sorted(folder.glob("*.tfrecords"))
            if not files:
                raise FileNotFoundError(f"{folder}: no .tfrecords files")
            return files
    raise FileNotFoundError(f"data.root {root}: no softmotion30_44k/{split} or {split} folder of .tfrecords")


class BAIRPushing(Dataset):
    """The episodes of one split of BAIR robot pushing (see the module docstring)."""

    def __init__(self, root: str | Path, *, num_frames: int = 16, image_size: int = 64, channels: int = 3,
                 frameskip: int = 1, split: str = "train", seed: int = 0, camera: str = "aux1",
                 frame_size: int = 64):
        BAIROptions(camera, frame_size)  # checks
        self.split_id = ("train", "test").index(split)
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.frameskip, self.seed, self.camera, self.frame_size = frameskip, seed, camera, frame_size
        self.span = clip_span(num_frames, frameskip)
        if self.span > FRAMES_PER_EPISODE:
            raise ValueError(f"a clip of {num_frames} frames at frameskip {frameskip} spans {self.span} frames; "
                             f"BAIR episodes have {FRAMES_PER_EPISODE} (lower data.num_frames or data.frameskip)")
        self.files = find_split_files(root, split)
        self.records: list[tuple[int, int, int, int]] = []  # (file index, data offset, length, record in file)
        for i, path in enumerate(self.files):
            self.records += [(i, off, n, k) for k, (off, n) in enumerate(record_offsets(path))]
        if not self.records:
            raise FileNotFoundError(f"{self.files[0].parent}: the .tfrecords files hold no records")

    def __len__(self) -> int:
        return len(self.records)

    def episode(self, index: int) -> dict:
        """The whole episode ``index``: ``frames`` uint8 ``(30, S, S, 3)``, ``actions`` ``(30, 4)``,
        ``endeffector_pos`` ``(30, 3)``, ``path``."""
        f, offset, length, k = self.records[index]
        path = self.files[f]
        where = f"{path}:{k}"
        data = read_record(path, offset, length, k)
        try:
            ex = parse_example(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise TFRecordError(f"{where}: not a tf.train.Example ({e})") from None
        s, frames, actions, pos = self.frame_size, [], [], []
        for t in range(FRAMES_PER_EPISODE):
            key = f"{t}/image_{self.camera}/encoded"
            raw = ex.get(key)
            if not isinstance(raw, list) or len(raw) != 1:
                raise TFRecordError(f"{where}: no bytes feature {key!r}")
            if len(raw[0]) != s * s * 3:
                raise TFRecordError(f"{where}: {key} has {len(raw[0])} bytes, raw {s}x{s}x3 RGB needs {s * s * 3} "
                                    f"(data.options.frame_size)")
            frames.append(np.frombuffer(raw[0], np.uint8).reshape(s, s, 3))
            for name, n, out in (("action", 4, actions), ("endeffector_pos", 3, pos)):
                v = ex.get(f"{t}/{name}")
                if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.shape != (n,):
                    raise TFRecordError(f"{where}: {t}/{name} must be {n} floats")
                out.append(v)
        return {"frames": np.stack(frames), "actions": np.stack(actions), "endeffector_pos": np.stack(pos),
                "path": where}

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"episode {index} out of range for {len(self)} episodes")
        ep = self.episode(index)
        if self.split_id == 0:
            rng = np.random.default_rng([self.seed, self.split_id, index])
            start = int(rng.integers(0, FRAMES_PER_EPISODE - self.span + 1))
        else:
            start = 0
        sl = slice(start, start + self.span, self.frameskip)
        return {"video": frames_to_clip(ep["frames"][sl], self.image_size, self.channels),  # (C, F, H, W)
                "actions": torch.from_numpy(ep["actions"][sl].copy()),
                "endeffector_pos": torch.from_numpy(ep["endeffector_pos"][sl].copy()),
                "path": ep["path"], "start": start, "index": index}
