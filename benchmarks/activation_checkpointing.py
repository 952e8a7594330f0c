"""Peak memory and time of one training step with and without ``train.activation_checkpointing`` (per U-Net block).

    OMP_NUM_THREADS=1 python benchmarks/activation_checkpointing.py [--base 32] [--batch 8] [--frames 16] [--size 64]

Each setting runs in its own process (so that its peak is its own): the paper's U-Net layout (multipliers
(1, 2, 4, 8), 2 residual blocks, attention at 32/16/8) at width ``--base``, a batch of ``--batch`` videos of
``--frames x --size x --size`` (3 channels), fp32, one warm-up step then ``--steps`` timed steps (eq. 2 loss, backward).
Peak memory: the process's peak resident set (VmHWM) on the CPU, reset after building the model, minus the resident
set before the first step; ``torch.cuda.max_memory_allocated`` on a GPU. Results go to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _one(a) -> dict:
    import torch

    from videodiff.bench.flops import count_flops
    from videodiff.nn import UNet3D, UNetConfig, set_activation_checkpointing

    device = torch.device(a.device)
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(in_channels=3, image_size=a.size, base_channels=a.base, channel_mults=(1, 2, 4, 8),
                            num_res_blocks=2, attn_resolutions=(32, 16, 8), head_dim=min(64, a.base),
                            dropout=0.1)).to(device).train()
    set_activation_checkpointing(net, a.ckpt)
    z = torch.randn(a.batch, 3, a.frames, a.size, a.size, device=device)
    logsnr = torch.linspace(-5, 5, a.batch, device=device)

    def step():
        net.zero_grad(set_to_none=True)
        net(z, logsnr).square().mean().backward()

    flops = count_flops(step)  # with checkpointing this includes the recomputed forward
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
        base = _rss("VmRSS")
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else _rss("VmHWM")
    return {"activation_checkpointing": a.ckpt, "step_s": statistics.median(times), "times_s": times,
            "peak_minus_start_GB": (peak - base) / 1e9, "peak_GB": peak / 1e9, "tflop_per_step": flops / 1e12,
            "params_M": sum(p.numel() for p in net.parameters()) / 1e6, "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--ckpt", action="store_true", help=argparse.SUPPRESS)  # one setting, in this process
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(_one(a)))
        return
    rows = []
    for ckpt in (False, True):
        args = [sys.executable, __file__, "--child", "--base", str(a.base), "--batch", str(a.batch), "--frames",
                str(a.frames), "--size", str(a.size), "--steps", str(a.steps), "--device", a.device]
        out = subprocess.run(args + (["--ckpt"] if ckpt else []), capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"checkpointing {'on ' if ckpt else 'off'}: {r['step_s']:.1f} s/step, peak +{r['peak_minus_start_GB']:.2f} GB "
              f"(process peak {r['peak_GB']:.2f} GB), {r['tflop_per_step']:.2f} TFLOP/step, {r['params_M']:.1f}M "
              f"params, {r['threads']} threads", flush=True)
    off, on = rows
    print(f"checkpointing: memory {on['peak_minus_start_GB'] / off['peak_minus_start_GB'] - 1:+.0%}, "
          f"time {on['step_s'] / off['step_s'] - 1:+.0%}")
    if a.json:
        setting = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}
        a.json.write_text(json.dumps({"setting": setting, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
