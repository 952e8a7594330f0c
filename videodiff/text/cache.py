"""A disk cache of caption embeddings, so that training never re-encodes a caption (the encoder is frozen).

Each caption's token embeddings (only its real tokens, ``(L_i, D)`` float32) are stored once, in
``cache_dir/<sha256(encoder.cache_id)[:16]>/<h[:2]>/<h>.safetensors`` with ``h = sha256(caption)``: the key is the
encoder (weights, tokenizer, maximum length; see :attr:`HFTextEncoder.cache_id`) plus the caption text. Files are
written atomically (temporary name, then rename), so concurrent workers and interrupted runs leave no broken
entries; the caption text is stored beside the tensor and checked on reading. Lookups go memory (an LRU of
``memory_items`` captions) -> disk -> encoder, and the encoder is only called (and loaded) for captions seen for the
first time, in batches.

Because the encoders here use padding masks, a caption's real-token embeddings do not depend on what it was batched
with, so re-padding cached entries reproduces a direct batched encoding (up to float round-off).
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from .encoders import TextEncoder

__all__ = ["EmbeddingCache", "pad_embeddings", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$VIDEODIFF_CACHE/text`` if set, else ``~/.cache/videodiff/text``."""
    root = os.environ.get("VIDEODIFF_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "videodiff") / "text"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pad_embeddings(seqs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Right-pad ``[(L_i, D)]`` into ``emb (B, L, D)`` (zeros) and ``mask (B, L)`` (True on real tokens)."""
    if not seqs:
        raise ValueError("no embeddings to pad")
    length, dim = max(s.shape[0] for s in seqs), seqs[0].shape[1]
    emb = torch.zeros(len(seqs), length, dim, dtype=seqs[0].dtype)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for i, s in enumerate(seqs):
        emb[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return emb, mask


class EmbeddingCache:
    """Token embeddings of captions under ``encoder``, cached in memory and on disk.

    Args:
        encoder: a :class:`TextEncoder` (only called on cache misses).
        cache_dir: root folder (default :func:`default_cache_dir`); one sub-folder per encoder.
        batch_size: captions encoded per encoder call on misses.
        memory_items: captions kept in memory (least recently used are dropped; they stay on disk).
    """

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path | None = None, *, batch_size: int = 64,
                 memory_items: int = 100_000):
        self.encoder = encoder
        self.root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.dir = self.root / _sha(encoder.cache_id)[:16]
        self.batch_size, self.memory_items = batch_size, memory_items
        self._memory: OrderedDict[str, Tensor] = OrderedDict()
        self.hits = self.misses = 0  # disk or memory hits / captions encoded
        self.truncated: dict[str, int] = {}  # captions longer than the encoder's max_length: their token counts
        self._reported: set[str] = set()

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def path(self, caption: str) -> Path:
        h = _sha(caption)
        return self.dir / h[:2] / f"{h}.safetensors"

    def _read(self, caption: str) -> Tensor | None:
        path = self.path(caption)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("caption") != caption:
                    return None  # a hash collision or a foreign file: re-encode
                if meta.get("tokens", "").isdigit():  # written truncated: reported on every use
                    self.truncated[caption] = int(meta["tokens"])
                return f.get_tensor("emb")
        except Exception:  # a truncated file from a crashed writer on a filesystem without atomic rename
            return None

    def _write(self, caption: str, emb: Tensor) -> None:
        path = self.path(caption)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        meta = {"caption": caption, "encoder": self.encoder.cache_id}
        if caption in self.truncated:
            meta["tokens"] = str(self.truncated[caption])
        save_file({"emb": emb.contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)

    def get(self, captions: Sequence[str]) -> list[Tensor]:
        """Per caption, its real-token embeddings ``(L_i, D)``."""
        if isinstance(captions, str):
            raise TypeError("captions must be a sequence of strings, not a single string")
        found: dict[str, Tensor] = {}
        missing = []
        for c in dict.fromkeys(captions):  # unique, in order
            emb = self._memory.get(c)
            if emb is None:
                emb = self._read(c)
            if emb is None:
                missing.append(c)
            else:
                found[c] = emb
        self.hits += len(captions) - len(missing)
        self.misses += len(missing)
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            emb, mask = self.encoder(chunk)  # (n, L, D), (n, L)
            limit = getattr(self.encoder, "max_length", None)
            if limit is not None and hasattr(self.encoder, "token_counts"):
                for c, n in zip(chunk, self.encoder.token_counts(chunk)):
                    if n > limit:
                        self.truncated[c] = n
            for c, e, m in zip(chunk, emb, mask):
                found[c] = e[m].clone()  # (L_i, D): real tokens only
                self._write(c, found[c])
        for c, e in found.items():  # most recently used last
            self._memory[c] = e
            self._memory.move_to_end(c)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)
        self._report_truncated(captions)
        return [found[c] for c in captions]

    def _report_truncated(self, captions: Sequence[str], most: int = 3) -> None:
        """One note per caption cut to the encoder's ``max_length`` tokens (the first ``most`` of them)."""
        for c in dict.fromkeys(captions):
            if c not in self.truncated or c in self._reported:
                continue
            self._reported.add(c)
            if len(self._reported) > most:
                if len(self._reported) == most + 1:
                    print("note: more captions were cut to the text encoder's maximum length (not listed)",
                          file=sys.stderr)
                continue
            short = c if len(c) <= 60 else c[:57] + "..."
            limit = getattr(self.encoder, "max_length", "?")
            print(f"note: caption {short!r} has {self.truncated[c]} tokens; the text encoder reads only its first "
                  f"{limit} (text.max_length), the rest is ignored", file=sys.stderr)

    def encode(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Padded ``emb (B, L, D)`` and ``mask (B, L)``, as the encoder itself returns them."""
        return pad_embeddings(self.get(captions))

    def warm(self, captions: Sequence[str]) -> int:
        """Make sure every caption is cached (e.g. a dataset's whole caption set); returns how many were encoded."""
        before = self.misses
        self.get(list(dict.fromkeys(captions)))
        return self.misses - before
