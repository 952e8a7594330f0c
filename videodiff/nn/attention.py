"""Spatial and temporal self-attention of the factorized space-time U-Net (paper Sec. 3, Fig. 1).

Activations inside the network are kept with frames folded into the batch, ``(B*F, C, H, W)``, so the spatial
blocks are plain 2D operations ("the first axis is treated as a batch axis").

* :class:`SpatialAttention` attends over the ``H*W`` positions of each frame.
* :class:`TemporalAttention` attends over the ``F`` frames at each spatial position ("treats the spatial axes as
  batch axes"), with relative position embeddings (Shaw et al. 2018, ref. [31]) so that frames are ordered without
  an absolute notion of time, and an optional frame mask. A mask of the identity makes every frame attend only to
  itself, which is how independent image frames are appended for joint image-video training (Sec. 3, 4.2).

Both use :func:`attend`: ``torch.nn.functional.scaled_dot_product_attention``, or on the CPU, where it is faster,
the same softmax attention written out (softmax in fp32). Shaw et al.'s relative *key* term,
``q_i . a^K_{j-i}``, is an additive bias on the attention logits and so combines with the frame mask in one
``attn_mask``; their relative *value* term is omitted (their ablation found it unnecessary).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import Conv2d, group_norm

__all__ = ["SpatialAttention", "TemporalAttention", "attend", "identity_frame_mask", "joint_frame_mask"]

# Longest sequence for which :func:`attend` writes attention out on the CPU (it keeps the (L, L) weights).
EXPLICIT_MAX_LEN = 256


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None = None) -> Tensor:
    """``softmax(q k^T / sqrt(d) + bias) v`` over the last two axes of ``(..., L, d)`` inputs.

    ``scaled_dot_product_attention`` except on the CPU for sequences of at most :data:`EXPLICIT_MAX_LEN`, with a
    bias (temporal attention) or in bf16 training, where two matmuls and an fp32 softmax are faster: forward +
    backward in bf16 took 1.2-6.6x (its fused CPU kernel, 256 to 16 positions) and with a bias 1.5-1.6x (bf16,
    fp32) the time of this path (``python benchmarks/layout_ops.py``, AMX Xeon). Without gradients and a bias the
    fused kernel is as fast or faster, so sampling keeps it."""
    L = q.shape[-2]
    explicit = q.device.type == "cpu" and L <= EXPLICIT_MAX_LEN and (
        bias is not None or (q.dtype == torch.bfloat16 and torch.is_grad_enabled() and q.requires_grad))
    if not explicit:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    # The logits in fp32 (as SDPA's kernels keep them): rounded to bf16, logits of size 10-20 would move by 0.05-0.1
    # and the softmax weights by as many percent.
    logits = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    if bias is not None:
        logits = logits + bias
    return torch.softmax(logits, dim=-1).to(v.dtype) @ v


def identity_frame_mask(num_frames: int, device=None) -> Tensor:
    """``(F, F)`` boolean mask in which each frame attends only to itself (independent images, Sec. 3)."""
    return torch.eye(num_frames, dtype=torch.bool, device=device)


def joint_frame_mask(num_video_frames: int, num_image_frames: int, device=None) -> Tensor:
    """Mask for a video followed by independent image frames (Sec. 4.2): video frames attend among themselves,
    each appended image frame only to itself. Shape ``(F, F)`` with ``F = num_video_frames + num_image_frames``."""
    n = num_video_frames + num_image_frames
    mask = identity_frame_mask(n, device)
    mask[:num_video_frames, :num_video_frames] = True
    return mask


class _Attention(nn.Module):
    def __init__(self, channels: int, head_dim: int):
        super().__init__()
        if channels % head_dim:
            raise ValueError(f"channels ({channels}) must be a multiple of the attention head_dim ({head_dim})")
        self.heads, self.head_dim = channels // head_dim, head_dim
        self.norm = group_norm(channels)
        self.qkv = Conv2d(channels, 3 * channels, 1)
        self.proj = Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # each residual block starts as the identity
        nn.init.zeros_(self.proj.bias)


class SpatialAttention(_Attention):
    """Multi-head self-attention over the positions of each frame: ``(B*F, C, H, W) -> same``."""

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, self.head_dim, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # (N, heads, HW, d)
        out = attend(q, k, v)
        out = out.transpose(-1, -2).reshape(n, c, h, w)  # (B*F, C, H, W)
        return x + self.proj(out)


class TemporalAttention(_Attention):
    """Multi-head self-attention over frames at each position, with relative position embeddings and a frame mask.

    Args:
        channels: feature channels.
        head_dim: channels per head.
        max_relative_position: relative distances are clipped to ``[-k, k]`` (Shaw et al.); each distance has a
            learned key embedding per head.
    """

    def __init__(self, channels: int, head_dim: int, max_relative_position: int = 32):
        super().__init__(channels, head_dim)
        self.max_rel = max_relative_position
        self.rel_key = nn.Parameter(torch.randn(2 * max_relative_position + 1, head_dim) * head_dim**-0.5)

    def relative_keys(self, num_frames: int, device) -> Tensor:
        """``a^K_{ij} = w^K_{clip(j - i)}``: ``(F, F, head_dim)``."""
        pos = torch.arange(num_frames, device=device)
        rel = (pos[None, :] - pos[:, None]).clamp(-self.max_rel, self.max_rel) + self.max_rel
        return self.rel_key[rel]

    def forward(self, x: Tensor, num_frames: int, frame_mask: Tensor | None = None) -> Tensor:
        """``x``: ``(B*F, C, H, W)``; ``frame_mask``: ``(F, F)`` or ``(B, F, F)`` boolean, True = may attend."""
        bf, c, h, w = x.shape
        b, f = bf // num_frames, num_frames
        qkv = self.qkv(self.norm(x)).reshape(b, f, 3, self.heads, self.head_dim, h * w)
        q, k, v = qkv.permute(2, 0, 5, 3, 1, 4).unbind(0)  # (B, HW, heads, F, d)
        scale = self.head_dim**-0.5
        bias = torch.einsum("bphid,ijd->bphij", q, self.relative_keys(f, x.device).to(q.dtype)) * scale
        if frame_mask is not None:
            mask = frame_mask if frame_mask.ndim == 2 else frame_mask[:, None, None]  # (B, 1, 1, F, F)
            bias = bias.masked_fill(~mask, float("-inf"))
        # Positions folded into the batch: 4-D inputs, which every SDPA backend (CPU and CUDA) accepts.
        fold = lambda t: t.reshape(b * h * w, self.heads, f, t.shape[-1])  # noqa: E731
        out = attend(fold(q), fold(k), fold(v), fold(bias))  # (B*HW, heads, F, d)
        out = out.reshape(b, h * w, self.heads, f, self.head_dim)
        out = out.permute(0, 3, 2, 4, 1).reshape(bf, c, h, w)  # (B*F, C, H, W)
        return x + self.proj(out)
