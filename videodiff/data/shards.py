"""Streaming clips from sharded tar files (the WebDataset format), for datasets larger than a disk.

Format (written by :func:`videodiff.data.shard_writer.write_shards`, readable by the ``webdataset`` package): each
shard ``shard-000000.tar`` is a plain tar whose samples are consecutive members sharing a key (the member name up
to the first dot of its basename): ``KEY.mp4`` (the source video's bytes as they were, any of
:data:`VIDEO_EXTENSIONS`), ``KEY.txt`` (the caption, when there is one) and ``KEY.json`` (metadata: ``source`` path,
``start`` / ``end`` frame range as in a caption manifest, and the header's ``frames``, ``height``, ``width``,
``fps``). Beside the shards, ``shards.json`` lists every shard with its sample count.

:class:`ShardDataset` is a torch ``IterableDataset`` yielding the same items as the other clip datasets (``video``
float32 ``(C, F, H, W)`` in [-1, 1], ``caption``, ``path``, ``start``, ``key``). Its stream is endless and
deterministic: in epoch ``e`` the shard order is a permutation drawn from ``(seed, e)``; the shards are dealt to the
``world_size * num_workers`` consumers (distributed ranks x DataLoader workers), each of which reads its own shards
through a seeded shuffle buffer, so every sample is read exactly once per epoch. With fewer shards than consumers,
every consumer reads every shard and keeps every ``C``-th sample instead. :meth:`ShardDataset.skip` resumes a
stream after the samples a run already consumed, reading tar headers only (whole epochs are skipped by count).
"""

from __future__ import annotations

import glob
import json
import os
import re
import tarfile
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..io import VideoReadError, video_info
from .joint import join_image_frames
from .transforms import clip_span
from .video_folder import VIDEO_EXTENSIONS, read_clip

__all__ = ["ShardDataset", "ShardError", "expand_shards", "split_key", "INDEX_NAME"]

INDEX_NAME = "shards.json"


class ShardError(VideoReadError):
    """A shard or one of its members is missing, corrupt or unusable; the message names the shard and member."""


def split_key(name: str) -> tuple[str, str]:
    """WebDataset's split of a member name into ``(key, extension)``: the key runs to the first dot of the basename."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), (ext.lower() if dot else "")


def _braces(pattern: str) -> list[str]:
    """Expand the first ``{a..b}`` (zero padding kept) or ``{x,y}`` group, recursively."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if m is None:
        return [pattern]
    body, pre, post = m.group(1), pattern[: m.start()], pattern[m.end():]
    r = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if r:
        lo, hi = int(r.group(1)), int(r.group(2))
        if hi < lo:
            raise ValueError(f"shard pattern {pattern!r}: empty range {{{body}}}")
        width = len(r.group(1))
        options = [f"{i:0{width}d}" for i in range(lo, hi + 1)]
    else:
        options = body.split(",")
    return [out for o in options for out in _braces(pre + o + post)]


def expand_shards(spec: str | os.PathLike | list) -> tuple[list[Path], dict[str, int] | None]:
    """Shard paths and, when an index gives them, sample counts (keyed by path string).

    ``spec``: a folder (its ``shards.json``, else its ``*.tar`` files), an index ``.json``, a list file (``.txt``:
    one shard per line, relative to the file), a brace pattern ``shard-{000000..000009}.tar`` or a glob, or a list
    of any of these. Every shard must exist; errors name the missing path.
    """
    if isinstance(spec, (list, tuple)):
        paths, counts = [], {}
        for s in spec:
            p, c = expand_shards(s)
            paths += p
            counts = None if counts is None or c is None else {**counts, **c}
        return paths, counts
    spec = os.path.expanduser(str(spec))
    path = Path(spec)
    if path.is_dir():
        if (path / INDEX_NAME).is_file():
            return expand_shards(path / INDEX_NAME)
        paths = sorted(path.glob("*.tar"))
        if not paths:
            raise FileNotFoundError(f"no {INDEX_NAME} and no .tar shards in {path}")
        return paths, None
    if path.suffix == ".json" and path.is_file():
        try:
            index = json.loads(path.read_text())
            entries = [(path.parent / s["name"], int(s["samples"])) for s in index["shards"]]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a shard index (expected a 'shards' list of name, samples): {e}") from None
        if not entries:
            raise ValueError(f"{path}: the shard index lists no shards")
        _check_exist([p for p, _ in entries], path)
        return [p for p, _ in entries], {str(p): n for p, n in entries}
    if path.suffix in (".txt", ".list") and path.is_file():
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        paths = [p if p.is_absolute() else path.parent / p for p in map(Path, lines)]
        if not paths:
            raise ValueError(f"shard list {path} is empty")
        _check_exist(paths, path)
        return paths, None
    paths = []
    for p in _braces(spec):
        if any(ch in p for ch in "*?["):
            paths += sorted(Path(q) for q in glob.glob(p))
        else:
            paths.append(Path(p))
    if not paths:
        raise FileNotFoundError(f"no shards match {spec!r}")
    _check_exist(paths, spec)
    return paths, None


def _check_exist(paths: list[Path], where) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"shard {missing[0]} (from {where}) does not exist{more}")


@dataclass
class _Record:
    """One sample of a shard: its key, metadata, caption and where its video bytes lie (read only when needed)."""

    shard: Path
    key: str
    ext: str = ""
    offset: int = -1
    size: int = 0
    caption: str | None = None
    meta: dict | None = None
    clip: int = 0  # which of clips_per_video

    @property
    def name(self) -> str:
        return f"{self.shard.name}:{self.key}"

    def video_bytes(self) -> bytes:
        with open(self.shard, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.size)
        if len(data) != self.size:
            raise ShardError(f"{self.name}.{self.ext}: shard ends inside the member")
        return data


def _read_records(shard: Path) -> Iterator[_Record]:
    """Samples of one shard in order; the video bytes stay in the file (their offset is recorded)."""
    rec = None
    try:
        with tarfile.open(shard, "r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                key, ext = split_key(m.name)
                if rec is not None and key != rec.key:
                    yield rec
                    rec = None
                rec = rec or _Record(shard, key)
                if "." + ext in VIDEO_EXTENSIONS:
                    rec.ext, rec.offset, rec.size = ext, m.offset_data, m.size
                elif ext in ("txt", "json"):
                    raw = tar.extractfile(m).read().decode("utf-8")
                    if ext == "txt":
                        rec.caption = raw.strip()
                    else:
                        try:
                            rec.meta = json.loads(raw)
                        except ValueError as e:
                            raise ShardError(f"{shard}:{m.name}: invalid JSON ({e})") from None
    except (tarfile.TarError, OSError, UnicodeDecodeError) as e:
        raise ShardError(f"{shard}: corrupt or unreadable shard ({e})") from e
    if rec is not None:
        yield rec


def _count(shard: Path) -> int:
    return sum(1 for _ in _read_records(shard))


def _tmp_dir() -> str | None:
    shm = "/dev/shm"  # decode from memory when the system has a RAM disk
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


class ShardDataset(IterableDataset):
    """Endless stream of clips from WebDataset shards (see the module docstring).

    Args:
        shards: anything :func:`expand_shards` takes.
        num_frames, image_size, channels, frameskip: the clip, as for :class:`VideoFolder`.
        shuffle_buffer: samples each consumer mixes (1: shard order only); the test split never shuffles.
        clips_per_video: clips drawn from each sample per epoch (different starts).
        captions: every sample must have a caption (text-conditioned training); otherwise a missing one is "".
        on_error: "raise" (stop naming the shard and member) or "skip" (warn, drop the sample or rest of the shard).
        image_frames, images: joint training (Sec. 4.2): append ``image_frames`` frames, each a random frame of one
            of the last 64 clips of this stream (random videos within the same dataset), or of ``images``.
        rank, world_size: override ``torch.distributed`` (tests; single-process data splits).
        epochs: stop after this many epochs (None: endless; the test split reads one).
    """

    def __init__(self, shards, *, num_frames: int = 16, image_size: int = 64, channels: int = 3, frameskip: int = 1,
                 split: str = "train", seed: int = 0, shuffle_buffer: int = 100, clips_per_video: int = 1,
                 captions: bool = False, on_error: str = "raise", image_frames: int = 0, images: Dataset | None = None,
                 rank: int | None = None, world_size: int | None = None, epochs: int | None = None):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if shuffle_buffer < 1 or clips_per_video < 1 or image_frames < 0:
            raise ValueError("need shuffle_buffer >= 1, clips_per_video >= 1 and image_frames >= 0")
        self.paths, self.counts = expand_shards(shards)
        self.split_id = ("train", "test").index(split)
        self.num_frames, self.image_size, self.channels = num_frames, image_size, channels
        self.frameskip, self.seed, self.clips_per_video = frameskip, seed, clips_per_video
        self.shuffle_buffer = shuffle_buffer if split == "train" else 1
        self.epochs = epochs if split == "train" else (epochs or 1)
        self.captions, self.on_error = captions, on_error
        self.image_frames, self.images = image_frames, images
        self.rank, self.world_size = rank, world_size
        self.span = clip_span(num_frames, frameskip)
        self._skip: tuple[int, int | None] = (0, 1)

    def num_clips(self) -> int:
        """Clips per epoch over all ranks (from the index; without one, the shards' headers are read once)."""
        return sum(self._counts_all().values()) * self.clips_per_video

    def _counts_all(self) -> dict[str, int]:
        if self.counts is None:
            self.counts = {str(p): _count(p) for p in self.paths}
        return self.counts

    # ------------------------------------------------------------------------------------- stream partition

    def skip(self, n: int, batch_size: int | None = None) -> "ShardDataset":
        """Start this rank's stream ``n`` samples in (resume). A DataLoader with workers hands out whole batches
        from each worker in turn: pass its ``batch_size`` so each worker skips exactly what it produced. Skipping
        counts samples read, so with ``on_error="skip"`` a dropped sample shifts the resumed stream by one."""
        if n < 0 or (batch_size is not None and batch_size < 1):
            raise ValueError(f"skip needs n >= 0 and batch_size >= 1, got {n}, {batch_size}")
        self._skip = (int(n), batch_size)
        return self

    def _worker_skip(self, worker: int, num_workers: int) -> tuple[int, int]:
        """``(role, samples to skip)`` of a DataLoader worker. A fresh loader asks worker 0 for the first batch, but
        the interrupted one would have asked worker ``batches % num_workers``: worker ``w`` plays that one's part."""
        n, b = self._skip
        if b is None:
            if n and num_workers > 1 and worker == 0:
                warnings.warn("ShardDataset.skip(n) without batch_size under DataLoader workers: the resumed stream "
                              "is only approximately the interrupted one; pass the loader's batch_size", stacklevel=2)
            b = 1
        batches, rest = divmod(n, b)
        role = (worker + batches) % num_workers
        return role, len(range(role, batches, num_workers)) * b + (rest if role == batches % num_workers else 0)

    def _epoch_shards(self, epoch: int, consumer: int, consumers: int) -> tuple[list[Path], bool]:
        """This consumer's shards in ``epoch`` and whether it must keep only every ``consumers``-th sample."""
        perm = np.random.default_rng([self.seed, self.split_id, epoch, 0x5A2D]).permutation(len(self.paths))
        if self.split_id == 1:
            perm = np.arange(len(self.paths))  # the test split reads in order
        if len(self.paths) >= consumers:
            return [self.paths[i] for i in perm[consumer::consumers]], False
        return [self.paths[i] for i in perm], True

    def _epoch_length(self, epoch: int, consumer: int, consumers: int) -> int:
        shards, interleaved = self._epoch_shards(epoch, consumer, consumers)
        counts = self._counts_all()
        total = sum(counts[str(p)] for p in shards) * self.clips_per_video
        return len(range(consumer, total, consumers)) if interleaved else total

    def _epoch_records(self, epoch: int, consumer: int, consumers: int) -> Iterator[_Record]:
        """Records of one epoch for one consumer, in read order (before the shuffle buffer)."""
        shards, interleaved = self._epoch_shards(epoch, consumer, consumers)
        j = 0
        for shard in shards:
            try:
                for rec in _read_records(shard):
                    for clip in range(self.clips_per_video):
                        if not interleaved or j % consumers == consumer:
                            yield _Record(**{**rec.__dict__, "clip": clip})
                        j += 1
            except ShardError as e:
                if self.on_error == "raise":
                    raise
                warnings.warn(f"skipping the rest of a shard: {e}", stacklevel=2)

    def _shuffled(self, records: Iterator[_Record], rng: np.random.Generator) -> Iterator[_Record]:
        buf: list[_Record] = []
        for rec in records:
            if len(buf) < self.shuffle_buffer:
                buf.append(rec)
                continue
            i = int(rng.integers(len(buf)))
            buf[i], rec = rec, buf[i]
            yield rec
        for i in rng.permutation(len(buf)):
            yield buf[i]

    def consumer_stream(self, rank: int, world_size: int, worker: int = 0, num_workers: int = 1) -> Iterator[dict]:
        """The decoded items of one consumer (``rank`` of ``world_size`` processes, ``worker`` of its DataLoader's
        ``num_workers``), after :meth:`skip`. ``iter(dataset)`` calls this with its own rank and worker."""
        if not (0 <= rank < world_size and 0 <= worker < num_workers):
            raise ValueError(f"bad consumer: rank {rank} of {world_size}, worker {worker} of {num_workers}")
        role, skip = self._worker_skip(worker, num_workers)
        consumers, consumer, epoch = world_size * num_workers, rank * num_workers + role, 0
        if skip:
            while self.epochs is None or epoch < self.epochs:  # whole epochs by count
                length = self._epoch_length(epoch, consumer, consumers)
                if skip < length or length == 0:
                    break
                skip, epoch = skip - length, epoch + 1
        pool: list[tuple[torch.Tensor, str]] = []  # recent clips, for joint training's image frames
        while self.epochs is None or epoch < self.epochs:
            rng = np.random.default_rng([self.seed, self.split_id, epoch, consumer, consumers, 0xB0F])
            produced = yielded = failed = 0
            for rec in self._shuffled(self._epoch_records(epoch, consumer, consumers), rng):
                produced += 1
                if skip:
                    skip -= 1
                    continue
                try:
                    item = self._item(rec, epoch)
                except VideoReadError as e:
                    if self.on_error == "raise":
                        raise
                    warnings.warn(f"skipping an unusable sample: {e}", stacklevel=2)
                    failed += 1
                    continue
                if self.image_frames:
                    item = self._with_image_frames(item, pool, rng)
                yielded += 1
                yield item
            if not produced and self.epochs is None:
                return  # a consumer with no samples (fewer samples than consumers): end instead of spinning
            if failed and not yielded and self.epochs is None:
                raise ShardError(f"every sample of epoch {epoch} failed to decode (rank {rank}, worker {worker})")
            epoch += 1

    def __iter__(self) -> Iterator[dict]:
        rank, world = self.rank, self.world_size
        if rank is None or world is None:
            dist = torch.distributed.is_available() and torch.distributed.is_initialized()
            rank = rank if rank is not None else (torch.distributed.get_rank() if dist else 0)
            world = world if world is not None else (torch.distributed.get_world_size() if dist else 1)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.consumer_stream(rank, world, worker, workers)

    # ----------------------------------------------------------------------------------------------- items

    def _item(self, rec: _Record, epoch: int) -> dict:
        if not rec.ext:
            raise ShardError(f"{rec.name}: sample has no video member ({', '.join(VIDEO_EXTENSIONS)})")
        if self.captions and rec.caption is None:
            raise ShardError(f"{rec.name}: sample has no caption (.txt member) but captions are needed")
        meta = rec.meta or {}
        member = f"{rec.name}.{rec.ext}"
        fd, tmp = tempfile.mkstemp(suffix="." + rec.ext, dir=_tmp_dir())
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(rec.video_bytes())
            try:
                frames = int(meta.get("frames") or video_info(tmp)[0])
                lo = int(meta.get("start") or 0)
                hi = min(int(meta.get("end") or frames), frames)
                if hi - lo < self.span:
                    raise VideoReadError(f"frames [{lo}, {hi}) are too few for a clip of {self.num_frames} frames "
                                         f"at frameskip {self.frameskip} ({self.span} needed)")
                tag = zlib.crc32(f"{rec.shard.name}/{rec.key}".encode())
                rng = np.random.default_rng([self.seed, self.split_id, epoch, rec.clip, tag])
                start = int(rng.integers(lo, hi - self.span + 1))
                video = read_clip(tmp, start, self.num_frames, self.frameskip, self.image_size, self.channels)
            except VideoReadError as e:
                raise ShardError(f"{member}: {str(e).replace(tmp + ': ', '').replace(tmp, member)}") from None
        finally:
            os.unlink(tmp)
        path = meta.get("source") or member
        return {"video": video, "caption": rec.caption or "", "path": path, "start": start, "key": rec.name}

    def _with_image_frames(self, item: dict, pool: list, rng: np.random.Generator) -> dict:
        """Joint training: ``image_frames`` frames of random recent clips (or of ``images``) after the video."""
        pool.append((item["video"], item["caption"]))
        del pool[:-64]
        frames, captions = [], []
        for _ in range(self.image_frames):
            if self.images is not None:
                src = self.images[int(rng.integers(len(self.images)))]
                frames.append(src["image"])
                captions.append(src.get("caption", ""))
            else:
                video, caption = pool[int(rng.integers(len(pool)))]
                frames.append(video[:, int(rng.integers(video.shape[1]))])  # (C, H, W)
                captions.append(caption)
        return join_image_frames(item, frames, captions)
