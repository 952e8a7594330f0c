"""Training data: the data config, dataset construction and batch collation.

Every dataset item is a dict with ``"video"``: float32 ``(C, F, H, W)`` in [-1, 1], plus metadata
(Moving MNIST: digit labels and directions for captions; video folders: the source path and start frame;
captioned data: ``caption``; joint image-video training: ``F`` grows by the appended ``image_frames``, with
``image_captions``). ``kind: shards`` streams WebDataset tar shards (:mod:`.shards`, an ``IterableDataset``).
The kinds are registered in :mod:`.registry` (the built-in ones in :mod:`.sources`); the options in :mod:`.config`.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .captions import CaptionedMovingMNIST, CaptionManifest
from .config import DataConfig
from .constants import DIRECTION_MODES, START_MODES, VIDEO_EXTENSIONS
from .joint import ImageFolder, WithImageFrames
from .moving_mnist import MovingMNIST
from .registry import DataSource, get_source, register_source, source_kinds, source_options, unregister_source
from .shards import ShardDataset
from .sources import image_folder  # importing .sources registers the built-in kinds
from .video_folder import VideoFolder

__all__ = ["DataConfig", "build_dataset", "collate_clips", "MovingMNIST", "VideoFolder", "CaptionedMovingMNIST",
           "CaptionManifest", "WithImageFrames", "ImageFolder", "ShardDataset", "DataSource", "register_source",
           "unregister_source", "get_source", "source_kinds", "source_options", "DIRECTION_MODES", "START_MODES",
           "VIDEO_EXTENSIONS"]


def build_dataset(cfg: DataConfig, split: str = "train") -> Dataset:
    """The dataset ``cfg`` describes, for ``split`` ("train" or "test"): the clips of the registered kind
    ``cfg.kind`` (:mod:`.registry`). Image frames for joint training are appended to the train split only."""
    cfg.validate()  # options may have been set after construction (command-line overrides)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    source = get_source(cfg.kind)
    if cfg.captions and not source.captions:
        raise ValueError(f"data.kind {cfg.kind!r} has no captions; use data.kind=manifest with data.manifest")
    dataset = source.build(cfg, split)
    if cfg.image_frames and split == "train" and not source.streams_image_frames:
        dataset = WithImageFrames(dataset, cfg.image_frames, images=image_folder(cfg, split), seed=cfg.seed)
    return dataset


def collate_clips(batch: list[dict]) -> dict:
    """Stack ``"video"`` into ``(B, C, F, H, W)``; every other key becomes a list over the batch."""
    out = {key: [item[key] for item in batch] for key in batch[0]}
    out["video"] = torch.stack(out["video"])  # (B, C, F, H, W)
    return out

