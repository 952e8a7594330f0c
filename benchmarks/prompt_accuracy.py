"""Does a text-conditioned Moving MNIST model draw the prompted digit? A quick check with the project's classifier.

40 prompts "digit d moving <right|up|left|down>" (d = 0..9), one video each, seed 0; prints the digit accuracy and
the direction accuracy (``videodiff.metrics.classifier``, moving-mnist-32: first 8 frames) at each guidance weight.

    python benchmarks/prompt_accuracy.py MODEL SAMPLER STEPS W [W ...]
    python benchmarks/prompt_accuracy.py moving-mnist dpmpp2m 20 0 2
"""

from __future__ import annotations

import sys
import time

from videodiff.metrics.classifier import digit_accuracy, direction_accuracy, load_classifier
from videodiff.pipeline import load_model, sample_from_prompts
from videodiff.runtime import tune_malloc
from videodiff.text import build_text_cache

from pretrained_tables import prompt_set  # benchmarks/ is sys.path[0] when run as a script

DIRECTIONS = ("right", "up", "left", "down")


def main() -> None:
    tune_malloc()  # as the CLI does: far fewer page faults when sampling on the CPU
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    model, sampler, steps, weights = sys.argv[1], sys.argv[2], int(sys.argv[3]), [float(w) for w in sys.argv[4:]]
    m = load_model(model, device="cpu", precision="fp32")
    cache, clf = build_text_cache(m.config.text), load_classifier("moving-mnist-32")
    prompts, labels, dirs = prompt_set(DIRECTIONS)
    print(f"{model} (step {m.step})")
    for w in weights:
        t0 = time.perf_counter()
        videos = sample_from_prompts(m.denoiser, m.config, prompts, 1, guidance=w, cache=cache, steps=steps,
                                     sampler=sampler, seed=0, batch_size=40)
        print(f"{sampler} {steps} steps, w={w:g}: digit accuracy {digit_accuracy(videos, labels, clf):.3f}, "
              f"direction accuracy {direction_accuracy(videos, labels, dirs, clf):.3f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
