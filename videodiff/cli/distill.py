"""``videodiff distill``: progressive distillation of a trained model into a few-step DDIM student (Salimans & Ho
2022). Thin: parse, call :func:`videodiff.distill.distill`, report."""

from __future__ import annotations

import time
from pathlib import Path

from .options import add_config_args

__all__ = ["add_subcommands"]


def _cmd_distill(args) -> int:
    from ..distill import distill, distill_config

    cfg = distill_config(args.model, target_steps=args.target_steps, start_steps=args.start_steps,
                         config=args.config, overrides=args.overrides)
    t0 = time.perf_counter()
    res = distill(cfg, args.out, resume=not args.no_resume, progress=not args.no_progress)
    mins = (time.perf_counter() - t0) / 60
    dc = cfg.distill
    if res.stopped_early:
        print(f"\nstopped by distill.max_seconds at step {res.step} after {mins:.1f} min; rerun the same command to "
              f"resume")
    else:
        print(f"\ndistilled {dc.source} to {dc.target_steps} DDIM steps (step {res.step}) in {mins:.1f} min")
    for row in res.rounds:
        print(f"  round {row['round']}: {row['teacher_steps']} -> {row['student_steps']} steps, loss "
              f"{row['loss']:.4g}, {row['seconds']:.1f} s")
    print(f"  model      : {res.run_dir} (videodiff sample --checkpoint {res.run_dir}: DDIM, {dc.target_steps} steps)")
    print(f"  checkpoint : {res.checkpoint}")
    return 0


def add_subcommands(sub) -> None:
    """Register ``distill``."""
    p = sub.add_parser("distill", help="progressive distillation of a model into a few-step DDIM student "
                                       "(resumes from RUN_DIR's latest checkpoint)")
    p.add_argument("--model", required=True, metavar="NAME|RUN",
                   help="the teacher: a shipped model's name or a run directory / checkpoint (its EMA weights)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run directory of the distillation")
    p.add_argument("--target-steps", type=int, default=None,
                   help="DDIM steps of the final student (default: distill.target_steps, 4)")
    p.add_argument("--start-steps", type=int, default=None,
                   help="DDIM steps of the first teacher, target x 2^rounds (default: distill.start_steps, 64)")
    add_config_args(p)
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if RUN_DIR has checkpoints")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_distill)
