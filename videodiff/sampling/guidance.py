"""Classifier-free guidance (paper Sec. 2, eq. 5; Ho & Salimans 2021) as a wrapper around a denoiser.

    eps~(z_t, c) = (1 + w) eps(z_t, c) - w eps(z_t)                                                  (5)

with ``eps(z_t, c) = (z_t - alpha_t x_hat(z_t, c)) / sigma_t`` and ``eps(z_t)`` the same network under the null
condition (``c = 0``, trained jointly through conditioning dropout). ``w = 0`` is the plain conditional model.
Because ``eps`` is affine in ``x_hat`` at fixed ``z_t``, eq. (5) is the same combination of the ``x_hat``'s:
``x~ = (1 + w) x_hat(z_t, c) - w x_hat(z_t)``; it is computed here in ``eps`` space, as written in the paper.

:func:`classifier_free_guidance` takes any ``denoise(z_t, logsnr, **kwargs) -> x_hat`` and returns a new denoiser
of the same form, so it works with every sampler and composes with other wrappers: the reconstruction guidance of
eq. (6, 7) may wrap it (it differentiates through this wrapper; nothing here detaches). The conditional and
unconditional predictions come from **one** call on a doubled batch ``[z_t; z_t]`` (``batched=False``: two calls,
for inner wrappers that hold per-example tensors of the original batch size).

Clipping: a :class:`~videodiff.denoiser.Denoiser` with ``clip_x`` clamps ``x_hat`` to [-1, 1]. Guidance combines
the **raw (unclipped)** predictions, i.e. exactly the network's ``eps`` outputs as in eq. (5), and clips the guided
``x~`` afterwards (as Imagen and the CFG paper do): clipping the two predictions first would cancel guidance in every
pixel where both saturate, and bias it where only one does. For a ``Denoiser`` this is automatic (its network is
re-wrapped without clipping, then ``clip_x`` is applied to the result); other callables are combined as they come,
with optional clipping (``clip_x=True``).

A guidance-distilled student (Meng et al., CVPR 2023; ``model.guidance_input``, :mod:`videodiff.distill`) takes ``w``
as an input instead and needs one call: :class:`GuidanceInput`. :func:`guided` picks between the two for a model.

The null condition is made by ``null``: ``null(kwargs, batch) -> (cond_kwargs, uncond_kwargs)``. The default,
:func:`null_condition`, zeros a ``cond`` vector if one is given (``UNet3D(..., cond=c)``) and otherwise passes
``cond_keep`` = True / False (:class:`videodiff.text.TextConditionedUNet`: False gives ``c = 0``, the same null
condition conditioning dropout trains).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ..denoiser import Denoise, Denoiser
from ..diffusion import broadcast_to, eps_from_x, x_from_eps

__all__ = ["ClassifierFreeGuidance", "classifier_free_guidance", "null_condition", "GuidanceInput", "guided"]


def null_condition(kwargs: dict, batch: int) -> tuple[dict, dict]:
    """Default split of denoiser keyword arguments into conditional and unconditional (``c = 0``) ones."""
    cond, uncond = dict(kwargs), dict(kwargs)
    if torch.is_tensor(kwargs.get("cond")):
        uncond["cond"] = torch.zeros_like(kwargs["cond"])
        return cond, uncond
    keep = kwargs.get("cond_keep")
    device = next((v.device for v in kwargs.values() if torch.is_tensor(v)), None)
    cond["cond_keep"] = torch.ones(batch, dtype=torch.bool, device=device) if keep is None else keep
    uncond["cond_keep"] = torch.zeros_like(cond["cond_keep"], dtype=torch.bool)
    return cond, uncond


def _per_example(key: str, value, batch: int) -> bool:
    """Whether a keyword argument carries the batch axis (and so is concatenated for the doubled batch)."""
    if not torch.is_tensor(value) or value.ndim == 0 or value.shape[0] != batch:
        return False
    return not (key == "frame_mask" and value.ndim == 2)  # an (F, F) mask is shared by the whole batch


def _merge(cond: dict, uncond: dict, batch: int) -> dict:
    out = {}
    for key in cond.keys() | uncond.keys():
        a, b = cond.get(key), uncond.get(key)
        if _per_example(key, a, batch) and _per_example(key, b, batch):
            out[key] = torch.cat([a, b])
        elif a is b or (not torch.is_tensor(a) and not torch.is_tensor(b) and a == b):
            out[key] = a
        elif torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and torch.equal(a, b):
            out[key] = a
        else:
            raise ValueError(f"classifier-free guidance cannot batch the argument {key!r} (its conditional and "
                             f"unconditional values differ and have no batch axis); use batched=False")
    return out


class ClassifierFreeGuidance(nn.Module):
    """Guided denoiser of eq. (5); see the module docstring.

    Args:
        denoise: ``denoise(z_t, logsnr, **kwargs) -> x_hat``.
        w: guidance strength, a number or a per-example tensor ``(B,)``.
        null: ``null(kwargs, batch) -> (cond_kwargs, uncond_kwargs)`` (default :func:`null_condition`).
        batched: one network call on ``[z_t; z_t]`` (default) or two calls.
        clip_x: clamp the guided ``x~`` to [-1, 1]; None: as ``denoise.clip_x`` for a ``Denoiser``, else no.
    """

    def __init__(self, denoise: Denoise, w: float | Tensor, *,
                 null: Callable[[dict, int], tuple[dict, dict]] = null_condition, batched: bool = True,
                 clip_x: bool | None = None):
        super().__init__()
        if isinstance(denoise, Denoiser) and denoise.clip_x:
            inner = Denoiser(denoise.net, denoise.parameterization, clip_x=False)  # raw predictions, same network
            clip_x = True if clip_x is None else clip_x
        else:
            inner = denoise
        self.denoise = inner
        self.w = w
        self.null, self.batched, self.clip_x = null, batched, bool(clip_x)

    def forward(self, z_t: Tensor, logsnr: Tensor, **kwargs) -> Tensor:
        b = z_t.shape[0]
        logsnr = torch.as_tensor(logsnr, device=z_t.device).expand(b)
        cond, uncond = self.null(kwargs, b)
        if self.batched:
            x_both = self.denoise(torch.cat([z_t, z_t]), torch.cat([logsnr, logsnr]), **_merge(cond, uncond, b))
            x_c, x_u = x_both[:b], x_both[b:]  # x_hat(z_t, c), x_hat(z_t)
        else:
            x_c, x_u = self.denoise(z_t, logsnr, **cond), self.denoise(z_t, logsnr, **uncond)
        w = broadcast_to(torch.as_tensor(self.w, device=z_t.device), x_c)
        eps_c = eps_from_x(z_t, x_c, logsnr)  # eps(z_t, c)
        eps_u = eps_from_x(z_t, x_u, logsnr)  # eps(z_t)
        eps = (1 + w) * eps_c - w * eps_u  # eq. (5)
        x_hat = x_from_eps(z_t, eps, logsnr)
        return x_hat.clamp(-1.0, 1.0) if self.clip_x else x_hat


def classifier_free_guidance(denoise: Denoise, w: float | Tensor, **kwargs) -> ClassifierFreeGuidance:
    """Functional alias: ``classifier_free_guidance(denoise, w)`` -> guided denoiser."""
    return ClassifierFreeGuidance(denoise, w, **kwargs)


class GuidanceInput(nn.Module):
    """The denoiser of a guidance-distilled student (``model.guidance_input``) at weight ``w``: one call with
    ``guidance_w = w`` (a number or a per-example tensor ``(B,)``), which the student learned to map to the
    teacher's eq. (5) prediction at that ``w`` (Meng et al. 2023)."""

    def __init__(self, denoise: Denoise, w: float | Tensor):
        super().__init__()
        self.denoise, self.w = denoise, w

    def forward(self, z_t: Tensor, logsnr: Tensor, **kwargs) -> Tensor:
        w = torch.as_tensor(self.w, dtype=torch.float32, device=z_t.device).expand(z_t.shape[0])
        return self.denoise(z_t, logsnr, guidance_w=w, **kwargs)


def guided(denoise: Denoise, w: float, *, w_input: bool = False) -> Denoise:
    """``denoise`` guided at weight ``w`` for a text condition: one call with ``w`` as an input where the network
    takes it (``w_input``: ``model.guidance_input``), else eq. (5) on two predictions (``w = 0``: ``denoise``)."""
    if w_input:
        return GuidanceInput(denoise, w)
    return ClassifierFreeGuidance(denoise, w) if w != 0 else denoise
