"""Video prediction over a trained model (paper Sec. 3.1, 4.4): the one entry point under ``videodiff predict``, the
SMMNIST protocol (:mod:`videodiff.evaluation.protocols`), the demo and the pipeline. Its defaults live in
``TASK_DEFAULTS["predict"]`` (:mod:`videodiff.conditional.defaults`)."""

from __future__ import annotations

import torch

from .config import ExperimentConfig
from .denoiser import Denoiser
from .models import denoiser_device

__all__ = ["predict_videos", "prediction_seed"]


def prediction_seed(seed: int, index: int) -> int:
    """Seed of continuation ``index`` (``video * samples + sample``) of a prediction run with ``seed``."""
    return seed * 1_000_003 + index


@torch.no_grad()
def predict_videos(
    denoiser: Denoiser,
    cfg: ExperimentConfig,
    video: torch.Tensor,
    *,
    given: int,
    total_frames: int,
    samples: int = 1,
    method: str = "gradient",
    variant: str = "marginal",
    context: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    **overrides,
) -> torch.Tensor:
    """``samples`` continuations of each video ``(B, C, L, H, W)`` in [-1, 1] from its first ``given`` frames to
    ``total_frames`` frames (autoregressively past the model's frame count), float ``(B, samples, C, T, H, W)`` on
    the CPU. ``method``: ``"gradient"`` (eq. 6, the paper's) or ``"replacement"`` (``variant``). ``overrides``:
    ``steps``, ``sampler``, ``w_r``, ``clamp`` and sampler options (``gamma``, ``eta``), else the task defaults.
    Continuation ``b * samples + k`` draws from a generator seeded :func:`prediction_seed` (``seed``, that index),
    so it does not depend on ``batch_size`` or on other videos."""
    from .conditional import predict, task_options

    device = denoiser_device(denoiser)
    opts = task_options("predict", cfg.sample, **overrides)
    n = video.shape[0] * samples
    gens = [torch.Generator(device=device).manual_seed(prediction_seed(seed, i)) for i in range(n)]
    if method == "replacement":
        opts["variant"] = variant
    out = predict(denoiser, cfg.diffusion.schedule, video.to(device), given=given, total_frames=total_frames,
                  block_frames=cfg.data.num_frames, samples=samples, generators=gens, context=context, method=method,
                  batch_size=batch_size, progress=progress, **opts)
    return out.float().cpu().clamp(-1.0, 1.0)
