import torch
from torch import nn


def randomize_zero_init(model: nn.Module, std: float = 0.05, seed: int = 0) -> nn.Module:
    """Give zero-initialised parameters (output convs, attention projections) random values, so that a fresh
    network's output actually depends on its input in tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if bool((p == 0).all()):
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model
