"""Does a text-conditioned Moving MNIST denoiser use the words of its caption? A forward-pass check, no sampling.

Held-out clips (the model's own data settings) are noised at a few log-SNRs with the same noise, and the denoiser's
x-hat error is measured under the clip's true caption, under the caption with the *opposite direction* ("moving
left" for "moving right") and under the caption with *another digit* (d+5 mod 10). A model that ignores a word
scores the same with it changed (a relative difference of 0.0%); the larger the increase, the more it relies on it.
Each row also gives the error under the null condition (c = 0).

``--prior N`` adds what the data allow at the lowest SNRs, where the best x-hat is the prior mean: the mean squared
error of N training clips around their overall mean, around the mean of the clips with their caption's direction
frame by frame (what a network that knows each frame's absolute index could predict) and around that direction's
mean over all frames (all that a network that only knows relative frame positions can predict from noise), for the
standard Moving MNIST settings and for ``directions=compass, start=behind``; and the fraction of frame-to-frame steps
of the digit's centre of mass that go the captioned (initial) direction.

``--pooled`` prints, per model, how far apart the attention-pooled conditioning vectors c of "digit 4 moving
<right|left|up|down>" are (Euclidean distance): a caption word the pooling maps close to another cannot steer the
U-Net apart.

    python benchmarks/caption_sensitivity.py moving-mnist runs/moving-mnist-pos [--clips 64] [--prior 3000] [--pooled]
"""

from __future__ import annotations

import argparse

import torch

from videodiff.data.captions import moving_mnist_caption
from videodiff.data.moving_mnist import DIRECTIONS
from videodiff.diffusion import q_sample
from videodiff.pipeline import load_model, text_condition
from videodiff.text import build_text_cache

from pretrained_tables import real_clips  # benchmarks/ is sys.path[0] when run as a script

OPPOSITE = {d: DIRECTIONS[(i + 4) % 8] for i, d in enumerate(DIRECTIONS)}  # "right" -> "left", ...
LOGSNRS = (-6.0, -3.0, 0.0, 3.0)


@torch.no_grad()
def sensitivity(model: str, clips: int, seed: int = 0) -> list[dict]:
    m = load_model(model, device="cpu", precision="fp32")
    cfg = m.config
    real = real_clips(cfg.data, clips, cfg.data.num_frames)
    x, labels, dirs = real["video"], real["labels"], real["directions"]
    captions = {
        "true": real["captions"],
        "opposite direction": [moving_mnist_caption(lab, [OPPOSITE[d] for d in ds]) for lab, ds in zip(labels, dirs)],
        "other digit": [moving_mnist_caption([(v + 5) % 10 for v in lab], ds) for lab, ds in zip(labels, dirs)],
    }
    cache = build_text_cache(cfg.text)
    conds = {k: text_condition(cfg, v, cache=cache) for k, v in captions.items()}
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for lam in LOGSNRS:
        logsnr = torch.full((len(x),), lam)
        z = q_sample(x, logsnr, torch.randn(x.shape, generator=gen))
        err = {k: float(((m.denoiser(z, logsnr, **c) - x) ** 2).mean()) for k, c in conds.items()}
        err["null"] = float(((m.denoiser(z, logsnr) - x) ** 2).mean())
        rows.append({"logsnr": lam, **err})
    return rows


def prior_gain(num: int, **options) -> dict:
    """MSE of ``num`` one-digit 16x32x32 training clips around their mean, their direction's frame-wise mean and
    their direction's time-averaged mean."""
    from videodiff.data.moving_mnist import MovingMNIST, centre_of_mass

    ds = MovingMNIST(image_size=32, num_digits=1, num_frames=16, num_clips=num, **options)
    items = [ds[i] for i in range(num)]
    x = torch.stack([it["video"][0] for it in items])  # (N, F, H, W)
    names = [it["directions"][0] for it in items]
    framewise = timeavg = 0.0
    for d in set(names):
        xd = x[[i for i, n in enumerate(names) if n == d]]
        mean = xd.mean(0, keepdim=True)
        framewise += float(((xd - mean) ** 2).sum())
        timeavg += float(((xd - mean.mean(1, keepdim=True)) ** 2).sum())
    # fraction of frame-to-frame steps of the digit's centre of mass that go the captioned (initial) direction
    centre = centre_of_mass(x[:, None])  # (N, F, 2)
    velocity = torch.stack([it["velocity"][0] for it in items])  # (N, 2)
    along = float(((centre.diff(dim=1) * velocity[:, None]).sum(-1) > 0).float().mean())
    return {"overall": float(((x - x.mean(0, keepdim=True)) ** 2).mean()), "direction, frame-wise": framewise / x.numel(),
            "direction, time-averaged": timeavg / x.numel(), "along": along}


POOLED = ("right", "left", "up", "down")


@torch.no_grad()
def pooled_distances(model: str) -> torch.Tensor:
    """``(4, 4)`` distances between the pooled c of "digit 4 moving <POOLED>" under ``model``'s pooling."""
    m = load_model(model, device="cpu", precision="fp32")
    tc = text_condition(m.config, [f"digit 4 moving {d}" for d in POOLED])
    c = m.denoiser.net.condition(tc["text_emb"], tc["text_mask"], None, m.config.data.num_frames)
    return torch.cdist(c, c)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="shipped model names or run directories / checkpoints")
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--prior", type=int, default=0, metavar="N", help="also the prior-mean table on N clips")
    p.add_argument("--pooled", action="store_true", help="only the distances between pooled direction captions")
    a = p.parse_args()
    if a.pooled:
        print("| model | right-left | up-down | right-up | right-down | left-up | left-down |")
        print("|---|---|---|---|---|---|---|")
        for model in a.models:
            d = pooled_distances(model)
            pairs = [(0, 1), (2, 3), (0, 2), (0, 3), (1, 2), (1, 3)]
            print(f"| {model} | " + " | ".join(f"{d[i, j]:.2f}" for i, j in pairs) + " |")
        return
    if a.prior:
        print("| data | steps along the caption | MSE around the overall mean | direction's frame-wise mean | "
              "direction's time-averaged mean |")
        print("|---|---|---|---|---|")
        for name, opts in (("standard", {}), ("compass, behind", {"directions": "compass", "start": "behind"})):
            g = prior_gain(a.prior, **opts)
            o = g["overall"]
            print(f"| {name} | {g['along']:.2f} | {o:.4f} | " + " | ".join(
                f"{g[k]:.4f} ({(g[k] / o - 1) * 100:+.1f}%)" for k in ("direction, frame-wise", "direction, time-averaged"))
                + " |", flush=True)
        print()
    if not a.models and not a.prior:
        p.error("name at least one model, or --prior N")
    if a.models:
        print("| model | log-SNR | x̂ MSE, true caption | opposite direction | other digit | null c |")
        print("|---|---|---|---|---|---|")
    for model in a.models:
        for r in sensitivity(model, a.clips):
            t = r["true"]
            rel = {k: f"{r[k]:.4f} ({(r[k] / t - 1) * 100:+.1f}%)" for k in ("opposite direction", "other digit", "null")}
            print(f"| {model} | {r['logsnr']:+g} | {t:.4f} | {rel['opposite direction']} | {rel['other digit']} | "
                  f"{rel['null']} |", flush=True)


if __name__ == "__main__":
    main()
