"""Sharded checkpoints of FSDP2 runs (``train.parallel: fsdp``), written with ``torch.distributed.checkpoint`` (DCP).

Layout: the run's usual ``RUN/checkpoints/step_XXXXXX/`` with ``state.json`` (``"sharded": true``, the step, config,
optimizer hyper-parameters and the run's extras) and ``dcp/`` (every rank's shards of ``model``, ``ema`` and
``optim`` and DCP's metadata). DCP stores each tensor by its name and global shape with the slices each rank held,
so the checkpoint loads at any world size: :func:`videodiff.checkpoint.load_checkpoint` reads it into the full,
unsharded tensors of an ordinary checkpoint (one process, e.g. a resume at world size 1, ``load_model`` for
sampling), and :func:`load_into_fsdp` puts such full tensors into a sharded model and optimizer (a resume at any
world size under FSDP). Written as ``step_XXXXXX.tmp`` by all ranks, then renamed by rank 0 after a barrier, as the
unsharded checkpoints are (:mod:`videodiff.checkpoint`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..checkpoint import fsync_path
from .distributed import DistEnv

__all__ = ["save_sharded_checkpoint", "load_into_fsdp", "optimizer_by_name"]


def _options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(**kw)


def save_sharded_checkpoint(run_dir: str | Path, step: int, model: nn.Module, ema_model: nn.Module,
                            optimizer: torch.optim.Optimizer, config: dict, extra: dict, env: DistEnv,
                            keep: int = 3) -> Path:
    """Every rank writes its shards of ``RUN/checkpoints/step_XXXXXX``; rank 0 the metadata, then renames it and
    points ``latest`` at it (keeping the newest ``keep``). A collective: all ranks call it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_state_dict

    root = Path(run_dir) / "checkpoints"
    final, tmp = root / f"step_{step:06d}", root / f"step_{step:06d}.tmp"
    if env.is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    env.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "ema": get_model_state_dict(ema_model), "optim": optim_sd}
    dcp.save(state, checkpoint_id=str(tmp / "dcp"))
    if env.is_main:
        groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.state_dict()["param_groups"]]
        meta = {"step": step, "sharded": True, "world_size_saved": env.world_size,
                "optimizer": {"param_groups": groups, "scalars": {}}, "config": config, **extra}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        for f in tmp.rglob("*"):
            if f.is_file():
                fsync_path(f)
        fsync_path(tmp / "dcp")
        fsync_path(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_path(root)
        pointer = root / "latest.tmp"
        pointer.write_text(final.name)
        fsync_path(pointer)
        os.replace(pointer, root / "latest")
        fsync_path(root)
        old = sorted(p for p in root.glob("step_*") if p.is_dir() and p.name[5:].isdigit())
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    env.barrier()
    return final


def optimizer_by_name(model: nn.Module, opt_state: dict) -> dict:
    """An ordinary (index-keyed) optimizer state dict of ``model``'s optimizer, keyed by parameter names instead
    (the form ``torch.distributed.checkpoint.state_dict`` takes)."""
    names = [n for n, _ in model.named_parameters()]
    groups, i = [], 0
    for g in opt_state["param_groups"]:
        n = len(g["params"])
        groups.append({**g, "params": names[i : i + n]})
        i += n
    return {"state": {names[int(k)]: v for k, v in opt_state["state"].items()}, "param_groups": groups}


def load_into_fsdp(model: nn.Module, ema_model: nn.Module, optimizer: torch.optim.Optimizer, ckpt: dict) -> None:
    """Load the full tensors of checkpoint ``ckpt`` (:func:`videodiff.checkpoint.load_checkpoint`, sharded or not)
    into an FSDP2-sharded ``model``, its EMA copy and optimizer: each rank keeps its slices."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    full = _options(full_state_dict=True)
    set_model_state_dict(model, ckpt["model"], options=full)
    set_model_state_dict(ema_model, ckpt["ema"], options=full)
    set_optimizer_state_dict(model, optimizer, optimizer_by_name(model, ckpt["optimizer"]), options=full)
    if dist.is_initialized():
        dist.barrier()
