"""FLOP counting and the machine's own matmul FLOP/s, the two sides of "achieved fraction of peak".

FLOPs come from PyTorch's ``FlopCounterMode``, which counts convolutions, matmuls (``mm``/``bmm``, so ``einsum``)
and the CUDA attention kernels. The CPU fused attention kernel (``_scaled_dot_product_flash_attention_for_cpu``
and its backward) has no formula in PyTorch, so SDPA on CPU would count as zero; :data:`CPU_SDPA_FORMULAS` adds the
same formulas PyTorch uses for the CUDA kernels (forward ``QK^T`` and ``AV``: ``4 b h s_q s_k d``; backward four
matmuls, twice that). Elementwise work (norms, activations, softmax) is not counted, as in every MFU figure.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

__all__ = ["CPU_SDPA_FORMULAS", "count_flops", "matmul_flops_per_s", "conv2d_flops", "sync"]

aten = torch.ops.aten


def _sdpa_fwd(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    b, h, s_q, d = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * d + 2 * b * h * s_q * s_k * d_v  # QK^T, then softmax(.) V


def _sdpa_bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    b, h, s_q, d = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    # dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q
    return 2 * b * h * s_q * s_k * (d_v + d_v + d + d)


CPU_SDPA_FORMULAS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_fwd,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_bwd,
}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` as counted by ``FlopCounterMode`` plus the CPU attention formulas above."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=CPU_SDPA_FORMULAS) as counter:
        fn()
    return counter.get_total_flops()


def conv2d_flops(n: int, c_in: int, c_out: int, h_out: int, w_out: int, k: int) -> int:
    """Closed form of a 2D convolution's forward FLOPs (one multiply-add = 2 FLOPs; bias not counted)."""
    return 2 * n * c_out * h_out * w_out * c_in * k * k


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                       repeats: int = 3, rounds: int = 3) -> float:
    """Best-of-``rounds`` FLOP/s of an ``n x n`` by ``n x n`` matmul in ``dtype`` on ``device``."""
    if device.type == "cuda" and n >= 2048:
        n, repeats = max(n, 8192), max(repeats, 20)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(rounds):
        sync(device)
        t = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync(device)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t))
    return best


def has_fast_bf16(device: torch.device) -> bool:
    """bf16 matmul in hardware (:func:`videodiff.precision.has_native_bf16`)."""
    from ..precision import has_native_bf16

    return has_native_bf16(device)
