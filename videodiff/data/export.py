"""Clips of a data source written out as a folder of videos: ``clip_0000.mp4`` with its caption beside it
(``clip_0000.txt``) and a ``captions.csv`` manifest, the layout ``data.kind=video_folder`` / ``manifest``,
``videodiff shards``, ``videodiff eval --real`` and ``videodiff finetune --data`` read (``videodiff clips``)."""

from __future__ import annotations

import csv
from pathlib import Path

from .config import DataConfig

__all__ = ["write_clips"]


def write_clips(cfg: DataConfig, out_dir: str | Path, num: int, *, split: str = "test", fps: int = 8,
                ext: str = ".mp4") -> list[Path]:
    """The first ``num`` clips of ``split`` of the source ``cfg`` as video files in ``out_dir`` (created), each with
    its caption when the source gives one; returns their paths."""
    from ..frames import to_uint8
    from ..io import write_video
    from . import build_dataset

    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}")
    dataset = build_dataset(cfg, split)
    if len(dataset) < num:
        raise ValueError(f"the {split} split has {len(dataset)} clips, fewer than the {num} asked for")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for i in range(num):
        item = dataset[i]
        path = out_dir / f"clip_{i:04d}{ext}"
        write_video(path, to_uint8(item["video"]), fps=fps)
        if item.get("caption") is not None:
            path.with_suffix(".txt").write_text(item["caption"] + "\n")
            rows.append({"video": path.name, "caption": item["caption"]})
        paths.append(path)
    if rows:
        with (out_dir / "captions.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, ["video", "caption"])
            writer.writeheader()
            writer.writerows(rows)
    return paths
