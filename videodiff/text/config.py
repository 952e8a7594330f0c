"""The text-conditioning options of an experiment (paper Sec. 2 conditioning, Sec. 4 text-to-video)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TextConfig"]


@dataclass
class TextConfig:
    encoder: str | None = None  # None: unconditional; "minilm" (offline default), a local folder, or a cached hub id
    max_length: int = 32  # caption tokens kept (special tokens included)
    cache_dir: str | None = None  # caption embedding cache; None: $VIDEODIFF_CACHE/text or ~/.cache/videodiff/text
    cond_dim: int = 128  # size of the pooled conditioning vector c (becomes model.cond_dim)
    pool_queries: int = 1  # learned attention-pooling queries
    pool_heads: int = 0  # 0: text_dim // 64 (or 1)

    def __post_init__(self) -> None:
        if self.encoder is not None and not self.encoder.strip():
            raise ValueError("text.encoder must name an encoder (e.g. minilm) or be null for an unconditional model")
        for name, minimum in (("max_length", 2), ("cond_dim", 1), ("pool_queries", 1), ("pool_heads", 0)):
            if getattr(self, name) < minimum:
                raise ValueError(f"text.{name} must be >= {minimum}, got {getattr(self, name)}")

    @property
    def enabled(self) -> bool:
        return self.encoder is not None
