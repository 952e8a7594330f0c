"""Command line for conditional generation (paper Sec. 3.1, 4.4, Fig. 2): ``videodiff extend | interpolate |
upsample | cascade``. Thin: read inputs, load the model, call :class:`videodiff.VideoPipeline`, write videos.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .conditional_io import check_input, check_text_flags, read_input, task_kwargs, write
from .options import (add_model_args, add_precision_args, add_sampler_args, check_counts, check_out, fps_option,
                      load_pipeline_arg)

__all__ = ["add_subcommands"]


# ------------------------------------------------------------------------------------------------ arguments


def _task_default(task: str, field: str, model_default: str = "the model's sample config") -> str:
    from ..conditional import TASK_DEFAULTS

    value = getattr(TASK_DEFAULTS[task], field)
    return model_default if value is None else str(value)


def _add_sampling_args(p: argparse.ArgumentParser, task: str) -> None:
    p.add_argument("--steps", type=int, default=None,
                   help=f"sampling steps per block (default for {task}: {_task_default(task, 'steps')})")
    add_sampler_args(p, f"default for {task}: {_task_default(task, 'sampler')}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-ema", action="store_true", help="use the raw weights instead of the EMA weights")
    add_precision_args(p)


def _add_method_args(p: argparse.ArgumentParser, task: str) -> None:
    if task == "upsample":
        p.add_argument("--method", choices=["gradient", "replacement"], default="gradient",
                       help="gradient method (eq. 7, default) or replacement of the low frequencies of z_s after "
                            "every step (needs --down area)")
    elif task in ("extend", "predict"):
        p.add_argument("--method", choices=["gradient", "replacement", "context"], default=None,
                       help="gradient method (eq. 6), replacement method (Sec. 3.1), or context: the given frames "
                            "clean in the input of a model trained with train.context_frames (default: context for "
                            "such a model, else gradient)")
    elif task != "cascade":
        p.add_argument("--method", choices=["gradient", "replacement"], default="gradient",
                       help="gradient method (eq. 6, default) or replacement method (Sec. 3.1)")
    p.add_argument("--variant", choices=["marginal", "posterior"], default="marginal",
                   help="replacement draws z_s^a from q(z_s^a|x^a) (eq. 1, default) or q(z_s^a|x^a, z_t^a) (eq. 3)")
    p.add_argument("--w-r", type=float, default=None,
                   help=f"reconstruction weight w_r of eq. (6) (paper: 1; default {_task_default(task, 'w_r')})")
    p.add_argument("--no-clamp", action="store_true",
                   help="do not clamp the gradient method's adjusted prediction to [-1, 1] (default: clamp when the "
                        "model clips x_hat; without it the correction explodes at high noise, see BENCHMARKS.md)")


def _add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path, help="output .mp4, .gif or .png (frame strip)")
    p.add_argument("--compare", action="store_true",
                   help="write a side-by-side grid (input | output [| ground truth]); conditioning frames outlined red")
    p.add_argument("--fps", type=int, default=None)
    p.add_argument("--save-tensor", action="store_true", help="also save the videos as a .pt tensor beside --out")


def _add_text_args(p: argparse.ArgumentParser, what: str = "every block") -> None:
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help=f"caption for a text-conditioned model, used for {what} (default: none, the model's "
                        "unconditional c = 0)")
    p.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight w of eq. (5) with --prompt (default: the run's "
                        "sample.guidance)")


def _add_down_args(p: argparse.ArgumentParser, task: str) -> None:
    p.add_argument("--down", choices=["bilinear", "area"], default=None,
                   help=f"differentiable downsampling D of eq. (7) (default for {task}: {_task_default(task, 'down')})")
    p.add_argument("--w-r-low", type=float, default=None,
                   help="weight of the eq. (7) term (default (H/h)^2, exact for area as t->0; paper: 1)")


def add_subcommands(sub) -> None:
    """Register ``extend``, ``interpolate``, ``upsample`` and ``cascade`` on an argparse subparsers object."""
    p = sub.add_parser("extend", help="autoregressive temporal extension (Sec. 4.4): long videos from an F-frame model")
    add_model_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", type=Path, help="video (.mp4/.gif/...) or .pt tensor (B, C, F, H, W) to extend")
    src.add_argument("--from-samples", type=int, metavar="N", help="start from N unconditional samples")
    p.add_argument("--frames", type=int, default=64, help="total frames of the output (default 64)")
    p.add_argument("--context", type=int, default=None, help="frames each block conditions on (default F/2)")
    p.add_argument("--given", type=int, default=None,
                   help="with --input: how many of its first frames to keep and condition on (default --context)")
    _add_text_args(p)
    _add_method_args(p, "extend")
    _add_sampling_args(p, "extend")
    _add_output_args(p)
    p.set_defaults(func=_cmd_extend)

    p = sub.add_parser("interpolate", help="temporal interpolation (Sec. 3.1): frameskip-k video -> frameskip 1")
    add_model_args(p, "a frameskip-1 model: run directory or checkpoints/step_XXXXXX")
    p.add_argument("--input", required=True, type=Path, help="low frame-rate video or .pt tensor (B, C, F, H, W)")
    p.add_argument("--factor", type=int, required=True, help="frame-rate factor k (output has (L-1)k+1 frames)")
    p.add_argument("--subsample", action="store_true",
                   help="the input is at the model's frame rate: take every k-th frame as key frames and show "
                        "the rest as ground truth with --compare")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many input frames")
    _add_text_args(p)
    _add_method_args(p, "interpolate")
    _add_sampling_args(p, "interpolate")
    _add_output_args(p)
    p.set_defaults(func=_cmd_interpolate)

    p = sub.add_parser("upsample", help="spatial super-resolution by eq. (7) with an unconditional high-res model")
    add_model_args(p, "the high-resolution model: run directory or checkpoints/step_XXXXXX")
    p.add_argument("--input", required=True, type=Path, help="low-resolution video or .pt tensor (B, C, F, h, w)")
    p.add_argument("--low-size", type=int, default=None,
                   help="resize the (square-cropped) input to this size first (default: keep its size)")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many input frames")
    p.add_argument("--context", type=int, default=None, help="high-res frames of the previous window (default F/2)")
    _add_down_args(p, "upsample")
    _add_text_args(p)
    _add_method_args(p, "upsample")
    _add_sampling_args(p, "upsample")
    _add_output_args(p)
    p.set_defaults(func=_cmd_upsample)

    p = sub.add_parser("cascade", help="low-res model -> simultaneous super-resolution and extension (Fig. 2)")
    p.add_argument("--model", "--low", dest="low", default=None, metavar="MODEL",
                   help="low-resolution model to sample from (e.g. 16x64x64, frameskip 4): a shipped model's name "
                        "or a run directory / checkpoint; not needed with --input")
    p.add_argument("--high", default=None, metavar="MODEL",
                   help="high-resolution model (e.g. 9x128x128, frameskip 1), a name or path (default: the one a "
                        "shipped low model names in its metadata, 'cascade_high')")
    p.add_argument("--input", type=Path, default=None, help="low-res video or .pt instead of sampling --low")
    p.add_argument("--num", type=int, default=4, help="low-res samples to draw when no --input (default 4)")
    p.add_argument("--factor", type=int, default=None,
                   help="temporal factor (default: low frameskip / high frameskip from the two configs)")
    p.add_argument("--context", type=int, default=None, help="high-res frames of the previous window (default F/2)")
    p.add_argument("--low-steps", type=int, default=None,
                   help="sampling steps of the low model (default: its sample.steps, with its sample.sampler)")
    _add_down_args(p, "cascade")
    _add_text_args(p, "both models (the low model with guidance --guidance, the high one with --high-guidance)")
    p.add_argument("--high-guidance", type=float, default=0.0, metavar="W",
                   help="guidance weight of the high-resolution model with --prompt (default 0: its conditional "
                        "model without guidance; w > 0 doubles its cost)")
    _add_method_args(p, "cascade")
    _add_sampling_args(p, "cascade")
    _add_output_args(p)
    p.set_defaults(func=_cmd_cascade)


# ------------------------------------------------------------------------------------------------ commands


def _cmd_extend(args) -> int:
    from ..conditional import align_frames

    check_out(args.out)
    check_counts(args, frames=1, context=0, given=1, from_samples=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    pipe = load_pipeline_arg(args)
    cfg = pipe.config
    f_model = cfg.data.num_frames
    context = f_model // 2 if args.context is None else args.context
    if not 0 <= context < f_model:
        raise ValueError(f"--context must be in [0, {f_model}) for this {f_model}-frame model, got {context}")
    kw = task_kwargs(args, pipe, "extend")
    truth, video, given = None, None, 0
    if args.input is not None:
        given = context if args.given is None else args.given
        video = read_input(args.input, channels=cfg.data.channels, size=cfg.data.image_size,
                           step=cfg.data.frameskip, max_frames=args.frames)
        truth = video if video.shape[2] > given else None  # the real continuation, for --compare
        video = video[:, :, :given]
        if video.shape[2] < given:
            print(f"note: {args.input} has only {video.shape[2]} frames at frameskip {cfg.data.frameskip}; "
                  f"conditioning on those", file=sys.stderr)
        given = video.shape[2]
        if args.frames <= given:
            raise ValueError(f"--frames {args.frames} is not more than the {given} given frames of --input: nothing "
                             f"to extend (ask for more --frames, or fewer with --given)")
    t0 = time.perf_counter()
    out = pipe.extend(video, frames=args.frames, num=args.from_samples, context=context, **kw)
    dt = time.perf_counter() - t0
    known = [i < given for i in range(args.frames)]
    rows, marks = [out], [[i < f_model for i in range(args.frames)]]
    if given:
        rows, marks = [align_frames(video, range(given), args.frames), out], [known, known]
        if truth is not None:
            rows.append(align_frames(truth, range(truth.shape[2]), args.frames))
            marks.append(known)
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    print(f"extended {out.shape[0]} videos to {args.frames} frames ({pipe.check_method(args.method)}, context {context}"
          f"{_caption(args)}) with {pipe.model.path} in {dt:.1f} s ({pipe.precision}) -> {args.out}")
    return 0


def _caption(args) -> str:
    return f", prompt {args.prompt!r}" if args.prompt is not None else ""


def _cmd_interpolate(args) -> int:
    from ..conditional import align_frames

    check_out(args.out)
    check_counts(args, factor=1, max_frames=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    pipe = load_pipeline_arg(args)
    cfg = pipe.config
    kw = task_kwargs(args, pipe, "interpolate")
    step = cfg.data.frameskip if args.subsample else 1
    video = read_input(args.input, channels=cfg.data.channels, size=cfg.data.image_size, step=step,
                       max_frames=args.max_frames)
    truth = None
    if args.subsample:
        n = (video.shape[2] - 1) // args.factor * args.factor + 1
        truth, video = video[:, :, :n], video[:, :, :n:args.factor]
    if video.shape[2] < 2:
        raise ValueError(f"--input {args.input}: need at least 2 key frames to interpolate, got {video.shape[2]}")
    t0 = time.perf_counter()
    out = pipe.interpolate(video, args.factor, **kw)
    dt = time.perf_counter() - t0
    total = out.shape[2]
    known = [i % args.factor == 0 for i in range(total)]
    rows, marks = [align_frames(video, range(0, total, args.factor), total), out], [known, known]
    if truth is not None:
        rows.append(truth)
        marks.append(known)
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    s = pipe.settings("interpolate", sampler=args.sampler, steps=args.steps)
    print(f"interpolated {video.shape[2]} -> {total} frames (x{args.factor}, {args.method}, {s['sampler']} "
          f"{s['steps']} steps{_caption(args)}) in {dt:.1f} s ({pipe.precision}) -> {args.out}")
    return 0


def _cmd_upsample(args) -> int:
    from ..conditional import align_frames

    check_out(args.out)
    check_counts(args, low_size=1, max_frames=1, context=0, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    pipe = load_pipeline_arg(args)
    cfg = pipe.config
    kw = task_kwargs(args, pipe, "upsample")
    size = cfg.data.image_size
    video = read_input(args.input, channels=cfg.data.channels, size=args.low_size, max_frames=args.max_frames)
    low = video.shape[-1]
    if low >= size:
        raise ValueError(f"--input {args.input} is {low}x{low}, not below the model's {size}x{size}; "
                         f"pass --low-size to downsample it first")
    t0 = time.perf_counter()
    out = pipe.upsample(video, context=args.context, **kw)
    dt = time.perf_counter() - t0
    f = out.shape[2]
    rows, marks = [align_frames(video, range(f), f, size=size), out], [[True] * f, [False] * f]
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    s = pipe.settings("upsample", sampler=args.sampler, steps=args.steps, down=args.down)
    method = "eq. 7" if args.method == "gradient" else "low-frequency replacement"
    print(f"upsampled {f} frames {low}->{size} ({method}, {s['down_mode']}, {s['sampler']} {s['steps']} "
          f"steps{_caption(args)}) in {dt:.1f} s ({pipe.precision}) -> {args.out}")
    return 0


def _cmd_cascade(args) -> int:
    from ..conditional import align_frames
    from ..video_pipeline import VideoPipeline

    check_out(args.out)
    check_counts(args, num=1, factor=1, context=0, low_steps=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    load = dict(ema=not args.no_ema, device=args.device, precision=args.precision, compile=args.compile)
    if args.input is None and args.low is None:
        raise ValueError("cascade needs --model (a low-resolution model to sample from) or --input")
    if args.input is None:
        pipe = VideoPipeline.from_pretrained(args.low, **load)
        if args.high is None and "cascade_high" not in pipe.model.meta:
            raise ValueError("cascade needs --high (the high-resolution model); only a shipped low model names "
                             "its own")
        high = VideoPipeline.from_pretrained(args.high or pipe.model.meta["cascade_high"], **load)
        video = None
    else:
        if args.high is None:
            raise ValueError("cascade with --input needs --high (the high-resolution model)")
        pipe = high = VideoPipeline.from_pretrained(args.high, **load)
        video = read_input(args.input, channels=high.config.data.channels, size=None)
        if args.factor is None:
            raise ValueError("--factor is required with --input (the input's frameskip is unknown)")
    kw = task_kwargs(args, high, "cascade")
    del kw["prompt"], kw["guidance"]
    t0 = time.perf_counter()
    out, low = pipe.cascade(args.prompt, high=high, video=video, num=args.num, guidance=args.guidance,
                            high_guidance=args.high_guidance, factor=args.factor, low_steps=args.low_steps,
                            context=args.context, **kw)
    dt = time.perf_counter() - t0
    total, size = out.shape[2], high.config.data.image_size
    factor = max((total - 1) // max(low.shape[2] - 1, 1), 1)
    known = [i % factor == 0 for i in range(total)]
    rows, marks = [align_frames(low, range(0, total, factor), total, size=size), out], [known, [False] * total]
    write(args, out, fps=fps_option(args, high.config), compare_rows=rows, compare_known=marks)
    if args.save_tensor:
        _save_low(low, args.out)
    print(f"cascade: {low.shape[2]} frames {low.shape[-1]}px -> {total} frames {size}px (x{factor} in time, "
          f"{high.model.path}{_caption(args)}) in {dt:.1f} s ({high.precision}) -> {args.out}")
    return 0


def _save_low(video, out: Path) -> None:
    """With --save-tensor, the cascade also keeps its low-resolution input beside the output (``*_low.pt``)."""
    import torch

    torch.save(video, out.with_name(out.stem + "_low.pt"))
