"""The built-in data kinds: one builder and one registry line each (the registry is :mod:`.registry`).

``moving_mnist``: Moving MNIST generated on the fly (:mod:`.moving_mnist`), with built-in captions when asked;
``smmnist``: Stochastic Moving MNIST (:mod:`.smmnist`), the video-prediction benchmark;
``video_folder``: clips of a folder of videos (:mod:`.video_folder`); ``manifest``: captioned clips listed in a CSV
or JSONL file (:mod:`.captions`); ``shards``: a stream of WebDataset tar shards (:mod:`.shards`); ``ucf101``, ``bair``, ``kinetics600``: the paper's
benchmarks in the formats they are distributed in (:mod:`.ucf101`, :mod:`.bair`, :mod:`.kinetics`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch.utils.data import Dataset

from .bair import BAIROptions, BAIRPushing
from .captions import CaptionedMovingMNIST, CaptionManifest
from .joint import ImageFolder
from .kinetics import KineticsOptions, build_kinetics
from .moving_mnist import MovingMNIST
from .registry import DataSource, clip_options, register_source, source_options
from .shards import ShardDataset
from .smmnist import SMMNISTOptions, StochasticMovingMNIST
from .ucf101 import UCF101Options, build_ucf101
from .video_folder import VideoFolder

if TYPE_CHECKING:
    from .config import DataConfig

__all__ = ["image_folder"]


def image_folder(cfg: DataConfig, split: str) -> ImageFolder | None:
    """The image folder joint training draws its image frames from (None: frames of the same dataset's clips)."""
    if cfg.image_frames and split == "train" and cfg.image_root is not None:
        return ImageFolder(cfg.image_root, image_size=cfg.image_size, channels=cfg.channels)
    return None


def moving_mnist(cfg: DataConfig, split: str) -> Dataset:
    dataset = MovingMNIST(num_digits=cfg.num_digits, digit_size=cfg.digit_size, speed=cfg.speed,
                          directions=cfg.directions, start=cfg.start,
                          num_clips=cfg.train_clips if split == "train" else cfg.test_clips,
                          mnist_path=cfg.mnist_path, **clip_options(cfg, split))
    return CaptionedMovingMNIST(dataset, seed=cfg.seed) if cfg.captions else dataset


def smmnist(cfg: DataConfig, split: str) -> Dataset:
    opts = source_options(cfg)
    return StochasticMovingMNIST(num_digits=cfg.num_digits, digit_size=cfg.digit_size, max_speed=opts.max_speed,
                                 stochastic=opts.stochastic, mnist_path=cfg.mnist_path,
                                 num_clips=cfg.train_clips if split == "train" else cfg.test_clips,
                                 **clip_options(cfg, split))


def video_folder(cfg: DataConfig, split: str) -> Dataset:
    if cfg.root is None:
        raise ValueError("data.root must name a folder of videos when data.kind is 'video_folder'")
    return VideoFolder(cfg.root, extensions=cfg.extensions, on_error=cfg.on_error, captions=cfg.captions,
                       clips_per_video=cfg.clips_per_video, **clip_options(cfg, split))


def manifest(cfg: DataConfig, split: str) -> Dataset:
    if cfg.manifest is None:
        raise ValueError("data.manifest must name a CSV or JSONL file when data.kind is 'manifest'")
    return CaptionManifest(cfg.manifest, root=cfg.root, on_error=cfg.on_error, clips_per_video=cfg.clips_per_video,
                           **clip_options(cfg, split))


def shards(cfg: DataConfig, split: str) -> Dataset:
    if not cfg.shards:
        raise ValueError("data.shards must name shards (a folder, shards.json, a .txt list or a pattern such as "
                         "'data/shard-{000000..000009}.tar') when data.kind is 'shards'")
    return ShardDataset(cfg.shards, shuffle_buffer=cfg.shuffle_buffer, clips_per_video=cfg.clips_per_video,
                        captions=cfg.captions, on_error=cfg.on_error, images=image_folder(cfg, split),
                        image_frames=cfg.image_frames if split == "train" else 0, **clip_options(cfg, split))


def _root(cfg: DataConfig, what: str) -> str:
    if cfg.root is None:
        raise ValueError(f"data.root must name the {what} when data.kind is {cfg.kind!r}")
    return cfg.root


def ucf101(cfg: DataConfig, split: str) -> Dataset:
    return build_ucf101(_root(cfg, "folder holding UCF-101/ and ucfTrainTestlist/"), split, source_options(cfg),
                        on_error=cfg.on_error, clips_per_video=cfg.clips_per_video,
                        **{k: v for k, v in clip_options(cfg, split).items() if k != "split"})


def bair(cfg: DataConfig, split: str) -> Dataset:
    opts = source_options(cfg)
    return BAIRPushing(_root(cfg, "folder holding softmotion30_44k/{train,test}"), camera=opts.camera,
                       frame_size=opts.frame_size, **clip_options(cfg, split))


def kinetics600(cfg: DataConfig, split: str) -> Dataset:
    return build_kinetics(_root(cfg, "folder of Kinetics .mp4 videos"), split, source_options(cfg),
                          on_error=cfg.on_error, clips_per_video=cfg.clips_per_video,
                          **{k: v for k, v in clip_options(cfg, split).items() if k != "split"})


register_source(DataSource("moving_mnist", moving_mnist, captions=True,
                           reads=("num_digits", "digit_size", "speed", "directions", "start", "train_clips",
                                  "test_clips", "mnist_path", "captions")))
register_source(DataSource("smmnist", smmnist, options=SMMNISTOptions,
                           reads=("num_digits", "digit_size", "train_clips", "test_clips", "mnist_path")))
register_source(DataSource("video_folder", video_folder, captions=True,
                           reads=("root", "extensions", "on_error", "clips_per_video", "captions")))
register_source(DataSource("manifest", manifest, captions=True,
                           reads=("manifest", "root", "on_error", "clips_per_video")))
register_source(DataSource("shards", shards, captions=True, streams_image_frames=True,
                           reads=("shards", "shuffle_buffer", "clips_per_video", "captions", "on_error")))
register_source(DataSource("ucf101", ucf101, options=UCF101Options, reads=("root", "on_error", "clips_per_video")))
register_source(DataSource("bair", bair, options=BAIROptions, reads=("root",)))
register_source(DataSource("kinetics600", kinetics600, options=KineticsOptions,
                           reads=("root", "on_error", "clips_per_video")))
