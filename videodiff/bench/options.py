"""The benchmark's model shapes and command-line options (no torch import: ``videodiff --help`` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..precision import PRECISIONS

__all__ = ["MODELS", "DEFAULT_MODELS", "add_arguments"]

_PAPER = dict(base_channels=64, channel_mults=(1, 2, 4, 8), num_res_blocks=2, head_dim=64)
_PORT = dict(dim=64, dim_mults=(1, 2, 4, 8))
MODELS = {
    # The paper's 16x64x64 setting (Sec. 4): 4 levels, multipliers (1, 2, 4, 8), attention at 32, 16 and 8.
    "16x64x64": dict(frames=16, size=64, channels=3, unet=dict(_PAPER, attn_resolutions=(32, 16, 8)), port=_PORT),
    # The same network (same parameters, attention at the same levels) on 32x32 frames, as the port runs it.
    "16x32x32": dict(frames=16, size=32, channels=3, unet=dict(_PAPER, attn_resolutions=(16, 8, 4)), port=_PORT),
    # The paper shape with the port's depth budget: one residual block per level on the way down (two up, as our
    # U-Net adds one per concatenation skip) and attention at 16 and 8 (the port: linear attention everywhere,
    # softmax only in the middle). Same width, levels and multipliers as the port.
    "16x64x64-lean": dict(frames=16, size=64, channels=3, unet=dict(_PAPER, num_res_blocks=1,
                                                                    attn_resolutions=(16, 8)), port=_PORT),
    # A smaller 3-level 16x32x32 model (the previous benchmark's "16x32x32").
    "16x32x32-3level": dict(frames=16, size=32, channels=1, unet=dict(
        base_channels=64, channel_mults=(1, 2, 4), num_res_blocks=2, attn_resolutions=(16, 8), head_dim=64)),
    # The `make demo` model (configs/moving_mnist_tiny.yaml), and the same with attention also at 16x16.
    "demo-8x32x32": dict(frames=8, size=32, channels=1, batch=8, unet=dict(
        base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1, attn_resolutions=(8,), head_dim=16)),
    "demo-attn16": dict(frames=8, size=32, channels=1, batch=8, unet=dict(
        base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1, attn_resolutions=(16, 8), head_dim=16)),
    # For tests: seconds on one core.
    "tiny": dict(frames=4, size=16, channels=1, unet=dict(
        base_channels=8, channel_mults=(1, 2), num_res_blocks=1, attn_resolutions=(8,), head_dim=8),
        port=dict(dim=8, dim_mults=(1, 2))),
}


DEFAULT_MODELS = ["16x64x64", "16x32x32"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS),
                   help=f"model shapes (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--batch", type=int, default=None, help="videos per step (default: the model's, 1 for 16xNxN)")
    p.add_argument("--repeats", type=int, default=2, help="timed steps per measurement (the median is reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (at least 1 is always run)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch threads in each measurement (default: torch's)")
    p.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["auto"], metavar="P",
                   help="one row set per precision: auto (bf16 where the device has native bf16), fp32, bf16 "
                        "(default: auto); bf16 rows are measured against the bf16 matmul peak")
    p.add_argument("--amp", choices=["none", "bf16"], default=None, help=argparse.SUPPRESS)  # old name of --precision
    p.add_argument("--compile", action="store_true",
                   help="also measure every implementation under torch.compile (compile time reported separately)")
    p.add_argument("--channels-last", action="store_true",
                   help="force our U-Net into channels-last (default: the library's choice per precision)")
    p.add_argument("--compare-port", action="store_true",
                   help="also measure video-diffusion-pytorch's Unet3D at the matched configuration (skipped if not installed)")
    p.add_argument("--checkpointing", action="store_true",
                   help="also measure our training step with gradient checkpointing per block (memory and time)")
    p.add_argument("--levers", action="store_true",
                   help="also measure our U-Net with the memory format flipped (channels-last vs contiguous)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat the whole set of rows this many times, interleaved; the median row is reported")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write all results here")


