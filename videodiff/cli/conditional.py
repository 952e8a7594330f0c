"""Command line for conditional generation (paper Sec. 3.1, 4.4, Fig. 2): ``videodiff extend | interpolate |
upsample | cascade``. Thin: read inputs, load models, call :mod:`videodiff.conditional`, write videos.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .options import add_model_args, add_precision_args, add_sampler_args, check_counts, check_out, fps_option, load_model_arg
from .conditional_io import (check_input, check_text_flags, device_of, read_input, seeded_generator,
                                     sampling_options, text_denoiser, write)

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
    from ..conditional import align_frames, extend

    check_out(args.out)
    check_counts(args, frames=1, context=0, given=1, from_samples=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    loaded = load_model_arg(args)
    cfg, dev = loaded.config, device_of(loaded)
    f_model = cfg.data.num_frames
    context = f_model // 2 if args.context is None else args.context
    if not 0 <= context < f_model:
        raise ValueError(f"--context must be in [0, {f_model}) for this {f_model}-frame model, got {context}")
    if args.frames < 1:
        raise ValueError(f"--frames must be >= 1, got {args.frames}")
    opts = sampling_options(args, cfg, "extend")
    truth = None
    if args.input is not None:
        given = context if args.given is None else args.given
        if given < 1:
            raise ValueError(f"--given must be >= 1, got {given}")
        video = read_input(args.input, channels=cfg.data.channels, size=cfg.data.image_size,
                            step=cfg.data.frameskip, max_frames=args.frames)
        truth = video if video.shape[2] > given else None  # the real continuation, for --compare
        video, start = video[:, :, :given], dict(video=video[:, :, :given].to(dev))
        if video.shape[2] < given:
            print(f"note: {args.input} has only {video.shape[2]} frames at frameskip {cfg.data.frameskip}; "
                  f"conditioning on those", file=sys.stderr)
        given = video.shape[2]
        if args.frames <= given:
            raise ValueError(f"--frames {args.frames} is not more than the {given} given frames of --input: nothing "
                             f"to extend (ask for more --frames, or fewer with --given)")
    else:
        if args.from_samples < 1:
            raise ValueError(f"--from-samples must be >= 1, got {args.from_samples}")
        given = 0
        start = dict(num_videos=args.from_samples, frame_shape=(cfg.data.channels, cfg.data.image_size,
                                                                 cfg.data.image_size), device=dev)
    num = start["video"].shape[0] if "video" in start else start["num_videos"]
    den, text = text_denoiser(loaded, args.prompt, num, args.guidance)
    t0 = time.perf_counter()
    out = extend(den, cfg.diffusion.schedule, total_frames=args.frames, block_frames=f_model,
                 context=context, method=args.method, variant=args.variant,
                 generator=seeded_generator(args.seed, dev),
                 **start, **text, **opts).float().cpu()
    dt = time.perf_counter() - t0
    known = [i < given for i in range(args.frames)]
    rows, marks = None, None
    if given:
        rows, marks = [align_frames(video, range(given), args.frames), out], [known, known]
        if truth is not None:
            rows.append(align_frames(truth, range(truth.shape[2]), args.frames))
            marks.append(known)
    else:
        rows, marks = [out], [[i < f_model for i in range(args.frames)]]
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    print(f"extended {out.shape[0]} videos to {args.frames} frames ({args.method}, context {context}"
          f"{_caption(args)}) with {loaded.path} in {dt:.1f} s -> {args.out}")
    return 0


def _caption(args) -> str:
    return f", prompt {args.prompt!r}" if args.prompt is not None else ""


def _cmd_interpolate(args) -> int:
    from ..conditional import align_frames, interpolate

    check_out(args.out)
    check_counts(args, factor=1, max_frames=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    loaded = load_model_arg(args)
    cfg, dev = loaded.config, device_of(loaded)
    opts = sampling_options(args, cfg, "interpolate")
    step = cfg.data.frameskip if args.subsample else 1
    video = read_input(args.input, channels=cfg.data.channels, size=cfg.data.image_size, step=step,
                        max_frames=args.max_frames)
    truth = None
    if args.subsample:
        n = (video.shape[2] - 1) // args.factor * args.factor + 1
        truth, video = video[:, :, :n], video[:, :, :n:args.factor]
    if video.shape[2] < 2:
        raise ValueError(f"--input {args.input}: need at least 2 key frames to interpolate, got {video.shape[2]}")
    den, text = text_denoiser(loaded, args.prompt, video.shape[0], args.guidance)
    t0 = time.perf_counter()
    out = interpolate(den, cfg.diffusion.schedule, video.to(dev), args.factor, block_frames=cfg.data.num_frames,
                      method=args.method, variant=args.variant, generator=seeded_generator(args.seed, dev), **text,
                      **opts).float().cpu()
    dt = time.perf_counter() - t0
    total = out.shape[2]
    keys = range(0, total, args.factor)
    known = [i % args.factor == 0 for i in range(total)]
    rows, marks = [align_frames(video, keys, total), out], [known, known]
    if truth is not None:
        rows.append(truth)
        marks.append(known)
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    print(f"interpolated {video.shape[2]} -> {total} frames (x{args.factor}, {args.method}, {opts['sampler']} "
          f"{opts['steps']} steps{_caption(args)}) in {dt:.1f} s -> {args.out}")
    return 0


def _cmd_upsample(args) -> int:
    from ..conditional import align_frames, upsample

    check_out(args.out)
    check_counts(args, low_size=1, max_frames=1, context=0, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    loaded = load_model_arg(args)
    cfg, dev = loaded.config, device_of(loaded)
    opts = sampling_options(args, cfg, "upsample")
    if args.method == "replacement" and opts["down_mode"] != "area":
        raise ValueError("--method replacement replaces the low frequencies through area downsampling: "
                         "use --down area")
    size = cfg.data.image_size
    video = read_input(args.input, channels=cfg.data.channels, size=args.low_size, max_frames=args.max_frames)
    low = video.shape[-1]
    if low >= size:
        raise ValueError(f"--input {args.input} is {low}x{low}, not below the model's {size}x{size}; "
                         f"pass --low-size to downsample it first")
    if opts["down_mode"] == "area" and size % low:
        raise ValueError(f"--down area needs an integer factor: {size} is not a multiple of the input's {low}; "
                         f"use --down bilinear or --low-size {size // 2}")
    den, text = text_denoiser(loaded, args.prompt, video.shape[0], args.guidance)
    t0 = time.perf_counter()
    out = upsample(den, cfg.diffusion.schedule, video.to(dev), size=size, block_frames=cfg.data.num_frames,
                   context=args.context, method=args.method, variant=args.variant,
                   generator=seeded_generator(args.seed, dev), **text, **opts).float().cpu()
    dt = time.perf_counter() - t0
    f = out.shape[2]
    rows, marks = [align_frames(video, range(f), f, size=size), out], [[True] * f, [False] * f]
    write(args, out, fps=fps_option(args, cfg), compare_rows=rows, compare_known=marks)
    method = "eq. 7" if args.method == "gradient" else "low-frequency replacement"
    print(f"upsampled {f} frames {low}->{size} ({method}, {opts['down_mode']}, {opts['sampler']} {opts['steps']} "
          f"steps{_caption(args)}) in {dt:.1f} s -> {args.out}")
    return 0


def _cmd_cascade(args) -> int:
    from ..conditional import align_frames, cascade
    from ..data.transforms import to_channels
    from ..pipeline import load_model, sample_from_prompts, sample_videos

    check_out(args.out)
    check_counts(args, num=1, factor=1, context=0, low_steps=1, steps=1, fps=1)
    check_input(args.input)
    check_text_flags(args)
    kw = dict(ema=not args.no_ema, device=args.device, precision=args.precision, compile=args.compile)
    low = None
    if args.input is None:
        if args.low is None:
            raise ValueError("cascade needs --model (a low-resolution model to sample from) or --input")
        low = load_model(args.low, **kw)
    high_name = args.high or (low.meta.get("cascade_high") if low is not None else None)
    if high_name is None:
        raise ValueError("cascade needs --high (the high-resolution model); only a shipped low model names its own")
    high = load_model(high_name, **kw)
    hcfg, dev = high.config, device_of(high)
    size = hcfg.data.image_size
    opts = sampling_options(args, hcfg, "cascade")
    if args.input is not None:
        video = read_input(args.input, channels=hcfg.data.channels, size=None)
        low_fs = None
    else:
        lcfg = low.config
        common = dict(steps=args.low_steps, seed=args.seed, progress=True)
        if args.prompt is not None:
            w = lcfg.sample.guidance if args.guidance is None else args.guidance
            video = sample_from_prompts(low.denoiser, lcfg, [args.prompt], args.num, guidance=w, **common)
        else:
            video = sample_videos(low.denoiser, lcfg, args.num, **common)
        b, c, f, h, w_ = video.shape
        video = to_channels(video.transpose(1, 2).flatten(0, 1), hcfg.data.channels)
        video = video.reshape(b, f, -1, h, w_).transpose(1, 2)
        low_fs = lcfg.data.frameskip
    factor = args.factor
    if factor is None:
        if low_fs is None:
            raise ValueError("--factor is required with --input (the input's frameskip is unknown)")
        if low_fs % hcfg.data.frameskip:
            raise ValueError(f"low frameskip {low_fs} is not a multiple of the high model's {hcfg.data.frameskip}; "
                             f"pass --factor")
        factor = low_fs // hcfg.data.frameskip
    lsize = video.shape[-1]
    if lsize > size:
        raise ValueError(f"low-resolution frames ({lsize}) are larger than the high model's {size}")
    den, text = text_denoiser(high, args.prompt, video.shape[0], args.high_guidance)
    t0 = time.perf_counter()
    out = cascade(den, hcfg.diffusion.schedule, video.to(dev), size=size, factor=factor,
                  block_frames=hcfg.data.num_frames, context=args.context, variant=args.variant,
                  generator=seeded_generator(args.seed + 1, dev), **text, **opts).float().cpu()
    dt = time.perf_counter() - t0
    total = out.shape[2]
    known = [i % factor == 0 for i in range(total)]
    rows, marks = [align_frames(video, range(0, total, factor), total, size=size), out], [known, [False] * total]
    write(args, out, fps=fps_option(args, hcfg), compare_rows=rows, compare_known=marks)
    if args.save_tensor:
        _save_low(video, args.out)
    print(f"cascade: {video.shape[2]} frames {lsize}px -> {total} frames {size}px (x{factor} in time, "
          f"{high.path}{_caption(args)}) in {dt:.1f} s -> {args.out}")
    return 0


def _save_low(video, out: Path) -> None:
    """With --save-tensor, the cascade also keeps its low-resolution input beside the output (``*_low.pt``)."""
    import torch

    torch.save(video, out.with_name(out.stem + "_low.pt"))
