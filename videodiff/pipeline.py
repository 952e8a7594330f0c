"""Glue between configs, checkpoints and the library: build a model, load a trained denoiser, sample videos
(optionally text-conditioned, with classifier-free guidance)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .config import ExperimentConfig, config_from_dict
from .denoiser import Denoiser
from .nn import UNet3D
from .precision import compile_network, precision_name, prepare_network, resolve_precision
from .sampling import sample, sampler_options
from .checkpoint import load_checkpoint

__all__ = ["pick_device", "build_model", "LoadedModel", "load_model", "sample_videos", "sample_seed", "text_condition",
           "sample_from_prompts", "prompt_denoiser", "extend_from_prompt"]


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
    attention pooling of caption embeddings in front of it (:class:`videodiff.text.TextConditionedUNet`)."""
    if not cfg.text.enabled:
        return UNet3D(cfg.model)
    from .text import HFTextEncoder, TextConditionedUNet

    text_dim = HFTextEncoder(cfg.text.encoder, max_length=cfg.text.max_length).dim  # reads config.json only
    return TextConditionedUNet(UNet3D(cfg.model), text_dim, num_queries=cfg.text.pool_queries,
                               heads=cfg.text.pool_heads)


@dataclass
class LoadedModel:
    denoiser: Denoiser
    config: ExperimentConfig
    step: int
    path: Path
    precision: str = "fp32"  # what the denoiser runs in: "fp32" or "bf16" (resolved from load_model's precision)
    meta: dict = field(default_factory=dict)  # a shipped model's metadata (videodiff.pretrained)


def load_model(checkpoint: str | Path, *, ema: bool = True, device: str = "auto",
               pretrained: bool | None = None, precision: str | None = None,
               compile: bool | None = None) -> LoadedModel:
    """Load a trained denoiser (EMA weights by default) from a checkpoint or run directory, or a shipped model by
    name (e.g. ``"moving-mnist"``, see :mod:`videodiff.pretrained`; shipped models carry EMA weights only).
    ``pretrained``: True forces a shipped name, False a path; None decides (an existing path wins).
    ``precision`` (``auto | fp32 | bf16``, :mod:`videodiff.precision`; None: the run's ``sample.precision``,
    ``auto`` unless the run set it): the network runs under bf16 autocast where it resolves to bf16 (``auto``: where
    the device has native bf16); ``compile`` (None: the run's ``sample.compile``): ``torch.compile`` the U-Net."""
    from .pretrained import is_model_name, load_pretrained

    dev = pick_device(device)
    if precision is not None:
        resolve_precision(precision, dev)  # validates the name before any loading
    if pretrained or (pretrained is None and is_model_name(checkpoint)):
        if not ema:
            raise ValueError(f"shipped model {checkpoint!r} has EMA weights only; drop --no-ema")
        ckpt = load_pretrained(str(checkpoint), dev)
    else:
        ckpt = load_checkpoint(checkpoint, device=dev)
    cfg = config_from_dict(ExperimentConfig, ckpt["config"])
    net = build_model(cfg).to(dev)
    net.load_state_dict(ckpt["ema" if ema else "model"])
    net.eval().requires_grad_(False)
    dtype = resolve_precision(precision or cfg.sample.precision, dev)
    prepare_network(net, dtype)
    if cfg.sample.compile if compile is None else compile:
        compile_network(net)
    den = Denoiser(net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x, autocast_dtype=dtype)
    return LoadedModel(den, cfg, ckpt["step"], ckpt["path"], precision_name(dtype), ckpt.get("meta", {}))


def denoiser_device(denoiser) -> torch.device:
    """The device of a denoiser's parameters; a parameter-free denoiser (e.g. an exact Gaussian one) runs on the CPU."""
    params = denoiser.parameters() if hasattr(denoiser, "parameters") else iter(())
    return next(iter(params), torch.empty(0)).device


def sample_seed(seed: int, index: int) -> int:
    """The seed of the generator of video ``index`` of a sampling run with ``seed``."""
    return seed * 1_000_003 + index


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
    per_video: dict[str, torch.Tensor] | None = None,
    **kwargs,
) -> torch.Tensor:
    """Draw ``num`` videos ``(num, C, F, H, W)`` in [-1, 1], reproducibly: video ``i`` depends only on ``seed`` and
    ``i`` (one generator per video, :func:`sample_seed`), not on ``num`` or ``batch_size``.

    Sampler settings default to ``cfg.sample``; ``kwargs`` go to the sampler and the denoiser (e.g. ``cond``).
    ``per_video`` holds denoiser arguments with a leading axis of ``num`` (e.g. ``text_emb``, ``text_mask``), split
    with the batches.
    """
    device = denoiser_device(denoiser)
    per_video = per_video or {}
    for key, value in per_video.items():
        if value.shape[0] != num:
            raise ValueError(f"per_video[{key!r}] has {value.shape[0]} entries for {num} videos")
    sc = cfg.sample
    sampler = sampler or sc.sampler
    extra = sampler_options(sampler, gamma=sc.gamma, eta=sc.eta)
    extra.update(kwargs)
    if num < 1 or batch_size < 1:
        raise ValueError(f"need num >= 1 and batch_size >= 1 videos, got num={num}, batch_size={batch_size}")
    if (steps is not None and steps < 1) or (num_frames is not None and num_frames < 1):
        raise ValueError(f"need steps >= 1 and num_frames >= 1, got steps={steps}, num_frames={num_frames}")
    f = cfg.data.num_frames if num_frames is None else num_frames
    shape = (cfg.data.channels, f, cfg.data.image_size, cfg.data.image_size)
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        gen = [torch.Generator(device=device).manual_seed(sample_seed(seed, start + i)) for i in range(n)]
        part = {k: v[start : start + n].to(device) for k, v in per_video.items()}
        x = sample(denoiser, (n, *shape), cfg.diffusion.schedule, steps=sc.steps if steps is None else steps, sampler=sampler,
                   generator=gen, device=device, progress=progress, **extra, **part)
        out.append(x.float().cpu())
    return torch.cat(out).clamp(-1.0, 1.0)


def text_condition(cfg: ExperimentConfig, prompts: list[str], *, cache=None) -> dict[str, torch.Tensor]:
    """Denoiser arguments ``{"text_emb", "text_mask"}`` for ``prompts`` under the experiment's (frozen, cached)
    text encoder. Raises if the experiment is not text-conditioned."""
    from .text import build_text_cache

    if not cfg.text.enabled:
        raise ValueError("this model is not text-conditioned (text.encoder is not set); --prompt needs one that is")
    cache = cache if cache is not None else build_text_cache(cfg.text)
    emb, mask = cache.encode(list(prompts))
    return {"text_emb": emb, "text_mask": mask}


def sample_from_prompts(
    denoiser: Denoiser,
    cfg: ExperimentConfig,
    prompts: list[str],
    num_per_prompt: int,
    *,
    guidance: float = 0.0,
    cache=None,
    **kwargs,
) -> torch.Tensor:
    """``num_per_prompt`` videos per prompt, prompt-major: ``(len(prompts) * num_per_prompt, C, F, H, W)``, with
    classifier-free guidance of weight ``guidance`` (eq. 5; ``0``: the plain conditional model). ``kwargs`` go to
    :func:`sample_videos` (``seed``, ``steps``, ``sampler``, ``batch_size``, ...)."""
    from .sampling.guidance import ClassifierFreeGuidance

    cond = text_condition(cfg, prompts, cache=cache)
    cond = {k: v.repeat_interleave(num_per_prompt, dim=0) for k, v in cond.items()}
    den = ClassifierFreeGuidance(denoiser, guidance) if guidance != 0 else denoiser
    return sample_videos(den, cfg, len(prompts) * num_per_prompt, per_video=cond, **kwargs)


def prompt_denoiser(denoiser: Denoiser, cfg: ExperimentConfig, prompt: str | None, num: int, guidance: float,
                    *, cache=None) -> tuple:
    """``(denoiser, denoiser keywords)`` for ``num`` videos conditioned on one ``prompt``: its embedding repeated
    ``num`` times, on the denoiser's device, and classifier-free guidance (eq. 5) of weight ``guidance`` when it is
    not 0. ``prompt=None``: the denoiser itself and no keywords (the model's unconditional c = 0)."""
    from .sampling.guidance import ClassifierFreeGuidance

    if prompt is None:
        return denoiser, {}
    device = denoiser_device(denoiser)
    text = {k: v.expand(num, *v.shape[1:]).to(device) for k, v in text_condition(cfg, [prompt], cache=cache).items()}
    return (ClassifierFreeGuidance(denoiser, guidance) if guidance != 0 else denoiser), text


def extend_from_prompt(
    denoiser: Denoiser,
    cfg: ExperimentConfig,
    video: torch.Tensor,
    prompt: str | None,
    *,
    total_frames: int,
    method: str = "gradient",
    guidance: float = 0.0,
    context: int | None = None,
    seed: int = 0,
    steps: int | None = None,
    sampler: str | None = None,
    cache=None,
    progress: bool = False,
    **kwargs,
) -> torch.Tensor:
    """Extend ``video`` ``(B, C, L, H, W)`` to ``total_frames`` frames autoregressively (Sec. 3.1, 4.4), every block
    conditioned on the last ``context`` frames (default half a block) by ``method`` (``"gradient"``, eq. 6, clamped
    to [-1, 1] when the model clips x_hat; or ``"replacement"``) and on ``prompt`` with classifier-free guidance of
    weight ``guidance`` (eq. 5; ``prompt=None``: the model's unconditional c = 0). One generator seeded with ``seed``
    drives every block, so two methods called with the same seed share their noise. Sampler settings default to
    ``cfg.sample``; ``kwargs`` go to :func:`videodiff.conditional.extend` (``w_r``, ``variant``, ...). Returns float
    ``(B, C, total_frames, H, W)`` on the CPU; its first ``L`` frames are ``video``."""
    from .conditional import extend

    device = denoiser_device(denoiser)
    sc = cfg.sample
    sampler = sampler or sc.sampler
    if prompt is None and guidance != 0:
        raise ValueError("guidance needs a prompt (guidance strengthens a text condition)")
    den, text = prompt_denoiser(denoiser, cfg, prompt, video.shape[0], guidance, cache=cache)
    if method == "gradient" and sc.clip_x:
        kwargs.setdefault("guidance_clip", (-1.0, 1.0))
    gen = torch.Generator(device=device).manual_seed(seed)
    out = extend(den, cfg.diffusion.schedule, total_frames=total_frames, block_frames=cfg.data.num_frames,
                 context=context, video=video.to(device), method=method, generator=gen, progress=progress,
                 steps=sc.steps if steps is None else steps, sampler=sampler,
                 **sampler_options(sampler, gamma=sc.gamma, eta=sc.eta), **text, **kwargs)
    return out.float().cpu()
