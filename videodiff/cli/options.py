"""Options shared by several subcommands, in one place: output and input checks, ``--checkpoint``/``--model``,
``--precision``/``--compile``, ``--config``/``--set``, and ``--sampler`` with every sampler's own flags, generated
from the sampler registry (:mod:`videodiff.sampling.registry`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..precision import PRECISIONS

__all__ = ["add_precision_args", "check_counts", "check_output_path", "fps_option", "check_out", "add_model_args",
           "load_model_arg", "load_pipeline_arg", "add_config_args", "add_sampler_args", "sampler_flag_values", "check_sampler_flags"]


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


def check_out(out: Path) -> None:
    """Fail before any work when ``--out`` has an extension no writer handles, or its folder is missing or not
    writable."""
    from ..io import WRITE_FORMATS  # the extensions io.write_video handles

    if out.suffix.lower() not in WRITE_FORMATS:
        raise ValueError(f"--out must end in one of {WRITE_FORMATS}, got {out.name}")
    check_output_path(out)


def add_model_args(p: argparse.ArgumentParser, checkpoint_help: str = "run directory or checkpoints/step_XXXXXX"):
    """``--checkpoint PATH`` or ``--model NAME`` (a model shipped with the package), exactly one of them."""
    from ..pretrained import available_models

    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", type=Path, help=checkpoint_help)
    g.add_argument("--model", metavar="NAME",
                   help=f"a model shipped with the package ({', '.join(available_models()) or 'none shipped'})")


def load_model_arg(args):
    """The model named by :func:`add_model_args`' options (EMA weights unless ``--no-ema``), in the precision of
    :func:`add_precision_args`' options."""
    from ..models import load_model

    kw = dict(ema=not args.no_ema, device=args.device, precision=args.precision, compile=args.compile)
    if args.model is not None:
        return load_model(args.model, pretrained=True, **kw)
    return load_model(args.checkpoint, pretrained=False, **kw)


def load_pipeline_arg(args):
    """:class:`videodiff.VideoPipeline` of the model named by :func:`add_model_args`' options, as
    :func:`load_model_arg` loads it."""
    from ..video_pipeline import VideoPipeline

    return VideoPipeline(load_model_arg(args), source=args.model or args.checkpoint)


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="experiment YAML (see configs/); defaults if omitted")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config option, e.g. --set train.steps=200 (repeatable)")


def add_sampler_args(p: argparse.ArgumentParser, help: str = "default: the run's sample.sampler", *,
                     default: str | None = None, options: bool = True) -> None:
    """``--sampler`` with the registered samplers as choices and, with ``options``, one flag per sampler option
    (``--gamma``, ``--eta``, ...; default None: the run's value), from :mod:`videodiff.sampling.registry`."""
    from ..sampling.registry import option_owners, sampler_names

    p.add_argument("--sampler", choices=sampler_names(), default=default, help=help)
    if not options:
        return
    for name, (opt, *owners) in option_owners().items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=opt.type, default=None,
                       help=f"{opt.help} ({', '.join(owners)} only)")


def sampler_flag_values(args) -> dict:
    """The sampler options given on the command line (flags of :func:`add_sampler_args`), as ``{name: value}``."""
    from ..sampling.registry import option_owners

    return {name: getattr(args, name) for name in option_owners() if getattr(args, name, None) is not None}


def check_sampler_flags(args, sampler: str) -> None:
    """A sampler's flags belong to it (``--gamma``: ancestral, ``--eta``: DDIM): refuse them with any other sampler."""
    from ..sampling.registry import option_owners

    for name, (_, *owners) in option_owners().items():
        if getattr(args, name, None) is not None and sampler not in owners:
            raise ValueError(f"--{name.replace('_', '-')} applies to the {' / '.join(owners)} sampler only, not to "
                             f"{sampler} (set --sampler {owners[0]})")
