"""Attention pooling of caption token embeddings into the conditioning vector ``c`` (paper Sec. 4).

"We condition the diffusion model on captions in the form of BERT-large embeddings processed using attention
pooling." Here ``Q`` learned queries attend (multi-head) over the layer-normalised token embeddings, with the padding
mask, and their outputs are concatenated and projected to ``cond_dim``:

    c = W_o [softmax(q_j K^T / sqrt(d) + mask) V]_{j=1..Q},   K, V = LN(e) W_k, LN(e) W_v

This module is trainable and part of the denoising network (:class:`videodiff.text.TextConditionedUNet`); the text
encoder before it is frozen. Padding tokens get exactly zero attention weight, so they never change ``c``. A
sequence with no real tokens pools to ``c = 0``, the null condition.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    """``(N, L, D)`` token embeddings + ``(N, L)`` mask -> ``(N, out_dim)``.

    Args:
        text_dim: ``D``, the encoder's hidden size.
        out_dim: size of the pooled vector (the U-Net's ``cond_dim``).
        num_queries: learned queries ``Q`` (their outputs are concatenated).
        heads: attention heads (0: ``D // 64`` when 64 divides ``D``, else 1).
    """

    def __init__(self, text_dim: int, out_dim: int, *, num_queries: int = 1, heads: int = 0):
        super().__init__()
        if heads <= 0:
            heads = text_dim // 64 if text_dim % 64 == 0 else 1
        if text_dim % heads:
            raise ValueError(f"text.pool_heads ({heads}) must divide the text embedding size ({text_dim})")
        if num_queries < 1 or out_dim < 1:
            raise ValueError(f"num_queries and out_dim must be >= 1, got {num_queries}, {out_dim}")
        self.heads, self.num_queries, self.text_dim = heads, num_queries, text_dim
        self.norm = nn.LayerNorm(text_dim)
        self.queries = nn.Parameter(torch.randn(num_queries, text_dim) * text_dim**-0.5)
        self.q = nn.Linear(text_dim, text_dim)
        self.kv = nn.Linear(text_dim, 2 * text_dim)
        self.out = nn.Linear(num_queries * text_dim, out_dim)

    def forward(self, emb: Tensor, mask: Tensor | None = None) -> Tensor:
        n, length, d = emb.shape
        if d != self.text_dim:
            raise ValueError(f"text embeddings have size {d}, the pooling expects {self.text_dim} (wrong encoder?)")
        if mask is None:
            mask = torch.ones(n, length, dtype=torch.bool, device=emb.device)
        mask = mask.to(device=emb.device, dtype=torch.bool)
        h, hd = self.heads, d // self.heads
        k, v = self.kv(self.norm(emb)).reshape(n, length, 2, h, hd).permute(2, 0, 3, 1, 4)  # (N, h, L, hd) each
        q = self.q(self.queries).reshape(self.num_queries, h, hd).transpose(0, 1)  # (h, Q, hd)
        q = q.unsqueeze(0).expand(n, -1, -1, -1).to(k.dtype)  # (N, h, Q, hd)
        has_tokens = mask.any(dim=1)  # (N,)
        attn_mask = (mask | ~has_tokens[:, None])[:, None, None, :]  # (N, 1, 1, L); empty rows: any finite output
        pooled = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (N, h, Q, hd)
        pooled = pooled.permute(0, 2, 1, 3).reshape(n, self.num_queries * d)  # (N, Q*D)
        c = self.out(pooled)  # (N, out_dim)
        return torch.where(has_tokens[:, None], c, torch.zeros_like(c))  # no tokens: the null condition c = 0
