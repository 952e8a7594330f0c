"""Text conditioning (paper Sec. 4): frozen text encoders, a disk cache of caption embeddings, attention pooling
into the conditioning vector ``c`` inside the denoising network, the null condition ``c = 0`` and conditioning
dropout for classifier-free guidance (eq. 5; the guided sampler is :mod:`videodiff.sampling.guidance`)."""

from .cache import EmbeddingCache, default_cache_dir, pad_embeddings
from .conditioning import TextConditionedUNet, caption_condition, keep_mask
from .config import TextConfig
from .encoders import DEFAULT_ENCODER, HFTextEncoder, TextEncoder, minilm_path, resolve_encoder
from .pooling import AttentionPooling

__all__ = [
    "TextConfig",
    "TextEncoder",
    "HFTextEncoder",
    "DEFAULT_ENCODER",
    "minilm_path",
    "resolve_encoder",
    "EmbeddingCache",
    "default_cache_dir",
    "pad_embeddings",
    "AttentionPooling",
    "TextConditionedUNet",
    "caption_condition",
    "keep_mask",
    "build_text_cache",
]


def build_text_cache(cfg: TextConfig, device="cpu") -> EmbeddingCache:
    """The embedding cache (and lazily loaded encoder) that ``cfg`` describes."""
    if not cfg.enabled:
        raise ValueError("text.encoder is not set: this experiment is not text-conditioned")
    return EmbeddingCache(HFTextEncoder(cfg.encoder, max_length=cfg.max_length, device=device), cfg.cache_dir)
