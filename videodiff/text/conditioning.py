"""Text conditioning of the denoising network: attention pooling in front of the U-Net, the null condition, and
conditioning dropout for classifier-free guidance (paper Sec. 2 eq. 5, Sec. 4).

:class:`TextConditionedUNet` is the trainable network ``net(z_t, logsnr, text_emb=..., text_mask=..., cond_keep=...,
frame_mask=...)``: it pools the (frozen) encoder's token embeddings into ``c`` and calls ``UNet3D(..., cond=c)``.
The null condition is ``c = 0`` (Sec. 2: "if c consists of embedding vectors, unconditional modeling can be
represented as c = 0"): no text at all, or ``cond_keep = False`` for an example (or a frame), gives exactly the
U-Net's unconditional input. Training drops the condition of each example with probability ``p``
(:func:`caption_condition`), so one network learns both ``eps(z, c)`` and ``eps(z)`` for guidance.

Per-frame conditioning (joint image-video training, Sec. 4.2): ``text_emb`` may be ``(B, F, L, D)``, one caption per
frame, pooled into ``c`` of shape ``(B, F, cond_dim)`` (the video's frames share their caption, each appended image
frame has its source clip's caption); ``cond_keep`` may likewise be ``(B,)`` or ``(B, F)``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..nn.unet3d import UNet3D
from .cache import EmbeddingCache
from .pooling import AttentionPooling

__all__ = ["TextConditionedUNet", "keep_mask", "caption_condition"]


class TextConditionedUNet(nn.Module):
    """Attention pooling + :class:`UNet3D` (whose ``cfg.cond_dim`` is the pooled size).

    Args:
        unet: the U-Net, built with ``cond_dim > 0``.
        text_dim: the text encoder's hidden size ``D``.
        num_queries, heads: see :class:`AttentionPooling`.
    """

    def __init__(self, unet: UNet3D, text_dim: int, *, num_queries: int = 1, heads: int = 0):
        super().__init__()
        if unet.cfg.cond_dim < 1:
            raise ValueError("a text-conditioned U-Net needs model.cond_dim >= 1")
        self.unet = unet
        self.pool = AttentionPooling(text_dim, unet.cfg.cond_dim, num_queries=num_queries, heads=heads)

    @property
    def cfg(self):
        return self.unet.cfg

    def condition(self, text_emb: Tensor | None, text_mask: Tensor | None, cond_keep: Tensor | None,
                  num_frames: int) -> Tensor | None:
        """``c``: ``(B, cond_dim)``, ``(B, F, cond_dim)``, or None (the null condition for the whole batch)."""
        if text_emb is None:
            return None
        if text_emb.ndim == 3:  # one caption per example
            c = self.pool(text_emb, text_mask)  # (B, cond_dim)
        elif text_emb.ndim == 4:  # one caption per frame
            b, f, length, d = text_emb.shape
            if f != num_frames:
                raise ValueError(f"per-frame text_emb has {f} frames, the video {num_frames}")
            mask = None if text_mask is None else text_mask.reshape(b * f, length)
            c = self.pool(text_emb.reshape(b * f, length, d), mask).reshape(b, f, -1)  # (B, F, cond_dim)
        else:
            raise ValueError(f"text_emb must be (B, L, D) or (B, F, L, D), got {tuple(text_emb.shape)}")
        if cond_keep is not None:
            keep = cond_keep.to(device=c.device, dtype=torch.bool)
            if keep.ndim == 2 and c.ndim == 2:
                c = c[:, None].expand(-1, keep.shape[1], -1)  # (B, F, cond_dim)
            while keep.ndim < c.ndim:
                keep = keep[..., None]
            c = torch.where(keep, c, torch.zeros_like(c))  # dropped: the null condition c = 0
        return c

    def forward(self, z_t: Tensor, logsnr: Tensor, text_emb: Tensor | None = None, text_mask: Tensor | None = None,
                cond_keep: Tensor | None = None, frame_mask: Tensor | None = None,
                guidance_w: Tensor | float | None = None) -> Tensor:
        """``z_t`` ``(B, C, F, H, W)``; ``text_emb`` ``(B, L, D)`` or ``(B, F, L, D)`` with ``text_mask`` of the
        same leading shape (True = token); ``cond_keep`` ``(B,)`` or ``(B, F)`` (False = null condition);
        ``guidance_w``: the guidance weight of a guidance-distilled student (``model.guidance_input``)."""
        c = self.condition(text_emb, text_mask, cond_keep, z_t.shape[2])
        return self.unet(z_t, logsnr, cond=c, frame_mask=frame_mask, guidance_w=guidance_w)


def keep_mask(shape: tuple[int, ...], drop_prob: float, generator: torch.Generator | None = None,
              device=None) -> Tensor:
    """Conditioning dropout: True (keep) with probability ``1 - drop_prob``, independently per entry."""
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"conditioning drop probability must be in [0, 1], got {drop_prob}")
    if drop_prob == 0.0:
        return torch.ones(shape, dtype=torch.bool, device=device)
    return torch.rand(shape, generator=generator, device=device) >= drop_prob


def caption_condition(
    cache: EmbeddingCache,
    captions: Sequence[str],
    *,
    image_captions: Sequence[Sequence[str]] | None = None,
    num_frames: int | None = None,
    drop_prob: float = 0.0,
    generator: torch.Generator | None = None,
    device=None,
) -> dict[str, Tensor]:
    """Network keyword arguments for a batch of captioned clips, with conditioning dropout.

    Args:
        captions: one per video.
        image_captions: per video, the captions of its ``N`` appended image frames (joint training); the result is
            then per frame, ``text_emb (B, F + N, L, D)``, and needs ``num_frames`` (``F``, the video frames).
        drop_prob: each video, and each image frame independently, gets the null condition with this probability.
        generator: the randomness of the dropout (on ``device``).

    Empty captions (e.g. images without one) always get the null condition.
    Returns ``{"text_emb", "text_mask", "cond_keep"}`` on ``device``.
    """
    b = len(captions)
    n = len(image_captions[0]) if image_captions is not None and len(image_captions) else 0
    if n == 0:
        emb, mask = cache.encode(captions)  # (B, L, D), (B, L)
        keep = keep_mask((b,), drop_prob, generator, device)
        keep &= torch.tensor([bool(c) for c in captions], device=keep.device)
        return {"text_emb": emb.to(device), "text_mask": mask.to(device), "cond_keep": keep}
    if num_frames is None:
        raise ValueError("num_frames (video frames) is needed to place the image frames' captions")
    if any(len(row) != n for row in image_captions) or len(image_captions) != b:
        raise ValueError("image_captions must hold the same number of captions for every video")
    flat = list(captions) + [c for row in image_captions for c in row]
    emb, mask = cache.encode(flat)  # (B + B*N, L, D)
    length, d = emb.shape[1:]
    text_emb = torch.cat([emb[:b, None].expand(b, num_frames, length, d), emb[b:].reshape(b, n, length, d)], 1)
    text_mask = torch.cat([mask[:b, None].expand(b, num_frames, length), mask[b:].reshape(b, n, length)], 1)
    keep_video = keep_mask((b,), drop_prob, generator, device)
    keep_image = keep_mask((b, n), drop_prob, generator, device)
    keep = torch.cat([keep_video[:, None].expand(b, num_frames), keep_image], 1)  # (B, F + N)
    present = torch.tensor([bool(c) for c in flat], device=keep.device)
    keep &= torch.cat([present[:b, None].expand(b, num_frames), present[b:].reshape(b, n)], 1)
    return {"text_emb": text_emb.to(device), "text_mask": text_mask.to(device), "cond_keep": keep}
