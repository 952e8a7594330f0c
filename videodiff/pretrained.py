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

__all__ = ["MODELS_DIR", "available_models", "is_model_name", "model_files", "export_model", "load_pretrained",
           "check_model_name"]

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


def export_model(checkpoint: str | Path, name: str, out_dir: str | Path | None = None, *,
                 extra: dict | None = None, overwrite: bool = False, check=None) -> tuple[Path, Path]:
    """Write a checkpoint's EMA weights (fp32 safetensors) and its config/step/provenance as a shipped model.

    ``extra`` is merged into the JSON (e.g. the training command and measured quality for the model card). The files
    go into ``out_dir`` only (``name`` is checked by :func:`check_model_name`); an existing model of that name is
    replaced only with ``overwrite``, and one shipped in the package (:data:`MODELS_DIR`) never. ``check(config,
    state, source)`` (e.g. :func:`videodiff.models.check_weights`, which builds the config's network and loads the
    weights into it) runs before anything is written.
    """
    from safetensors.torch import save_file

    from .checkpoint import load_checkpoint

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
    ckpt = load_checkpoint(checkpoint)
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in ckpt["ema"].items()}
    if check is not None:
        check(ckpt["config"], tensors, f"--checkpoint {ckpt['path']}")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out_dir}: folder is not writable")
    _write_atomic(weights, lambda tmp: save_file(tensors, str(tmp), metadata={"name": name, "step": str(ckpt["step"])}))
    meta = {"name": name, "step": ckpt["step"], "config": ckpt["config"], "weights": "ema",
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "source": str(ckpt["path"])}
    meta.update(extra or {})
    _write_atomic(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    return weights, meta_path


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
