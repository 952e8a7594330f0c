"""FID on video frames (Sec. 4.2, Tables 2-3) and with C3D on clips (Sec. 4.1, Table 1).

Sec. 4.2: "FID/IS are image metrics, which we measure by averaging activations across frames (FID/IS-avg)
and by measuring the first frame only (FID/IS-first)". :func:`frame_activations` runs the InceptionV3 of
:mod:`videodiff.metrics.inception` on every frame (``frames='avg'``) and averages the per-frame activations
of each video (pool_3 features, logits, and softmax probabilities), or on frame 0 only (``frames='first'``).
FID is then the Fréchet distance of the 2048-d pool_3 features (TTUR / pytorch-fid). For Table 1 the paper
uses tgan2's C3D instead: one fc7 feature per 16-frame clip (:func:`clip_activations`).
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .c3d import C3D
from .frechet import MetricResult, frechet_distance_from_features
from .preprocess import as_uint8_range_tensor

FRAME_MODES = ("avg", "first")


def _as_videos(x) -> torch.Tensor:
    """(N, T, H, W, 3) videos or (N, H, W, 3) images (T = 1), values 0..255."""
    v = as_uint8_range_tensor(x)
    v = v.unsqueeze(1) if v.ndim == 4 else v
    if v.ndim != 5 or v.shape[-1] != 3:
        raise ValueError(f"expected (N, T, H, W, 3) videos or (N, H, W, 3) images, got {tuple(v.shape)}")
    return v


def _batches(n, batch_size, progress, desc):
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=desc, unit="batch")
    return starts


def frame_activations(videos, model, frames: str = "avg", batch_size: int = 32,
                      progress: bool = False) -> dict[str, np.ndarray]:
    """Per-video InceptionV3 activations: {'pool': (N, 2048), 'logits': (N, K), 'probs': (N, K)}, float64.

    frames='avg': mean over all frames of each activation (probs = mean of per-frame softmaxes);
    frames='first': the first frame only.
    """
    if frames not in FRAME_MODES:
        raise ValueError(f"frames must be one of {FRAME_MODES}, got {frames!r}")
    v = _as_videos(videos)
    v = v[:, :1] if frames == "first" else v
    n, t = v.shape[:2]
    flat = v.reshape(n * t, *v.shape[2:])  # (N*T, H, W, 3)
    device = next(model.parameters()).device
    pools, logits = [], []
    with torch.inference_mode():
        for s in _batches(n * t, batch_size, progress, "Inception features"):
            x = flat[s:s + batch_size].permute(0, 3, 1, 2).float().to(device)  # (b, 3, H, W), 0..255
            p, l = model(x)
            pools.append(p.double().cpu())
            logits.append(l.double().cpu())
    pool, logit = torch.cat(pools).view(n, t, -1), torch.cat(logits).view(n, t, -1)
    probs = torch.softmax(logit, dim=-1)
    return {"pool": pool.mean(1).numpy(), "logits": logit.mean(1).numpy(), "probs": probs.mean(1).numpy()}


def clip_activations(videos, model: C3D, batch_size: int = 16, progress: bool = False) -> dict[str, np.ndarray]:
    """C3D activations of 16-frame clips (N, 16, H, W, 3) in 0..255, fed in [-1, 1] as tgan2 does:
    {'pool': fc7 (N, 4096), 'logits': fc8 (N, 101), 'probs': softmax(fc8)}, float64."""
    v = _as_videos(videos)
    device = next(model.parameters()).device
    feats, logits = [], []
    with torch.inference_mode():
        for s in _batches(v.shape[0], batch_size, progress, "C3D features"):
            x = v[s:s + batch_size].permute(0, 4, 1, 2, 3).float().to(device) / 127.5 - 1.0  # (b, 3, T, H, W)
            f, l = model(x)
            feats.append(f.double().cpu())
            logits.append(l.double().cpu())
    logit = torch.cat(logits)
    return {"pool": torch.cat(feats).numpy(), "logits": logit.numpy(), "probs": torch.softmax(logit, -1).numpy()}


def activations(videos, model, frames: str = "avg", batch_size: int = 32, progress: bool = False):
    """Dispatch: C3D -> clip activations; any other model -> per-frame InceptionV3 activations."""
    if isinstance(model, C3D):
        return clip_activations(videos, model, batch_size, progress)
    return frame_activations(videos, model, frames, batch_size, progress)


def protocol_record(metric: str, real, fake, model, frames: str) -> dict:
    r, f = _as_videos(real), _as_videos(fake) if fake is not None else None
    rec = {"metric": metric, "network": "c3d-ucf101" if isinstance(model, C3D) else "inception-2015-12-05",
           "frames": frames, "num_real": int(r.shape[0]), "frames_real": int(r.shape[1]),
           "resolution_real": [int(r.shape[2]), int(r.shape[3])],
           "resize": getattr(model, "resize", "align_corners") if not isinstance(model, C3D) else "align_corners",
           "normalize": getattr(model, "normalize", None),
           "weights_file": os.path.basename(getattr(model, "weights_path", "") or "") or None,
           "weights_sha256": getattr(model, "weights_sha256", None)}
    if f is not None:
        rec.update(num_fake=int(f.shape[0]), frames_fake=int(f.shape[1]),
                   resolution_fake=[int(f.shape[2]), int(f.shape[3])])
    return rec


def fid_from_features(real_features, fake_features) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance_from_features(real_features, fake_features)


def fid(real_videos, fake_videos, model, *, frames: str = "avg", batch_size: int = 32,
        progress: bool = False) -> MetricResult:
    """FID-avg / FID-first (InceptionV3 on frames) or C3D FID (``model`` a :class:`C3D`)."""
    real = activations(real_videos, model, frames, batch_size, progress)["pool"]
    fake = activations(fake_videos, model, frames, batch_size, progress)["pool"]
    name = "FID" if isinstance(model, C3D) else f"FID-{frames}"
    return MetricResult(fid_from_features(real, fake), protocol_record(name, real_videos, fake_videos, model, frames))
