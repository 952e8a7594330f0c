"""``videodiff shards``: write a video folder or caption manifest into WebDataset tar shards (videodiff.data.shards);
``videodiff clips``: write clips of a configured data source as a folder of videos (videodiff.data.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_subcommands"]


def _cmd_shards(args) -> int:
    from ..data.shard_writer import collect_sources, parse_shard_size, write_shards

    max_samples, max_bytes = parse_shard_size(args.shard_size)  # fail on a bad size before any work
    sources = collect_sources(args.root, args.manifest)
    index = write_shards(sources, args.out, max_samples=max_samples, max_bytes=max_bytes,
                         root=args.root or (args.manifest.parent if args.manifest else None), on_error=args.on_error,
                         shuffle_seed=args.shuffle, overwrite=args.overwrite, progress=not args.no_progress)
    total_bytes = sum(s["bytes"] for s in index["shards"])
    print(f"wrote {index['total_samples']} samples into {len(index['shards'])} shards "
          f"({total_bytes / 1e6:.1f} MB) -> {args.out}")
    if index["skipped"]:
        print(f"  skipped {len(index['skipped'])} unusable videos (listed in {Path(args.out) / 'shards.json'})")
    print(f"  train on them with: --set data.kind=shards --set data.shards={args.out}")
    return 0


def _cmd_clips(args) -> int:
    from ..config import load_config
    from ..data.export import write_clips

    cfg = load_config(args.config, args.overrides)
    paths = write_clips(cfg.data, args.out, args.num, split=args.split, fps=args.fps)
    captions = " with captions (.txt, captions.csv)" if (args.out / "captions.csv").is_file() else ""
    print(f"wrote {len(paths)} {cfg.data.kind} {args.split} clips ({cfg.data.num_frames} frames, "
          f"{cfg.data.image_size}x{cfg.data.image_size}){captions} -> {args.out}")
    return 0


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shards", help="write videos (a folder or a caption manifest) into WebDataset tar shards")
    p.add_argument("--root", type=Path, help="folder of videos (recursively; captions from same-name .txt files), "
                                             "or the folder a manifest's relative paths start from")
    p.add_argument("--manifest", type=Path, help="CSV/JSONL of video,caption[,start,end] (see data.manifest)")
    p.add_argument("--out", required=True, type=Path, metavar="OUTDIR", help="folder for shard-*.tar and shards.json")
    p.add_argument("--shard-size", default="1000", metavar="N|SIZE",
                   help="samples per shard (1000) or bytes per shard (500MB, 1GB); default 1000")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                   help="unusable videos: stop naming the file (default) or leave them out with a warning")
    p.add_argument("--shuffle", type=int, default=None, metavar="SEED",
                   help="write samples in a seeded random order (readers only shuffle within a buffer)")
    p.add_argument("--overwrite", action="store_true", help="replace shards already in OUTDIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_shards)

    from .options import add_config_args

    p = sub.add_parser("clips", help="write clips of a data source (a config's data group) as a folder of videos "
                                     "with captions: inputs for eval --real, finetune --data, shards")
    add_config_args(p)
    p.add_argument("--split", choices=["train", "test"], default="test", help="which split (default test: held out)")
    p.add_argument("--num", type=int, default=16, help="clips to write (default 16)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--out", required=True, type=Path, metavar="OUTDIR", help="folder for clip_XXXX.mp4 (+ .txt)")
    p.set_defaults(func=_cmd_clips)
