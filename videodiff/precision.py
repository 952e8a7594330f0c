"""Numeric precision and compilation of the network: one setting, ``auto | fp32 | bf16``, for every command.

``bf16`` runs the U-Net under ``torch.autocast(dtype=torch.bfloat16)``: convolutions, matmuls and attention in
bfloat16, normalisation statistics, softmax and reductions in fp32 where autocast keeps them there. Parameters,
optimizer state, the EMA and the loss reduction stay fp32 (mixed precision as in Micikevicius et al. 2018; bf16 needs
no loss scaling). Everything outside the network stays fp32 or float64: the log-SNR schedule (Sec. 2), the
``x_hat`` of eq. (3) computed from the network's output (which :class:`videodiff.denoiser.Denoiser` casts back to
fp32), the samplers (eq. 4), guidance (eq. 5) and the reconstruction-guidance residual of eq. (6)/(7) whose gradient
reaches ``z_t`` in fp32.

``auto`` picks bf16 where the hardware has native bf16 arithmetic, and fp32 elsewhere:

* CUDA devices with bf16 support (Ampere and later);
* CPUs with AMX-BF16 or AVX512-BF16 (``/proc/cpuinfo`` flags ``amx_bf16`` / ``avx512_bf16``), on which oneDNN runs
  bf16 convolutions and matmuls several times faster than fp32 (BENCHMARKS.md, "Precision and compilation").
  On AVX2-only CPUs bf16 matmuls are emulated and hundreds of times slower, so ``auto`` keeps fp32 there.

This is the hardware rule. Where a trained model is loaded (:func:`videodiff.models.load_model`) ``auto`` on a CPU
with native bf16 is decided by measurement instead (:mod:`videodiff.precision_probe`: a cached timed probe per
network and input shape), because native bf16 does not make every network faster.

Under bf16 on the CPU the network is also put in channels-last memory format, where oneDNN's bf16 convolution and
GroupNorm kernels are fastest (measured; it brings nothing in fp32). :func:`compile_network` wraps the U-Net in
``torch.compile`` (inductor), which fuses GroupNorm, SiLU, the FiLM scale/shift and the dtype casts around them.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions, so that the CLI's --help reads PRECISIONS without it
    import torch
    from torch import nn

__all__ = ["PRECISIONS", "has_native_bf16", "resolve_precision", "autocast", "precision_name", "prepare_network",
           "compile_network"]

PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_native_bf16(device: torch.device | str) -> bool:
    """bf16 arithmetic in hardware: CUDA with bf16 support, or a CPU with AMX-BF16 / AVX512-BF16 and oneDNN."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    return bool({"amx_bf16", "avx512_bf16"} & _cpu_flags())


def resolve_precision(name: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of precision ``name`` on ``device``: ``torch.bfloat16``, or None for fp32."""
    import torch

    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "fp32":
        return None
    if name == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if has_native_bf16(device) else None


def precision_name(dtype: torch.dtype | None) -> str:
    """``"bf16"`` or ``"fp32"``: what a resolved precision is called in logs and results."""
    import torch

    return "fp32" if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``'s type; a no-op context for fp32 (``dtype`` None)."""
    import torch

    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def prepare_network(net: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Put ``net`` (in place) in the memory format that is fastest for ``dtype`` on its device: channels-last for
    bf16 on the CPU, unchanged otherwise. Parameters keep their dtype (fp32)."""
    import torch

    p = next(net.parameters(), None)
    if dtype is not None and p is not None and p.device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    return net


def compile_network(net: nn.Module, *, dynamic: bool | None = None) -> nn.Module:
    """``torch.compile`` (inductor) every :class:`videodiff.nn.UNet3D` inside ``net``, in place, so that the state
    dict keeps its keys. The U-Net's forward has no graph breaks (a test checks it with ``fullgraph=True``). A new
    input shape (another batch size or frame count) compiles once more; with ``dynamic=None`` torch then compiles a
    shape-generic graph. The first call of each shape pays the compilation (tens of seconds on a CPU)."""
    from .nn import UNet3D

    found = [m for m in net.modules() if isinstance(m, UNet3D)]
    if not found:
        raise ValueError(f"compile: no UNet3D inside {type(net).__name__}")
    for m in found:
        m.compile(dynamic=dynamic)
    return net
