"""LoRA adapters (videodiff/nn/lora.py, issue 31): a fresh adapter leaves the network unchanged, only adapters
train, and merging them into the kernels gives the same outputs."""

from __future__ import annotations

import pytest
import torch

from videodiff.nn import UNet3D, UNetConfig
from videodiff.nn.lora import LoRA, add_lora, lora_state, merge_lora

from conftest import randomize_zero_init

CFG = UNetConfig(image_size=8, base_channels=8, channel_mults=(1, 2), attn_resolutions=(4,), head_dim=8)


def _net(seed: int = 0) -> UNet3D:
    torch.manual_seed(seed)
    return randomize_zero_init(UNet3D(CFG)).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 1, 3, 8, 8, generator=g), torch.tensor([-1.0, 2.0])


def test_adapters_start_as_the_base_network_and_only_they_train():
    net, (z, lam) = _net(), _inputs()
    before = net(z, lam)
    names = add_lora(net, rank=2)
    assert any(n.endswith(".qkv") for n in names) and any(n.endswith(".conv1") for n in names)
    torch.testing.assert_close(net(z, lam), before, rtol=0, atol=0)  # up = 0: the sum is the base layer
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(".lora." in n for n in trainable)
    net(z, lam).square().mean().backward()
    assert all(p.grad is None for n, p in net.named_parameters() if ".lora." not in n)
    only_attention = add_lora(_net(), rank=2, targets=("attention",))
    assert only_attention and all(n.rsplit(".", 1)[-1] in ("qkv", "proj") for n in only_attention)
    with pytest.raises(ValueError, match="rank >= 1"):
        add_lora(_net(), rank=0)


def test_merged_adapters_give_the_same_outputs():
    net, (z, lam) = _net(), _inputs()
    add_lora(net, rank=3, alpha=6.0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, LoRA):
                m.up.weight.normal_(0, 0.1)  # a trained adapter
    adapted = net(z, lam)
    plain = _net()
    plain.load_state_dict(merge_lora(net.state_dict()))  # the plain network's keys exactly (strict load)
    torch.testing.assert_close(plain(z, lam), adapted, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(_net()(z, lam), adapted)  # the adapters changed the function
    assert set(lora_state(net.state_dict())) == {k for k in net.state_dict() if ".lora." in k}
