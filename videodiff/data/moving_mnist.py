"""Moving MNIST (Srivastava et al., 2015), generated on the fly from real MNIST digits.

Each digit starts at a uniform position with a uniform direction and a speed drawn from ``speed`` (pixels
per step at 64x64, scaled with the frame), moves in a straight line and bounces off the walls; digits are
combined with a pixelwise max. Positions are a closed-form function of the step ``t`` (a triangle wave,
which is exactly a reflecting bounce), so clip ``i`` of a split is a deterministic function of
``(seed, split, i)``, independent of worker count, and frameskip ``k`` (paper Sec. 4) is exactly every
k-th frame of the frameskip-1 clip with the same index.

Two options make captions describe the motion more exactly, for text-to-video models (both off by default, the
standard Moving MNIST): ``directions="compass"`` rounds each direction to the nearest of the 8 compass directions
the captions name, and ``start="behind"`` starts each digit on the side it moves away from, as far back as it needs
to cross the frame before its first bounce (from the back wall when the clip is longer than one crossing), so the
captioned initial direction holds for as much of the clip as possible. Both reuse the same random draws, so a
clip keeps its digit, speed and (rounded) direction when they are switched on.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .constants import DIRECTION_MODES, START_MODES
from .mnist import load_mnist, split_indices

DIRECTIONS = ("right", "up-right", "up", "up-left", "left", "down-left", "down", "down-right")


def direction_name(vx: float, vy: float) -> str:
    """Nearest of 8 compass names for a velocity in image coordinates (y points down)."""
    angle = math.atan2(-vy, vx)
    return DIRECTIONS[round(angle / (math.pi / 4)) % 8]


def direction_vector(name: str) -> tuple[float, float]:
    """Unit velocity ``(x, y)`` in image coordinates (y points down) of a compass name: the inverse of
    :func:`direction_name` (``"up"`` -> ``(0, -1)``)."""
    if name not in DIRECTIONS:
        raise ValueError(f"unknown direction {name!r}; expected one of {DIRECTIONS}")
    angle = DIRECTIONS.index(name) * math.pi / 4
    return math.cos(angle), -math.sin(angle)


def centre_of_mass(videos: torch.Tensor, floor: float = -1.0) -> torch.Tensor:
    """Centre ``(x, y)`` (pixels, y down) of each frame's brightness: ``(N, C, F, H, W)`` in [-1, 1] -> ``(N, F, 2)``.
    Pixels of the first channel are weighted by ``value + 1`` (clamped to [-1, 1] first); those not brighter than
    ``floor`` weigh nothing (e.g. -0.4 to ignore a generated video's faint haze)."""
    v = videos[:, 0].clamp(-1, 1)
    w = torch.where(v > floor, v + 1, torch.zeros_like(v))
    grid = torch.arange(w.shape[-1], dtype=w.dtype, device=w.device)
    mass = w.sum((-1, -2)).clamp_min(1e-6)
    return torch.stack([(w.sum(-2) * grid).sum(-1) / mass, (w.sum(-1) * grid).sum(-1) / mass], -1)


def bounce(p0: np.ndarray, v: np.ndarray, t: np.ndarray, limit: float) -> np.ndarray:
    """Position at steps ``t`` of a point moving from ``p0`` with velocity ``v`` inside ``[0, limit]``,
    reflecting off both walls. Shapes broadcast: ``p0, v (..., 1)`` with ``t (T,)`` -> ``(..., T)``."""
    if limit <= 0:
        return np.zeros(np.broadcast_shapes(np.shape(p0), np.shape(t)))
    p = np.mod(p0 + v * t, 2 * limit)
    return np.where(p > limit, 2 * limit - p, p)


def _resize_digits(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> uint8 ``(N, size, size)``, antialiased bilinear. Each digit is rescaled to
    keep its original peak brightness, so thin strokes stay white in small frames."""
    if size == images.shape[-1]:
        return images
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[:, 0]
    peak = torch.from_numpy(images.reshape(len(images), -1).max(1).astype(np.float32))
    x = x * (peak / x.flatten(1).amax(1).clamp_min(1e-6))[:, None, None]
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


class MovingMNIST(Dataset):
    """``num_clips`` Moving MNIST clips of a split; item ``i`` is generated from ``(seed, split, i)``.

    Items: ``video`` float32 ``(channels, num_frames, image_size, image_size)`` in [-1, 1] (background -1);
    ``labels`` long ``(num_digits,)`` digit classes; ``digit_ids`` long rows of the MNIST CSV;
    ``directions`` list of initial compass names ("up", "down-left", ...); ``velocity`` float32
    ``(num_digits, 2)`` as ``(vx, vy)`` pixels per source step, y down; ``index``.
    """

    def __init__(
        self,
        *,
        num_frames: int = 16,
        image_size: int = 64,
        num_digits: int = 2,
        digit_size: int | None = None,
        speed: tuple[float, float] = (2.0, 4.0),
        frameskip: int = 1,
        num_clips: int = 10000,
        split: str = "train",
        seed: int = 0,
        channels: int = 1,
        mnist_path: str | None = None,
        directions: str = "any",
        start: str = "uniform",
    ):
        if directions not in DIRECTION_MODES:
            raise ValueError(f"directions must be one of {DIRECTION_MODES}, got {directions!r}")
        if start not in START_MODES:
            raise ValueError(f"start must be one of {START_MODES}, got {start!r}")
        self.directions, self.start = directions, start
        images, labels = load_mnist(mnist_path)
        self.pool = split_indices(labels, split)  # CSV rows this split may use
        self.split_id = ("train", "test").index(split)
        self.digit_size = digit_size if digit_size is not None else max(1, round(28 * image_size / 64))
        if not 1 <= self.digit_size <= image_size:
            raise ValueError(f"digit_size must be in 1..image_size={image_size}, got {self.digit_size}")
        self.digits = _resize_digits(images[self.pool], self.digit_size)  # (P, s, s) uint8
        self.labels = labels[self.pool]
        self.num_frames, self.image_size, self.num_digits = num_frames, image_size, num_digits
        self.speed = (speed[0] * image_size / 64, speed[1] * image_size / 64)  # pixels per step
        self.frameskip, self.num_clips, self.seed, self.channels = frameskip, num_clips, seed, channels

    @staticmethod
    def _start_behind(start: np.ndarray, velocity: np.ndarray, duration: int, limit: int) -> np.ndarray:
        """Map uniform starts in ``[0, limit]`` to starts on the side each axis moves away from, within the range
        from which the digit crosses ``|v| * duration`` pixels before bouncing (the back wall if it cannot)."""
        room = np.clip(limit - np.abs(velocity) * duration, 0, limit)  # (n, 2)
        offset = start / max(limit, 1) * room  # uniform in [0, room] from the back wall
        return np.where(velocity > 0, offset, np.where(velocity < 0, limit - offset, start))

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range for {self.num_clips} clips")
        rng = np.random.default_rng([self.seed, self.split_id, index])
        n, s, size = self.num_digits, self.digit_size, self.image_size
        limit = size - s  # top-left corner stays in [0, limit]: the digit never leaves the frame
        which = rng.integers(0, len(self.pool), n)
        angle = rng.uniform(0, 2 * math.pi, n)
        speed = rng.uniform(self.speed[0], self.speed[1], n)
        start = rng.uniform(0, limit, (n, 2))  # (x, y)
        if self.directions == "compass":
            angle = np.round(angle / (math.pi / 4)) * (math.pi / 4)
        velocity = np.stack([np.cos(angle), -np.sin(angle)], 1) * speed[:, None]  # (n, 2) y down
        if self.directions == "compass":
            velocity[np.abs(velocity) < 1e-9] = 0.0  # exact zeros on the axes (cos(pi/2) is 6e-17)
        steps = np.arange(self.num_frames) * self.frameskip  # every k-th step of the simulation
        if self.start == "behind":
            start = self._start_behind(start, velocity, steps[-1], limit)
        pos = np.rint(bounce(start[..., None], velocity[..., None], steps, limit)).astype(np.int64)  # (n, 2, F)
        canvas = np.zeros((self.num_frames, size, size), np.uint8)
        for d in range(n):
            digit = self.digits[which[d]]
            for f in range(self.num_frames):
                x, y = pos[d, 0, f], pos[d, 1, f]
                window = canvas[f, y : y + s, x : x + s]
                np.maximum(window, digit, out=window)
        video = torch.from_numpy(canvas).float().div_(127.5).sub_(1)[None]  # (1, F, H, W)
        if self.channels == 3:
            video = video.expand(3, -1, -1, -1).contiguous()
        return {
            "video": video,
            "labels": torch.from_numpy(self.labels[which].copy()),
            "digit_ids": torch.from_numpy(self.pool[which]),
            "directions": [direction_name(vx, vy) for vx, vy in velocity],
            "velocity": torch.from_numpy(velocity.astype(np.float32)),
            "index": index,
        }
