"""Time of one AdamW step over the paper-shaped U-Net's 73M parameters: the for-loop, foreach and fused kernels.

    python benchmarks/optimizer_step.py [--model 16x32x32] [--steps 5]

The training loop uses ``fused=True`` (one pass over each tensor); this prints the median step time of each
implementation after one warm-up step, on the same gradients, in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from videodiff.bench.options import MODELS
from videodiff.nn import UNet3D, UNetConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="16x32x32", choices=list(MODELS))
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args()
    m = MODELS[a.model]
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(image_size=m["size"], in_channels=m["channels"], dropout=0.0, **m["unet"]))
    grads = [torch.randn_like(q) * 1e-3 for q in net.parameters()]
    print(f"{sum(q.numel() for q in net.parameters()) / 1e6:.1f}M parameters, {torch.get_num_threads()} threads")
    for name, kw in (("for-loop", dict(foreach=False)), ("foreach", dict(foreach=True)), ("fused", dict(fused=True))):
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4, **kw)
        times = []
        for i in range(a.steps + 1):
            for q, g in zip(net.parameters(), grads):
                q.grad = g.clone()
            t = time.perf_counter()
            opt.step()
            times.append(time.perf_counter() - t)
        print(f"{name:9s} {1e3 * statistics.median(times[1:]):7.1f} ms per step (median of {a.steps})")


if __name__ == "__main__":
    main()
