"""Sampling defaults per conditional task (paper Sec. 3.1): what ``videodiff extend | interpolate | upsample |
cascade`` use when a flag is not given.

A model's ``sample`` config is tuned for unconditional sampling (few deterministic steps); the gradient method
needs more: it corrects ``x_hat`` at every step, and a deterministic solver with few steps takes too few corrections
to pull the sample onto the constraint. Each value below was chosen by a measurement on held-out clips with the
shipped model, recorded in docs/results.md ("Super-resolution and interpolation") with the command that reproduces
it (``benchmarks/superres_interp.py --try ...``). ``None`` means "the model's ``sample`` config".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["TaskDefaults", "TASK_DEFAULTS", "task_options"]


@dataclass(frozen=True)
class TaskDefaults:
    sampler: str | None = None  # None: the model's sample.sampler
    steps: int | None = None  # None: the model's sample.steps
    gamma: float | None = None  # ancestral stochasticity, eq. (4); None: the model's sample.gamma
    w_r: float = 1.0  # weight of eq. (6) on directly known frames (paper: 1)
    w_r_low: float | None = None  # weight of eq. (7); None: (H/h)^2, exact as t -> 0 for area D (paper: 1)
    down: str = "bilinear"  # the differentiable D of eq. (7)
    clamp: bool = True  # clamp x~ to [-1, 1] when the model clips x_hat (see ReconstructionGuidance)

    def resolve(self, sample_cfg) -> "TaskDefaults":
        """These defaults with ``None`` filled in from a model's ``SampleConfig``."""
        return dataclasses.replace(
            self, sampler=self.sampler or sample_cfg.sampler,
            steps=sample_cfg.steps if self.steps is None else self.steps,
            gamma=sample_cfg.gamma if self.gamma is None else self.gamma)


TASK_DEFAULTS: dict[str, TaskDefaults] = {
    "extend": TaskDefaults(),
    # video prediction (5 -> 10 on SMMNIST): measured with smmnist-64, docs/results.md ("Stochastic Moving MNIST")
    "predict": TaskDefaults(),
    "interpolate": TaskDefaults(sampler="ancestral", steps=50, gamma=0.0),
    "upsample": TaskDefaults(sampler="ancestral", steps=50, down="area"),
    "cascade": TaskDefaults(sampler="ancestral", steps=50, down="area"),
}


def task_options(task: str, sample_cfg, **overrides) -> dict:
    """Keyword arguments of :func:`~videodiff.conditional.extend` / ``interpolate`` / ``upsample`` / ``cascade`` for
    ``task``: :data:`TASK_DEFAULTS` resolved against a model's ``SampleConfig``, with ``overrides`` (``None`` values
    ignored; keys: the fields of :class:`TaskDefaults` and any registered sampler option, e.g. ``eta``). Returns
    ``steps``, ``sampler``, ``options`` (that sampler's own, e.g. ``{"gamma": 0.0}``), ``w_r``, ``guidance_clip`` and,
    for ``upsample``/``cascade``, ``down_mode`` and ``w_r_low``."""
    from ..sampling.registry import option_owners, resolve_options

    if task not in TASK_DEFAULTS:
        raise ValueError(f"unknown task {task!r}; one of {sorted(TASK_DEFAULTS)}")
    over = {k: v for k, v in overrides.items() if v is not None}
    fields = {f.name for f in dataclasses.fields(TaskDefaults)}
    given = {k: over.pop(k) for k in list(over) if k not in fields}  # other samplers' options (eta, ...)
    unknown = sorted(set(given) - set(option_owners()))
    if unknown:
        raise ValueError(f"task_options: unknown option {unknown[0]!r}")
    d = dataclasses.replace(TASK_DEFAULTS[task], **over).resolve(sample_cfg)
    clamp = d.clamp and sample_cfg.clip_x  # x~ clamped to the data range where the model clips x_hat
    kw = {"steps": d.steps, "sampler": d.sampler, "w_r": d.w_r, "guidance_clip": (-1.0, 1.0) if clamp else None,
          "options": resolve_options(d.sampler, sample_cfg, gamma=d.gamma, **given)}  # only the sampler's own
    if task in ("upsample", "cascade"):
        kw.update(down_mode=d.down, w_r_low=d.w_r_low)
    return kw
