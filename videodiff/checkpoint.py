"""Checkpoints: model, EMA, optimizer, step and RNG state, in safetensors plus a small JSON, written atomically.

Layout of a run directory::

    RUN/config.yaml                         the resolved experiment config
    RUN/checkpoints/step_000500/            one checkpoint (written as step_000500.tmp, then renamed)
        model.safetensors  ema.safetensors  state.safetensors (optimizer moments; RNG states if given)
        state.json (step, optimizer hyper-parameters, config; training adds samples_seen, world_size)
    RUN/checkpoints/latest                  name of the newest complete checkpoint (replaced atomically)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "resolve_checkpoint", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message names the path."""


def _flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{k}"] = v.detach().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        if name.startswith("optim."):
            _, idx, k = name.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    for name, v in meta["scalars"].items():
        idx, k = name.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    model: nn.Module,
    ema_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    config: dict,
    extra: dict | None = None,
    keep: int = 3,
) -> Path:
    """Write ``run_dir/checkpoints/step_XXXXXX`` atomically and point ``latest`` at it; keep the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f"step_{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in ema_model.state_dict().items()}, str(tmp / "ema.safetensors"))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    rng_tensors = {f"rng.{k}": v.contiguous() for k, v in rng.items()}
    save_file({**opt_tensors, **rng_tensors}, str(tmp / "state.safetensors"))
    meta = {"step": step, "optimizer": opt_meta, "config": config, **(extra or {})}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    pointer_tmp = root / "latest.tmp"
    pointer_tmp.write_text(final.name)
    os.replace(pointer_tmp, root / "latest")
    old = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None if it has none."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        path = root / pointer.read_text().strip()
        if (path / "state.json").is_file():
            return path
    done = sorted(p for p in root.glob("step_*") if (p / "state.json").is_file() and not p.name.endswith(".tmp"))
    return done[-1] if done else None


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint directory, a run directory (its latest checkpoint) or a file inside a checkpoint."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if (path / "state.json").is_file():
        return path
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is not None:
            return found
    raise CheckpointError(f"no checkpoint found at {path} (expected a run directory or checkpoints/step_XXXXXX)")


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint into a dict: ``step``, ``config``, ``model``, ``ema``, ``optimizer``, ``rng``, extras."""
    path = resolve_checkpoint(path)
    try:
        meta = json.loads((path / "state.json").read_text())
        model = load_file(str(path / "model.safetensors"), device=str(device))
        ema = load_file(str(path / "ema.safetensors"), device=str(device))
        state = load_file(str(path / "state.safetensors"), device="cpu")  # RNG states must stay on the CPU
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise CheckpointError(f"could not read checkpoint {path}: {e}") from e
    rng = {k[4:]: v for k, v in state.items() if k.startswith("rng.")}
    out = dict(meta)
    out.update(path=path, model=model, ema=ema, rng=rng, optimizer=_unflatten_optimizer(state, meta["optimizer"]))
    return out
