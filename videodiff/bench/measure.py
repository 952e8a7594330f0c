"""One measurement, run in its own process so that its peak memory is its own.

``python -m videodiff.bench.measure '<json spec>'`` prints one JSON line. A spec names the implementation (``ours``
or ``port``), a model shape from :data:`MODELS`, the device, the ``precision`` (``auto | fp32 | bf16``, as
:mod:`videodiff.precision` resolves it) and the levers (``compile``, ``channels_last``, ``checkpointing``). Both
implementations are driven by the same code: the same random video, the same eq. (2) loss (squared error of the
predicted noise, reduced in fp32), the fused AdamW kernel, bf16 autocast when the precision is bf16, and the same
timing loop. ``channels_last`` None (default) puts our U-Net in the memory format the library uses for that
precision (:func:`videodiff.precision.prepare_network`); True / False force it.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time

import torch

from ..precision import autocast as autocast_ctx, precision_name, prepare_network, resolve_precision
from .flops import count_flops, has_fast_bf16, matmul_flops_per_s, sync
from .options import MODELS

__all__ = ["MODELS", "measure"]

def _peak_mem_bytes(device: torch.device) -> int:
    """CUDA: peak allocated since the last reset. CPU: the process's peak RSS (VmHWM) since the last reset."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB; never reset


def _reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window (CPU: writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _times(fn, warmup: int, repeats: int, device: torch.device) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def _build(spec: dict, model: dict) -> torch.nn.Module:
    if spec["impl"] == "port":
        from .port import build_port_unet

        return build_port_unet(model["channels"], **model["port"])
    from ..nn import UNet3D, UNetConfig

    cfg = UNetConfig(image_size=model["size"], in_channels=model["channels"], dropout=0.0, **model["unet"])
    return UNet3D(cfg)


def _set_checkpointing(net: torch.nn.Module, on: bool) -> None:
    from ..nn import set_activation_checkpointing

    set_activation_checkpointing(net, on)


def spec_precision(spec: dict) -> str:
    """The spec's precision name; the older ``amp`` key (``none`` / ``bf16``) still reads."""
    if "precision" in spec:
        return spec["precision"]
    return "bf16" if spec.get("amp") == "bf16" else "fp32"


def measure(spec: dict) -> dict:
    """Measure one (implementation, model, levers) combination; see the module docstring for ``spec``."""
    from ..losses import diffusion_loss

    model = MODELS[spec["model"]]
    device = torch.device(spec.get("device", "cpu"))
    batch = spec.get("batch") or model.get("batch", 1)
    warmup, repeats = spec.get("warmup", 1), spec.get("repeats", 2)
    dtype = resolve_precision(spec_precision(spec), device)
    torch.manual_seed(0)
    n = spec.get("matmul_n", 2048)
    peak_fp32 = matmul_flops_per_s(device, n=n)  # this process, just before its own timings
    peak_bf16 = matmul_flops_per_s(device, torch.bfloat16, n=n) if has_fast_bf16(device) else None
    net = _build(spec, model).to(device)
    if spec["impl"] == "port" and (spec.get("checkpointing") or spec.get("channels_last")):
        raise ValueError("the port has no gradient checkpointing; channels-last is measured for ours only")
    cl = spec.get("channels_last")
    if cl == "flip":  # the opposite of the library's choice for this precision and device
        cl = not (dtype is not None and device.type == "cpu")
    if cl is None and spec["impl"] == "ours":
        prepare_network(net, dtype)  # what the library does: channels-last for bf16 on the CPU
    elif cl:
        net = net.to(memory_format=torch.channels_last)
    channels_last = any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last)
                        and not p.is_contiguous() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=device.type in ("cpu", "cuda"))
    c, f, s = model["channels"], model["frames"], model["size"]
    x = torch.randn(batch, c, f, s, s, device=device)
    logsnr, eps = torch.randn(batch, device=device), torch.randn_like(x)
    if spec["impl"] == "port":
        t_port = torch.randint(0, 1000, (batch,), device=device).float()  # its U-Net takes the step index
        raw = lambda z, lam: net(z, t_port)  # noqa: E731
    else:
        raw = net
    fwd = torch.compile(raw) if spec.get("compile") else raw

    def autocast():
        return autocast_ctx(device, dtype)  # a fresh context each time (bf16, or a no-op for fp32)

    def loss(f_net) -> torch.Tensor:
        with autocast():
            return diffusion_loss(f_net, x, logsnr, eps).mean()  # eq. (2), the same for both implementations

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss(fwd).backward()
        opt.step()

    def sample_step() -> None:
        with torch.no_grad(), autocast():
            fwd(torch.randn_like(x), logsnr)

    out = dict(impl=spec["impl"], model=spec["model"], batch=batch, frames=f, size=s, channels=c,
               device=str(device), precision=precision_name(dtype), compile=bool(spec.get("compile")),
               channels_last=channels_last, checkpointing=bool(spec.get("checkpointing")),
               params_M=sum(p.numel() for p in net.parameters()) / 1e6, torch=torch.__version__,
               threads=torch.get_num_threads(), matmul_fp32_gflops=peak_fp32 / 1e9,
               matmul_bf16_gflops=peak_bf16 / 1e9 if peak_bf16 else None, warmup=warmup, repeats=repeats)
    out["rss_after_build_GB"] = _peak_mem_bytes(device) / 1e9 if device.type == "cpu" else None
    # Model FLOPs, counted on the eager network without recomputation (checkpointing would add a forward).
    with torch.no_grad(), autocast():
        sample_flops = count_flops(lambda: raw(torch.randn_like(x), logsnr))
    train_flops = count_flops(lambda: loss(raw).backward())
    opt.zero_grad(set_to_none=True)
    out.update(sample_gflop=sample_flops / 1e9, train_gflop=train_flops / 1e9)
    _set_checkpointing(net, bool(spec.get("checkpointing")))
    if spec.get("sample", True):
        _reset_peak(device)
        t = time.perf_counter()
        sample_step()  # with compile: the compilation
        out["sample_first_call_s"] = time.perf_counter() - t
        times = _times(sample_step, max(warmup - 1, 0), repeats, device)
        out.update(sample_times_s=times, sample_s=statistics.median(times), sample_mem_GB=_peak_mem_bytes(device) / 1e9)
    if spec.get("train", True):
        _reset_peak(device)
        t = time.perf_counter()
        train_step()
        out["train_first_call_s"] = time.perf_counter() - t
        times = _times(train_step, max(warmup - 1, 0), repeats, device)
        out.update(train_times_s=times, train_s=statistics.median(times), train_mem_GB=_peak_mem_bytes(device) / 1e9)
    peak = peak_bf16 if (dtype is not None and peak_bf16) else peak_fp32
    for phase in ("train", "sample"):
        if f"{phase}_s" in out:
            rate = out[f"{phase}_gflop"] * 1e9 / out[f"{phase}_s"]
            out[f"{phase}_gflops"] = rate / 1e9
            out[f"{phase}_videos_per_s"] = batch / out[f"{phase}_s"]
            out[f"{phase}_frac_of_own_matmul"] = rate / peak
    return out


if __name__ == "__main__":
    torch.set_num_threads(int(json.loads(sys.argv[1]).get("threads") or torch.get_num_threads()))
    print(json.dumps(measure(json.loads(sys.argv[1]))))
