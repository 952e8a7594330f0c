"""Command line: ``videodiff train`` / ``videodiff sample`` / ``videodiff config``. Thin: parse, call the library,
report. No algorithm lives here."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .cli_common import add_precision_args, check_counts, check_output_path, fps_option

__all__ = ["main", "add_precision_args"]

VIDEO_EXTS = (".mp4", ".gif", ".png")


def check_out(out: Path) -> None:
    """Fail before any work when ``--out`` has an extension no writer handles, or its folder is missing or not
    writable."""
    if out.suffix.lower() not in VIDEO_EXTS:
        raise ValueError(f"--out must end in one of {VIDEO_EXTS}, got {out.name}")
    check_output_path(out)


def add_model_args(p: argparse.ArgumentParser, checkpoint_help: str = "run directory or checkpoints/step_XXXXXX"):
    """``--checkpoint PATH`` or ``--model NAME`` (a model shipped with the package), exactly one of them."""
    from .pretrained import available_models

    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", type=Path, help=checkpoint_help)
    g.add_argument("--model", metavar="NAME",
                   help=f"a model shipped with the package ({', '.join(available_models()) or 'none shipped'})")


def load_model_arg(args):
    """The model named by :func:`add_model_args`' options (EMA weights unless ``--no-ema``), in the precision of
    :func:`add_precision_args`' options."""
    from .pipeline import load_model

    kw = dict(ema=not args.no_ema, device=args.device, precision=args.precision, compile=args.compile)
    if args.model is not None:
        return load_model(args.model, pretrained=True, **kw)
    return load_model(args.checkpoint, pretrained=False, **kw)


def check_sampler_flags(args, sampler: str) -> None:
    """``--gamma`` belongs to the ancestral sampler and ``--eta`` to DDIM: refuse them with any other sampler."""
    for flag, owner in (("gamma", "ancestral"), ("eta", "ddim")):
        if getattr(args, flag, None) is not None and sampler != owner:
            raise ValueError(f"--{flag} applies to the {owner} sampler only, not to {sampler} (set --sampler {owner})")


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="experiment YAML (see configs/); defaults if omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config option, e.g. --set train.steps=200 (repeatable)")


def _cmd_train(args) -> int:
    from .config import load_config
    from .train import train

    cfg = load_config(args.config, args.overrides)
    t0 = time.perf_counter()
    res = train(cfg, args.out, resume=not args.no_resume, progress=not args.no_progress)
    mins = (time.perf_counter() - t0) / 60
    if not res.is_main:  # under torchrun, rank 0 reports
        return 0
    steps = res.step if res.step is not None else cfg.train.steps
    print(f"\ntrained {cfg.name} to step {steps} of {cfg.train.steps} in {mins:.1f} min; final loss {res.final_loss:.4f}")
    print(f"  checkpoint : {res.checkpoint}")
    if res.skipped_steps:
        print(f"  skipped    : {res.skipped_steps} steps with a non-finite loss or gradient norm (train.on_nonfinite)")
    if res.loss_plot:
        print(f"  loss curve : {res.loss_plot}")
    for p in res.samples:
        print(f"  samples    : {p}")
    board = res.run_dir / "tensorboard"
    if "tensorboard" in cfg.train.loggers and board.is_dir():
        print(f"  monitoring : tensorboard --logdir {board}")
    return 0


def _cmd_sample(args) -> int:
    import torch

    from .io import save_video_grid
    from .pipeline import sample_videos

    out = Path(args.out)
    check_out(out)
    check_counts(args, num=1, batch_size=1, steps=1, frames=1, fps=1)
    if args.guidance is not None and not args.prompt:
        raise ValueError("--guidance needs at least one --prompt (guidance strengthens a text condition)")
    loaded = load_model_arg(args)
    check_sampler_flags(args, args.sampler or loaded.config.sample.sampler)
    kwargs = {}
    if args.gamma is not None:
        kwargs["gamma"] = args.gamma
    if args.eta is not None:
        kwargs["eta"] = args.eta
    common = dict(steps=args.steps, sampler=args.sampler, seed=args.seed, batch_size=args.batch_size,
                  num_frames=args.frames, progress=True, **kwargs)
    t0 = time.perf_counter()
    if args.prompt:  # text-to-video: one grid row of --num videos per prompt
        from .pipeline import sample_from_prompts

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


def _cmd_config(args) -> int:
    import yaml

    from .config import config_to_dict, load_config

    print(yaml.safe_dump(config_to_dict(load_config(args.config, args.overrides)), sort_keys=False), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videodiff", description="Video Diffusion Models (Ho, Salimans et al. 2022)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a video diffusion model (resumes from RUN_DIR's latest checkpoint)")
    _add_config_args(p)
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if RUN_DIR has checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="sample videos from a trained checkpoint into a grid video")
    add_model_args(p)
    p.add_argument("--num", type=int, default=8, help="number of videos, per prompt with --prompt (default 8)")
    p.add_argument("--prompt", action="append", default=[], metavar="TEXT",
                   help="caption for a text-conditioned model (repeatable; one grid row per prompt)")
    p.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="classifier-free guidance weight w of eq. (5) (default: the run's sample.guidance; 0 = none)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the run's sample.steps)")
    p.add_argument("--sampler", choices=["ancestral", "ddim", "dpmpp2m"], default=None,
                   help="default: the run's sample.sampler")
    p.add_argument("--gamma", type=float, default=None, help="ancestral stochasticity, eq. (4)")
    p.add_argument("--eta", type=float, default=None, help="DDIM stochasticity")
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

    from .cli_eval import add_subcommands as add_eval_subcommands

    add_eval_subcommands(sub)  # videodiff eval, videodiff train-classifier

    p = sub.add_parser("config", help="print the resolved config (defaults + YAML + overrides)")
    _add_config_args(p)
    p.set_defaults(func=_cmd_config)

    from .cli_conditional import add_subcommands as add_conditional  # extend, interpolate, upsample, cascade

    add_conditional(sub)

    from .cli_models import add_subcommands as add_model_commands  # demo, app, export

    add_model_commands(sub)

    from .cli_shards import add_subcommands as add_shard_commands  # shards (WebDataset tar files)

    add_shard_commands(sub)

    from .bench.options import add_arguments as add_bench_arguments  # torch-free

    p = sub.add_parser("bench", help="speed: train/sample step time, memory, FLOP/s vs the machine's matmul peak")
    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)
    return parser


def _cmd_bench(args) -> int:
    from .bench.runner import run_and_report

    return run_and_report(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of every subcommand; errors print one line naming the bad file or option (exit status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded with results (e.g. by `videodiff eval`) so they name the command that made them
    from .checkpoint import CheckpointError
    from .io import VideoReadError
    from .runtime import tune_malloc

    tune_malloc()  # fewer page faults on CPU (videodiff/runtime.py); VIDEODIFF_MALLOC_TUNING=0 turns it off

    try:
        return args.func(args)
    except (ValueError, OSError, CheckpointError, VideoReadError) as e:
        # Expected failures (bad values, bad or unreadable files, I/O: disk full, permission denied): one line
        # naming the file or option. Anything else is a bug and keeps its traceback.
        print(f"videodiff: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("videodiff: interrupted (the latest checkpoint is kept; rerun the same command to resume)",
              file=sys.stderr)
        return 130


def one_line(e: BaseException) -> str:
    """The message of ``e`` on one line (an OSError with its file name, as Python formats it)."""
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
