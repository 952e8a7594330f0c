"""Checkpoints: model, EMA, optimizer, step and RNG state, in safetensors plus a small JSON, written atomically.

Layout of a run directory::

    RUN/config.yaml                         the resolved experiment config
    RUN/checkpoints/step_000500/            one checkpoint (written as step_000500.tmp, then renamed)
        model.safetensors  ema.safetensors  state.safetensors (optimizer moments; RNG states if given)
        state.json (step, optimizer hyper-parameters, config; training adds samples_seen, world_size)
        manifest.json (sha256 and size of each of the four files above)
    RUN/checkpoints/latest                  name of the newest complete checkpoint (replaced atomically)

Every file and the checkpoint folder are fsynced before the rename, and the parent folder after it, so that a crash
or power loss leaves either the previous state or the new complete checkpoint. :func:`load_latest_checkpoint` (used
on resume) falls back to the previous complete checkpoint when the newest one cannot be read, and a file whose bytes
changed without changing its length (a flipped bit on disk or in transfer) cannot be read: :func:`load_checkpoint`
checks every file against the digests of ``manifest.json`` first. Checkpoints written before the manifest existed
load unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "load_latest_checkpoint", "resolve_checkpoint",
           "CheckpointError", "fsync_path", "write_manifest", "verify_manifest", "MANIFEST"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message names the path."""


MANIFEST = "manifest.json"
_FILES = ("model.safetensors", "ema.safetensors", "state.safetensors", "state.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, names=_FILES) -> None:
    """``folder/manifest.json``: the sha256 and size of each named file of a checkpoint being written."""
    files = {n: {"sha256": _sha256(folder / n), "bytes": (folder / n).stat().st_size} for n in names}
    (folder / MANIFEST).write_text(json.dumps({"algorithm": "sha256", "files": files}, indent=1))


def verify_manifest(folder: Path) -> bool:
    """Check a checkpoint's files against its manifest; raises :class:`CheckpointError` naming the first file that
    differs. False when the checkpoint has no manifest (written before checksums), True when every file matches."""
    path = folder / MANIFEST
    if not path.is_file():
        return False
    try:
        files = json.loads(path.read_text())["files"]
        expected = {str(n): (str(f["sha256"]), int(f["bytes"])) for n, f in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"could not read checkpoint {folder}: its {MANIFEST} is damaged "
                              f"({type(e).__name__})") from e
    for name, (digest, size) in expected.items():
        f = folder / name
        if Path(name).name != name or not f.is_file():
            raise CheckpointError(f"could not read checkpoint {folder}: {name} (listed in {MANIFEST}) is missing")
        if f.stat().st_size != size:
            raise CheckpointError(f"could not read checkpoint {folder}: {name} is {f.stat().st_size} bytes, "
                                  f"{MANIFEST} says {size} (truncated or replaced)")
        if _sha256(f) != digest:
            raise CheckpointError(f"could not read checkpoint {folder}: {name} does not match its sha256 in "
                                  f"{MANIFEST} (its bytes changed since it was written)")
    return True


def fsync_path(path: str | Path) -> None:
    """Flush a file's or a folder's contents (a folder: its entries) to the disk."""
    fd = os.open(path, (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if Path(path).is_dir() else os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; the files themselves were synced
        if not Path(path).is_dir():
            raise
    finally:
        os.close(fd)


def _is_step_dir(p: Path) -> bool:
    """``step_XXXXXX``: not ``.tmp`` (being written) nor ``.damaged`` (set aside on resume)."""
    return p.name.startswith("step_") and p.name[5:].isdigit() and p.is_dir()


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
    try:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        save_file({k: v.contiguous() for k, v in ema_model.state_dict().items()}, str(tmp / "ema.safetensors"))
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        rng_tensors = {f"rng.{k}": v.contiguous() for k, v in rng.items()}
        save_file({**opt_tensors, **rng_tensors}, str(tmp / "state.safetensors"))
        meta = {"step": step, "optimizer": opt_meta, "config": config, **(extra or {})}
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        write_manifest(tmp)
        for f in tmp.iterdir():
            fsync_path(f)
        fsync_path(tmp)
    except BaseException as e:  # a full disk, an I/O error, an interrupt: the previous checkpoints stay as they are
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, SafetensorError):
            raise OSError(f"could not write checkpoint {tmp}: {' '.join(str(e).split())}") from e
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(root)
    pointer_tmp = root / "latest.tmp"
    pointer_tmp.write_text(final.name)
    fsync_path(pointer_tmp)
    os.replace(pointer_tmp, root / "latest")
    fsync_path(root)
    old = sorted(p for p in root.glob("step_*") if _is_step_dir(p))
    for p in old[:-keep]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None if it has none."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file():
        try:
            name = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError):  # a damaged pointer: the newest complete folder below
            name = ""
        path = root / name
        if _is_step_dir(path) and (path / "state.json").is_file():
            return path
    done = _complete(root)
    return done[-1] if done else None


def _complete(root: Path) -> list[Path]:
    """The complete checkpoints under ``root`` (``RUN/checkpoints``), oldest first."""
    return sorted(p for p in root.glob("step_*") if _is_step_dir(p) and (p / "state.json").is_file())


def load_latest_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu",
                           warn=None) -> tuple[dict | None, list[Path]]:
    """Load the newest checkpoint of ``run_dir`` that can be read: ``(checkpoint or None, damaged)``, where
    ``damaged`` lists the newer ones that failed (each reported by ``warn(line)`` naming it and the reason).
    Raises :class:`CheckpointError` if there are checkpoints and none of them loads."""
    root = Path(run_dir) / "checkpoints"
    first = latest_checkpoint(run_dir)
    if first is None:
        return None, []
    candidates = [first] + [p for p in reversed(_complete(root)) if p != first and p.name < first.name]
    damaged = []
    for path in candidates:
        try:
            return load_checkpoint(path, device=device), damaged
        except CheckpointError as e:
            damaged.append(path)
            if warn is not None:
                warn(f"warning: {e}; falling back to the previous checkpoint")
    raise CheckpointError(f"no checkpoint of {run_dir} can be read (tried {', '.join(p.name for p in damaged)}); "
                          f"use --no-resume or a new --out directory")


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint directory, a run directory (its latest checkpoint) or a file inside a checkpoint."""
    path = Path(path)
    if path.is_file():
        if not (path.parent / "state.json").is_file():  # a file, but not one of a checkpoint's
            raise CheckpointError(f"no checkpoint found at {path}: a file outside any checkpoint folder (expected a "
                                  f"run directory or checkpoints/step_XXXXXX)")
        path = path.parent
    if (path / "state.json").is_file():
        return path
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is not None:
            return found
    raise CheckpointError(f"no checkpoint found at {path} (expected a run directory or checkpoints/step_XXXXXX)")


def _read_sharded(dcp_dir: Path, device) -> dict:
    """The full tensors of a sharded checkpoint (any world size wrote it): ``model``, ``ema`` and the ``optimizer``
    state keyed by parameter index, as an unsharded checkpoint holds them."""
    import tempfile

    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    if not (dcp_dir / ".metadata").is_file():
        raise OSError(f"{dcp_dir}: no .metadata (an incomplete sharded checkpoint)")
    try:
        with tempfile.TemporaryDirectory(dir=dcp_dir.parent) as tmp:
            dcp_to_torch_save(str(dcp_dir), str(Path(tmp) / "full.pt"))
            full = torch.load(Path(tmp) / "full.pt", map_location=device, weights_only=True)
    except (CheckpointException, RuntimeError, EOFError) as e:  # DCP's error is a BaseException
        raise OSError(f"{dcp_dir}: unreadable shards ({' '.join(str(e).split())[:300]})") from None
    optim, index, groups = full["optim"], {}, []
    for g in optim["param_groups"]:
        ids = []
        for name in g["params"]:
            index[name] = len(index)
            ids.append(index[name])
        groups.append({**g, "params": ids})
    state = {index[name]: st for name, st in optim["state"].items()}
    return {"model": full["model"], "ema": full["ema"], "optimizer": {"state": state, "param_groups": groups}}


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    """Read a checkpoint into a dict: ``step``, ``config``, ``model``, ``ema``, ``optimizer``, ``rng``, extras."""
    path = resolve_checkpoint(path)
    try:
        verify_manifest(path)  # a changed byte anywhere: CheckpointError naming the file
        meta = json.loads((path / "state.json").read_text())
        if meta.get("sharded"):  # an FSDP2 run's DCP shards (videodiff/train/sharded.py), read whole
            out = dict(meta)
            out.update(path=path, rng={}, **_read_sharded(path / "dcp", device))
            int(out["step"])
            return out
        model = load_file(str(path / "model.safetensors"), device=str(device))
        ema = load_file(str(path / "ema.safetensors"), device=str(device))
        state = load_file(str(path / "state.safetensors"), device="cpu")  # RNG states must stay on the CPU
        rng = {k[4:]: v for k, v in state.items() if k.startswith("rng.")}
        out = dict(meta)
        out.update(path=path, model=model, ema=ema, rng=rng, optimizer=_unflatten_optimizer(state, meta["optimizer"]))
        int(out["step"])
    except (OSError, ValueError, SafetensorError, KeyError, TypeError, AttributeError) as e:
        why = f"{type(e).__name__}: {e}" if isinstance(e, (KeyError, TypeError, AttributeError)) else str(e)
        raise CheckpointError(f"could not read checkpoint {path}: {' '.join(why.split())}") from e
    return out
