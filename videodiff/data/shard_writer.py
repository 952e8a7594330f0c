"""Writing WebDataset shards from a video folder or a caption manifest (the format :mod:`.shards` reads).

Each sample is ``KEY.<ext>`` (the source file's bytes, not re-encoded), ``KEY.txt`` (caption, when there is one: the
manifest's, or a ``.txt`` file beside the video in folder mode) and ``KEY.json`` (``source``, ``start``, ``end``,
``frames``, ``height``, ``width``, ``fps``). Keys are the sample's position, ``000000042``, unique over the shards.
A shard is closed when it holds ``max_samples`` samples or the next sample would take it past ``max_bytes``.

Shards appear atomically (written as ``.tmp``, then renamed) and ``shards.json`` is rewritten after each one, with
the number of sources done: rerunning the same command after an interruption continues after the last whole shard.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..io import VideoReadError, video_info
from .captions import read_manifest
from .shards import INDEX_NAME
from .video_folder import VIDEO_EXTENSIONS, find_videos

__all__ = ["ShardSource", "collect_sources", "parse_shard_size", "write_shards"]

FORMAT = "videodiff-shards/1"
_UNITS = {"": None, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


@dataclass(frozen=True)
class ShardSource:
    video: Path
    caption: str | None = None
    start: int = 0
    end: int | None = None  # exclusive; None: the end of the video


def parse_shard_size(text: str | int) -> tuple[int | None, int | None]:
    """``"1000"`` -> at most 1000 samples a shard; ``"500MB"`` (kB, MB, GB, KiB, MiB, GiB) -> at most that many
    bytes. Returns ``(max_samples, max_bytes)``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = m and m.group(2).lower()
    if not m or unit not in _UNITS or (not unit and "." in m.group(1)) or float(m.group(1)) <= 0:
        raise ValueError(f"--shard-size must be a sample count (1000) or a size (500MB, 1GB), got {text!r}")
    if not unit:
        return int(m.group(1)), None
    return None, int(float(m.group(1)) * _UNITS[unit])


def collect_sources(root: str | Path | None, manifest: str | Path | None = None,
                    extensions=VIDEO_EXTENSIONS) -> list[ShardSource]:
    """The samples to write: the manifest's rows (paths relative to ``root``, default the manifest's folder), or
    every video under ``root`` with the caption of a ``.txt`` file of the same name beside it, if any."""
    if manifest is not None:
        return [ShardSource(r.video, r.caption, r.start, r.end) for r in read_manifest(manifest, root)]
    if root is None:
        raise ValueError("give --root (a folder of videos) or --manifest")
    out = []
    for path in find_videos(root, extensions):
        txt = path.with_suffix(".txt")
        out.append(ShardSource(path, txt.read_text().strip() if txt.is_file() else None))
    return out


def _describe(src: ShardSource, root: Path | None) -> tuple[bytes, dict]:
    """The video's bytes and metadata; raises VideoReadError naming the file when it cannot be used."""
    frames, h, w, fps = video_info(src.video)  # also rejects missing, empty and corrupt files
    if src.start >= frames:
        raise VideoReadError(f"{src.video}: start frame {src.start} is past its last frame ({frames} frames)")
    data = src.video.read_bytes()
    source = src.video.resolve()
    if root is not None and source.is_relative_to(root.resolve()):
        source = source.relative_to(root.resolve())
    meta = {"source": str(source), "start": src.start, "end": src.end, "frames": frames, "height": h, "width": w,
            "fps": fps}
    return data, meta


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> int:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(mtime), 0o644
    tar.addfile(info, io.BytesIO(data))
    return 512 + -(-len(data) // 512) * 512  # header + padded data


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _start_index(out: Path, n_sources: int, settings: dict, overwrite: bool) -> dict:
    """A fresh index, or the one of an interrupted run of the same command (whose shards are kept)."""
    index_path = out / INDEX_NAME
    for tmp in out.glob("*.tmp"):
        tmp.unlink()
    old = json.loads(index_path.read_text()) if index_path.is_file() else None
    if overwrite:
        for p in out.glob("shard-*.tar"):
            p.unlink()
        index_path.unlink(missing_ok=True)
        old = None
    elif old is None and any(out.glob("shard-*.tar")):
        raise ValueError(f"{out} holds shards but no {INDEX_NAME}; pass --overwrite to replace them")
    elif old is not None:
        if old.get("complete"):
            raise ValueError(f"{out} already holds {len(old['shards'])} complete shards; pass --overwrite to rewrite")
        if old.get("sources") != n_sources or old.get("settings") != settings:
            raise ValueError(f"{out} holds an interrupted run with other sources or settings; pass --overwrite")
        print(f"resuming after {len(old['shards'])} shards ({old['next_source']} of {n_sources} sources done)")
        return old
    return {"format": FORMAT, "sources": n_sources, "settings": settings, "next_source": 0, "complete": False,
            "total_samples": 0, "shards": [], "skipped": []}


def write_shards(sources: list[ShardSource], out: str | Path, *, max_samples: int | None = 1000,
                 max_bytes: int | None = None, root: str | Path | None = None, on_error: str = "raise",
                 shuffle_seed: int | None = None, overwrite: bool = False, progress: bool = True) -> dict:
    """Write ``sources`` into ``out/shard-000000.tar, ...`` and ``out/shards.json``; return the index.

    ``shuffle_seed``: write the samples in a seeded random order (readers shuffle only within a buffer, so a
    source sorted by topic should be shuffled here). ``root``: metadata names sources relative to it.
    ``on_error="skip"``: unusable videos are left out with a warning and listed in the index's ``skipped``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not max_samples and not max_bytes:
        raise ValueError("give a shard size: max_samples or max_bytes")
    if not sources:
        raise ValueError("no videos to write")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    order = np.arange(len(sources))
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(sources))
    settings = {"max_samples": max_samples, "max_bytes": max_bytes, "shuffle_seed": shuffle_seed}
    index = _start_index(out, len(sources), settings, overwrite)
    root = Path(root) if root is not None else None
    skipped_now: list[str] = []
    tar, tmp, count, size = None, None, 0, 0

    def close_shard(next_source: int) -> None:
        nonlocal tar, tmp, count, size
        if tar is None:
            return
        tar.close()
        name = f"shard-{len(index['shards']):06d}.tar"
        os.replace(tmp, out / name)
        index["shards"].append({"name": name, "samples": count, "bytes": (out / name).stat().st_size})
        index["total_samples"] += count
        index["next_source"] = next_source
        _write_json(out / INDEX_NAME, index)
        tar, tmp, count, size = None, None, 0, 0

    bar = tqdm(total=len(sources), initial=index["next_source"], desc="shards", unit="video", disable=not progress)
    for pos in range(index["next_source"], len(sources)):
        src = sources[order[pos]]
        try:
            data, meta = _describe(src, root)
        except (VideoReadError, OSError) as e:
            if on_error == "raise":
                raise VideoReadError(f"{e} (pass --on-error skip to leave unusable videos out)") from e
            skipped_now.append(str(e))
            index["skipped"].append(str(src.video))
            bar.update(1)
            continue
        members = [("json", json.dumps(meta).encode())]
        if src.caption is not None:
            members.insert(0, ("txt", src.caption.encode()))
        members.insert(0, (src.video.suffix.lower().lstrip("."), data))
        need = sum(512 + -(-len(d) // 512) * 512 for _, d in members)
        if tar is not None and ((max_samples and count >= max_samples) or (max_bytes and size + need > max_bytes)):
            close_shard(pos)
        if tar is None:
            tmp = out / f"shard-{len(index['shards']):06d}.tar.tmp"
            tar = tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT)
        key, mtime = f"{pos:09d}", src.video.stat().st_mtime
        size += sum(_add(tar, f"{key}.{ext}", d, mtime) for ext, d in members)
        count += 1
        bar.update(1)
    close_shard(len(sources))
    bar.close()
    index["next_source"], index["complete"] = len(sources), True
    _write_json(out / INDEX_NAME, index)
    if skipped_now:
        warnings.warn(f"skipped {len(skipped_now)} unusable videos:\n  " + "\n  ".join(skipped_now), stacklevel=2)
    if not index["total_samples"]:
        raise VideoReadError(f"no usable videos were written to {out} ({len(index['skipped'])} skipped)")
    return index
