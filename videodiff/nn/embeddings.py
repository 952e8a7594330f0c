"""Embeddings of the conditioning inputs of the U-Net (paper Fig. 1): the log-SNR ``lambda_t`` and a vector ``c``;
and, for a guidance-distilled student (Meng et al. 2023), the classifier-free guidance weight ``w`` of eq. (5)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["sinusoidal_embedding", "LogSNREmbedding", "GuidanceEmbedding"]


def sinusoidal_embedding(x: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Transformer-style sinusoidal features of a scalar per example: ``(B,) -> (B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    return nn.functional.pad(emb, (0, dim % 2))


class LogSNREmbedding(nn.Module):
    """``lambda -> MLP(sinusoidal(1000 * t(lambda)))`` with ``t(lambda) = atan(e^{-lambda/2}) / (pi/2)`` in [0, 1].

    Mapping log-SNR back to a bounded "time" (the unclipped cosine schedule's inverse) keeps the features well
    scaled for any schedule, as in the google-research diffusion codebases; the network never sees ``t`` itself.
    """

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, logsnr: Tensor) -> Tensor:
        t = torch.atan(torch.exp(-0.5 * logsnr.float())) / (0.5 * math.pi)
        return self.mlp(sinusoidal_embedding(1000.0 * t, self.channels))


class GuidanceEmbedding(nn.Module):
    """``w -> MLP(sinusoidal(100 w))``: the guidance weight ``w`` of eq. (5) as an input of a distilled student (Meng
    et al., CVPR 2023, "On Distillation of Guided Diffusion Models": the student takes ``w`` and reproduces the
    teacher guided at that ``w`` in one call). The factor 100 spreads ``w`` in [0, ~10] over the sinusoid's
    frequencies. The last layer starts at zero, so a network that gains this input computes what it did without it.
    """

    SCALE = 100.0

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, w: Tensor) -> Tensor:
        return self.mlp(sinusoidal_embedding(self.SCALE * w.float(), self.channels))
