"""``auto`` precision by measurement: time the network's forward pass in fp32 and in bf16 once per CPU model, thread
count, network and input shape, keep the faster, and remember the answer in a small JSON file.

Native bf16 (AVX512-BF16 / AMX) does not make every network faster: the 73M-parameter bench U-Net runs 1.6-1.7x faster
in bf16 on an AMD Zen 4, but the small shipped model sampled slower in bf16 than in fp32 on the same machine (issue
30: ``make demo`` 52.3 s against 49.0 s). The rule of :func:`videodiff.precision.resolve_precision` (bf16 wherever the
hardware has it) therefore only decides where bf16 cannot win: without native bf16 it is emulated (hundreds of times
slower), so ``auto`` is fp32 there without a probe; CUDA devices with bf16 keep bf16. On a CPU with native bf16,
:func:`resolve_auto` runs a short probe (one warm-up forward of each, then ``repeats`` alternating timed forwards of
each; medians), picks bf16 only if it is at least ``margin`` faster (:func:`choose_precision`), and caches the choice
in ``$VIDEODIFF_CACHE/precision.json`` (default ``~/.cache/videodiff``) under a key of CPU model, torch version,
threads, the network's parameter shapes and the input shape. ``VIDEODIFF_PRECISION_PROBE=0`` turns the probe off
(the hardware rule decides). The choice and its measurement are reported in one ``note:`` line.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .precision import has_native_bf16, prepare_network, resolve_precision

__all__ = ["choose_precision", "cpu_model", "probe_key", "cache_path", "measure_forward", "resolve_auto",
           "resolve_for_network"]

MARGIN = 0.05  # bf16 must be at least 5 % faster: below that, timing noise decides and fp32 is the exact choice


def choose_precision(fp32_s: list[float], bf16_s: list[float], margin: float = MARGIN) -> str:
    """``"bf16"`` if the median bf16 time is below ``(1 - margin)`` x the median fp32 time, else ``"fp32"``."""
    if not fp32_s or not bf16_s:
        raise ValueError("choose_precision needs at least one timing of each precision")
    return "bf16" if statistics.median(bf16_s) < (1.0 - margin) * statistics.median(fp32_s) else "fp32"


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown cpu"


def probe_key(net: nn.Module, shape: tuple[int, ...]) -> str:
    """What the measurement depends on: CPU model, torch version, threads, the network's shape, the input shape."""
    sig = hashlib.sha256()
    sig.update(type(net).__name__.encode())
    for name, p in net.state_dict().items():
        sig.update(f"{name}:{tuple(p.shape)};".encode())
    return (f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
            f"net {sig.hexdigest()[:16]} | input {'x'.join(map(str, shape))}")


def cache_path() -> Path:
    """``$VIDEODIFF_CACHE/precision.json``, else ``~/.cache/videodiff/precision.json``."""
    root = os.environ.get("VIDEODIFF_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "videodiff") / "precision.json"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # missing or damaged: measure again
        return {}


def _write(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError:  # a read-only home: the choice still holds for this process
        pass


@torch.no_grad()
def measure_forward(net: nn.Module, shape: tuple[int, ...], device, repeats: int = 3) -> dict[str, list[float]]:
    """Seconds per forward pass of ``net`` on a random input of ``shape`` (and log-SNR 0), in fp32 (contiguous) and
    bf16 (autocast, channels-last as the library runs it): one warm-up each, then ``repeats`` alternating timings.
    ``net`` is left contiguous."""
    from .precision import autocast

    z = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    logsnr = torch.zeros(shape[0], device=device)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}

    def run(name: str, timed: bool) -> None:
        dtype = torch.bfloat16 if name == "bf16" else None
        if dtype is None:
            net.to(memory_format=torch.contiguous_format)
        else:
            prepare_network(net, dtype)
        t0 = time.perf_counter()
        with autocast(device, dtype):
            net(z, logsnr)
        if timed:
            times[name].append(time.perf_counter() - t0)

    for name in ("fp32", "bf16"):
        run(name, timed=False)
    for _ in range(repeats):
        for name in ("fp32", "bf16"):
            run(name, timed=True)
    net.to(memory_format=torch.contiguous_format)
    return times


def resolve_auto(net: nn.Module, shape: tuple[int, ...], device, *,
                 measure: Callable[..., dict[str, list[float]]] | None = None, cache: Path | None = None,
                 log: Callable[[str], None] | None = None) -> torch.dtype | None:
    """The dtype ``auto`` means for ``net`` on inputs of ``shape`` (batch first) on ``device``: see the module
    docstring. ``measure(net, shape, device) -> {"fp32": [s, ...], "bf16": [s, ...]}`` (default
    :func:`measure_forward`); ``log(line)`` gets the one-line note (default: stderr)."""
    log = log or (lambda line: print(line, file=sys.stderr))
    device = torch.device(device)
    rule = resolve_precision("auto", device)
    if device.type != "cpu" or rule is None or os.environ.get("VIDEODIFF_PRECISION_PROBE", "1") == "0":
        return rule  # no native bf16 (emulated: far slower), a GPU, or the probe turned off: the hardware rule
    path = cache or cache_path()
    key = probe_key(net, shape)
    data = _read(path)
    entry = data.get(key)
    how = f"cached in {path}"
    if not (isinstance(entry, dict) and entry.get("choice") in ("fp32", "bf16")):
        times = (measure or measure_forward)(net, shape, device)
        entry = {"choice": choose_precision(times["fp32"], times["bf16"]),
                 "fp32_s": statistics.median(times["fp32"]), "bf16_s": statistics.median(times["bf16"]),
                 "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        data[key] = entry
        _write(path, data)
        how = f"measured now, saved in {path}"
    log(f"note: precision auto -> {entry['choice']} for input {'x'.join(map(str, shape))}: a forward pass takes "
        f"{entry['fp32_s']:.3g} s in fp32, {entry['bf16_s']:.3g} s in bf16 ({how})")
    return torch.bfloat16 if entry["choice"] == "bf16" else None


def resolve_for_network(name: str, net: nn.Module, shape: tuple[int, ...], device, **kwargs) -> torch.dtype | None:
    """:func:`videodiff.precision.resolve_precision`, with ``auto`` decided by :func:`resolve_auto` where the
    hardware has native bf16 on a CPU."""
    if name == "auto" and torch.device(device).type == "cpu" and has_native_bf16(device):
        return resolve_auto(net, shape, device, **kwargs)
    return resolve_precision(name, device)
