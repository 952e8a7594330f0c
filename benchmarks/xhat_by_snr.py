"""How well a trained model denoises held-out clips at each noise level: the MSE of x_hat, and how far the mean
brightness of x_hat's frames strays (the symptom that made the shipped model switch from eps- to v-prediction).

For each log-SNR lambda, held-out test clips x are noised as z = alpha x + sigma eps (eq. 1) with one lambda for the
whole batch, and denoised once. Reported: MSE(x_hat, x); the range of x_hat's per-frame means over all frames (the
truth is about -0.95: black background, one digit); their standard deviation within a video, averaged over videos.

    python benchmarks/xhat_by_snr.py runs/moving-mnist/checkpoints/step_002250 runs/moving-mnist-v
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from videodiff.data import build_dataset
from videodiff.diffusion import q_sample
from videodiff.pipeline import load_model

LOGSNRS = (-10.0, -5.0, -2.0, 0.0, 2.0, 5.0)


@torch.no_grad()
def xhat_table(model: str, num: int = 8, seed: int = 0) -> list[dict]:
    m = load_model(model, device="cpu", precision="fp32")
    data = dataclasses.replace(m.config.data, captions=False, image_frames=0)
    ds = build_dataset(data, "test")
    x = torch.stack([ds[i]["video"] for i in range(num)])
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for lam in LOGSNRS:
        logsnr = torch.full((num,), lam)
        z = q_sample(x, logsnr, torch.randn(x.shape, generator=gen))
        x_hat = m.denoiser(z, logsnr)  # null condition for a text model
        means = x_hat.mean(dim=(1, 3, 4))  # (num, F)
        rows.append({"logsnr": lam, "mse": float((x_hat - x).square().mean()), "frame_mean_min": float(means.min()),
                     "frame_mean_max": float(means.max()), "frame_mean_std": float(means.std(1).mean())})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="run directories, checkpoints or shipped model names")
    p.add_argument("--num", type=int, default=8)
    a = p.parse_args()
    print("| model | log-SNR | MSE of x_hat | per-frame mean of x_hat: min .. max | std within a video |")
    print("|---|---|---|---|---|")
    for model in a.models:
        for r in xhat_table(model, a.num):
            print(f"| {model} | {r['logsnr']:+.0f} | {r['mse']:.4f} | {r['frame_mean_min']:.2f} .. "
                  f"{r['frame_mean_max']:.2f} | {r['frame_mean_std']:.3f} |")


if __name__ == "__main__":
    main()
