"""Where the time of one U-Net step goes: ``torch.profiler``'s operator table for a training or sampling step.

    python benchmarks/profile_step.py --model 16x32x32 --precision bf16 --phase train
    python benchmarks/profile_step.py --model 16x32x32 --precision bf16 --phase sample --rows 15
    python benchmarks/profile_step.py --model 16x32x32 --precision bf16 --by-shape --rows 40   # per input shape

The network runs as the library runs it (:func:`videodiff.precision.prepare_network`: channels-last for bf16 on the
CPU; bf16 autocast), with the fused AdamW kernel, after two untimed steps.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from videodiff.bench.options import MODELS
from videodiff.nn import UNet3D, UNetConfig
from videodiff.precision import PRECISIONS, autocast, prepare_network, resolve_precision


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="16x32x32", choices=list(MODELS))
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--phase", default="train", choices=["train", "sample"])
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--by-shape", action="store_true", help="one row per operator and input shape")
    a = p.parse_args()
    m = MODELS[a.model]
    dtype = resolve_precision(a.precision, "cpu")
    net = prepare_network(UNet3D(UNetConfig(image_size=m["size"], in_channels=m["channels"], dropout=0.0,
                                            **m["unet"])), dtype)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=True)
    x, lam = torch.randn(1, m["channels"], m["frames"], m["size"], m["size"]), torch.randn(1)

    def step() -> None:
        if a.phase == "sample":
            with torch.no_grad(), autocast("cpu", dtype):
                net(x, lam)
            return
        opt.zero_grad()
        with autocast("cpu", dtype):
            out = net(x, lam)
        (out.float() - x).pow(2).mean().backward()
        opt.step()

    step(), step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=a.by_shape) as prof:
        step()
    table = prof.key_averages(group_by_input_shape=a.by_shape)
    print(table.table(sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=40,
                      max_shapes_column_width=70))


if __name__ == "__main__":
    main()
