"""Options shared by several subcommands, in one place (no torch import: ``videodiff --help`` stays fast)."""

from __future__ import annotations

import argparse

from .precision import PRECISIONS

__all__ = ["add_precision_args"]


def add_precision_args(p: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` and ``--compile`` (:mod:`videodiff.precision`), for every command that runs a
    trained network. Both default to None: the run's ``sample.precision`` / ``sample.compile``."""
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="network arithmetic: auto (default: bf16 where the CPU or GPU has native bf16, else fp32), "
                        "fp32, or bf16 (autocast; the sampler's math stays fp32)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the U-Net (the first step of each shape compiles: slower start, faster steps)")
