"""``videodiff sample``: videos from a trained checkpoint or a shipped model (text-to-video with ``--prompt``, eq. 5
guidance) into a grid video. Thin: parse, call :meth:`videodiff.VideoPipeline.generate`, write."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .options import (add_model_args, add_precision_args, add_sampler_args, check_counts, check_out,
                      check_sampler_flags, fps_option, load_pipeline_arg, sampler_flag_values)

__all__ = ["add_subcommands"]


def _duration(seconds: float) -> str:
    """3.1 s, 32 min, 2.5 h: a time estimate at the precision it has."""
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def _time_estimate(t0: float):
    """An ``on_batch`` for :meth:`VideoPipeline.generate`: after the first batch, when more than one batch remains,
    one note with the time of that batch and the estimated total (the first batch includes any warm-up)."""
    def on_batch(done: int, total: int) -> None:
        if on_batch.first is None:
            on_batch.first = done
            if total - done > done:  # more than one batch remains
                dt = time.perf_counter() - t0
                print(f"note: {done} videos in {dt:.1f} s; about {_duration(dt * math.ceil(total / done))} "
                      f"for {total}", file=sys.stderr, flush=True)
    on_batch.first = None
    return on_batch


def _cmd_sample(args) -> int:
    import torch

    out = Path(args.out)
    check_out(out)
    check_counts(args, num=1, batch_size=1, steps=1, frames=1, fps=1)
    if args.guidance is not None and not args.prompt:
        raise ValueError("--guidance needs at least one --prompt (guidance strengthens a text condition)")
    pipe = load_pipeline_arg(args)
    check_sampler_flags(args, pipe.settings("generate", sampler=args.sampler)["sampler"])
    t0 = time.perf_counter()
    videos = pipe.generate(args.prompt or None, num=args.num, num_frames=args.frames, guidance=args.guidance,
                           steps=args.steps, sampler=args.sampler, options=sampler_flag_values(args) or None,
                           seed=args.seed, batch_size=args.batch_size, progress=True,
                           on_batch=_time_estimate(t0))  # prompt-major rows
    dt = time.perf_counter() - t0
    pipe.save_video(videos, out, fps=fps_option(args, pipe.config), nrow=args.num if args.prompt else None)
    if args.save_tensor:
        torch.save(videos, out.with_suffix(".pt"))
    print(f"sampled {len(videos)} videos {tuple(videos.shape[1:])} from {pipe.model.path} (step {pipe.model.step}) "
          f"in {dt:.1f} s ({pipe.precision}) -> {out}")
    for i, prompt in enumerate(args.prompt or []):
        print(f"  row {i}: {prompt!r} (guidance w={pipe.guidance_weight(args.guidance):g})")
    return 0


def add_subcommands(sub) -> None:
    """Register ``sample``."""
    p = sub.add_parser("sample", help="sample videos from a trained checkpoint into a grid video")
    add_model_args(p)
    p.add_argument("--num", type=int, default=8, help="number of videos, per prompt with --prompt (default 8)")
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT",
                   help="caption for a text-conditioned model (repeatable; one grid row per prompt)")
    p.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight w of eq. (5) (default: the run's sample.guidance; 0 = none)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the run's sample.steps)")
    add_sampler_args(p)
    p.add_argument("--frames", type=int, default=None, help="frames per video (default: the training length)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA weights")
    add_precision_args(p)
    p.add_argument("--save-tensor", action="store_true", help="also save the videos as a .pt tensor beside --out")
    p.add_argument("--out", required=True, type=Path, help="output .mp4, .gif or .png (frame strip)")
    p.set_defaults(func=_cmd_sample)
