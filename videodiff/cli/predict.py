"""Command line for video prediction (paper Sec. 3.1, 4.4): ``videodiff predict``. Thin: read the input, load the
model, call :meth:`videodiff.VideoPipeline.predict`, write the videos (and the tensor)."""

from __future__ import annotations

import time
from pathlib import Path

from .conditional import _add_method_args, _add_sampling_args, _add_text_args
from .conditional_io import check_input, check_text_flags, read_input, task_kwargs
from .options import add_model_args, check_counts, check_out, fps_option, load_pipeline_arg

__all__ = ["add_subcommands"]


def add_subcommands(sub) -> None:
    """Register ``predict`` on ``videodiff``'s subparsers."""
    p = sub.add_parser("predict", help="video prediction: K continuations of each input from its first C frames "
                                       "(gradient method, eq. 6, or replacement)",
                       description="Continue each input video from its first --given frames to --frames frames, "
                                   "--samples times, with an unconditional model (autoregressively beyond its frame "
                                   "count). Output: a grid, one row per sample (with --compare: the ground truth "
                                   "first, conditioning frames outlined).")
    add_model_args(p)
    p.add_argument("--input", required=True, type=Path,
                   help="video file (.mp4/.gif/...) or .pt tensor (B, C, F, H, W) in [-1, 1]")
    p.add_argument("--given", type=int, required=True, metavar="C", help="given (conditioning) frames")
    p.add_argument("--frames", type=int, required=True, metavar="T", help="total frames of each output (T > C)")
    p.add_argument("--samples", type=int, default=1, metavar="K", help="continuations per input video (default 1)")
    p.add_argument("--context", type=int, default=None,
                   help="frames each block conditions on (default: all given frames the window holds, C or F-1)")
    p.add_argument("--batch-size", type=int, default=16, help="continuations sampled at once (default 16)")
    _add_text_args(p, "every continuation")
    _add_method_args(p, "predict")
    _add_sampling_args(p, "predict")
    p.add_argument("--out", required=True, type=Path, help="output .mp4, .gif or .png (frame strip)")
    p.add_argument("--compare", action="store_true",
                   help="one row per input: ground truth (where the input has it), then the samples")
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--save-tensor", action="store_true",
                   help="also save the predictions (B, K, C, T, H, W) as a .pt tensor beside --out")
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args) -> int:
    import torch

    from ..conditional import comparison_grid
    from ..io import save_video_grid, write_video

    check_out(args.out)
    check_counts(args, given=1, frames=2, samples=1, context=0, batch_size=1, steps=1, fps=1)
    if args.frames <= args.given:
        raise ValueError(f"--frames ({args.frames}) must exceed --given ({args.given}): nothing to predict")
    check_input(args.input)
    check_text_flags(args)
    pipe = load_pipeline_arg(args)
    cfg = pipe.config
    f_model = cfg.data.num_frames
    if args.context is not None and not 0 <= args.context < f_model:
        raise ValueError(f"--context must be in [0, {f_model}) for this {f_model}-frame model, got {args.context}")
    kw = task_kwargs(args, pipe, "predict")
    video = read_input(args.input, channels=cfg.data.channels, size=cfg.data.image_size, step=cfg.data.frameskip,
                       max_frames=args.frames)
    if video.shape[2] < args.given:
        raise ValueError(f"--input {args.input}: {video.shape[2]} frames at the model's frameskip "
                         f"{cfg.data.frameskip}, fewer than --given {args.given}")
    t0 = time.perf_counter()
    out = pipe.predict(video[:, :, : args.given], given=args.given, frames=args.frames, samples=args.samples,
                       context=args.context, batch_size=args.batch_size, **kw)  # (B, K, C, T, H, W)
    dt = time.perf_counter() - t0
    s = pipe.settings("predict", sampler=args.sampler, steps=args.steps)
    b, k = out.shape[:2]
    fps = fps_option(args, cfg)
    if args.compare:  # one grid row per input: ground truth (where the input has it), then the K samples
        cols = [out[:, j] for j in range(k)]
        if video.shape[2] > args.given:
            truth = torch.full_like(out[:, 0], -1.0)
            n = min(video.shape[2], args.frames)
            truth[:, :, :n] = video[:, :, :n]
            cols.insert(0, truth)
        known = [i < args.given for i in range(args.frames)]
        write_video(args.out, comparison_grid(cols, [known] * len(cols)), fps=fps)
    else:
        save_video_grid(out.flatten(0, 1), args.out, fps=fps)
    if args.save_tensor:
        torch.save(out, args.out.with_suffix(".pt"))
    print(f"predicted {b} x {k} continuations, {args.given} -> {args.frames} frames ({pipe.check_method(args.method)}, "
          f"{s['sampler']} {s['steps']} steps, {f_model}-frame model) with {pipe.model.path} in {dt:.1f} s "
          f"({pipe.precision}) -> {args.out}")
    return 0
