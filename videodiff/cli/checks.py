"""Checks of parsed command-line values that hold for every command, run by :func:`videodiff.cli.main` before the
command starts (so no command can forget them), and of ``.pt`` video inputs. Each failure is one ValueError naming
the option and what it expects.

- every float option (``--guidance``, ``--weights``, ``--w-r``, sampler options, ...) must be finite;
- ``--prompt`` must not be empty or blank (leave it out for the unconditional model);
- ``--seed`` must fit a 64-bit generator seed: 0 ... 2**63 - 1;
- options that name a folder (``train --out``, ``finetune --out``, ``clips --out``, ``eval --cache-dir``, ...) must
  not name an existing file;
- ``bench``: ``--repeats``, ``--batch``, ``--threads`` and ``--rounds`` >= 1, ``--warmup`` >= 0;
- flags of one conditioning method given with the other (``--variant`` with ``--method gradient``; ``--w-r`` or
  ``--no-clamp`` with ``--method replacement``) are refused rather than ignored, as a sampler's flags are with
  another sampler.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

__all__ = ["check_args", "FOLDER_OPTIONS", "MAX_SEED", "check_video_tensor"]

MAX_SEED = 2**63 - 1

# (command, attribute): options that name a folder the command writes into or reads from.
FOLDER_OPTIONS = {("train", "out"), ("demo", "out"), ("app", "out"), ("shards", "out"), ("train-classifier", "out"),
                  ("export", "out"), ("eval", "cache_dir"), ("finetune", "out"), ("clips", "out"),
                  ("distill", "out")}

# bench: option -> minimum
_BENCH_MINIMUMS = {"repeats": 1, "batch": 1, "threads": 1, "rounds": 1, "warmup": 0}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_args(args) -> None:
    """Refuse values no command can use; see the module docstring."""
    values = {k: v for k, v in vars(args).items() if k not in ("func", "argv", "command")}
    for name, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{_flag(name)} must be a finite number, got {v}")
    prompts = values.get("prompt")
    for p in prompts if isinstance(prompts, (list, tuple)) else [prompts]:
        if isinstance(p, str) and not p.strip():
            raise ValueError("--prompt must not be empty (leave --prompt out for the model's unconditional c = 0)")
    seed = values.get("seed")
    if isinstance(seed, int) and not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed must be an integer in [0, 2**63 - 1], got {seed}")
    command = getattr(args, "command", None)
    for cmd, name in FOLDER_OPTIONS:
        path = values.get(name)
        if cmd == command and path is not None and Path(path).exists() and not Path(path).is_dir():
            raise NotADirectoryError(f"{_flag(name)} {path}: is a file, not a folder")
    _check_method_flags(args, command)
    if command == "bench":
        for name, low in _BENCH_MINIMUMS.items():
            v = values.get(name)
            if v is not None and v < low:
                raise ValueError(f"--{name} must be >= {low}, got {v}")


def check_video_tensor(video, path, what: str = "--input"):
    """A ``.pt`` video tensor as float values in [-1, 1], or one ValueError naming ``what`` and ``path``:

    - no videos (a zero-size dimension) and bool tensors are refused;
    - integer tensors with values in [0, 255] are read as 8-bit pixels (x / 127.5 - 1), with a note; other
      integers are refused;
    - float values beyond [-1, 1] by more than round-off (1e-3) are refused, naming their range (0-255 floats
      are 8-bit pixels: divide by 127.5 and subtract 1); NaN and infinities are refused.
    """
    import torch

    if 0 in video.shape:
        raise ValueError(f"{what} {path}: the tensor holds no videos (shape {tuple(video.shape)})")
    if video.dtype == torch.bool:
        raise ValueError(f"{what} {path}: a bool tensor; expected float video values in [-1, 1]")
    if not video.is_floating_point():
        lo, hi = int(video.min()), int(video.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"{what} {path}: integer values in [{lo}, {hi}]; expected float values in [-1, 1] "
                             f"or 8-bit pixels in [0, 255]")
        print(f"note: {what} {path} holds integers ({video.dtype}): read as 8-bit pixels, x / 127.5 - 1",
              file=sys.stderr)
        return video.float() / 127.5 - 1
    video = video.float()
    if not torch.isfinite(video).all():
        raise ValueError(f"{what} {path}: the tensor holds NaN or infinite values")
    lo, hi = float(video.min()), float(video.max())
    if lo < -1.001 or hi > 1.001:
        hint = " (8-bit pixels? divide by 127.5 and subtract 1)" if hi > 2 else ""
        raise ValueError(f"{what} {path}: values in [{lo:.4g}, {hi:.4g}]; expected [-1, 1]{hint}")
    return video.clamp(-1, 1)


# flag -> (the --method it belongs to, commands where that holds)
_METHOD_FLAGS = {"--variant": ("replacement", ("extend", "interpolate", "upsample", "predict")),
                 "--w-r": ("gradient", ("extend", "interpolate", "predict")),
                 "--no-clamp": ("gradient", ("extend", "interpolate", "predict"))}


def _given(argv, flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in argv or ())


def _check_method_flags(args, command) -> None:
    """A flag of one conditioning method with another (or with the default, which is the gradient method for a
    plain model and ``context`` for a context-trained one, never the replacement method) would be ignored."""
    if not hasattr(args, "method"):
        return
    method = args.method
    for flag, (owner, commands) in _METHOD_FLAGS.items():
        if command not in commands or method == owner or not _given(getattr(args, "argv", None), flag):
            continue
        if method is None and owner == "gradient":
            continue  # the default method of an unconditional model
        used = f"--method {method}" if method else "the default method"
        raise ValueError(f"{flag} applies to --method {owner} only, not to {used} (it would be ignored); drop it "
                         f"or pass --method {owner}")
