"""Training step cost of candidate 16x64x64 networks, per video, in fp32 and bf16: how configs/smmnist_64.yaml was
sized (issue 27). One forward + backward + AdamW step of a random batch, median of the steps after a warm-up.

    OMP_NUM_THREADS=1 python benchmarks/step_cost.py [--batch 4] [--nets D,A,C] [--precisions fp32,bf16]

Measured alone on one thread of an AMD EPYC Zen 4 (avx512_bf16, no AMX), 2026-12-06, batch 4:
    D (base 16, mults 1,2,4,8; the shipped smmnist-64)   3.13M params  fp32 0.90 s/video  bf16 0.50 s/video
    C (base 32, mults 1,1,2,2,4)                          3.50M         fp32 1.78           bf16 0.67
    A (base 32, mults 1,2,2,4)                            3.67M         fp32 2.48           bf16 1.03
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from videodiff.nn import UNet3D, UNetConfig

NETS = {
    "D": dict(base_channels=16, channel_mults=(1, 2, 4, 8), num_res_blocks=1, attn_resolutions=(8, 16), head_dim=32),
    "C": dict(base_channels=32, channel_mults=(1, 1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(8, 16),
              head_dim=32),
    "A": dict(base_channels=32, channel_mults=(1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(8, 16), head_dim=32),
}


def step_cost(unet: dict, batch: int, precision: str, steps: int = 3, frames: int = 16, size: int = 64) -> float:
    """Median seconds per training step of ``unet`` on a ``(batch, 1, frames, size, size)`` batch."""
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(in_channels=1, image_size=size, dropout=0.0, **unet))
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    x, logsnr = torch.randn(batch, 1, frames, size, size), torch.randn(batch)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            out = net(x, logsnr)
        (out.float() - x).square().mean().backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--nets", default="D,C,A")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    print(f"{torch.get_num_threads()} threads, batch {a.batch}")
    for name in a.nets.split(","):
        params = sum(q.numel() for q in UNet3D(UNetConfig(in_channels=1, image_size=64, **NETS[name])).parameters())
        for prec in a.precisions.split(","):
            t = step_cost(NETS[name], a.batch, prec, a.steps)
            print(f"{name} {params / 1e6:.2f}M params {prec}: {t:.2f} s/step, {t / a.batch:.3f} s/video", flush=True)


if __name__ == "__main__":
    main()
