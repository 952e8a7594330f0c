"""Training: the loop of eq. (2), EMA, metrics and plots (checkpoints live in :mod:`videodiff.checkpoint`)."""

from .ema import EMA
from .loop import TrainResult, train

__all__ = ["train", "TrainResult", "EMA"]
