"""Independent image frames appended to every training video, for joint image-video training (paper Sec. 3, 4.2).

"We concatenate random independent image frames to the end of each video sampled from the dataset, and we mask
the attention in the temporal attention blocks to prevent mixing information across video frames and each
individual image frame. We choose these random independent images from random videos within the same dataset."

:class:`WithImageFrames` wraps a clip dataset: item ``i`` is clip ``i`` with ``N`` frames appended, each a random
frame of a random clip of the same dataset (or a random image of an :class:`ImageFolder`), drawn from
``(seed, split, i)`` so that any worker count gives the same data. The network masks temporal attention with
``videodiff.nn.joint_frame_mask(F, N)``. Each image frame keeps its own caption (``image_captions``; empty when
its source has none), which the text-conditioned network pools per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .transforms import frames_to_clip

__all__ = ["WithImageFrames", "ImageFolder", "IMAGE_EXTENSIONS", "join_image_frames"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFolder(Dataset):
    """Images under ``root`` (recursively), center-cropped square and resized: items ``image`` float32
    ``(channels, image_size, image_size)`` in [-1, 1], ``caption`` (from a ``.txt`` file of the same name beside
    the image, else empty: the null condition), ``path``."""

    def __init__(self, root: str | Path, *, image_size: int = 64, channels: int = 3):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist or is not a directory")
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self.paths:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {self.root}")
        self.image_size, self.channels = image_size, channels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        try:
            with Image.open(path) as im:
                frame = np.asarray(im.convert("RGB"))[None]  # (1, H, W, 3)
        except Exception as e:  # PIL raises OSError, ValueError, SyntaxError...
            raise OSError(f"{path}: cannot read image ({e})") from e
        image = frames_to_clip(frame, self.image_size, self.channels)[:, 0]  # (C, H, W)
        txt = path.with_suffix(".txt")
        caption = txt.read_text().strip() if txt.is_file() else ""
        return {"image": image, "caption": caption, "path": str(path)}


class WithImageFrames(Dataset):
    """``dataset`` with ``num_images`` independent image frames appended to every clip.

    Items: the clip's item with ``video`` ``(C, F + N, H, W)``, ``num_image_frames`` ``N`` and, when the clips
    have captions (or ``images`` is given), ``image_captions`` (N strings).

    Args:
        dataset: clips (items with ``video`` ``(C, F, H, W)``, optionally ``caption``).
        num_images: ``N``.
        images: draw the frames from this :class:`ImageFolder`-like dataset (items with ``image``) instead of from
            random clips of ``dataset``.
        seed: randomness of the draws, with the item index and ``dataset.split_id`` (when present).
    """

    def __init__(self, dataset: Dataset, num_images: int, *, images: Dataset | None = None, seed: int = 0):
        if num_images < 0:
            raise ValueError(f"num_images must be >= 0, got {num_images}")
        self.dataset, self.num_images, self.images, self.seed = dataset, num_images, images, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # expose the wrapped dataset's attributes
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def sources(self, index: int) -> list[tuple[int, int]]:
        """``(source item, frame)`` of each appended image (frame -1 for an image folder)."""
        split_id = getattr(self.dataset, "split_id", 0)
        rng = np.random.default_rng([self.seed, split_id, index, 0x1A6E])
        n_src = len(self.images) if self.images is not None else len(self.dataset)
        items = rng.integers(0, n_src, self.num_images)
        if self.images is not None:
            return [(int(j), -1) for j in items]
        frames = getattr(self.dataset, "num_frames", None)
        if frames is None:
            frames = self.dataset[0]["video"].shape[1]
        return [(int(j), int(k)) for j, k in zip(items, rng.integers(0, frames, self.num_images))]

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        frames, captions = [], []
        for j, k in self.sources(index):
            src = self.images[j] if self.images is not None else self.dataset[j]
            frames.append(src["image"] if k < 0 else src["video"][:, k])  # (C, H, W)
            captions.append(src.get("caption", ""))
        return join_image_frames(item, frames, captions if "caption" in item or self.images is not None else None)


def join_image_frames(item: dict, frames: list[torch.Tensor], captions: list[str] | None) -> dict:
    """The joint item: a copy of the clip's ``item`` whose ``video`` ``(C, F, H, W)`` gets the ``N`` image ``frames``
    (``(C, H, W)`` each) appended, ``(C, F + N, H, W)``, with ``num_image_frames`` ``N`` and, unless ``captions`` is
    None, the frames' captions as ``image_captions``. How the frames are drawn is the caller's (:class:`WithImageFrames`
    for indexed datasets, :class:`~videodiff.data.shards.ShardDataset` for streams)."""
    item = dict(item)
    if frames:
        video = item["video"]
        item["video"] = torch.cat([video, torch.stack(frames, 1).to(video.dtype)], 1)  # (C, F + N, H, W)
    item["num_image_frames"] = len(frames)
    if captions is not None:
        item["image_captions"] = list(captions)
    return item
