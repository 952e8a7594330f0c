"""Resuming a run with another config: which keys may change, which are refused, and the message naming them.

A resume continues the same computation, so the network and its data (``data``, ``model``, ``diffusion``, ``text``,
``lora``) never change, the optimisation (every other ``train.*`` key) only with ``train.allow_config_change``, and
the run's length and bookkeeping (:data:`RESUME_FREE`) always may.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ExperimentConfig, config_from_dict, config_to_dict

__all__ = ["RESUME_FREE", "RESUME_FIXED", "config_changes", "check_resumable"]

# Config keys that may change on resume without changing what the run computes: its length and bookkeeping, where
# it runs and what it logs. Every other train.* key changes the optimisation (refused unless
# train.allow_config_change); data, model, diffusion and text define the network and its data (always refused).
RESUME_FREE = {"name", "train.steps", "train.max_seconds", "train.log_every", "train.sample_every",
               "train.ckpt_every", "train.keep_checkpoints", "train.num_workers", "train.device", "train.compile",
               "train.grad_accum", "train.loggers", "train.wandb_mode", "train.wandb_project", "train.init_from",
               "train.allow_config_change", "train.activation_checkpointing", "train.parallel", "text.cache_dir",
               "data.on_error"}
RESUME_FIXED = ("data", "model", "diffusion", "text", "lora")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix + k).startswith("sample.options"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def config_changes(saved: dict, cfg: ExperimentConfig) -> dict[str, tuple]:
    """``{dotted key: (saved value, new value)}`` for every option that differs between a run's saved config and
    ``cfg`` (options added since the checkpoint was written take their defaults)."""
    try:
        saved = config_to_dict(config_from_dict(ExperimentConfig, saved))
    except (TypeError, ValueError):
        pass
    a, b = _flat(saved), _flat(config_to_dict(cfg))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _show(changes: dict[str, tuple], keys) -> str:
    return ", ".join(f"{k} ({changes[k][0]!r} -> {changes[k][1]!r})" for k in keys)


def check_resumable(saved: dict, cfg: ExperimentConfig, path: Path, note=None) -> None:
    """Refuse a resume whose config changes the network, the data or (unless ``train.allow_config_change``) the
    optimisation, naming the keys that differ; ``note(line)`` reports the keys that changed and were accepted."""
    changes = config_changes(saved, cfg)
    fixed = [k for k in changes if k.split(".", 1)[0] in RESUME_FIXED and k not in RESUME_FREE]
    if fixed:
        groups = sorted({k.split(".", 1)[0] for k in fixed})
        raise ValueError(
            f"cannot resume from {path}: its {' and '.join(repr(g) for g in groups)} config differs from the one "
            f"given: {_show(changes, fixed)}; use a new --out directory or the same config (the network and data "
            f"cannot change on resume)")
    tuned = [k for k in changes if k not in RESUME_FREE and not k.startswith("sample.")]
    if tuned and not cfg.train.allow_config_change:
        raise ValueError(
            f"cannot resume from {path}: the config differs from the run's saved config in {_show(changes, tuned)}; "
            f"resume with the saved values, use a new --out directory, or pass --allow-config-change "
            f"(train.allow_config_change=true) to continue with the new ones")
    if changes and note is not None:
        note(f"note: resuming {path.parent.parent} with a changed config: {_show(changes, list(changes))}")
