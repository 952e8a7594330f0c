"""Which way do a text-to-video Moving MNIST model's digits move? Velocity of the centre of mass per prompted direction.

For each prompted direction (right, up, left, down) and digits 1, 4, 7, ``N`` videos are sampled (DPM-Solver++(2M),
20 steps, guidance ``W``, seed 0); the digit's centre of mass (pixels above -0.4) gives a velocity from frame 0 to
frame 3 (before most bounces), in pixels per frame with y pointing down. A model that follows the prompt has a mean
velocity along the prompt (right: vx > 0, up: vy < 0); a model that learned only the axis of motion has a near-zero
perpendicular component but a mean along the axis near zero (both senses equally often). Also prints the
classifier's direction and digit accuracy of the same videos.

``--xhat`` measures the same thing without sampling, where a direction has to be decided: at log-SNR -8 the best
x-hat is nearly the prior mean E[x | caption] (exactly so as log-SNR -> -inf), whose centre of mass (weights x-hat
minus its frame minimum) should travel the prompted way from frame 0 to frame 15. The model's x-hat (mean over 8
noise draws, the 12 prompts, no guidance) is printed next to the same quantity of the data's own mean clip per
direction (2000 training clips of the model's data settings): the target an optimal denoiser reaches.

``--diagonals`` prompts the four diagonal directions (up-right, up-left, down-left, down-right) instead; the
last column, the mean absolute angle between the velocity and the prompted direction, is the stricter check there.

    python benchmarks/motion_axes.py MODEL [W] [N]
    python benchmarks/motion_axes.py moving-mnist 2 4
    python benchmarks/motion_axes.py --diagonals moving-mnist 2 4
    python benchmarks/motion_axes.py --xhat MODEL [MODEL ...]
"""

from __future__ import annotations

import sys
import time

import torch

from videodiff.data import build_dataset
from videodiff.data.moving_mnist import centre_of_mass, direction_vector
from videodiff.metrics.classifier import digit_accuracy, direction_accuracy, load_classifier
from videodiff.pipeline import load_model, sample_from_prompts, text_condition
from videodiff.runtime import tune_malloc
from videodiff.text import build_text_cache

DIRECTIONS = ("right", "up", "left", "down")
DIAGONALS = ("up-right", "up-left", "down-left", "down-right")
DIGITS = (1, 4, 7)
XHAT_LOGSNR = (-8.0, -5.0)


def travel(mean_video: torch.Tensor) -> torch.Tensor:
    """Centre of mass of frame 15 minus frame 0, ``(C, F, H, W)`` -> ``(2,)`` (x, y; px), weighting each pixel by
    its value minus its frame's minimum (a prior mean is a faint blur, not a digit on black)."""
    v = mean_video[:1]
    centre = centre_of_mass((v - v.amin((-1, -2), keepdim=True) - 1)[None])[0]  # weights: value - frame minimum
    return centre[-1] - centre[0]


def data_travel(cfg, clips: int) -> dict[str, torch.Tensor]:
    """The data's answer: ``travel`` of the mean of ``clips`` training clips per captioned direction."""
    ds = build_dataset(cfg.data, "train")
    sums = {d: [torch.zeros_like(ds[0]["video"]), 0] for d in DIRECTIONS}
    for i in range(clips):
        item = ds[i]
        if item["directions"][0] in sums:
            sums[item["directions"][0]][0] += item["video"]
            sums[item["directions"][0]][1] += 1
    return {d: travel(total / max(n, 1)) for d, (total, n) in sums.items()}


@torch.no_grad()
def model_travel(m, logsnr: float, draws: int = 8) -> dict[str, torch.Tensor]:
    """``travel`` of the loaded model ``m``'s x-hat at ``logsnr`` (mean over ``draws`` noises and the digits) per
    direction."""
    cfg = m.config
    tc = text_condition(cfg, [f"digit {d} moving {x}" for d in DIGITS for x in DIRECTIONS])
    z = torch.randn(draws, cfg.data.channels, cfg.data.num_frames, cfg.data.image_size, cfg.data.image_size,
                    generator=torch.Generator().manual_seed(0)) * torch.sigmoid(torch.tensor(-logsnr)).sqrt()
    lam = torch.full((draws,), logsnr)
    out = {}
    for j, name in enumerate(DIRECTIONS):
        means = [m.denoiser(z, lam, text_emb=tc["text_emb"][k : k + 1].expand(draws, -1, -1),
                            text_mask=tc["text_mask"][k : k + 1].expand(draws, -1)).mean(0)
                 for k in range(j, len(DIGITS) * len(DIRECTIONS), len(DIRECTIONS))]
        out[name] = torch.stack([travel(x) for x in means]).mean(0)
    return out


def xhat_table(models: list[str], clips: int) -> None:
    print("| source | log-SNR | right: dx | left: dx | down: dy | up: dy |")
    print("|---|---|---|---|---|---|")
    loaded = {model: load_model(model, device="cpu", precision="fp32") for model in models}
    rows = [("data: mean clip per direction", "-inf", data_travel(loaded[models[0]].config, clips))]
    rows += [(model, f"{lam:g}", model_travel(m, lam)) for model, m in loaded.items() for lam in XHAT_LOGSNR]
    for name, lam, t in rows:
        print(f"| {name} | {lam} | {t['right'][0]:+.2f} | {t['left'][0]:+.2f} | {t['down'][1]:+.2f} | "
              f"{t['up'][1]:+.2f} |")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tune_malloc()
    if sys.argv[1] == "--xhat":
        return xhat_table(sys.argv[2:], clips=2000)
    args = sys.argv[1:]
    directions = DIAGONALS if "--diagonals" in args else DIRECTIONS
    args = [a for a in args if a != "--diagonals"]
    model, w = args[0], float(args[1]) if len(args) > 1 else 2.0
    n = int(args[2]) if len(args) > 2 else 4
    m = load_model(model, device="cpu", precision="fp32")
    prompts = [f"digit {d} moving {x}" for d in DIGITS for x in directions]
    t0 = time.perf_counter()
    videos = sample_from_prompts(m.denoiser, m.config, prompts, n, guidance=w, cache=build_text_cache(m.config.text),
                                 steps=20, sampler="dpmpp2m", seed=0, batch_size=24)
    centre = centre_of_mass(videos, floor=-0.4)  # ignore faint haze in generated frames
    velocity = ((centre[:, 3] - centre[:, 0]) / 3).view(len(DIGITS), len(directions), n, 2)
    clf = load_classifier("moving-mnist-32")
    labels = [[d] for d in DIGITS for _ in directions for _ in range(n)]
    dirs = [[x] for _ in DIGITS for x in directions for _ in range(n)]
    print(f"{model}, w = {w:g}, {len(videos)} videos ({time.perf_counter() - t0:.0f} s): classifier direction accuracy "
          f"{direction_accuracy(videos, labels, dirs, clf):.3f}, digit accuracy "
          f"{digit_accuracy(videos, [lab[0] for lab in labels], clf):.3f}")
    print("| prompt | mean vx ± sd (px/frame) | mean vy ± sd | share moving along the prompt | mean angle error |")
    print("|---|---|---|---|---|")
    for j, name in enumerate(directions):
        v = velocity[:, j].reshape(-1, 2)
        axis = torch.tensor(direction_vector(name))
        along = float(((v @ axis) > 0).float().mean())
        cos = (v @ axis) / v.norm(dim=1).clamp_min(1e-6)
        angle = float(torch.rad2deg(torch.acos(cos.clamp(-1, 1))).mean())
        print(f"| {name} | {v[:, 0].mean():+.2f} ± {v[:, 0].std():.2f} | {v[:, 1].mean():+.2f} ± {v[:, 1].std():.2f} | "
              f"{along:.2f} | {angle:.0f}° |")


if __name__ == "__main__":
    main()
