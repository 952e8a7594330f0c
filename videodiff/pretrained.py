"""Pretrained models shipped inside the package, loaded by name (``videodiff sample --model moving-mnist``).

A shipped model is two files in ``videodiff/assets/models``: ``NAME.safetensors`` (the EMA weights, the ones the
paper samples with) and ``NAME.json`` (the experiment config it was trained with, the training step, the command
that trained it and the measured quality), next to a human-readable model card ``NAME.md``. They are written from a
training run by :func:`export_model` (``videodiff export``), so a shipped model is always reproducible from a
config in ``configs/`` and the project's own ``videodiff train``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import torch

__all__ = ["MODELS_DIR", "available_models", "is_model_name", "model_files", "check_model_name", "export_target",
           "writable_folder", "write_model", "plain_network", "export_model", "saved_model_name", "load_pretrained"]

MODELS_DIR = Path(__file__).parent / "assets" / "models"


def available_models(models_dir: Path | None = None) -> list[str]:
    """Names of the shipped models (those with both a ``.safetensors`` and a ``.json`` file)."""
    models_dir = Path(models_dir or MODELS_DIR)
    if not models_dir.is_dir():
        return []
    return sorted(p.stem for p in models_dir.glob("*.safetensors") if p.with_suffix(".json").is_file())


def is_model_name(name: str | Path) -> bool:
    """True when ``name`` is a shipped model's name rather than a path on disk (an existing path always wins)."""
    s = str(name)
    return not Path(s).exists() and "/" not in s and s in available_models()


def model_files(name: str, models_dir: Path | None = None) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths of a shipped model; the error lists what is shipped."""
    models_dir = Path(models_dir or MODELS_DIR)
    weights, meta = models_dir / f"{name}.safetensors", models_dir / f"{name}.json"
    if not (weights.is_file() and meta.is_file()):
        shipped = ", ".join(available_models(models_dir)) or "none"
        raise FileNotFoundError(f"no shipped model named {name!r} (shipped: {shipped}); pass a run directory or "
                                f"checkpoint with --checkpoint instead")
    return weights, meta


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_model_name(name: str) -> str:
    """A model name is one file-name stem: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit
    (so never a path, a hidden file or ``..``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"--name {name!r}: a model name is 1-100 letters, digits, '.', '_' or '-', starting with a "
                         f"letter or digit (no folders; --out chooses the folder)")
    return name


def _write_atomic(path: Path, write) -> None:
    """``write(tmp)``, then give the file the mode a plain ``open`` would (0666 & ~umask), fsync, and rename it over
    ``path``: a failure leaves any previous file as it was."""
    from safetensors import SafetensorError

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            write(tmp)
        except SafetensorError as e:  # safetensors' I/O errors: an OSError naming the folder, as open() would
            raise OSError(f"--out {path.parent}: cannot write {path.name}: {' '.join(str(e).split())}") from None
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_target(name: str, out_dir: str | Path | None, *, overwrite: bool = False) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` in ``out_dir`` (default :data:`MODELS_DIR`) for ``videodiff export``, after
    the checks that come before any reading: ``name`` is a plain stem (:func:`check_model_name`), ``out_dir`` is not
    a file, and an existing model of that name is replaced only with ``overwrite`` (one shipped in the package never)."""
    check_model_name(name)
    out_dir = Path(out_dir or MODELS_DIR)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir}: is a file, not a folder")
    weights, meta_path = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    if weights.exists() or meta_path.exists():
        if out_dir.resolve() == Path(MODELS_DIR).resolve():
            raise FileExistsError(f"--name {name!r}: a model of that name ships with the package ({weights}); a "
                                  f"shipped model is never replaced by export: choose another --name or --out")
        if not overwrite:
            raise FileExistsError(f"--name {name!r}: {weights if weights.exists() else meta_path} exists; pass "
                                  f"--overwrite to replace it, or choose another --name or --out")
    return weights, meta_path


def writable_folder(out_dir: str | Path) -> Path:
    """``out_dir``, created if missing; a folder that cannot be written is one PermissionError."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out_dir}: folder is not writable")
    return out_dir


def write_model(state: dict, config: dict, step: int, name: str, out_dir: str | Path, *,
                extra: dict | None = None, card: str | None = None) -> tuple[Path, Path]:
    """Write weights (fp32 safetensors) and ``NAME.json`` (config, step, sha256, ``extra``) in the shipped layout;
    with ``card``, also the model card ``NAME.md``. Loadable by name from ``out_dir`` (:func:`load_pretrained`).
    Each file is written atomically (:func:`_write_atomic`): a failure leaves a previous model as it was."""
    from safetensors.torch import save_file

    out_dir = writable_folder(out_dir)
    weights, meta_path = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in state.items()}
    _write_atomic(weights, lambda tmp: save_file(tensors, str(tmp), metadata={"name": name, "step": str(step)}))
    meta = {"name": name, "step": step, "config": config, "weights": "ema",
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    meta.update(extra or {})
    if card is not None:
        meta["card"] = f"{name}.md"
        _write_atomic(out_dir / f"{name}.md", lambda tmp: tmp.write_text(card))
    _write_atomic(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    return weights, meta_path


def plain_network(state: dict, config: dict) -> tuple[dict, dict]:
    """``(weights, config dict)`` of a network as a plain one: a LoRA network's adapters folded into its kernels
    (:func:`videodiff.nn.lora.merge_lora`) and ``lora.rank`` 0; any other network unchanged."""
    from .nn.lora import merge_lora

    if not (config.get("lora") or {}).get("rank"):
        return state, config
    return merge_lora(state), {**config, "lora": {**config["lora"], "rank": 0}}


def export_model(checkpoint: str | Path, name: str, out_dir: str | Path | None = None, *,
                 extra: dict | None = None, overwrite: bool = False, check=None) -> tuple[Path, Path]:
    """Write a checkpoint's EMA weights (fp32 safetensors) and its config/step/provenance as a shipped model.

    ``extra`` is merged into the JSON (e.g. the training command and measured quality for the model card). A LoRA
    run (``lora.rank`` > 0) is written merged: its adapters folded into the kernels, a plain network. The files
    go into ``out_dir`` only (``name`` is checked by :func:`check_model_name`); an existing model of that name is
    replaced only with ``overwrite``, and one shipped in the package (:data:`MODELS_DIR`) never (:func:`export_target`).
    ``check(config, state, source)`` (e.g. :func:`videodiff.models.check_weights`, which builds the config's network
    and loads the weights into it) runs before anything is written.
    """
    from .checkpoint import load_checkpoint

    weights, _ = export_target(name, out_dir, overwrite=overwrite)
    ckpt = load_checkpoint(checkpoint)
    if check is not None:  # the run's own network first: a LoRA run's weights against its LoRA config
        check(ckpt["config"], ckpt["ema"], f"--checkpoint {ckpt['path']}")
    state, config = plain_network(ckpt["ema"], ckpt["config"])
    return write_model(state, config, ckpt["step"], name, weights.parent,
                       extra={"source": str(ckpt["path"]), **(extra or {})})


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_model_name(folder: str | Path) -> str | None:
    """The name of the one model saved in ``folder`` in the shipped layout (``save_pretrained``), else None."""
    folder = Path(folder)
    names = [n for n in (available_models(folder) if folder.is_dir() else [])
             if "weights_sha256" in _read_json(folder / f"{n}.json")]  # not a checkpoint's state.json
    if len(names) > 1:
        raise ValueError(f"{folder} holds {len(names)} saved models ({', '.join(names)}); pass one folder per model")
    return names[0] if names else None


def load_pretrained(name: str, device: torch.device, models_dir: Path | None = None) -> dict:
    """A shipped model as the dict :func:`videodiff.pipeline.load_model` reads from checkpoints:
    ``config``, ``ema`` (state dict on ``device``), ``step``, ``path`` and ``meta``."""
    from safetensors.torch import load_file

    weights, meta_path = model_files(name, models_dir)
    meta = json.loads(meta_path.read_text())
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    if meta.get("weights_sha256") not in (None, sha):
        raise ValueError(f"{weights}: sha256 {sha[:12]}... does not match {meta_path.name} "
                         f"({meta['weights_sha256'][:12]}...); the file is corrupt or was replaced")
    state = load_file(str(weights), device=str(device))
    return {"config": meta["config"], "ema": state, "step": meta["step"], "path": weights, "meta": meta}
