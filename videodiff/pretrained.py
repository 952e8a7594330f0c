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

__all__ = ["MODELS_DIR", "available_models", "is_model_name", "model_files", "write_model", "plain_network", "export_model",
           "saved_model_name", "load_pretrained"]

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


def write_model(state: dict, config: dict, step: int, name: str, out_dir: str | Path, *,
                extra: dict | None = None, card: str | None = None) -> tuple[Path, Path]:
    """Write weights (fp32 safetensors) and ``NAME.json`` (config, step, sha256, ``extra``) in the shipped layout;
    with ``card``, also the model card ``NAME.md``. Loadable by name from ``out_dir`` (:func:`load_pretrained`)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights, meta_path = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    tensors = {k: v.detach().float().contiguous().cpu() for k, v in state.items()}
    save_file(tensors, str(weights), metadata={"name": name, "step": str(step)})
    meta = {"name": name, "step": step, "config": config, "weights": "ema",
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}
    meta.update(extra or {})
    if card is not None:
        meta["card"] = f"{name}.md"
        (out_dir / f"{name}.md").write_text(card)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return weights, meta_path


def plain_network(state: dict, config: dict) -> tuple[dict, dict]:
    """``(weights, config dict)`` of a network as a plain one: a LoRA network's adapters folded into its kernels
    (:func:`videodiff.nn.lora.merge_lora`) and ``lora.rank`` 0; any other network unchanged."""
    from .nn.lora import merge_lora

    if not (config.get("lora") or {}).get("rank"):
        return state, config
    return merge_lora(state), {**config, "lora": {**config["lora"], "rank": 0}}


def export_model(checkpoint: str | Path, name: str, out_dir: str | Path | None = None, *,
                 extra: dict | None = None) -> tuple[Path, Path]:
    """Write a checkpoint's EMA weights (fp32 safetensors) and its config/step/provenance as a shipped model.

    ``extra`` is merged into the JSON (e.g. the training command and measured quality for the model card). A LoRA
    run (``lora.rank`` > 0) is written merged: its adapters folded into the kernels, a plain network.
    """
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    state, config = plain_network(ckpt["ema"], ckpt["config"])
    return write_model(state, config, ckpt["step"], name, out_dir or MODELS_DIR,
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
