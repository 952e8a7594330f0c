"""Turn a raw network into a denoiser ``x_hat(z_t, logsnr, cond)`` (paper Sec. 2).

The network (e.g. :class:`videodiff.nn.UNet3D`) knows nothing about diffusion: it maps ``(z_t, logsnr, cond)`` to
a tensor. :class:`Denoiser` reads that tensor as an ``eps`` prediction (the paper's choice,
``x_hat = (z_t - sigma eps_hat) / alpha``) or a ``v`` prediction, and is the single interface every sampler,
guidance wrapper and conditioning method in this package takes.
"""

from __future__ import annotations

from typing import Callable, Protocol

import torch
from torch import Tensor, nn

from .context import context_inputs, frames_mask
from .parameterization import PARAMETERIZATIONS, check_parameterization, x_from_output
from .precision import autocast

__all__ = ["Denoise", "Denoiser", "PARAMETERIZATIONS"]


class Denoise(Protocol):
    """Anything called as ``denoise(z_t, logsnr, **kwargs) -> x_hat``."""

    def __call__(self, z_t: Tensor, logsnr: Tensor, **kwargs) -> Tensor: ...


class Denoiser(nn.Module):
    """Wrap ``net(z_t, logsnr, cond=..., frame_mask=...)`` as ``x_hat``.

    Args:
        net: the raw network.
        parameterization: ``"eps"`` or ``"v"``: what the network's output means.
        clip_x: clamp ``x_hat`` to ``[-1, 1]`` (data range) when sampling; the ``eps`` implied by a sampler is then
            recomputed from the clipped ``x_hat``, as is standard for pixel-space diffusion.
        autocast_dtype: run the network under ``torch.autocast`` in this dtype (``torch.bfloat16``; see
            :mod:`videodiff.precision`); None (default): fp32. The network's output is cast back to fp32 before
            ``x_hat`` is formed, so everything after the network (eq. 3-7) runs in fp32.
    """

    def __init__(self, net: nn.Module | Callable[..., Tensor], parameterization: str = "eps", clip_x: bool = True,
                 autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.net = net
        self.parameterization = check_parameterization(parameterization)
        self.clip_x = clip_x
        self.autocast_dtype = autocast_dtype

    def forward(self, z_t: Tensor, logsnr: Tensor, *, context: Tensor | None = None,
                context_mask: Tensor | None = None, **kwargs) -> Tensor:
        """``x_hat(z_t, logsnr)``. ``context`` ``(B, C, F, H, W)`` with ``context_mask`` ``(B, F)`` / ``(F,)``: a
        model trained with ``train.context_frames`` sees those frames clean (:mod:`videodiff.context`) and their
        ``x_hat`` is ``context`` itself."""
        logsnr = torch.as_tensor(logsnr, dtype=torch.float32, device=z_t.device).expand(z_t.shape[0])
        if (context is None) != (context_mask is None):
            raise ValueError("context and context_mask go together: give both or neither")
        z_in, net_logsnr = (z_t, logsnr) if context is None else context_inputs(z_t, logsnr, context, context_mask)
        with autocast(z_t.device, self.autocast_dtype):
            out = self.net(z_in, net_logsnr, **kwargs)
        out = out.to(z_t.dtype)
        x_hat = x_from_output(self.parameterization, z_t, out, logsnr)  # videodiff/parameterization.py
        x_hat = x_hat.clamp(-1.0, 1.0) if self.clip_x else x_hat
        return x_hat if context is None else torch.where(frames_mask(context_mask, z_t), context.to(x_hat.dtype), x_hat)
