"""Fine-tuning a shipped or trained model on your own videos (``videodiff finetune``, ``VideoPipeline.finetune``).

A fine-tune is an ordinary training run (:func:`videodiff.train.train`: the same checkpoints, resume, loggers and
divergence checks) whose config is the base model's own (its network, schedule and text encoder, its frame count,
size and channels), with the data replaced by a folder of videos or a caption manifest and the weights starting from
the base model's (``train.init_from``). ``lora.rank`` > 0 freezes the base network and trains low-rank adapters on
its attention projections and convolutions (:mod:`videodiff.nn.lora`, our own module rather than ``peft``: see
docs/architecture.md). Captions: a manifest's, or same-name ``.txt`` files beside a folder's videos; a video
without one trains the null condition c = 0 (a text model's unconditional mode).

An adapter is exported alone (:func:`export_adapter`, a few hundred kB) with a fingerprint of the base weights it
was trained on, so that :func:`apply_adapter` refuses it on another model; or merged into full weights
(:func:`videodiff.pretrained.plain_network`, which ``videodiff export`` and ``save_pretrained`` use).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .config import ExperimentConfig, apply_overrides, config_from_dict, config_to_dict

__all__ = ["MANIFEST_SUFFIXES", "finetune_config", "finetune", "fingerprint", "export_adapter", "apply_adapter"]

MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")


def _data_options(data: Path, text: bool) -> dict:
    """``data.*`` for ``--data``: a folder (kind video_folder) or a caption manifest (kind manifest), checked."""
    from .data.captions import read_manifest
    from .data.video_folder import find_videos

    if data.is_dir():
        videos = find_videos(data)  # a one-line error for a folder without videos
        captioned = [v for v in videos if v.with_suffix(".txt").is_file()]
        if captioned and not text:
            raise ValueError(f"--data {data}: {len(captioned)} videos have captions (.txt) but the model is not "
                             f"text-conditioned; remove them or fine-tune a text-conditioned model")
        return {"kind": "video_folder", "root": str(data), "manifest": None}
    if data.suffix.lower() in MANIFEST_SUFFIXES:
        if not text:
            raise ValueError(f"--data {data}: a caption manifest, but the model is not text-conditioned; pass the "
                             f"folder of videos instead")
        rows = read_manifest(data)
        missing = [str(r.video) for r in rows if not r.video.is_file()]
        if missing:
            raise ValueError(f"--data {data}: its captions do not match the videos: {len(missing)} of {len(rows)} "
                             f"rows name a missing file (first: {missing[0]})")
        return {"kind": "manifest", "manifest": str(data), "root": None}
    raise ValueError(f"--data {data}: expected a folder of videos or a caption manifest "
                     f"({', '.join(MANIFEST_SUFFIXES)})")


def finetune_config(model: str | Path, data: str | Path, *, lora_rank: int = 0, lora_alpha: float = 0.0,
                    steps: int = 500, lr: float | None = None, batch_size: int | None = None,
                    overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """The training config of a fine-tune of ``model`` (a shipped name, a saved folder or a run) on ``data``.
    ``lr`` default: 1e-4 for full fine-tuning, 1e-3 for LoRA. ``overrides``: ``--set`` strings, applied last."""
    from .models import load_weights

    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"--data {data}: no such folder or file")
    base = load_weights(model)
    d = config_to_dict(config_from_dict(ExperimentConfig, base["config"]))
    d["data"].update(_data_options(data, bool(d["text"].get("encoder"))), image_frames=0)
    d["name"] = f"{Path(str(model)).name}-finetune"
    d["lora"].update(rank=lora_rank, alpha=lora_alpha)
    d["train"].update(init_from=str(model), steps=steps, lr=lr or (1e-3 if lora_rank else 1e-4),
                      warmup_steps=min(d["train"]["warmup_steps"], max(steps // 10, 1)))
    if batch_size is not None:
        d["train"]["batch_size"] = batch_size
    return config_from_dict(ExperimentConfig, apply_overrides(d, list(overrides)))


def finetune(model: str | Path, data: str | Path, out: str | Path, *, progress: bool = True, **kwargs):
    """Fine-tune ``model`` on ``data`` into the run directory ``out`` (rerun to resume); ``kwargs`` as
    :func:`finetune_config`. Returns :class:`videodiff.train.TrainResult`."""
    from .train import train

    return train(finetune_config(model, data, **kwargs), out, progress=progress)


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a network's base weights (every entry but the adapters'), by name: identifies the model an
    adapter was trained on."""
    h = hashlib.sha256()
    for key in sorted(k for k in state if ".lora." not in k):
        h.update(key.encode())
        h.update(state[key].detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def export_adapter(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the adapters of a LoRA run's checkpoint (EMA weights) alone: ``OUT.safetensors`` and ``OUT.json``
    (their LoRA config, the base model and its fingerprint). Returns the weights' path."""
    from safetensors.torch import save_file

    from .checkpoint import load_checkpoint
    from .nn.lora import lora_state

    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    if not (cfg.get("lora") or {}).get("rank"):
        raise ValueError(f"{checkpoint}: not a LoRA run (lora.rank is 0), so it has no adapter; export it without "
                         f"--adapter")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.with_suffix(".safetensors")
    save_file({k: v.float().contiguous() for k, v in lora_state(ckpt["ema"]).items()}, str(weights))
    meta = {"kind": "lora-adapter", "lora": cfg["lora"], "base_model": (cfg.get("train") or {}).get("init_from"),
            "base_fingerprint": fingerprint(ckpt["ema"]), "step": ckpt["step"], "source": str(ckpt["path"])}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return weights


def apply_adapter(model, adapter: str | Path):
    """``model`` (a loaded plain network) with the adapter of :func:`export_adapter` added: a new
    :class:`videodiff.models.LoadedModel`. An adapter trained on other base weights is refused."""
    from safetensors.torch import load_file

    from .models import model_from_state

    adapter = Path(adapter)
    meta_path, weights = adapter.with_suffix(".json"), adapter.with_suffix(".safetensors")
    if not (meta_path.is_file() and weights.is_file()):
        raise FileNotFoundError(f"adapter {adapter}: needs {weights.name} and {meta_path.name} side by side")
    meta = json.loads(meta_path.read_text())
    base = model.denoiser.net.state_dict()
    if meta.get("kind") != "lora-adapter" or meta.get("base_fingerprint") != fingerprint(base):
        raise ValueError(f"adapter {adapter} was trained on another model ({meta.get('base_model')}), not on "
                         f"{model.path}; load it onto the model it was trained on")
    cfg = config_from_dict(ExperimentConfig, {**config_to_dict(model.config), "lora": meta["lora"]})
    state = {**base, **load_file(str(weights), device=str(next(iter(base.values())).device))}
    return model_from_state(cfg, state, next(iter(base.values())).device, step=model.step, path=model.path,
                            meta={**model.meta, "adapter": str(adapter)}, precision=model.requested_precision)
