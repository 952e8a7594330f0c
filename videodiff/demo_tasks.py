"""The demo page's conditional-task rows (paper Sec. 3.1): spatial super-resolution by eq. (7) and temporal
interpolation by the gradient method (eq. 6), each on a held-out clip of the model's own data with the ground truth
beside it, run by :class:`videodiff.VideoPipeline` with its task defaults."""

from __future__ import annotations

import time

import torch

__all__ = ["task_rows"]


def _held_out_clip(mcfg, index: int) -> torch.Tensor:
    from .data import build_dataset

    return build_dataset(mcfg.data, "test")[index]["video"][None].float()  # (1, C, F, H, W)


def task_rows(pipe, *, seed: int = 0, steps: int | None = None,
              progress: bool = False) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """``({"superres": {label: video}, "interpolation": {label: video}}, timings)`` for one held-out clip each,
    from a :class:`videodiff.VideoPipeline`.

    Super-resolution: the clip area-downsampled by 2 (shown nearest-upsampled), bicubic upsampling, eq. (7), the real
    clip. Interpolation x4 (x(F-1) for models under 9 frames): the key frames (others black), linear blending of the
    key frames, the gradient method, the replacement method, the real clip. ``steps`` overrides the task defaults.
    """
    from .conditional import Downsample, align_frames, linear_blend, upsample_bicubic, upsample_nearest

    mcfg = pipe.config
    size, frames = mcfg.data.image_size, mcfg.data.num_frames
    timings: dict[str, float] = {}

    truth = _held_out_clip(mcfg, 0)
    low = Downsample(size // 2, "area")(truth)
    t0 = time.perf_counter()
    sr = pipe.upsample(low, steps=steps, seed=seed, progress=progress)
    timings["superres"] = time.perf_counter() - t0
    superres = {f"input {size // 2}x{size // 2}": upsample_nearest(low, size), "bicubic": upsample_bicubic(low, size),
                "eq. 7": sr, "real": truth}

    truth = _held_out_clip(mcfg, 1)
    factor = 4 if frames >= 9 else max(frames - 1, 1)
    total = (frames - 1) // factor * factor + 1
    truth, keys = truth[:, :, :total], truth[:, :, :total:factor]
    interp = {"key frames": align_frames(keys, range(0, total, factor), total),
              "linear blending": linear_blend(keys, factor)}
    for method in ("gradient", "replacement"):
        t0 = time.perf_counter()
        interp[f"{method} method"] = pipe.interpolate(keys, factor, method=method, steps=steps, seed=seed,
                                                      progress=progress)
        timings[f"interpolate_{method}"] = time.perf_counter() - t0
    interp["real"] = truth
    return {"superres": superres, "interpolation": interp}, timings
