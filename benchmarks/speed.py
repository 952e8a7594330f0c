"""Speed of the factorized 3D U-Net on this machine, beside the machine's own fp32 matmul FLOP/s, in one run.

For each model shape: parameters, FLOPs of one training step (forward + backward, PyTorch's FLOP counter, which
counts convolutions, matmuls and attention), training step time (forward + backward + AdamW), sampling step time
(one denoiser call under no_grad), achieved FLOP/s, the fraction of the measured matmul FLOP/s, and peak RSS.
Each model is measured in a fresh subprocess so peak memory is its own.

    python benchmarks/speed.py                      # paper-shaped 16x64x64 and a 16x32x32 model, batch 1
    python benchmarks/speed.py --json out.json --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch

SHAPES = {
    # The paper's 16x64x64 setting (Sec. 4) with a 4-level U-Net, channel multipliers (1, 2, 4, 8).
    "16x64x64": dict(frames=16, size=64, base_channels=64, channel_mults=(1, 2, 4, 8), num_res_blocks=2,
                     attn_resolutions=(8, 16, 32)),
    "16x32x32": dict(frames=16, size=32, base_channels=64, channel_mults=(1, 2, 4), num_res_blocks=2,
                     attn_resolutions=(8, 16)),
    # The `make demo` model (configs/moving_mnist_tiny.yaml).
    "demo-8x32x32": dict(frames=8, size=32, base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1,
                         attn_resolutions=(8,), head_dim=16, batch=8),
    # The same with spatial + temporal attention also at 16x16 (256 tokens, 16-channel heads).
    "demo-attn16": dict(frames=8, size=32, base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1,
                        attn_resolutions=(16, 8), head_dim=16, batch=8),
}


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def _timeit(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(name: str, batch: int, repeats: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from videodiff.losses import diffusion_loss
    from videodiff.nn import UNet3D, UNetConfig

    spec = dict(SHAPES[name])
    frames, size = spec.pop("frames"), spec.pop("size")
    batch = spec.pop("batch", batch)
    torch.manual_seed(0)
    net = UNet3D(UNetConfig(image_size=size, in_channels=1, dropout=0.0, **spec))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, frames, size, size)
    lam, eps = torch.randn(batch), torch.randn_like(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        diffusion_loss(net, x, lam, eps).mean().backward()
        opt.step()

    def sample_step():
        with torch.no_grad():
            net(x, lam)

    with FlopCounterMode(display=False) as fc:
        diffusion_loss(net, x, lam, eps).mean().backward()
    train_flops = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x, lam)
    sample_flops = fc.get_total_flops()
    t_train = _timeit(train_step, repeats)
    t_sample = _timeit(sample_step, repeats)
    return dict(model=name, batch=batch, frames=frames, size=size,
                params_M=sum(p.numel() for p in net.parameters()) / 1e6,
                train_gflop=train_flops / 1e9, sample_gflop=sample_flops / 1e9,
                train_s=t_train, sample_s=t_sample,
                train_gflops=train_flops / t_train / 1e9, sample_gflops=sample_flops / t_sample / 1e9,
                videos_per_s_train=batch / t_train,
                peak_rss_GB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["16x64x64", "16x32x32", "demo-8x32x32"], choices=list(SHAPES))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a._child:
        print(json.dumps(measure(a._child, a.batch, a.repeats)))
        return
    peak_before = matmul_flops()
    rows = []
    for name in a.models:
        out = subprocess.run([sys.executable, __file__, "--_child", name, "--batch", str(a.batch),
                              "--repeats", str(a.repeats)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    peak = max(peak_before, matmul_flops())  # measured before and after, in the same run
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; fp32 matmul 2048^3: {peak / 1e9:.0f} GFLOP/s\n")
    print("| model | batch | params | GFLOP/train step | train step (s) | train GFLOP/s | % of matmul | "
          "GFLOP/sample step | sample step (s) | sample GFLOP/s | % of matmul | peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        r["train_frac_of_matmul"] = r["train_gflops"] * 1e9 / peak
        r["sample_frac_of_matmul"] = r["sample_gflops"] * 1e9 / peak
        print(f"| {r['model']} | {r['batch']} | {r['params_M']:.1f}M | {r['train_gflop']:.0f} | {r['train_s']:.2f} | "
              f"{r['train_gflops']:.0f} | {100 * r['train_frac_of_matmul']:.0f}% | {r['sample_gflop']:.0f} | "
              f"{r['sample_s']:.2f} | {r['sample_gflops']:.0f} | {100 * r['sample_frac_of_matmul']:.0f}% | "
              f"{r['peak_rss_GB']:.1f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"matmul_gflops": peak / 1e9, "torch": torch.__version__, "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
