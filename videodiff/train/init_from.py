"""Starting a new run from another run's weights (``train.init_from``): fine-tuning, or continuing a shipped model.

The state must fit the network of the new config, except for what a fine-tune may add to it: parameters its modules
name in ``ZERO_INIT_OPTIONAL`` (LoRA adapters, frame and pixel position embeddings) start at their zero
initialisation, and input channels named in ``WIDENED_INPUTS`` (``model.context_concat``) start at zero weight, so
the new network starts as the one it came from.
"""

from __future__ import annotations

import torch

__all__ = ["widen_inputs", "init_from_state"]


def widen_inputs(model: torch.nn.Module, state: dict) -> dict:
    """A network that takes more input channels than the one it starts from (``model.context_concat``): the
    weights of the new channels start at zero, so the fine-tune starts as the network it came from."""
    own = model.state_dict()
    widened = tuple(name for m in model.modules() for name in getattr(m, "WIDENED_INPUTS", ()))
    state = dict(state)
    for key, value in state.items():
        mine = own.get(key)
        if (key.endswith(widened) and mine is not None and value.ndim == mine.ndim >= 2
                and value.shape[0] == mine.shape[0] and value.shape[2:] == mine.shape[2:]
                and value.shape[1] < mine.shape[1]):
            pad = value.new_zeros((value.shape[0], mine.shape[1] - value.shape[1], *value.shape[2:]))
            state[key] = torch.cat([value, pad], 1)
    return state


def init_from_state(model: torch.nn.Module, state: dict, source) -> list[str]:
    """Load ``state`` into ``model``; returns the names of parameters it lacks that may start at their
    (zero) initialisation. Anything else that does not match is an error naming ``train.init_from``."""
    state = widen_inputs(model, state)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise ValueError(f"train.init_from {source}: its network does not match model/text: {e}") from e
    # Parameters a fine-tune may add to the network it starts from: each module names its zero-initialised ones.
    optional = tuple(name for m in model.modules() for name in getattr(m, "ZERO_INIT_OPTIONAL", ()))
    bad = [k for k in missing if not k.endswith(optional)]
    if bad or unexpected:
        raise ValueError(f"train.init_from {source}: its network does not match model/text: missing {bad}, "
                         f"unexpected {list(unexpected)}")
    return list(missing)
