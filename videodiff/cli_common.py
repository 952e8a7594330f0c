"""Options shared by several subcommands, in one place (no torch import: ``videodiff --help`` stays fast)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .precision import PRECISIONS

__all__ = ["add_precision_args", "check_counts", "check_output_path", "fps_option"]


def fps_option(args, cfg) -> int:
    """``--fps`` where given (0 is refused by :func:`check_counts`, not replaced), else the run's ``sample.fps``."""
    return cfg.sample.fps if args.fps is None else args.fps


def check_counts(args, **minimums: int) -> None:
    """Refuse count options below their minimum before any work: ``check_counts(args, steps=1, context=0)`` checks
    ``--steps`` and ``--context`` where they were given (None means the default applies)."""
    for name, low in minimums.items():
        value = getattr(args, name, None)
        if value is not None and value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def check_output_path(path: Path | None, flag: str = "--out") -> None:
    """An output file's folder must exist (it is not created) and be writable: checked before any work."""
    if path is None:
        return
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder, not a file name")
    if not parent.is_dir():
        raise FileNotFoundError(f"{flag} {path}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {path}: folder {parent} is not writable")


def add_precision_args(p: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` and ``--compile`` (:mod:`videodiff.precision`), for every command that runs a
    trained network. Both default to None: the run's ``sample.precision`` / ``sample.compile``."""
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="network arithmetic: auto (default: bf16 where the CPU or GPU has native bf16, else fp32), "
                        "fp32, or bf16 (autocast; the sampler's math stays fp32)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the U-Net (the first step of each shape compiles: slower start, faster steps)")
