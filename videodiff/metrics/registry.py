"""The metric registry: every name that ``videodiff eval --metrics`` accepts is one :class:`Metric` entry.

An evaluation runs in two phases, so that sets held whole and sets streamed clip by clip go through the same code:

1. **features**, chunk by chunk: a :class:`Features` entry (a network that several metrics share, e.g. InceptionV3
   for fid and is) is loaded once per evaluation and maps each chunk of uint8 clips ``(n, F, H, W, 3)`` to named
   per-clip arrays;
2. **reduce**: each :class:`Metric` turns the real and the fake set's features into its results,
   ``{result key: {"value" | "fake"/"real": ..., "protocol": {...}}}``.

:class:`MetricRun` drives one evaluation: the names are checked (:func:`check_metric_names`); :meth:`MetricRun.check`
runs the preflight checks before anything is decoded; :meth:`MetricRun.load` loads the extractors once the sets'
shapes are known (their checks of the shapes come before any network loads); then :meth:`MetricRun.features` per set
and :meth:`MetricRun.results`. Results are listed by ``Metric.order``, then by position in ``Metric.outputs``
(fid_avg, is_avg, fid_first, is_first), then by registration.

Adding a metric is one module with its computation and one :func:`register_metric` call; the built-in entries are
in :mod:`.builtin`. This module is a component: it imports nothing from the app tier (CLI, evaluation, demo).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import torch

__all__ = ["Features", "Metric", "EvalContext", "MetricRun", "register_features", "register_metric",
           "unregister_metric", "get_metric", "metric_names", "check_metric_names", "paired_names"]


@dataclass(frozen=True)
class Features:
    """A feature extractor, shared by the metrics that name it and loaded once per evaluation.

    ``extract(loaded, chunk, ctx, progress)``: uint8 clips ``(n, F, H, W, 3)`` -> ``{key: (n, ...) array}``.
    ``load(ctx)``: called once the sets' shapes are in ``ctx``; returns what ``extract`` and the metrics' ``reduce``
    need (typically the network, as ``ctx.loaded[name]``) and raises a one-line ValueError, before the network
    loads, for sets it cannot take. ``check(ctx)``: before anything is decoded (options only)."""
    name: str
    extract: Callable[[Any, np.ndarray, "EvalContext", bool], dict]
    load: Callable[["EvalContext"], Any] | None = None
    check: Callable[["EvalContext"], None] | None = None


@dataclass(frozen=True)
class Metric:
    """One name of ``--metrics``: ``reduce(ctx, real, fake)`` maps the two sets' features (the ``{key: array}`` of
    its ``features`` entry) to ``{key: result}`` for exactly the keys in ``outputs`` (default ``(name,)``).

    ``paired``: the i-th fake video is scored against the i-th real one, so the sets must have one shape, sets of
    one video are fine, and the metric is not streamed. ``check(ctx)``: a preflight before anything is decoded.
    ``order``: where its results are listed (paired 0, classifier 1, InceptionV3 2, FVD 3; new metrics last)."""
    name: str
    features: str
    reduce: Callable[["EvalContext", dict, dict], dict]
    outputs: tuple[str, ...] = ()
    paired: bool = False
    check: Callable[["EvalContext"], None] | None = None
    order: int = 100

    def __post_init__(self) -> None:
        if not self.outputs:
            object.__setattr__(self, "outputs", (self.name,))


@dataclass
class EvalContext:
    """What the metrics of one evaluation share: the options, the two sets' clip counts and ``(F, H, W)`` shapes,
    and what each extractor's ``load`` returned (``loaded``, keyed by :class:`Features` name)."""
    metrics: list[str]
    inception: Any = None  # InceptionV3 weights path (fid, is)
    classifier: str | None = None  # Moving MNIST classifier name or folder (cfvd, cis)
    fvd_repeat_frames: bool = False
    batch_size: int = 16
    cache_dir: Any = None  # I3D feature cache
    device: Any = "cpu"
    progress: bool = False
    unit: str = "video"  # what the sets hold, as messages name it: "video" (held whole) or "clip" (streamed)
    counts: dict = field(default_factory=dict)  # {"real": N, "fake": N}
    shapes: dict = field(default_factory=dict)  # {"real": (F, H, W), "fake": (F, H, W)}
    loaded: dict = field(default_factory=dict)

    def users(self, features: str) -> list[str]:
        """The metrics asked for (in the order given) that use the extractor ``features``."""
        return [m for m in self.metrics if _METRICS[m].features == features]

    def stub(self, label: str, frames: int | None = None) -> torch.Tensor:
        """A zero-stride uint8 tensor ``(N, F, H, W, 3)`` of a set's size (``frames`` replaces F): what protocol
        records read (len and shape) without holding the set."""
        f, h, w = self.shapes[label]
        return torch.zeros((), dtype=torch.uint8).expand(self.counts[label], frames or f, h, w, 3)


_FEATURES: dict[str, Features] = {}
_METRICS: dict[str, Metric] = {}


def register_features(features: Features) -> Features:
    if features.name in _FEATURES:
        raise ValueError(f"features {features.name!r} are already registered")
    _FEATURES[features.name] = features
    return features


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to the names ``--metrics`` accepts (its ``features`` must be registered)."""
    if metric.name in _METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    if metric.features not in _FEATURES:
        raise ValueError(f"metric {metric.name!r} uses unknown features {metric.features!r}; "
                         f"registered: {', '.join(_FEATURES)}")
    _METRICS[metric.name] = metric
    return metric


def unregister_metric(name: str) -> Metric:
    """Remove a metric (e.g. one a test registered); returns its entry."""
    return _METRICS.pop(name)


def get_metric(name: str) -> Metric:
    return _METRICS[check_metric_names([name])[0]]


def metric_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_METRICS)


def check_metric_names(names: Iterable[str], flag: str | None = None, given: str | None = None) -> list[str]:
    """``names`` lower-cased, or the one-line ValueError naming the first unknown one (or ``given``, the text the
    names came from, when there are none) and the choices; ``flag`` prefixes it (``--metrics: ...``)."""
    names = [m.lower() for m in names]
    bad = [m for m in names if m not in _METRICS]
    if bad or not names:
        raise ValueError(f"{flag + ': ' if flag else ''}unknown metric {bad[0] if bad else given!r}; choose from "
                         f"{', '.join(_METRICS)}")
    return names


def paired_names(names: Iterable[str]) -> list[str]:
    """The paired metrics among ``names`` (checked names), in their order."""
    return [m for m in names if _METRICS[m].paired]


class MetricRun:
    """One evaluation of ``metrics`` (checked by :func:`check_metric_names`); ``options`` are the fields of
    :class:`EvalContext` (``device`` already resolved). Call :meth:`check`, :meth:`load`, :meth:`features` for the
    real and the fake set, then :meth:`results`."""

    def __init__(self, metrics: Iterable[str], **options) -> None:
        names = check_metric_names(metrics)
        self.ctx = EvalContext(names, **options)
        self.metrics = [_METRICS[m] for m in dict.fromkeys(names)]
        used = {m.features for m in self.metrics}
        self.extractors = [f for name, f in _FEATURES.items() if name in used]  # in registration order

    @property
    def paired(self) -> list[str]:
        return [m.name for m in self.metrics if m.paired]

    def check(self, counts: dict) -> None:
        """Before anything is decoded or loaded: set sizes (``{"real": N, "fake": N}``), then the preflight checks
        of every extractor and metric."""
        self.ctx.counts = dict(counts)
        if any(not m.paired for m in self.metrics):
            for label, n in self.ctx.counts.items():
                if n < 2:
                    raise ValueError(f"{label} set has {n} {self.ctx.unit}(s); Fréchet distances need at least 2 "
                                     f"per set")
        for entry in (*self.extractors, *self.metrics):
            if entry.check is not None:
                entry.check(self.ctx)

    def load(self, shapes: dict) -> None:
        """With the sets' ``(F, H, W)`` (``{"real": ..., "fake": ...}``): paired sets must match, and sets of set
        metrics must have one frame count (a one-line ValueError naming both and ``--frames``); every extractor
        loads (once)."""
        from .paired import check_pairs

        self.ctx.shapes = {k: tuple(int(x) for x in v) for k, v in shapes.items()}
        if self.paired:
            check_pairs(self.ctx.stub("real"), self.ctx.stub("fake"))
        nr, nf = (self.ctx.shapes[k][0] for k in ("real", "fake")) if {"real", "fake"} <= set(shapes) else (0, 0)
        if nr != nf and any(not m.paired for m in self.metrics):  # else the networks would see other lengths
            raise ValueError(f"the real {self.ctx.unit}s have {nr} frames and the fake {nf}: set metrics compare "
                             f"{self.ctx.unit}s of one length; pass --frames {min(nr, nf)} to cut both sets to "
                             f"their first {min(nr, nf)} frames")
        for f in self.extractors:
            self.ctx.loaded[f.name] = f.load(self.ctx) if f.load is not None else None

    def features(self, label: str, chunks: Iterable[np.ndarray], progress: bool = False) -> dict:
        """``{extractor: {key: array}}`` of one set, given as chunks of uint8 clips ``(n, F, H, W, 3)`` (a set held
        whole is one chunk); ``ctx.counts[label]`` becomes the number of clips seen."""
        parts: dict[str, dict[str, list]] = {f.name: {} for f in self.extractors}
        n = 0
        for chunk in chunks:
            n += len(chunk)
            for f in self.extractors:
                for key, value in f.extract(self.ctx.loaded[f.name], chunk, self.ctx, progress).items():
                    parts[f.name].setdefault(key, []).append(np.asarray(value))
            del chunk
        self.ctx.counts[label] = n
        return {name: {k: v[0] if len(v) == 1 else np.concatenate(v) for k, v in d.items()}
                for name, d in parts.items()}

    def results(self, real: dict, fake: dict) -> dict:
        """Every metric's results from the two sets' :meth:`features`, in report order."""
        out, rank, registered = {}, {}, list(_METRICS)
        for m in self.metrics:
            res = m.reduce(self.ctx, real[m.features], fake[m.features])
            if set(res) != set(m.outputs):
                raise ValueError(f"metric {m.name!r} returned {sorted(res)}, not its outputs {list(m.outputs)}")
            for key, value in res.items():
                out[key] = value
                rank[key] = (m.order, m.outputs.index(key), registered.index(m.name))
        return {key: out[key] for key in sorted(out, key=rank.__getitem__)}
