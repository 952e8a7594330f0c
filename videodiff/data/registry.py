"""The registry of data sources: ``data.kind`` -> :class:`DataSource` (its builder and the options it reads).

A new kind is one new file (its dataset and a ``DataSource``) plus one :func:`register_source` line (the built-in
ones are in :mod:`.sources`). :meth:`DataConfig.validate` checks ``data.kind`` against the registry and the kind's
``data.options``; :func:`videodiff.data.build_dataset` calls the kind's ``build`` and does the wrapping every kind
shares (joint image frames). Options a kind needs beyond the flat ``DataConfig`` fields go in ``data.options``
(``--set data.options.std=0.5``), typed by the kind's own small dataclass. This module imports no dataset.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from .config import DataConfig

__all__ = ["DataSource", "register_source", "unregister_source", "get_source", "source_kinds", "source_options",
           "parse_options", "clip_options", "COMMON_OPTIONS"]

# The flat options every kind reads: the clip (clip_options) and joint training's image frames (build_dataset).
COMMON_OPTIONS = ("num_frames", "image_size", "channels", "frameskip", "seed", "image_frames", "image_root")


@dataclass(frozen=True)
class DataSource:
    """One ``data.kind``.

    Args:
        kind: the name users choose (``data.kind``).
        build: ``build(cfg, split)`` -> the clips of ``split`` ("train" or "test"): items with ``video`` float32
            ``(C, F, H, W)`` in [-1, 1] (and ``caption`` when ``cfg.captions``). Options the kind needs but lacks
            (a missing path) raise ``ValueError`` naming the option.
        reads: the flat ``DataConfig`` options it reads besides the :data:`COMMON_OPTIONS` every kind reads.
        options: a dataclass of its ``data.options.<key>`` (bool / int / float / str fields, each maybe None; its
            ``__post_init__`` checks values, naming ``data.options.<key>``); None: the kind takes none.
        captions: whether it gives captions when ``cfg.captions`` is set (text-conditioned training).
        streams_image_frames: it appends joint image frames itself (an ``IterableDataset`` cannot be indexed by
            :class:`~videodiff.data.joint.WithImageFrames`, which wraps every other kind's train split).
    """

    kind: str
    build: Callable[[DataConfig, str], Dataset]
    reads: tuple[str, ...] = ()
    options: type | None = None
    captions: bool = False
    streams_image_frames: bool = False


_SOURCES: dict[str, DataSource] = {}
_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def register_source(source: DataSource) -> DataSource:
    """Add ``source`` under ``source.kind`` (an error if the kind is taken or its options are not simple types)."""
    if not source.kind or not isinstance(source.kind, str):
        raise ValueError(f"a data source needs a kind name, got {source.kind!r}")
    if source.kind in _SOURCES:
        raise ValueError(f"data.kind {source.kind!r} is already registered")
    if source.options is not None:
        if not dataclasses.is_dataclass(source.options):
            raise TypeError(f"data source {source.kind!r}: options must be a dataclass, got {source.options!r}")
        for name, tp in typing.get_type_hints(source.options).items():
            if not all(t in _TYPE_WORDS or t is type(None) for t in _members(tp)):
                raise TypeError(f"data source {source.kind!r}: option {name} has type {tp}; options are bool, int, "
                                f"float or str (or None)")
    _SOURCES[source.kind] = source
    return source


def unregister_source(kind: str) -> None:
    """Remove ``kind`` (tests registering an example source clean up with this)."""
    del _SOURCES[kind]


def source_kinds() -> tuple[str, ...]:
    """The registered kinds, in registration order."""
    return tuple(_SOURCES)


def get_source(kind: str) -> DataSource:
    """The source registered as ``kind``; an unknown kind raises an error listing the registered ones."""
    if kind not in _SOURCES:
        names = [repr(k) for k in _SOURCES]
        choices = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)
        raise ValueError(f"data.kind must be {choices}, got {kind!r}")
    return _SOURCES[kind]


def source_options(cfg: DataConfig) -> Any:
    """``cfg.options`` as the typed options of ``cfg.kind`` (None when the kind takes none)."""
    source = get_source(cfg.kind)
    if source.options is None:
        if not isinstance(cfg.options, dict):
            raise ValueError(f"data.options must be a mapping of options, got {cfg.options!r}")
        if cfg.options:
            raise ValueError(f"unknown option data.options.{sorted(cfg.options)[0]}; data.kind {cfg.kind!r} takes no "
                             f"data.options")
        return None
    return parse_options(source.options, cfg.options)


def clip_options(cfg: DataConfig, split: str) -> dict:
    """The keyword arguments every clip dataset takes: the clip's shape and spacing, the split and the seed."""
    return dict(num_frames=cfg.num_frames, image_size=cfg.image_size, channels=cfg.channels,
                frameskip=cfg.frameskip, split=split, seed=cfg.seed)


def parse_options(cls: type, values: Any, prefix: str = "data.options.") -> Any:
    """Dataclass ``cls`` from the mapping ``values``, type-checking each value as ``videodiff.config`` does for
    the flat options; unknown keys and ill-typed values raise errors naming the option."""
    if not isinstance(values, dict):
        raise ValueError(f"{prefix.rstrip('.')} must be a mapping of options, got {values!r}")
    names = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown option {prefix}{unknown[0]}; valid options under '{prefix}': {names}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _scalar(value, hints[key], prefix + key) for key, value in values.items()})


def _members(tp: Any) -> tuple:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _scalar(value: Any, tp: Any, key: str) -> Any:
    members = _members(tp)
    if value is None and type(None) in members:
        return None
    for t in members:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and not isinstance(value, bool):
            if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
                try:
                    return float(value)
                except ValueError:
                    continue
            if isinstance(value, (int, float)):
                return float(value)
        if t is str and isinstance(value, str):
            return value
    words = " or ".join(_TYPE_WORDS[t] for t in members if t in _TYPE_WORDS)
    words += " (or null)" if type(None) in members else ""
    raise ValueError(f"{key} must be {words}, got {value!r}")
