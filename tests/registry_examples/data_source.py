"""A data kind defined outside the package: what adding one takes (this file, and one ``register_source`` line).

``gaussian_noise``: clips of independent Gaussian pixels, mean ``data.options.mean`` and standard deviation
``data.options.std`` (clamped to the data range [-1, 1]); ``data.options.clips`` clips per split. Item ``i`` is
drawn from ``(seed, split, i)``, so any DataLoader worker count gives the same data. Its options live in
``data.options`` (typed by :class:`NoiseOptions`), not in the flat ``DataConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from videodiff.data.registry import DataSource, clip_options, source_options


@dataclass
class NoiseOptions:
    std: float = 0.5
    mean: float = 0.0
    clips: int = 64

    def __post_init__(self) -> None:
        if not 0 < self.std <= 1:
            raise ValueError(f"data.options.std must be in (0, 1], got {self.std}")
        if not -1 <= self.mean <= 1:
            raise ValueError(f"data.options.mean must be in [-1, 1], got {self.mean}")
        if self.clips < 1:
            raise ValueError(f"data.options.clips must be >= 1, got {self.clips}")


class GaussianNoiseClips(Dataset):
    """``options.clips`` clips ``(channels, num_frames, image_size, image_size)`` of Gaussian noise."""

    def __init__(self, options: NoiseOptions, *, num_frames: int, image_size: int, channels: int, frameskip: int,
                 split: str, seed: int):
        self.options, self.seed, self.split_id = options, seed, ("train", "test").index(split)
        self.shape = (channels, num_frames, image_size, image_size)  # frameskip: noise has no motion to skip

    def __len__(self) -> int:
        return self.options.clips

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.split_id, index])
        pixels = self.options.mean + self.options.std * rng.standard_normal(self.shape)
        return {"video": torch.from_numpy(pixels.clip(-1, 1)).float(), "index": index}


def build(cfg, split: str) -> GaussianNoiseClips:
    return GaussianNoiseClips(source_options(cfg), **clip_options(cfg, split))


SOURCE = DataSource("gaussian_noise", build, options=NoiseOptions)
