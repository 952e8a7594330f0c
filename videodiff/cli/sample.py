"""``videodiff sample``: videos from a trained checkpoint or a shipped model (text-to-video with ``--prompt``, eq. 5
guidance) into a grid video. Thin: parse, call :mod:`videodiff.pipeline`, write."""

from __future__ import annotations

import time
from pathlib import Path

from .options import (add_model_args, add_precision_args, add_sampler_args, check_counts, check_out,
                      check_sampler_flags, fps_option, load_model_arg, sampler_flag_values)

__all__ = ["add_subcommands"]


def _cmd_sample(args) -> int:
    import torch

    from ..io import save_video_grid
    from ..pipeline import sample_videos

    out = Path(args.out)
    check_out(out)
    check_counts(args, num=1, batch_size=1, steps=1, frames=1, fps=1)
    if args.guidance is not None and not args.prompt:
        raise ValueError("--guidance needs at least one --prompt (guidance strengthens a text condition)")
    loaded = load_model_arg(args)
    check_sampler_flags(args, args.sampler or loaded.config.sample.sampler)
    kwargs = sampler_flag_values(args)
    common = dict(steps=args.steps, sampler=args.sampler, seed=args.seed, batch_size=args.batch_size,
                  num_frames=args.frames, progress=True, **kwargs)
    t0 = time.perf_counter()
    if args.prompt:  # text-to-video: one grid row of --num videos per prompt
        from ..pipeline import sample_from_prompts

        w = args.guidance if args.guidance is not None else loaded.config.sample.guidance
        videos = sample_from_prompts(loaded.denoiser, loaded.config, args.prompt, args.num, guidance=w, **common)
    else:
        videos = sample_videos(loaded.denoiser, loaded.config, args.num, **common)
    dt = time.perf_counter() - t0
    save_video_grid(videos, out, fps=fps_option(args, loaded.config), nrow=args.num if args.prompt else None)
    if args.save_tensor:
        torch.save(videos, out.with_suffix(".pt"))
    print(f"sampled {len(videos)} videos {tuple(videos.shape[1:])} from {loaded.path} (step {loaded.step}) "
          f"in {dt:.1f} s ({loaded.precision}) -> {out}")
    for i, prompt in enumerate(args.prompt or []):
        print(f"  row {i}: {prompt!r} (guidance w={w:g})")
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
