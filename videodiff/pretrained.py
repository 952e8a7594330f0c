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
from pathlib import Path

import torch

__all__ = ["MODELS_DIR", "available_models", "is_model_name", "model_files", "export_model", "load_pretrained"]

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


def export_model(checkpoint: str | Path, name: str, out_dir: str | Path | None = None, *,
                 extra: dict | None = None) -> tuple[Path, Path]:
    """Write a checkpoint's EMA weights (fp32 safetensors) and its config/step/provenance as a shipped model.

    ``extra`` is merged into the JSON (e.g. the training command and measured quality for the model card).
    """
    from safetensors.torch import save_file

    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    out_dir = Path(out_dir or MODELS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, meta_path = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in ckpt["ema"].items()}
    save_file(tensors, str(weights), metadata={"name": name, "step": str(ckpt["step"])})
    meta = {"name": name, "step": ckpt["step"], "config": ckpt["config"], "weights": "ema",
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "source": str(ckpt["path"])}
    meta.update(extra or {})
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
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
