"""Glue between configs, checkpoints and the library: build a model, load a trained denoiser, sample videos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import ExperimentConfig, config_from_dict
from .denoiser import Denoiser
from .nn import UNet3D
from .sampling import sample
from .checkpoint import load_checkpoint

__all__ = ["pick_device", "build_model", "LoadedModel", "load_model", "sample_videos"]


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device (clear error if it is unavailable)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available on this machine")
    return device


def build_model(cfg: ExperimentConfig) -> UNet3D:
    """The network of ``cfg.model`` (weights from the current global RNG: callers seed it)."""
    return UNet3D(cfg.model)


@dataclass
class LoadedModel:
    denoiser: Denoiser
    config: ExperimentConfig
    step: int
    path: Path


def load_model(checkpoint: str | Path, *, ema: bool = True, device: str = "auto") -> LoadedModel:
    """Load a trained denoiser (EMA weights by default) from a checkpoint or run directory."""
    dev = pick_device(device)
    ckpt = load_checkpoint(checkpoint, device=dev)
    cfg = config_from_dict(ExperimentConfig, ckpt["config"])
    net = build_model(cfg).to(dev)
    net.load_state_dict(ckpt["ema" if ema else "model"])
    net.eval().requires_grad_(False)
    den = Denoiser(net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x)
    return LoadedModel(den, cfg, ckpt["step"], ckpt["path"])


@torch.no_grad()
def sample_videos(
    denoiser: Denoiser,
    cfg: ExperimentConfig,
    num: int,
    *,
    steps: int | None = None,
    sampler: str | None = None,
    seed: int = 0,
    batch_size: int = 16,
    num_frames: int | None = None,
    progress: bool = False,
    **kwargs,
) -> torch.Tensor:
    """Draw ``num`` videos ``(num, C, F, H, W)`` in [-1, 1], reproducibly from ``seed`` (per-batch generators).

    Sampler settings default to ``cfg.sample``; ``kwargs`` go to the sampler and the denoiser (e.g. ``cond``).
    """
    device = next(denoiser.parameters()).device
    sc = cfg.sample
    sampler = sampler or sc.sampler
    extra = {"gamma": sc.gamma} if sampler == "ancestral" else {"eta": sc.eta}
    extra.update(kwargs)
    f = num_frames or cfg.data.num_frames
    shape = (cfg.data.channels, f, cfg.data.image_size, cfg.data.image_size)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        gen = torch.Generator(device=device).manual_seed(seed * 1_000_003 + start)
        x = sample(denoiser, (n, *shape), cfg.diffusion.schedule, steps=steps or sc.steps, sampler=sampler,
                   generator=gen, device=device, progress=progress, **extra)
        out.append(x.float().cpu())
    return torch.cat(out).clamp(-1.0, 1.0)
