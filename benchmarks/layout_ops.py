"""The three CPU fast paths of videodiff/nn against the plain PyTorch ops they replace, forward + backward, one run.

    python benchmarks/layout_ops.py [--threads 2] [--json benchmarks/results/layout_ops_cpu.json]

Rows (bf16 unless named; shapes of the 16-frame U-Nets of ``videodiff bench``, frames folded into the batch):

* ``conv``: oneDNN ``F.conv2d`` (channels-last, as :func:`videodiff.precision.prepare_network` runs bf16) against
  :class:`videodiff.nn.blocks.Conv2d`'s im2col matmul, at 4x4 (where the library takes it) and 8x8 (where not).
* ``group_norm``: the native kernel on a channels-last tensor against the same tensor in NCHW plus the two layout
  copies (:class:`videodiff.nn.blocks.GroupNorm`).
* ``attention``: ``scaled_dot_product_attention`` (its fused CPU kernel; with a bias, whichever backend PyTorch
  picks) against :func:`videodiff.nn.attention.attend`'s written-out softmax attention.

Each time is the best of ``--repeats`` after one warm-up, in milliseconds; ``speedup`` is plain / fast path.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
import torch.nn.functional as F

from videodiff.nn.attention import attend
from videodiff.nn.blocks import _MatmulConv

from conv_layout import bench  # benchmarks/conv_layout.py: best time of ``repeats`` calls after one warm-up

BF16, CL = torch.bfloat16, torch.channels_last


def best_ms(fn, repeats: int) -> float:
    return bench(fn, repeats) * 1e3


def fwd_bwd(f, inputs, grad):
    def run():
        torch.autograd.grad(f(*inputs), inputs, grad)
    return run


def conv_rows(repeats: int) -> list[dict]:
    rows = []
    for n, cin, cout, hw, k in [(16, 512, 512, 4, 3), (16, 1024, 512, 4, 3), (128, 512, 512, 4, 3),
                                (16, 512, 1536, 4, 1), (16, 256, 256, 8, 3), (128, 256, 256, 8, 3)]:
        x = torch.randn(n, cin, hw, hw, dtype=BF16).contiguous(memory_format=CL).requires_grad_()
        w = (torch.randn(cout, cin, k, k, dtype=BF16) * 0.02).contiguous(memory_format=CL).requires_grad_()
        b = torch.zeros(cout, dtype=BF16, requires_grad=True)
        grad = torch.randn(n, cout, hw, hw, dtype=BF16).contiguous(memory_format=CL)
        plain = best_ms(fwd_bwd(lambda x, w, b: F.conv2d(x, w, b, padding=k // 2), (x, w, b), grad), repeats)
        fast = best_ms(fwd_bwd(_MatmulConv.apply, (x, w, b), grad), repeats)
        rows.append(dict(op="conv", shape=[n, cin, hw, hw], out=cout, kernel=k, plain_ms=plain, fast_ms=fast))
    return rows


def group_norm_rows(repeats: int) -> list[dict]:
    rows = []
    for shape in [(16, 64, 32, 32), (16, 128, 16, 16), (16, 192, 32, 32), (16, 256, 8, 8), (128, 64, 32, 32)]:
        x = torch.randn(*shape, dtype=BF16).contiguous(memory_format=CL).requires_grad_()
        w, b = torch.ones(shape[1], requires_grad=True), torch.zeros(shape[1], requires_grad=True)
        grad = torch.randn(*shape, dtype=BF16).contiguous(memory_format=CL)
        plain = best_ms(fwd_bwd(lambda x, w, b: F.group_norm(x, 32, w, b), (x, w, b), grad), repeats)
        fast = best_ms(fwd_bwd(lambda x, w, b: F.group_norm(x.contiguous(), 32, w, b).contiguous(memory_format=CL),
                               (x, w, b), grad), repeats)
        rows.append(dict(op="group_norm", shape=list(shape), plain_ms=plain, fast_ms=fast))
    return rows


def attention_rows(repeats: int) -> list[dict]:
    rows = []
    for shape, bias, dtype in [((16, 2, 256, 64), False, BF16), ((16, 4, 64, 64), False, BF16),
                               ((16, 8, 16, 64), False, BF16), ((256, 2, 16, 64), True, BF16),
                               ((256, 2, 16, 64), True, torch.float32)]:
        q, k, v = (torch.randn(*shape, dtype=dtype, requires_grad=True) for _ in range(3))
        inputs = (q, k, v)
        if bias:
            inputs += (torch.randn(*shape[:-1], shape[-2], dtype=dtype, requires_grad=True),)
        grad = torch.randn(*shape, dtype=dtype)
        sdpa = lambda q, k, v, m=None: F.scaled_dot_product_attention(q, k, v, attn_mask=m)  # noqa: E731
        plain = best_ms(fwd_bwd(sdpa, inputs, grad), repeats)
        fast = best_ms(fwd_bwd(attend, inputs, grad), repeats)
        rows.append(dict(op="attention" + (" + bias" if bias else ""), shape=list(shape),
                         dtype=str(dtype).removeprefix("torch."), plain_ms=plain, fast_ms=fast))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the rows here")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = conv_rows(a.repeats) + group_norm_rows(a.repeats) + attention_rows(a.repeats)
    print("| op | shape | plain fwd+bwd (ms) | fast path fwd+bwd (ms) | speedup |\n|---|---|---|---|---|")
    for r in rows:
        r["speedup"] = r["plain_ms"] / r["fast_ms"]
        extra = f" -> {r['out']}, {r['kernel']}x{r['kernel']}" if "out" in r else f" {r.get('dtype', 'bfloat16')}"
        print(f"| {r['op']} | {tuple(r['shape'])}{extra} | {r['plain_ms']:.2f} | {r['fast_ms']:.2f} | "
              f"{r['speedup']:.2f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=platform.processor(),
                           rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
