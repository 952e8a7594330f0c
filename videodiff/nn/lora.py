"""Low-rank adapters (LoRA, Hu et al. 2021) on the U-Net's convolutions, for fine-tuning a trained model.

A frozen convolution ``W`` (k x k) gains ``delta = (alpha / r) * up(down(x))``: ``down`` a k x k convolution to
``r`` channels with ``W``'s stride and padding, ``up`` a 1 x 1 convolution back, zero-initialised, so a fresh adapter
leaves the network's outputs unchanged. The attention layers' projections (``qkv``, ``proj``) are 1 x 1 convolutions
here (frames folded into the batch), so "attention" and "conv" adapters are the same module on different layers.
Since ``up`` and ``down`` are linear with the base layer's geometry, ``W + (alpha / r) up . down`` is one k x k
kernel: :func:`merge_lora` folds the adapters in, exactly up to rounding.

The adapter is a child module ``lora`` of the convolution it adapts, added to its output by a forward hook: the base
layer keeps its class (and its CPU fast paths) and its state-dict keys (``conv1.weight``), and the adapter's keys
are ``conv1.lora.down.weight`` / ``conv1.lora.up.weight``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LoRA", "add_lora", "merge_lora", "lora_state", "TARGETS"]

TARGETS = ("attention", "conv")  # the attention projections (qkv, proj) and every other convolution


class LoRA(nn.Module):
    """``(alpha / r) up(down(x))`` for a base ``nn.Conv2d``; ``up`` starts at zero."""

    # A fine-tune adds these to the network it starts from (up = 0: the sum starts as the base layer alone).
    ZERO_INIT_OPTIONAL = ("lora.down.weight", "lora.up.weight", "lora.scale")

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float):
        super().__init__()
        self.down = nn.Conv2d(base.in_channels, rank, base.kernel_size, base.stride, base.padding, bias=False)
        self.up = nn.Conv2d(rank, base.out_channels, 1, bias=False)
        nn.init.zeros_(self.up.weight)
        self.register_buffer("scale", torch.tensor(alpha / rank))  # in the state dict: merging needs it

    def forward(self, x: Tensor) -> Tensor:
        return self.up(self.down(x)) * self.scale


def _add_output(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
    return out + module.lora(args[0])


def _is_target(name: str, module: nn.Module, targets: tuple[str, ...]) -> bool:
    if not isinstance(module, nn.Conv2d) or module.groups != 1 or module.dilation != (1, 1):
        return False
    attention = name.rsplit(".", 1)[-1] in ("qkv", "proj")
    return ("attention" in targets) if attention else ("conv" in targets)


def add_lora(net: nn.Module, rank: int, alpha: float | None = None,
             targets: tuple[str, ...] = TARGETS) -> list[str]:
    """Give every targeted convolution of ``net`` an adapter of rank ``rank`` (``alpha`` None: ``rank``, scale 1)
    and freeze everything else; returns the adapted layers' names. The network's outputs are unchanged."""
    unknown = sorted(set(targets) - set(TARGETS))
    if rank < 1 or unknown:
        raise ValueError(f"LoRA needs rank >= 1 and targets among {TARGETS}, got rank={rank}, targets={targets}")
    net.requires_grad_(False)
    names = [n for n, m in net.named_modules() if _is_target(n, m, targets)]
    for name in names:
        conv = net.get_submodule(name)
        conv.lora = LoRA(conv, rank, float(rank if alpha is None else alpha)).to(conv.weight.device)
        conv.register_forward_hook(_add_output)
    return names


@torch.no_grad()
def merge_lora(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict with adapters folded into their base kernels (``W + scale up . down``) and the adapter entries
    removed: the weights of the plain network. ``scale`` is read from each adapter's ``lora.scale`` entry."""
    out = {k: v for k, v in state.items() if ".lora." not in k}
    for key in [k for k in state if k.endswith(".lora.up.weight")]:
        base = key[: -len(".lora.up.weight")]
        up, down = state[key].float(), state[f"{base}.lora.down.weight"].float()
        scale = float(state[f"{base}.lora.scale"])
        delta = torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down) * scale
        out[f"{base}.weight"] = (state[f"{base}.weight"].float() + delta).to(state[f"{base}.weight"].dtype)
    return out


def lora_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The adapters alone (weights and scales) of a state dict, keyed as in the network."""
    return {k: v for k, v in state.items() if ".lora." in k}
