"""The demo page's conditional-task rows (paper Sec. 3.1): spatial super-resolution by eq. (7) and temporal
interpolation by the gradient method (eq. 6), each on a held-out clip of the model's own data with the ground truth
beside it, run with the commands' defaults (:data:`videodiff.conditional.TASK_DEFAULTS`)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

__all__ = ["task_rows"]


def _held_out_clip(mcfg, index: int) -> torch.Tensor:
    from .data import build_dataset

    return build_dataset(mcfg.data, "test")[index]["video"][None].float()  # (1, C, F, H, W)


def task_rows(loaded, *, seed: int = 0, steps: int | None = None, device: str = "cpu",
              progress: bool = False) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """``({"superres": {label: video}, "interpolation": {label: video}}, timings)`` for one held-out clip each.

    Super-resolution: the clip area-downsampled by 2 (shown nearest-upsampled), bicubic upsampling, eq. (7), the real
    clip. Interpolation x4 (x(F-1) for models under 9 frames): the key frames (others black), linear blending of the
    key frames, the gradient method, the replacement method, the real clip. ``steps`` overrides the task defaults.
    """
    from .conditional import (Downsample, align_frames, interpolate, linear_blend, task_options, upsample,
                              upsample_nearest)

    mcfg, den = loaded.config, loaded.denoiser
    size, frames = mcfg.data.image_size, mcfg.data.num_frames
    timings: dict[str, float] = {}

    truth = _held_out_clip(mcfg, 0)
    low = Downsample(size // 2, "area")(truth)
    opts = task_options("upsample", mcfg.sample, steps=steps)
    t0 = time.perf_counter()
    sr = upsample(den, mcfg.diffusion.schedule, low.to(device), size=size, block_frames=frames,
                  generator=torch.Generator(device=device).manual_seed(seed), progress=progress, **opts).float().cpu()
    timings["superres"] = time.perf_counter() - t0
    bicubic = F.interpolate(low.transpose(1, 2).flatten(0, 1), size=(size, size), mode="bicubic",
                            align_corners=False).clamp(-1, 1).reshape(1, frames, -1, size, size).transpose(1, 2)
    superres = {f"input {size // 2}x{size // 2}": upsample_nearest(low, size), "bicubic": bicubic,
                "eq. 7": sr, "real": truth}

    truth = _held_out_clip(mcfg, 1)
    factor = 4 if frames >= 9 else max(frames - 1, 1)
    total = (frames - 1) // factor * factor + 1
    truth, keys = truth[:, :, :total], truth[:, :, :total:factor]
    interp = {"key frames": align_frames(keys, range(0, total, factor), total),
              "linear blending": linear_blend(keys, factor)}
    opts = task_options("interpolate", mcfg.sample, steps=steps)
    for method in ("gradient", "replacement"):
        t0 = time.perf_counter()
        interp[f"{method} method"] = interpolate(
            den, mcfg.diffusion.schedule, keys.to(device), factor, block_frames=frames, method=method,
            generator=torch.Generator(device=device).manual_seed(seed), progress=progress, **opts).float().cpu()
        timings[f"interpolate_{method}"] = time.perf_counter() - t0
    interp["real"] = truth
    return {"superres": superres, "interpolation": interp}, timings
