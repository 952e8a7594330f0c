"""Command line: ``videodiff <command>``. Thin: parse, call the library, report; no algorithm lives here.

Each module of this package registers one group of subcommands (``add_subcommands(sub)``) from the shared options
of :mod:`.options`; :func:`main` is the one entry point and the one error handler (expected errors print one line
naming the bad file or option, exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from . import bench, conditional, distill, eval, finetune, models, predict, sample, shards, train

__all__ = ["main", "build_parser", "one_line", "COMMAND_GROUPS"]

# In the order of `videodiff --help`.
COMMAND_GROUPS = (train, finetune, sample, eval, conditional, predict, models, shards, bench, distill)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videodiff", description="Video Diffusion Models (Ho, Salimans et al. 2022)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of every subcommand; errors print one line naming the bad file or option (exit status 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded with results (e.g. by `videodiff eval`) so they name the command that made them
    from ..checkpoint import CheckpointError
    from ..io import VideoReadError
    from ..runtime import tune_malloc

    tune_malloc()  # fewer page faults on CPU (videodiff/runtime.py); VIDEODIFF_MALLOC_TUNING=0 turns it off

    try:
        from .checks import check_args

        check_args(args)  # values no command can use (NaN weights, empty prompts, ...), before any work
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
