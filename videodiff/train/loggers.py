"""Experiment tracking for ``videodiff train``: TensorBoard event files and, optionally, Weights & Biases.

``train.loggers`` names the trackers (default ``["tensorboard"]``); ``metrics.jsonl`` is written regardless
(:mod:`.report`). The training loop opens one :class:`Loggers` on rank 0 (other ranks get an empty one) and hands it
the rows it appends to ``metrics.jsonl`` and the periodic sample grid.

- **tensorboard**: ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` package) writing into
  ``RUN/tensorboard/``. Scalars go under ``train/`` (``train/loss``, ``train/lr``, ...); the sample grid is an image,
  ``samples``: its frames left to right, one grid of all videos per frame (``add_video`` would need moviepy). A resumed
  run from step S opens its writer with ``purge_step=S + 1``: the events of steps after S that an interrupted run
  wrote after its last checkpoint are dropped by TensorBoard, so each step appears once. Without the ``tensorboard``
  package, one warning and training goes on (it is the default, and metrics.jsonl has the same numbers).
- **wandb** (``pip install wandb``, an optional extra): ``wandb.init(mode=train.wandb_mode, dir=RUN)``; ``offline``
  (the default) writes ``RUN/wandb/`` and makes no network call, ``wandb sync`` uploads it later. The run id is kept
  in ``RUN/wandb_run_id`` so a resumed run continues the same W&B run; W&B ignores a step it already has (the
  resumed run recomputes those steps bit-exactly, so nothing is lost). Asked for and not installed: an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ..io import video_grid

__all__ = ["Loggers", "sample_strip"]

WANDB_MISSING = ("train.loggers asks for 'wandb', which is not installed: pip install wandb "
                 "(or pip install 'videodiff[wandb]'), or drop it from train.loggers")


def sample_strip(videos: torch.Tensor):
    """``(B, C, F, H, W)`` videos in [-1, 1] -> uint8 ``(H', F * W', 3)``: the grid of all videos at each frame,
    frames left to right (the layout of ``videodiff sample --out x.png``)."""
    import numpy as np

    frames = video_grid(videos)  # (F, H', W', 3)
    return np.concatenate(list(frames), axis=1)  # (H', F * W', 3)


class Loggers:
    """The trackers named in ``names`` for the run in ``run_dir``, resumed at ``step`` (0: a new run).

    ``config`` (a plain dict) is recorded with W&B; ``name`` is the W&B run name. Empty ``names``: every method
    does nothing (ranks > 0, ``train.loggers=[]``)."""

    def __init__(self, names, run_dir: str | Path, *, step: int = 0, config: dict | None = None,
                 name: str = "run", wandb_mode: str = "offline", wandb_project: str = "videodiff"):
        run_dir = Path(run_dir)
        self._tb = None
        self._wandb = self._wandb_module = None
        if "wandb" in names:  # first: a missing wandb is an error before anything is written
            self._wandb_module, self._wandb = _open_wandb(run_dir, config or {}, name, wandb_mode, wandb_project)
        if "tensorboard" in names:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                print(f"videodiff: warning: train.loggers: TensorBoard logging is off, the tensorboard package is "
                      f"missing ({e}); pip install tensorboard (metrics.jsonl is written as always)", file=sys.stderr)
            else:
                # purge_step: TensorBoard drops this directory's earlier events at steps >= step + 1 (written after
                # the checkpoint being resumed from), so no step appears twice.
                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=step + 1)

    @property
    def active(self) -> list[str]:
        return [n for n, x in (("tensorboard", self._tb), ("wandb", self._wandb)) if x is not None]

    def scalars(self, step: int, values: dict, prefix: str = "train/") -> None:
        """Log ``values`` (name -> number) at ``step`` as ``prefix + name``."""
        values = {prefix + k: float(v) for k, v in values.items() if k != "step"}
        if self._tb is not None:
            for tag, v in values.items():
                self._tb.add_scalar(tag, v, step)
        if self._wandb is not None:
            self._wandb.log(values, step=step)

    def samples(self, step: int, videos: torch.Tensor, tag: str = "samples") -> None:
        """The sample grid ``(B, C, F, H, W)`` in [-1, 1], as an image of its frames left to right (videos in
        TensorBoard and W&B need moviepy; the run's samples/ folder has them as GIF and MP4)."""
        if not self.active:
            return
        strip = sample_strip(videos)
        if self._tb is not None:
            self._tb.add_image(tag, strip, step, dataformats="HWC")
        if self._wandb is not None:
            self._wandb.log({tag: self._wandb_module.Image(strip)}, step=step)

    def flush(self) -> None:
        """Write what is buffered (at each checkpoint: a crash after it then loses no step before it)."""
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> "Loggers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_wandb(run_dir: Path, config: dict, name: str, mode: str, project: str):
    try:
        import wandb
    except ImportError as e:
        raise ValueError(WANDB_MISSING) from e
    id_file = run_dir / "wandb_run_id"
    run_id = id_file.read_text().strip() if id_file.is_file() else wandb.util.generate_id()
    id_file.write_text(run_id + "\n")
    run = wandb.init(project=project, name=name, id=run_id, resume="allow", dir=str(run_dir), mode=mode,
                     config=config)
    return wandb, run
