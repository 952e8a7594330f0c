"""Progressive distillation of a trained model into a few-step DDIM student (Salimans & Ho 2022): the ``distill.*``
options (:mod:`.config`) and the resumable loop (:mod:`.run`, imported on first use so that the experiment config
can import the options without the loop)."""

from .config import DistillConfig

__all__ = ["DistillConfig", "distill", "distill_config", "DistillResult"]


def __getattr__(name):
    if name in ("distill", "distill_config", "DistillResult"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
