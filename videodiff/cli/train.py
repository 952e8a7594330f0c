"""``videodiff train`` and ``videodiff config``: train a model from an experiment config (resuming from the run's
latest checkpoint), print a resolved config. Thin: parse, call :func:`videodiff.train.train`, report."""

from __future__ import annotations

import time
from pathlib import Path

from .options import add_config_args

__all__ = ["add_subcommands", "report"]


def _cmd_train(args) -> int:
    from ..config import load_config
    from ..train import train

    if args.gpus < 1 or not 0 < args.mfu <= 1:
        raise ValueError(f"--gpus must be >= 1 and --mfu in (0, 1], got {args.gpus} and {args.mfu}")
    if args.out is None and not args.dry_run:
        raise ValueError("videodiff train needs --out RUN_DIR (only --dry-run runs without one)")
    cfg = load_config(args.config, args.overrides)
    if args.dry_run:  # the plan and a data check; nothing is trained or written
        from ..bench.plan import check_data, format_plan, plan_recipe

        print(format_plan(plan_recipe(cfg, gpus=args.gpus, mfu=args.mfu)))
        print(check_data(cfg))
        return 0
    t0 = time.perf_counter()
    res = train(cfg, args.out, resume=not args.no_resume, progress=not args.no_progress)
    return report(cfg, res, t0)


def report(cfg, res, t0: float) -> int:
    """The lines ``train`` and ``finetune`` print at the end of a run."""
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


def _cmd_config(args) -> int:
    import yaml

    from ..config import config_to_dict, load_config

    print(yaml.safe_dump(config_to_dict(load_config(args.config, args.overrides)), sort_keys=False), end="")
    return 0


def add_subcommands(sub) -> None:
    """Register ``train`` and ``config``."""
    p = sub.add_parser("train", help="train a video diffusion model (resumes from RUN_DIR's latest checkpoint)")
    add_config_args(p)
    p.add_argument("--out", type=Path, metavar="RUN_DIR", help="run directory (required unless --dry-run)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if RUN_DIR has checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="print the run's plan (parameters, FLOPs per step, memory per GPU, GPU-hours) and read the "
                        "first clip of each data split, without training")
    p.add_argument("--gpus", type=int, default=8, help="--dry-run: GPUs the plan assumes (default 8)")
    p.add_argument("--mfu", type=float, default=0.35, help="--dry-run: model-FLOP utilisation (default 0.35)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("config", help="print the resolved config (defaults + YAML + overrides)")
    add_config_args(p)
    p.set_defaults(func=_cmd_config)
