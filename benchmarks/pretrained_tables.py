"""Small-scale analogues of the paper's Table 3 (classifier-free guidance) and Table 4 (gradient vs replacement
method for autoregressive extension) on a shipped or trained text-conditioned Moving MNIST model, measured with the
project's own Moving MNIST classifier (``videodiff.metrics.classifier``; 8-frame 32x32 clips, so it reads the first
8 frames of a window). Writes ``results.json``, markdown tables and figures into ``--out``; not a timed test.

Table 3: one video per caption "digit d moving <dir>" (10 digits x ``--directions`` x ``--per-prompt``), the same
noise for every guidance weight w (eq. 5). Columns: digit accuracy (the classifier's digit equals the prompt's),
direction accuracy (the classifier's direction of the prompted digit equals the prompt's), classifier IS (max 10)
and classifier-FVD of the first 8 frames against real test clips. The "real" row scores real test clips against
their own captions: the ceiling the classifier allows.

Table 4: held-out test clips cut after ``--given`` frames are extended to ``--frames`` frames, block by block
(block = the model's frames, ``--context`` frames of context), conditioned on their true caption, by the gradient
method (eq. 6, x~ clamped to [-1, 1]) and the replacement method, from the same noise. Columns: classifier-FVD of
8-frame windows at the start, middle and end of the generated part against the same windows of real 64-frame clips,
digit kept (the classifier's digit on the last window equals the clip's digit) and boundary coherence (mean squared
change between consecutive frames where a block starts / within blocks; real clips: ~1).

    python benchmarks/pretrained_tables.py --model moving-mnist --out docs/results --sampler dpmpp2m --steps 20 \
        --weights 0 2 5 --directions right up left down --num-extend 12 --batch-size 12
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

from videodiff import VideoPipeline
from videodiff.conditional import frame_strip
from videodiff.conditional.blocks import extension_plan
from videodiff.data import build_dataset
from videodiff.data.moving_mnist import DIRECTIONS
from videodiff.metrics.classifier import (classifier_fvd, classifier_inception_score, classifier_outputs,
                                          direction_accuracy, digit_sets, load_classifier)
from videodiff.runtime import tune_malloc


def _boundary_ratio():
    spec = importlib.util.spec_from_file_location("ext_bench", Path(__file__).with_name("extension.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.boundary_ratio


def real_clips(data_cfg, num: int, frames: int) -> dict:
    """``num`` held-out test clips of ``frames`` frames with their labels, directions and canonical captions."""
    from videodiff.data.captions import moving_mnist_caption

    cfg = dataclasses.replace(data_cfg, num_frames=frames, test_clips=num, captions=False, image_frames=0)
    ds = build_dataset(cfg, "test")
    items = [ds[i] for i in range(num)]
    labels = [[int(v) for v in it["labels"]] for it in items]
    dirs = [list(it["directions"]) for it in items]
    return {"video": torch.stack([it["video"] for it in items]), "labels": labels, "directions": dirs,
            "captions": [moving_mnist_caption(lab, d) for lab, d in zip(labels, dirs)]}


def score(videos, labels, dirs, clf, real_features=None) -> dict:
    out = classifier_outputs(videos, clf)
    sets = digit_sets(out["digit_logits"], clf.cfg.num_digits)
    res = {"digit_accuracy": float(np.mean([s == frozenset(t) for s, t in zip(sets, labels)])),
           "direction_accuracy": direction_accuracy(videos, labels, dirs, clf),
           "classifier_is": classifier_inception_score(videos, clf, splits=(1,))["IS@1"][0]}
    if real_features is not None:
        res["cfvd"] = classifier_fvd(real_features, videos, clf).value
    return res


def prompt_set(directions, per_prompt: int = 1) -> tuple[list[str], list[list[int]], list[list[str]]]:
    """Prompts "digit d moving <direction>" (d = 0..9, digit-major) and, per video (``per_prompt`` each), the target
    digit and direction lists that ``digit_sets`` / ``direction_accuracy`` compare against."""
    prompts = [f"digit {d} moving {direction}" for d in range(10) for direction in directions]
    labels = [[d] for d in range(10) for _ in directions for _ in range(per_prompt)]
    dirs = [[direction] for _ in range(10) for direction in directions for _ in range(per_prompt)]
    return prompts, labels, dirs


def table3(pipe, clf, real, a) -> dict:
    cfg = pipe.config
    prompts, labels, dirs = prompt_set(a.directions, a.per_prompt)
    rows = {"real test clips": score(real["video"][:, :, :cfg.data.num_frames], real["labels"],
                                     real["directions"], clf)}
    samples = {}
    for w in a.weights:
        t0 = time.perf_counter()
        videos = pipe.generate(prompts, num=a.per_prompt, guidance=w, steps=a.steps, sampler=a.sampler, seed=a.seed,
                               batch_size=a.batch_size, progress=True)
        rows[f"w = {w:g}"] = {**score(videos, labels, dirs, clf, real["video"][:, :, :cfg.data.num_frames]),
                              "seconds": time.perf_counter() - t0}
        samples[w] = videos
        print(f"w={w:g}: {rows[f'w = {w:g}']}", flush=True)
    return {"rows": rows, "num_videos": len(prompts) * a.per_prompt, "samples": samples, "prompts": prompts}


def table4(pipe, clf, real64, a) -> dict:
    cfg = pipe.config
    block, given = cfg.data.num_frames, a.given
    context = a.context or block // 2
    truth = real64["video"][: a.num_extend]
    labels, captions = real64["labels"][: a.num_extend], real64["captions"][: a.num_extend]
    plan = extension_plan(a.frames, block, context, given)
    n_new = a.frames - given
    windows = {"start": given, "middle": given + (n_new - 8) // 2, "end": a.frames - 8}
    ratio = _boundary_ratio()
    rows, videos = {}, {}
    for method in a.methods:
        t0 = time.perf_counter()
        outs = []
        for s in range(0, len(truth), a.batch_size):
            sl = slice(s, s + a.batch_size)
            outs.append(pipe.extend(truth[sl, :, :given], frames=a.frames, prompt=list(captions[sl]),
                                    guidance=a.extend_guidance, method=method, context=context, steps=a.steps,
                                    sampler=a.sampler, w_r=a.w_r, seed=a.seed + s, progress=True))
        out = torch.cat(outs)
        videos[method] = out
        row = {f"cfvd_{k}": classifier_fvd(truth[:, :, i:i + 8], out[:, :, i:i + 8], clf).value
               for k, i in windows.items()}
        last = digit_sets(classifier_outputs(out[:, :, -8:], clf)["digit_logits"], clf.cfg.num_digits)
        row["digit_kept"] = float(np.mean([s == frozenset(t) for s, t in zip(last, labels)]))
        row["boundary_ratio"] = ratio(out, plan)[2]
        row["seconds"] = time.perf_counter() - t0
        rows[method] = row
        print(f"{method}: {row}", flush=True)
    last_real = digit_sets(classifier_outputs(truth[:, :, -8:], clf)["digit_logits"], clf.cfg.num_digits)
    rows["real clips"] = {"digit_kept": float(np.mean([s == frozenset(t) for s, t in zip(last_real, labels)])),
                          "boundary_ratio": ratio(truth, plan)[2]}
    return {"rows": rows, "num_videos": len(truth), "windows": windows, "context": context, "videos": videos,
            "truth": truth}


def _md(rows: dict, cols: list[tuple[str, str, str]]) -> str:
    head = "| | " + " | ".join(c[1] for c in cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    body = "".join(f"| {name} | " + " | ".join(format(r[c[0]], c[2]) if c[0] in r else "" for c in cols) + " |\n"
                   for name, r in rows.items())
    return head + body


def main() -> None:
    tune_malloc()  # as the CLI does: far fewer page faults when sampling on the CPU
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="moving-mnist", help="shipped model name or run directory")
    p.add_argument("--out", type=Path, default=Path("docs/results"))
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 1.0, 2.0, 5.0])
    p.add_argument("--per-prompt", type=int, default=1)
    p.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=DIRECTIONS,
                   help="directions in the prompts (default all 8)")
    p.add_argument("--num-real", type=int, default=400)
    p.add_argument("--num-extend", type=int, default=40)
    p.add_argument("--given", type=int, default=8)
    p.add_argument("--context", type=int, default=None)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--extend-guidance", type=float, default=0.0)
    p.add_argument("--methods", nargs="+", default=["gradient", "replacement"], choices=["gradient", "replacement"],
                   help="Table 4's conditioning methods (default both)")
    p.add_argument("--w-r", type=float, default=None,
                   help="weight of eq. (6) in Table 4's gradient method (default: the extend task's, 1)")
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tables", nargs="+", default=["3", "4"])
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"],
                   help="network arithmetic (default fp32: the recorded tables; bf16: the precision check)")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(a.seed)
    pipe = VideoPipeline.from_pretrained(a.model, device="cpu", precision=a.precision)
    clf = load_classifier("moving-mnist-32")
    res = {"model": a.model, "step": pipe.model.step, "args": {k: str(v) for k, v in vars(a).items()}}
    md = []
    if "3" in a.tables:
        real = real_clips(pipe.config.data, a.num_real, pipe.config.data.num_frames)
        t3 = table3(pipe, clf, real, a)
        res["table3"] = {k: v for k, v in t3.items() if k not in ("samples", "prompts")}
        md.append(_md(t3["rows"], [("digit_accuracy", "digit acc.", ".3f"), ("direction_accuracy", "direction acc.",
                                   ".3f"), ("classifier_is", "classifier IS", ".2f"), ("cfvd", "cFVD", ".1f")]))
        from PIL import Image

        show = [d * len(a.directions) * a.per_prompt for d in range(10)]  # "digit d moving <first>", per digit
        strips = [frame_strip(t3["samples"][w][show][:, :, ::2]) for w in a.weights]
        Image.fromarray(np.concatenate(strips, 1)).save(a.out / "table3_samples.png")
    if "4" in a.tables:
        real64 = real_clips(pipe.config.data, a.num_extend, a.frames)
        t4 = table4(pipe, clf, real64, a)
        res["table4"] = {k: v for k, v in t4.items() if k not in ("videos", "truth")}
        md.append(_md(t4["rows"], [("cfvd_start", "cFVD start", ".1f"), ("cfvd_middle", "cFVD middle", ".1f"),
                                   ("cfvd_end", "cFVD end", ".1f"), ("digit_kept", "digit kept", ".3f"),
                                   ("boundary_ratio", "boundary ratio", ".2f")]))
        from PIL import Image

        known = [i < a.given for i in range(0, a.frames, 4)]
        rows = [t4["truth"][:4], *(t4["videos"][m][:4] for m in a.methods)]
        Image.fromarray(np.concatenate([frame_strip(v[:, :, ::4], known) for v in rows], 0)).save(
            a.out / "table4_samples.png")
    (a.out / "results.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    (a.out / "tables.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
