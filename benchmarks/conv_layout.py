"""Is folding frames into the batch for 2D convolutions faster than a 1x3x3 Conv3d? Measured side by side.

The paper's space-only 1x3x3 convolution (Sec. 3) can run as ``Conv3d(kernel=(1, 3, 3))`` on ``(B, C, F, H, W)`` or
as ``Conv2d(3x3)`` on ``(B*F, C, H, W)``; both compute the same function. This times forward+backward of each
(and channels-last 2D) at U-Net-like shapes, in one run, and checks the outputs agree.

    python benchmarks/conv_layout.py
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F


def bench(fn, repeats=5):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    torch.manual_seed(0)
    print("| shape (B, C, F, H, W) | Conv3d 1x3x3 (ms) | folded Conv2d (ms) | folded Conv2d channels-last (ms) | max diff |")
    print("|---|---|---|---|---|")
    for b, c, f, s in [(2, 64, 16, 64), (2, 128, 16, 32), (2, 256, 16, 16), (8, 32, 8, 32)]:
        x = torch.randn(b, c, f, s, s, requires_grad=True)
        w = torch.randn(c, c, 3, 3, requires_grad=True) * 0.05
        w = w.detach().requires_grad_()

        def conv3d():
            y = F.conv3d(x, w[:, :, None], padding=(0, 1, 1))
            y.sum().backward()
            return y

        def conv2d(memory_format=torch.contiguous_format):
            xf = x.transpose(1, 2).reshape(b * f, c, s, s).contiguous(memory_format=memory_format)
            y = F.conv2d(xf, w, padding=1)
            y.sum().backward()
            return y

        diff = (conv3d().detach() - conv2d().detach().reshape(b, f, c, s, s).transpose(1, 2)).abs().max().item()
        t3 = bench(conv3d)
        t2 = bench(conv2d)
        t2cl = bench(lambda: conv2d(torch.channels_last))
        print(f"| ({b}, {c}, {f}, {s}, {s}) | {1e3 * t3:.1f} | {1e3 * t2:.1f} | {1e3 * t2cl:.1f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
