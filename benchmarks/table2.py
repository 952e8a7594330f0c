"""Table 2 analogue (issue 16): text-conditioned 16x32x32 Moving MNIST models trained with N = 0, 4 and 8 appended
independent image frames per video (paper Sec. 3, 4.2), scored on the same prompts and the same noise with the
project's Moving MNIST classifier (``videodiff.metrics.classifier``, 8-frame 32x32 clips). Not a timed test.

Every run (``--run N:RUN_DIR``, repeatable; several seeds per N) samples one video per caption "digit d moving
<dir>" (10 digits x ``--directions`` x ``--per-prompt``) with classifier-free guidance ``--guidance`` (eq. 5), the
same noise for every run. Columns:

* ``cFVD 0-7`` / ``cFVD 8-15``: classifier-FVD of the two 8-frame windows against ``--num-real`` held-out clips
  (the FVD column of Table 2);
* ``cFD-avg`` / ``cIS-avg``, ``cFD-first`` / ``cIS-first``: the frame-level analogues of FID/IS-avg and -first.
  The classifier scores a *static* clip of one frame (the frame repeated 8 times): its features and digit logits
  per frame are averaged over the 16 frames of a video (avg) or taken for frame 0 (first), as the paper averages
  InceptionV3 activations across frames (Sec. 4.2);
* ``digit acc.``: the classifier's digit equals the prompt's; ``cIS``: classifier IS of 8-frame clips.

Spreads: the seeds' range per N, and a 95 % Wilson interval for the digit accuracy. The Fréchet distances and IS
are set statistics: a bootstrap resample has repeated videos, whose lost diversity inflates a Fréchet distance (and
lowers IS) by more than their spread (at 80 videos percentile and basic intervals both missed the estimate), so
they get none per run. The first row scores as many other held-out clips as there are samples against the same
reference: the floor that finite sets alone leave in each column.

Per N, the seeds' mean and range are printed beside each run; a paired sign test compares the digit correctness of
two N (same prompts, same noise) per seed. Writes ``results.json``, ``table.md`` and ``samples.png`` into ``--out``.

    OMP_NUM_THREADS=1 python benchmarks/table2.py --run 0:runs/t2-n0-s0 --run 0:runs/t2-n0-s1 \\
        --run 4:runs/t2-n4-s0 --run 4:runs/t2-n4-s1 --run 8:runs/t2-n8-s0 --run 8:runs/t2-n8-s1 \\
        --out benchmarks/results/table2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from videodiff.metrics.classifier import classifier_outputs, digit_sets, direction_accuracy, load_classifier
from videodiff.metrics.frechet import frechet_distance_from_features
from videodiff.metrics.inception_score import inception_score
from videodiff.pipeline import load_model, sample_from_prompts
from videodiff.text import build_text_cache

from text_guidance import sign_test, wilson  # benchmarks/text_guidance.py: Wilson interval, exact sign test

COLUMNS = [("cfvd_0", "cFVD 0-7", ".1f"), ("cfvd_8", "cFVD 8-15", ".1f"), ("cfd_avg", "cFD-avg", ".1f"),
           ("cis_avg", "cIS-avg", ".2f"), ("cfd_first", "cFD-first", ".1f"), ("cis_first", "cIS-first", ".2f"),
           ("digit_acc", "digit acc.", ".3f"), ("cis", "cIS", ".2f")]


def frame_outputs(videos: torch.Tensor, clf) -> dict:
    """Per frame: the classifier's features and digit logits of the static clip of that frame, ``(B, F, ...)``."""
    b, c, f, h, w = videos.shape
    static = videos.transpose(1, 2).reshape(b * f, c, 1, h, w).expand(-1, -1, clf.cfg.num_frames, -1, -1)
    out = classifier_outputs(static, clf, batch_size=256)
    return {k: out[k].reshape(b, f, *out[k].shape[1:]) for k in ("features", "digit_logits")}


def features(videos: torch.Tensor, clf) -> dict:
    """Everything the columns need, per video (so that it can be resampled)."""
    frames = frame_outputs(videos, clf)
    w0, w8 = (classifier_outputs(videos[:, :, i:i + 8], clf) for i in (0, 8))
    return {"f0": w0["features"], "f8": w8["features"], "logits": w0["digit_logits"],
            "favg": frames["features"].mean(1), "ffirst": frames["features"][:, 0],
            "lavg": frames["digit_logits"].mean(1), "lfirst": frames["digit_logits"][:, 0]}


def columns(fake: dict, real: dict, idx=None) -> dict:
    pick = (lambda a: a) if idx is None else (lambda a: a[idx])
    return {"cfvd_0": frechet_distance_from_features(real["f0"], pick(fake["f0"])),
            "cfvd_8": frechet_distance_from_features(real["f8"], pick(fake["f8"])),
            "cfd_avg": frechet_distance_from_features(real["favg"], pick(fake["favg"])),
            "cfd_first": frechet_distance_from_features(real["ffirst"], pick(fake["ffirst"])),
            "cis_avg": inception_score(pick(fake["lavg"]), 1)[0], "cis_first": inception_score(pick(fake["lfirst"]), 1)[0],
            "cis": inception_score(pick(fake["logits"]), 1)[0]}


def real_clips(cfg, num: int, start: int = 0) -> torch.Tensor:
    """Held-out (test split) clips ``start .. start + num - 1`` of the run's data."""
    import dataclasses

    from videodiff.data import build_dataset

    data = dataclasses.replace(cfg.data, test_clips=start + num, captions=False, image_frames=0)
    ds = build_dataset(data, "test")
    return torch.stack([ds[i]["video"] for i in range(start, start + num)])


def plot(results: list[dict], path: Path) -> None:
    """One panel per column: each run's value against N (seeds as points, their mean as a line; the N = 0 runs are
    every comparison's reference), the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results if r["N"] != "real"]
    floor = next((r for r in results if r["N"] == "real"), {})
    labels = sorted({r["label"] for r in runs}, key=lambda x: (x != "equal steps", x))
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5))
    for ax, (key, name, _) in zip(axes.flat, COLUMNS):
        for j, label in enumerate(labels):
            rows = [r for r in runs if r["label"] == label or (r["N"] == 0 and r["label"] == "equal steps")]
            ns = sorted({r["N"] for r in rows})
            ax.plot(ns, [np.mean([r[key] for r in rows if r["N"] == n]) for n in ns], "-" if j == 0 else ":",
                    color=f"C{j}", label=f"{label} (mean of seeds)")
            own = [r for r in rows if r["label"] == label]
            ax.scatter([r["N"] + 0.15 * j for r in own], [r[key] for r in own], color=f"C{j}", s=14)
        if key in floor:
            ax.axhline(floor[key], color="gray", ls="--", lw=1, label="held-out clips")
        ax.set_title(name)
        ax.set_xticks(sorted({r["N"] for r in runs}))
        ax.set_xlabel("image frames N")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="N:RUN_DIR[:LABEL]",
                   help="image frames N the run was trained with, its run directory or checkpoint, and optionally a "
                        "label grouping the comparison (default 'equal steps'; e.g. 'equal time') (repeatable)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/table2"))
    p.add_argument("--directions", nargs="+", default=["right", "up", "left", "down"])
    p.add_argument("--per-prompt", type=int, default=2)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--sampler", default="ddim")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--num-real", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=40)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    runs = []
    for spec in a.run:
        n, _, rest = spec.partition(":")
        path, _, label = rest.partition(":")
        if not n.isdigit() or not path:
            p.error(f"--run {spec!r}: expected N:RUN_DIR[:LABEL], e.g. 4:runs/t2-n4-s0")
        runs.append((int(n), path, label or "equal steps"))
    a.out.mkdir(parents=True, exist_ok=True)
    clf = load_classifier("moving-mnist-32")
    prompts = [f"digit {d} moving {r}" for d in range(10) for r in a.directions]
    labels = [[d] for d in range(10) for _ in a.directions for _ in range(a.per_prompt)]
    dirs = [[r] for _ in range(10) for r in a.directions for _ in range(a.per_prompt)]
    real = None
    results, correct, strips = [], {}, []
    for n, path, label in runs:
        loaded = load_model(path, precision=a.precision)
        cfg = loaded.config
        if real is None:  # the reference set, and as many other held-out clips as samples: the columns' floor
            real = features(real_clips(cfg, a.num_real), clf)
            floor = features(real_clips(cfg, len(labels), start=a.num_real), clf)
            results.append({"N": "real", "run": "held-out clips", "step": "", "seed": "", **columns(floor, real),
                            "ci": {}})
        t0 = time.perf_counter()
        videos = sample_from_prompts(loaded.denoiser, cfg, prompts, a.per_prompt, guidance=a.guidance,
                                     cache=build_text_cache(cfg.text), steps=a.steps, sampler=a.sampler,
                                     seed=a.seed, batch_size=a.batch_size, progress=True)
        secs = time.perf_counter() - t0
        fake = features(videos, clf)
        hits = [s == frozenset(t) for s, t in zip(digit_sets(fake["logits"], 1), labels)]
        row = {"N": n, "label": label, "run": path, "step": loaded.step, "seed": cfg.train.seed, "sample_seconds": round(secs, 1),
               **columns(fake, real), "digit_acc": float(np.mean(hits)),
               "direction_acc": direction_accuracy(videos[:, :, :8], labels, dirs, clf),
               "ci": {"digit_acc": list(wilson(sum(hits), len(hits)))}}
        results.append(row)
        correct[(label, n, cfg.train.seed)] = hits
        strips.append(videos[:: len(a.directions) * a.per_prompt][:, :, ::2])  # one video per digit, every 2nd frame
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k != "ci"}),
              flush=True)
    paired = []
    groups = sorted({(label, n) for label, n, _ in correct})
    for (la, lo), (lb, hi) in [(x, y) for i, x in enumerate(groups) for y in groups[i + 1:]]:
        if lo >= hi or (la != lb and lo != 0):  # within a label, and each label's N > 0 against N = 0
            continue
        for seed in sorted({s for (l_, m, s) in correct if (l_, m) == (la, lo)} &
                           {s for (l_, m, s) in correct if (l_, m) == (lb, hi)}):
            a_, b_ = correct[(la, lo, seed)], correct[(lb, hi, seed)]
            wins, losses = sum(y and not x for x, y in zip(a_, b_)), sum(x and not y for x, y in zip(a_, b_))
            paired.append({"low": f"N={lo} ({la})", "high": f"N={hi} ({lb})", "seed": seed, "high_only": wins,
                           "low_only": losses, "p": sign_test(wins, losses)})
    md = ["| N | comparison | seed | step | " + " | ".join(c[1] for c in COLUMNS) + " |",
          "|---|---|---|---|" + "---|" * len(COLUMNS)]
    for r in results:
        cells = [("" if k not in r else f"{r[k]:{f}}" + (f" [{r['ci'][k][0]:{f}}, {r['ci'][k][1]:{f}}]"
                                                          if k in r["ci"] else "")) for k, _, f in COLUMNS]
        md.append(f"| {r['N']} | {r.get('label', '')} | {r['seed']} | {r['step']} | " + " | ".join(cells) + " |")
    for label, n in sorted({(r["label"], r["N"]) for r in results if r["N"] != "real"}):
        rows = [r for r in results if r["N"] == n and r.get("label") == label]
        cells = [f"{np.mean([r[k] for r in rows]):{f}} ({min(r[k] for r in rows):{f}}-{max(r[k] for r in rows):{f}})"
                 for k, _, f in COLUMNS]
        md.append(f"| **{n}** | {label}: mean (range) of {len(rows)} | | | " + " | ".join(cells) + " |")
    md += ["", "| lower | higher | seed | only the higher right | only the lower right | sign test p |",
           "|---|---|---|---|---|---|"]
    md += [f"| {q['low']} | {q['high']} | {q['seed']} | {q['high_only']} | {q['low_only']} | {q['p']:.3f} |"
           for q in paired]
    (a.out / "table.md").write_text("\n".join(md) + "\n")
    (a.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()}, "runs": results,
                                                    "paired": paired, "num_videos": len(labels)}, indent=1) + "\n")
    plot(results, a.out / "table2.png")
    from PIL import Image

    from videodiff.conditional import frame_strip

    Image.fromarray(np.concatenate([frame_strip(s) for s in strips], 0)).convert("L").save(a.out / "samples.png",
                                                                               optimize=True)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
