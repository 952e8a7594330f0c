"""``videodiff eval --protocol NAME``: a published video-prediction protocol (:mod:`videodiff.evaluation.protocols`)
run on a model. Thin: flags -> :meth:`videodiff.VideoPipeline.predict` and
:func:`videodiff.evaluation.protocol_run.run_protocol`, then the table and the JSON."""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["add_protocol_args", "run_protocol_command"]


def add_protocol_args(p) -> None:
    from ..evaluation.protocols import PROTOCOLS

    g = p.add_argument_group("prediction protocols", "Score a model's video prediction as a published table does "
                             "(--protocol with --model or --checkpoint; --real/--fake do not apply).")
    g.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                   help="; ".join(f"{k}: unconditional, {v.samples} samples" if v.given == 0 else
                                  f"{k}: {v.given} -> {v.predicted}, {v.videos} videos x {v.samples} samples"
                                  for k, v in PROTOCOLS.items()))
    g.add_argument("--model", default=None, metavar="NAME", help="with --protocol: a shipped model's name")
    g.add_argument("--method", default=None,
                   help="with --protocol: gradient, replacement, context or several comma-separated (default: the "
                        "model's own, context for a model trained with train.context_frames, else gradient)")
    g.add_argument("--videos", type=int, default=None,
                   help="with --protocol: N test videos (the first N, or a fixed-seed subset where the protocol "
                        "draws one: kinetics600, ucf101; default: the protocol's count)")
    g.add_argument("--samples", type=int, default=None, help="with --protocol: samples per video (default: its K)")
    g.add_argument("--w-r", type=float, default=None, help="with --protocol: w_r of eq. (6) (default: task default)")
    g.add_argument("--no-fvd", action="store_true", help="with --protocol: skip FVD (SSIM/PSNR only)")
    g.add_argument("--save-predictions", type=Path, default=None,
                   help="with --protocol: save {method: (N, K, C, T, H, W)} predictions as a .pt file")
    from .protocol_paper import add_paper_protocol_args

    add_paper_protocol_args(g)  # issue 28: bair, kinetics600, ucf101 (--data-root, --annotations, --c3d-*)


def run_protocol_command(args, command: str) -> int:
    import torch

    from ..evaluation.protocol_run import format_protocol, run_protocol
    from ..evaluation.protocols import get_protocol
    from ..video_pipeline import VideoPipeline
    from .protocol_paper import (check_paper_protocol_args, finish_protocol, is_paper_protocol,
                                 run_paper_protocol_command)

    protocol = get_protocol(args.protocol)
    check_paper_protocol_args(args, protocol)
    methods = tuple(m.strip() for m in (args.method or "").split(",") if m.strip())
    for m in methods:
        if m not in ("gradient", "replacement", "context"):
            raise ValueError(f"--method: expected gradient, replacement, context or several comma-separated, "
                             f"got {m!r}")
    for flag in ("real", "fake"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag} does not apply with --protocol (the protocol fixes its test videos)")
    if (args.model is None) == (args.checkpoint is None):
        raise ValueError("--protocol needs exactly one of --model NAME or --checkpoint RUN")
    for flag in ("videos", "samples", "steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag} must be >= 1, got {value}")
    pipe = VideoPipeline.from_pretrained(args.model or args.checkpoint, device=args.device, precision=args.precision,
                                         compile=args.compile)
    cfg = pipe.config
    methods = tuple(pipe.check_method(m) for m in methods) or (pipe.default_method(),)
    if not is_paper_protocol(protocol) and (cfg.data.image_size != 64 or cfg.data.channels != 1):
        raise ValueError(f"protocol {protocol.name} is 1-channel 64x64; the model makes {cfg.data.channels}-channel "
                         f"{cfg.data.image_size}x{cfg.data.image_size} videos")
    k = protocol.samples if args.samples is None else args.samples
    over = {key: v for key, v in dict(steps=args.steps, sampler=args.sampler, w_r=args.w_r).items() if v is not None}

    def predict(given: torch.Tensor, method: str) -> torch.Tensor:
        return pipe.predict(given, given=protocol.given, frames=protocol.frames, samples=k, method=method,
                            seed=args.seed, batch_size=args.batch_size, progress=not args.no_progress, **over)

    if is_paper_protocol(protocol):  # same pipe and settings (over), predicted chunk by chunk on the datasets
        return run_paper_protocol_command(args, command, protocol, pipe, methods, over)

    kept: dict = {}
    t0 = time.perf_counter()
    results = run_protocol(protocol, predict, methods=methods, videos=args.videos, samples=k, fvd=not args.no_fvd,
                           cache_dir=args.cache_dir, progress=not args.no_progress, keep_predictions=kept)
    results["model"] = {"name": args.model, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
                        "step": pipe.model.step, "frames": cfg.data.num_frames, "precision": pipe.precision,
                        "sampling": {"seed": args.seed, **over}}
    return finish_protocol(args, results, command, t0, kept, format_protocol)

