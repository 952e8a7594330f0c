"""Command line of videodiff (the app tier): ``videodiff train | sample | eval | extend | interpolate | upsample |
cascade | demo | app | export | shards | bench | config | train-classifier``. One module per command group; shared
options in :mod:`.options`, generated from the registries where users choose a name (samplers)."""

from .main import build_parser, main, one_line
from .options import add_precision_args

__all__ = ["main", "build_parser", "one_line", "add_precision_args"]
