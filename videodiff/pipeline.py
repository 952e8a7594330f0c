"""Sampling functions over trained models: videos drawn reproducibly, optionally text-conditioned with
classifier-free guidance (eq. 5). :class:`videodiff.VideoPipeline` (:mod:`videodiff.video_pipeline`) is the API for
every task on top of them; the trainer's previews and the evaluation use these directly. Building and loading
models lives in :mod:`videodiff.models` (its names are re-exported here, where they used to live)."""

from __future__ import annotations

import torch

from .config import ExperimentConfig
from .denoiser import Denoiser
from .models import LoadedModel, build_model, denoiser_device, load_model, pick_device
from .sampling import resolve_options, sample
from .sampling.registry import check_options
from .sampling.common import loose_keywords_error

__all__ = ["pick_device", "build_model", "LoadedModel", "load_model", "denoiser_device", "sample_videos", "sample_seed",
           "text_condition", "sample_from_prompts"]


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
    options: dict | None = None,
    extra_args: dict | None = None,
    callback=None,
    on_batch=None,
    **loose,
) -> torch.Tensor:
    """Draw ``num`` videos ``(num, C, F, H, W)`` in [-1, 1], reproducibly: video ``i`` depends only on ``seed`` and
    ``i`` (one generator per video, :func:`sample_seed`), not on ``num`` or ``batch_size``.

    Sampler settings default to ``cfg.sample``; ``options`` are the sampler's own (``{"gamma": 0.3}``, over
    ``cfg.sample``), ``extra_args`` the denoiser's shared by every video (``{"cond": c}``); ``per_video`` holds
    denoiser arguments with a leading axis of ``num`` (e.g. ``text_emb``, ``text_mask``), split with the batches.
    ``callback(i, z_s, x_hat)`` runs after every sampling step, ``on_batch(done, num)`` after every batch (the
    videos done so far), e.g. for an estimate of the time left. Any other keyword is a TypeError that says where it goes.
    """
    if loose:
        raise TypeError(loose_keywords_error("sample_videos()", loose))
    device = denoiser_device(denoiser)
    per_video = per_video or {}
    for key, value in per_video.items():
        if value.shape[0] != num:
            raise ValueError(f"per_video[{key!r}] has {value.shape[0]} entries for {num} videos")
    sc = cfg.sample
    sampler = sampler or sc.sampler
    options = resolve_options(sampler, sc, **check_options(sampler, options))
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
        x = sample(denoiser, (n, *shape), cfg.diffusion.schedule, steps=sc.steps if steps is None else steps,
                   sampler=sampler, generator=gen, device=device, progress=progress, options=options,
                   extra_args={**(extra_args or {}), **part}, callback=callback)
        out.append(x.float().cpu())
        if on_batch is not None:
            on_batch(start + n, num)
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
    from .sampling.guidance import guided

    cond = text_condition(cfg, prompts, cache=cache)
    cond = {k: v.repeat_interleave(num_per_prompt, dim=0) for k, v in cond.items()}
    den = guided(denoiser, guidance, w_input=cfg.model.guidance_input)
    return sample_videos(den, cfg, len(prompts) * num_per_prompt, per_video=cond, **kwargs)
