"""How much a frame-conditional model uses its given frames: per-frame error of ``x_hat`` with and without them.

For test videos of the SMMNIST protocol split, noised to one log-SNR ``lambda`` (the same noise for every model), the
mean squared error of ``x_hat`` per predicted frame, from the model alone (unconditional, ``c = 0`` context) and with
the first ``--given`` frames clean in its input (``method="context"``, videodiff/context.py), beside copying the
last given frame. At high noise (``lambda = -6``) the noisy frame carries almost nothing, so the gap between the two
columns is what the given frames tell the network.

    OMP_NUM_THREADS=1 python benchmarks/context_gain.py --model smmnist-64 runs/smmnist-64-ctx/checkpoints/step_001000

Prints a markdown table per model and, with ``--json``, writes the numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from videodiff import VideoPipeline
from videodiff.context import known_first
from videodiff.diffusion import q_sample
from videodiff.evaluation.protocols import get_protocol, load_split


def frame_errors(pipe: VideoPipeline, x: torch.Tensor, given: int, logsnr: float, seed: int = 0) -> dict:
    """``{"alone": [...], "context": [...], "copy_last": [...]}``: MSE per frame ``given..F-1`` at ``logsnr``."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x.shape, generator=gen)
    lam = torch.full((x.shape[0],), float(logsnr))
    z = q_sample(x, lam, eps)
    known = known_first(torch.full((x.shape[0],), given), x.shape[2])
    with torch.no_grad():
        alone = pipe.denoiser(z, lam)
        ctx = pipe.denoiser(z, lam, context=x, context_mask=known) if pipe.context_trained else None

    def per_frame(pred):
        return [round(float(v), 4) for v in (pred - x).pow(2).mean((0, 1, 3, 4))[given:]]

    out = {"alone": per_frame(alone), "copy_last": per_frame(x[:, :, given - 1 : given].expand_as(x))}
    if ctx is not None:
        out["context"] = per_frame(ctx)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="shipped model names or run directories / checkpoints")
    p.add_argument("--videos", type=int, default=16)
    p.add_argument("--given", type=int, default=5)
    p.add_argument("--logsnr", type=float, default=-6.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    protocol = get_protocol("smmnist-mcvd")
    results = {}
    for name in args.models:
        pipe = VideoPipeline.from_pretrained(name, precision="fp32")
        frames = pipe.config.data.num_frames
        x = load_split(protocol.split, args.videos)[:, :, :frames]
        res = frame_errors(pipe, x, args.given, args.logsnr)
        results[name] = {"step": pipe.model.step, **res}
        cols = [c for c in ("alone", "context", "copy_last") if c in res]
        print(f"\n{name} (step {pipe.model.step}), {args.videos} videos, lambda = {args.logsnr:g}, "
              f"{args.given} given frames")
        print("| frame | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
        for i in range(len(res["alone"])):
            print(f"| {args.given + i} | " + " | ".join(f"{res[c][i]:.4f}" for c in cols) + " |")
        print("| mean | " + " | ".join(f"{sum(res[c]) / len(res[c]):.4f}" for c in cols) + " |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"videos": args.videos, "given": args.given, "logsnr": args.logsnr,
                                         "models": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
