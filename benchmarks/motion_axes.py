"""Which way do a text-to-video Moving MNIST model's digits move? Velocity of the centre of mass per prompted direction.

For each prompted direction (right, up, left, down) and digits 1, 4, 7, ``N`` videos are sampled (DPM-Solver++(2M),
20 steps, guidance ``W``, seed 0); the digit's centre of mass (pixels above -0.4) gives a velocity from frame 0 to
frame 3 (before most bounces), in pixels per frame with y pointing down. A model that follows the prompt has a mean
velocity along the prompt (right: vx > 0, up: vy < 0); a model that learned only the axis of motion has a near-zero
perpendicular component but a mean along the axis near zero (both senses equally often). Also prints the
classifier's direction and digit accuracy of the same videos.

    python benchmarks/motion_axes.py MODEL [W] [N]
    python benchmarks/motion_axes.py moving-mnist 2 4
"""

from __future__ import annotations

import sys
import time

import torch

from videodiff.data.moving_mnist import centre_of_mass
from videodiff.metrics.classifier import digit_accuracy, direction_accuracy, load_classifier
from videodiff.pipeline import load_model, sample_from_prompts
from videodiff.runtime import tune_malloc
from videodiff.text import build_text_cache

DIRECTIONS = ("right", "up", "left", "down")
DIGITS = (1, 4, 7)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tune_malloc()
    model, w = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    m = load_model(model, device="cpu")
    prompts = [f"digit {d} moving {x}" for d in DIGITS for x in DIRECTIONS]
    t0 = time.perf_counter()
    videos = sample_from_prompts(m.denoiser, m.config, prompts, n, guidance=w, cache=build_text_cache(m.config.text),
                                 steps=20, sampler="dpmpp2m", seed=0, batch_size=24)
    centre = centre_of_mass(videos, floor=-0.4)  # ignore faint haze in generated frames
    velocity = ((centre[:, 3] - centre[:, 0]) / 3).view(len(DIGITS), len(DIRECTIONS), n, 2)
    clf = load_classifier("moving-mnist-32")
    labels = [[d] for d in DIGITS for _ in DIRECTIONS for _ in range(n)]
    dirs = [[x] for _ in DIGITS for x in DIRECTIONS for _ in range(n)]
    print(f"{model}, w = {w:g}, {len(videos)} videos ({time.perf_counter() - t0:.0f} s): classifier direction accuracy "
          f"{direction_accuracy(videos, labels, dirs, clf):.3f}, digit accuracy "
          f"{digit_accuracy(videos, [lab[0] for lab in labels], clf):.3f}")
    print("| prompt | mean vx ± sd (px/frame) | mean vy ± sd | share moving along the prompt |")
    print("|---|---|---|---|")
    for j, name in enumerate(DIRECTIONS):
        v = velocity[:, j].reshape(-1, 2)
        axis = torch.tensor({"right": (1.0, 0.0), "up": (0.0, -1.0), "left": (-1.0, 0.0), "down": (0.0, 1.0)}[name])
        along = float(((v @ axis) > 0).float().mean())
        print(f"| {name} | {v[:, 0].mean():+.2f} ± {v[:, 0].std():.2f} | {v[:, 1].mean():+.2f} ± {v[:, 1].std():.2f} | "
              f"{along:.2f} |")


if __name__ == "__main__":
    main()
