"""Fine-tuning the shipped ``moving-mnist`` on a motion it never saw, full vs LoRA (issue 31; docs/results.md).

The new style: the same captioned Moving MNIST clips (compass directions, starting behind) with digits moving
3-4 px per frame at 32x32 (``data.speed=[6, 8]``) instead of the 1-2 px the model was trained on. The clips are
written as files (``videodiff clips``) and fine-tuned on through their caption manifest, as a user would
(``videodiff finetune --data clips/captions.csv``), once fully and once with LoRA adapters. Before and after:

* **learned**: the mean speed of the generated digit, |centre-of-mass step| per frame (px), over 40 prompts
  "digit d moving <right|up|left|down>" at w = 2, against the same measure on real clips of both styles;
* **not forgotten**: the Table 3 metrics on the same samples with the shipped classifier: digit accuracy,
  direction accuracy (the prompted direction), classifier IS (``benchmarks/pretrained_tables.score``).

Intervals: 95% Student-t over videos for the speed, Wilson for the accuracies.

    python benchmarks/finetune_style.py --steps 200 --clips 256 --out runs/finetune_style
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from pretrained_tables import prompt_set, score
from superres_interp import _wilson
from videodiff import VideoPipeline
from videodiff.config import ExperimentConfig, config_from_dict
from videodiff.data import build_dataset
from videodiff.data.export import write_clips
from videodiff.data.moving_mnist import centre_of_mass
from videodiff.finetune import export_adapter, finetune
from videodiff.metrics.classifier import load_classifier
from videodiff.metrics.paired import mean_ci
from videodiff.models import load_weights
from videodiff.runtime import tune_malloc

NEW_SPEED = (6.0, 8.0)  # px per frame at 64x64, i.e. 3-4 px per frame at 32x32 (the shipped model: 1-2)


def speed(videos: torch.Tensor) -> list[float]:
    """Per video: the mean |centre-of-mass step| per frame in pixels (haze below -0.4 ignored)."""
    c = centre_of_mass(videos.float(), floor=-0.4)  # (N, F, 2)
    return (c[:, 1:] - c[:, :-1]).norm(dim=-1).mean(1).tolist()


def references(data, clf, num: int = 200) -> dict:
    """The measures on ``num`` real held-out clips of a style: speed, and the classifier's digit and direction
    accuracy against their own labels (how well the evaluator reads that style at all)."""
    ds = build_dataset(dataclasses.replace(data, test_clips=num, captions=False), "test")
    items = [ds[i] for i in range(num)]
    videos = torch.stack([it["video"] for it in items])
    labels = [[int(v) for v in it["labels"]] for it in items]
    dirs = [list(it["directions"]) for it in items]
    res = score(videos, labels, dirs, clf)
    res["speed_px"] = list(mean_ci(torch.tensor(speed(videos))))
    return res


def evaluate(pipe: VideoPipeline, clf, a) -> dict:
    prompts, labels, dirs = prompt_set(("right", "up", "left", "down"))
    videos = pipe.generate(prompts, guidance=2.0, steps=a.sample_steps, sampler="dpmpp2m", seed=0)
    res = score(videos, labels, dirs, clf)
    n = len(prompts)
    for key in ("digit_accuracy", "direction_accuracy"):  # Wilson's interval depends on the hit count only
        res[f"{key}_ci"] = list(_wilson(np.arange(n) < round(res[key] * n))[1:])
    res["speed_px"] = list(mean_ci(torch.tensor(speed(videos))))  # (mean, 95% half-width)
    return res


def main() -> None:
    tune_malloc()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="moving-mnist")
    ap.add_argument("--steps", type=int, default=200, help="fine-tuning steps of each run")
    ap.add_argument("--clips", type=int, default=256, help="clips of the new style to fine-tune on")
    ap.add_argument("--lora-rank", type=int, default=8)
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("runs/finetune_style"))
    ap.add_argument("--references-only", action="store_true", help="only the real clips' measures of both styles")
    a = ap.parse_args()
    cfg = config_from_dict(ExperimentConfig, load_weights(a.model)["config"])
    new = dataclasses.replace(cfg.data, speed=NEW_SPEED, train_clips=max(a.clips, cfg.data.train_clips))
    clips = a.out / "clips"
    if not a.references_only and not (clips / "captions.csv").is_file():
        write_clips(new, clips, a.clips, split="train")
    clf = load_classifier("moving-mnist-32")
    res = {"args": {k: str(v) for k, v in vars(a).items()}, "new_speed_at_64": NEW_SPEED,
           "real_clips": {name: references(d, clf) for name, d in (("shipped style", cfg.data), ("new style", new))},
           "models": {}}
    if a.references_only:
        print(json.dumps(res, indent=1))
        return
    res["models"]["before"] = evaluate(VideoPipeline.from_pretrained(a.model, device="cpu"), clf, a)
    print(json.dumps(res, indent=1), flush=True)
    for name, rank in (("full", 0), ("lora", a.lora_rank)):
        run = a.out / name
        t0 = time.perf_counter()
        finetune(a.model, clips / "captions.csv", run, lora_rank=rank, steps=a.steps, progress=False,
                 overrides=["train.loggers=[]", f"train.ckpt_every={a.steps}", "sample.num=1", "sample.steps=2"])
        seconds = time.perf_counter() - t0
        pipe = VideoPipeline.from_pretrained(run, device="cpu")
        net = pipe.denoiser.net
        trainable = sum(p.numel() for n, p in net.named_parameters() if rank == 0 or ".lora." in n)
        rec = {"train_seconds": round(seconds, 1), "trainable_parameters": trainable}
        if rank:
            w = export_adapter(run, a.out / "adapter" / "adapter")
            rec["adapter_bytes"] = w.stat().st_size
        rec.update(evaluate(pipe, clf, a))
        res["models"][name] = rec
        print(name, json.dumps(rec, indent=1), flush=True)
    (a.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
