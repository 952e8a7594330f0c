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

    cfg = load_config(args.config, args.overrides)
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
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run directory")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if RUN_DIR has checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("config", help="print the resolved config (defaults + YAML + overrides)")
    add_config_args(p)
    p.set_defaults(func=_cmd_config)
