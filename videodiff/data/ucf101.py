"""UCF-101 (Soomro et al. 2012) as distributed: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and the official splits
``ucfTrainTestlist/{classInd.txt, trainlist0N.txt, testlist0N.txt}`` (N = 1, 2, 3), under ``data.root``.

``classInd.txt`` lines are ``<1-based index> <Class>``; ``trainlist0N.txt`` lines ``<Class>/<file>.avi <index>``;
``testlist0N.txt`` lines ``<Class>/<file>.avi``. Labels are the 0-based class index (``classInd`` order) of the
video's folder, matched without regard to case (the distribution spells ``HandstandPushups`` in ``classInd`` and
folders but ``HandStandPushups`` in the file names). The paper (Sec. 4.1) trains on all 13,320 videos:
``data.options.all_videos: true`` makes the train split the union of ``trainlist0N`` and ``testlist0N``; the test
split is always ``testlist0N``. Clips are read by :class:`~videodiff.data.listed_videos.ListedVideos` (center square
crop, resized to ``data.image_size``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .listed_videos import ListedVideos

__all__ = ["UCF101Options", "ucf101_split", "read_class_index"]


@dataclass
class UCF101Options:
    """``data.options`` of ``data.kind: ucf101``."""

    fold: int = 1  # the official split N of trainlist0N / testlist0N
    all_videos: bool = False  # train on trainlist0N + testlist0N (the paper's 13,320 videos)
    videos_dir: str = "UCF-101"  # under data.root
    lists_dir: str = "ucfTrainTestlist"  # under data.root

    def __post_init__(self) -> None:
        if self.fold not in (1, 2, 3):
            raise ValueError(f"data.options.fold must be 1, 2 or 3, got {self.fold}")


def read_class_index(path: Path) -> dict[str, int]:
    """``classInd.txt`` -> ``{class name lower-cased: 0-based index}``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UCF-101 class index missing")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{path}:{n}: expected '<index> <Class>', got {line!r}")
        out[parts[1].lower()] = int(parts[0]) - 1
    if not out:
        raise ValueError(f"{path}: no classes")
    return out


def _read_list(path: Path, classes: dict[str, int]) -> list[tuple[str, int]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: UCF-101 split list missing")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        rel = line.split()[0].replace("\\", "/")
        folder = rel.split("/")[0].lower()
        if "/" not in rel or folder not in classes:
            raise ValueError(f"{path}:{n}: {rel!r} is not '<Class>/<file>.avi' with a class of classInd.txt")
        out.append((rel, classes[folder]))
    if not out:
        raise ValueError(f"{path}: lists no videos")
    return out


def ucf101_split(root: str | Path, split: str, opts: UCF101Options) -> tuple[list[Path], list[int], str]:
    """``(paths, labels, the list files read)`` of ``split`` ("train" or "test") under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root {root}: no such folder (expected {opts.videos_dir}/ and "
                                f"{opts.lists_dir}/)")
    lists = root / opts.lists_dir
    classes = read_class_index(lists / "classInd.txt")
    names = [f"testlist0{opts.fold}.txt"] if split == "test" else (
        [f"trainlist0{opts.fold}.txt"] + ([f"testlist0{opts.fold}.txt"] if opts.all_videos else []))
    entries = [e for name in names for e in _read_list(lists / name, classes)]
    videos = root / opts.videos_dir
    return [videos / rel for rel, _ in entries], [lab for _, lab in entries], " + ".join(str(lists / n) for n in names)


def build_ucf101(root, split: str, opts: UCF101Options, **clip) -> ListedVideos:
    paths, labels, source = ucf101_split(root, split, opts)
    return ListedVideos(paths, labels, source=source, split=split, **clip)
