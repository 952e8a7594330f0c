"""Models from configs and checkpoints (components layer): the device choice, building the network of an
experiment config, and loading a trained denoiser from a checkpoint, a run directory or a shipped model's name.
The trainer and the app tier (CLI, demo, app, evaluation) both build and load models through this module."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import load_checkpoint
from .config import ExperimentConfig, config_from_dict
from .denoiser import Denoiser
from .nn import UNet3D
from .precision import compile_network, precision_name, prepare_network, resolve_precision
from .precision_probe import resolve_for_network

__all__ = ["pick_device", "build_model", "LoadedModel", "load_weights", "load_state_checked", "check_weights",
           "load_model", "model_from_state", "denoiser_device"]


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device (clear error if it is unavailable)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} was requested but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was requested but MPS is not available on this machine")
    return device


def build_model(cfg: ExperimentConfig) -> torch.nn.Module:
    """The network of ``cfg.model`` (weights from the current global RNG: callers seed it); with ``cfg.text`` set,
    attention pooling of caption embeddings in front of it (:class:`videodiff.text.TextConditionedUNet`); with
    ``cfg.lora.rank`` > 0, LoRA adapters on its convolutions and everything else frozen (:mod:`videodiff.nn.lora`)."""
    net = UNet3D(cfg.model)
    if cfg.text.enabled:
        from .text import HFTextEncoder, TextConditionedUNet

        text_dim = HFTextEncoder(cfg.text.encoder, max_length=cfg.text.max_length).dim  # reads config.json only
        net = TextConditionedUNet(net, text_dim, num_queries=cfg.text.pool_queries, heads=cfg.text.pool_heads)
    if cfg.lora.rank:
        from .nn.lora import add_lora

        add_lora(net, cfg.lora.rank, cfg.lora.alpha or None, cfg.lora.targets)
    return net


def load_state_checked(net: torch.nn.Module, state: dict, source) -> None:
    """``net.load_state_dict(state)``, where a mismatch (weights of another config: other keys or shapes) is one
    ValueError naming ``source`` and a few of the differences instead of torch's many-line RuntimeError."""
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        own = net.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
        parts = [f"{len(v)} {what} (e.g. {', '.join(v[:2])})" for what, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if v]
        raise ValueError(f"{source}: its weights do not fit the network of its config ({'; '.join(parts) or e}); "
                         f"the weights and config.json/state.json come from different runs") from None


def check_weights(config: dict, state: dict, source) -> None:
    """Build the network of ``config`` (a saved experiment config) and load ``state`` into it: raises a one-line
    ValueError naming ``source`` when they do not fit (for ``videodiff export``)."""
    load_state_checked(build_model(config_from_dict(ExperimentConfig, config)), state, source)


@dataclass
class LoadedModel:
    denoiser: Denoiser
    config: ExperimentConfig
    step: int
    path: Path
    precision: str = "fp32"  # what the denoiser runs in: "fp32" or "bf16" (resolved from load_model's precision)
    meta: dict = field(default_factory=dict)  # a shipped model's metadata (videodiff.pretrained)
    requested_precision: str | None = None  # load_model's precision (None: the run's sample.precision)


def load_weights(source: str | Path, *, device: str | torch.device = "cpu", pretrained: bool | None = None) -> dict:
    """``{"config", "ema", "step", "path", ...}`` of a checkpoint or run directory (also ``"model"``, the raw
    weights), a folder written by ``VideoPipeline.save_pretrained``, or a shipped model's name (plus ``"meta"``).
    ``pretrained``: True forces a shipped name, False a path; None decides (an existing path wins)."""
    from .pretrained import available_models, is_model_name, load_pretrained, saved_model_name

    if pretrained is None and not Path(source).exists() and not is_model_name(source):
        raise FileNotFoundError(f"model {str(source)!r}: no such run directory or checkpoint, and no shipped "
                                f"model of that name (shipped: {', '.join(available_models()) or 'none'})")
    if pretrained or (pretrained is None and is_model_name(source)):
        return load_pretrained(str(source), torch.device(device))
    if (saved := saved_model_name(source)) is not None:
        return load_pretrained(saved, torch.device(device), models_dir=Path(source))
    return load_checkpoint(source, device=device)


def load_model(checkpoint: str | Path, *, ema: bool = True, device: str = "auto",
               pretrained: bool | None = None, precision: str | None = None,
               compile: bool | None = None) -> LoadedModel:
    """Load a trained denoiser (EMA weights by default) from a checkpoint or run directory, a folder written by
    ``VideoPipeline.save_pretrained``, or a shipped model by name (e.g. ``"moving-mnist"``, see
    :mod:`videodiff.pretrained`; shipped and saved models carry EMA weights only).
    ``pretrained``: True forces a shipped name, False a path; None decides (an existing path wins).
    ``precision`` (``auto | fp32 | bf16``, :mod:`videodiff.precision`; None: the run's ``sample.precision``,
    ``auto`` unless the run set it): the network runs under bf16 autocast where it resolves to bf16 (``auto``: where
    the device has native bf16); ``compile`` (None: the run's ``sample.compile``): ``torch.compile`` the U-Net."""
    dev = pick_device(device)
    if precision is not None:
        resolve_precision(precision, dev)  # validates the name before any loading
    ckpt = load_weights(checkpoint, device=dev, pretrained=pretrained)
    if not ema and "model" not in ckpt:
        raise ValueError(f"{checkpoint} has EMA weights only (a shipped or saved model); drop --no-ema")
    cfg = config_from_dict(ExperimentConfig, ckpt["config"])
    return model_from_state(cfg, ckpt["ema" if ema else "model"], dev, step=ckpt["step"], path=ckpt["path"],
                            meta=ckpt.get("meta", {}), precision=precision, compile=compile)


def model_from_state(cfg: ExperimentConfig, state: dict, device: torch.device, *, step: int, path, meta: dict,
                     precision: str | None = None, compile: bool | None = None) -> LoadedModel:
    """The network of ``cfg`` with weights ``state``, frozen, as a :class:`Denoiser` in ``precision`` (None: the
    run's ``sample.precision``) on ``device``; ``compile`` None: the run's ``sample.compile``."""
    net = build_model(cfg).to(device)
    load_state_checked(net, state, path)  # one line naming the source if they are another network's
    net.eval().requires_grad_(False)
    # auto: measured for this network and a batch of 2 clips (a guided prompt) on CPUs with native bf16
    shape = (2, cfg.model.input_channels(), cfg.data.num_frames, cfg.data.image_size, cfg.data.image_size)
    dtype = resolve_for_network(precision or cfg.sample.precision, net, shape, device)
    prepare_network(net, dtype)
    if cfg.sample.compile if compile is None else compile:
        compile_network(net)
    den = Denoiser(net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x, autocast_dtype=dtype)
    return LoadedModel(den, cfg, step, Path(path), precision_name(dtype), meta, precision)


def denoiser_device(denoiser) -> torch.device:
    """The device of a denoiser's parameters; a parameter-free denoiser (e.g. an exact Gaussian one) runs on the CPU."""
    params = denoiser.parameters() if hasattr(denoiser, "parameters") else iter(())
    return next(iter(params), torch.empty(0)).device
