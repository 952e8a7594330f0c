"""``videodiff bench``: train/sample step time, memory and FLOP/s against the machine's matmul peak
(:mod:`videodiff.bench`)."""

from __future__ import annotations

__all__ = ["add_subcommands"]


def _cmd_bench(args) -> int:
    from ..bench.runner import run_and_report

    return run_and_report(args)


def add_subcommands(sub) -> None:
    """Register ``bench``."""
    from ..bench.options import add_arguments as add_bench_arguments  # torch-free

    p = sub.add_parser("bench", help="speed: train/sample step time, memory, FLOP/s vs the machine's matmul peak")
    add_bench_arguments(p)
    p.set_defaults(func=_cmd_bench)
