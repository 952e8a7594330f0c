"""One conditional sample (paper Sec. 3.1): the replacement method or the gradient method around any sampler."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..denoiser import Denoise
from ..sampling import SAMPLERS, sample
from ..sampling.common import draw_noise, loose_keywords_error
from ..schedule import time_grid
from .masks import as_mask, blend
from .reconstruction import ReconstructionGuidance
from .replacement import Hooks, LowResReplacementHook, ReplacementHook

__all__ = ["sample_conditional", "METHODS"]

METHODS = ("gradient", "replacement", "context")


def _whole_frames(mask: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A per-entry mask as ``(B, F)`` known frames; the context method conditions on whole frames only."""
    full = mask.expand(shape).bool()
    known = full.flatten(3).all(-1).all(1)  # (B, F): every entry of the frame known
    if bool((full.flatten(3).any(-1).any(1) & ~known).any()):
        raise ValueError("method='context' conditions on whole frames: the mask knows part of a frame "
                         "(use the gradient or replacement method for inpainting)")
    return known


def sample_conditional(
    denoise: Denoise,
    shape: tuple[int, ...],
    schedule: Callable[[Tensor], Tensor],
    *,
    x_a: Tensor | None = None,
    mask: Tensor | None = None,
    method: str = "gradient",
    variant: str = "marginal",
    w_r: float = 1.0,
    y: Tensor | None = None,
    y_mask: Tensor | None = None,
    down: Callable[[Tensor], Tensor] | None = None,
    w_r_low: float | None = None,
    guidance_clip: tuple[float, float] | None = None,
    steps: int = 128,
    sampler: str = "ancestral",
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
    options: dict | None = None,
    extra_args: dict | None = None,
    callback=None,
    **loose,
) -> Tensor:
    """Draw ``x ~ p(x | x^a)`` (and/or ``p(x | D x = y)``) of ``shape`` with an unconditional ``denoise``.

    ``method="replacement"``: the sampler with :class:`ReplacementHook` (``variant`` "marginal", eq. 1, or
    "posterior", eq. 3). ``method="gradient"``: the same hook around the adjusted denoiser of eq. (6) (and eq. 7 when
    ``y`` is given). With ``y`` and ``method="replacement"`` the low frequencies of ``z_s`` are replaced instead
    (:class:`LowResReplacementHook`, area ``down`` only). Without any known values this
    is plain unconditional sampling. ``method="context"``: a model trained with ``train.context_frames`` is given the
    known frames clean (:mod:`videodiff.context`, the explicitly trained conditional model of Sec. 3.1); whole frames
    only, no ``y``. The output's known entries equal ``x_a`` exactly (for 0/1 masks).
    ``guidance_clip`` clamps the adjusted prediction (see :class:`ReconstructionGuidance`, ``clip``).
    ``options`` are the sampler's own (``{"gamma": 0.3}``), ``extra_args`` the denoiser's (``{"text_emb": ...}``),
    as for :func:`videodiff.sampling.sample`; any other keyword is a TypeError that says where it goes.
    """
    if loose:
        raise TypeError(loose_keywords_error("sample_conditional()", loose))
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, got {sampler!r}")
    if (x_a is None) != (mask is None):
        raise ValueError("x_a and mask go together: give both or neither")
    if method == "context" and y is not None:
        raise ValueError("method='context' has no low-resolution conditioning: use the gradient method (eq. 7)")
    if y is not None and method != "gradient" and getattr(down, "mode", None) != "area":
        raise ValueError("low-resolution conditioning with method='replacement' needs area downsampling "
                         "(Downsample(size, 'area'): only it has a projection to replace through); "
                         "the gradient method (eq. 7) takes any differentiable D")
    if x_a is not None:
        x_a = x_a.to(device=device, dtype=dtype)
        if tuple(x_a.shape) != tuple(shape):
            raise ValueError(f"x_a has shape {tuple(x_a.shape)}, expected the sample shape {tuple(shape)}")
        mask = as_mask(mask, x_a)
        if not bool(mask.any()):
            x_a = mask = None  # nothing known: unconditional
    logsnrs = schedule(time_grid(steps))
    z = draw_noise(shape, generator, device=device, dtype=dtype)  # z_1 ~ N(0, I); one generator or one per video
    hook = None
    if x_a is not None and method != "context":  # context: the denoiser returns x^a itself (videodiff/context.py)
        hook = ReplacementHook(x_a, mask, variant, final_logsnr=float(logsnrs[-1]))
    if y is not None and method == "replacement":  # low frequencies replaced instead of eq. (7)
        low = LowResReplacementHook(y.to(device=device, dtype=dtype), shape[-2:], y_mask, float(logsnrs[-1]))
        hook = Hooks(hook, low)
    if method == "context" and x_a is not None:  # a model trained with train.context_frames: x^a enters it clean
        extra_args = {**(extra_args or {}), "context": x_a, "context_mask": _whole_frames(mask, shape)}
    if method == "gradient" and (x_a is not None or y is not None):
        denoise = ReconstructionGuidance(denoise, x_a=x_a, mask=mask, w_r=w_r, y=y, y_mask=y_mask, down=down,
                                         w_r_low=w_r_low, clip=guidance_clip)
    if hook is not None:
        z = hook.initial(z, logsnrs[0], generator)
    out = sample(denoise, shape, schedule, steps=steps, sampler=sampler, generator=generator, device=device,
                 dtype=dtype, z=z, step_hook=hook, progress=progress, options=options, extra_args=extra_args,
                 callback=callback)
    if x_a is not None:
        out = blend(out, x_a, mask)  # already exact through the hook; kept for samplers that return z_0 otherwise
    return out
