"""Few-step text-to-video sampling (issue 30): a progressively distilled student (Salimans & Ho 2022) against its
teacher under DDIM and DPM-Solver++(2M) at the same number of steps, and against the teacher's default sampler
(DPM-Solver++(2M), 20 steps), all at classifier-free guidance w (eq. 5 of the paper; a student distilled at one w
has it in its weights, Meng et al. 2023, and samples with w = 0; one distilled with ``distill.guidance_range`` takes
w as an input and samples at ``--guidance``: one network call per step either way).

Every row samples the same prompts "digit d moving <direction>" (d = 0..9, ``--directions``, ``--per-prompt`` videos
each) from the same noise (video ``i`` depends only on ``--seed`` and ``i``; DDIM with eta = 0 and DPM-Solver++ are
deterministic after the first draw) and is scored with the project's Moving MNIST classifier as the Table-3 analogue
of ``benchmarks/pretrained_tables.py``: digit accuracy, direction accuracy (binomial standard error
``sqrt(p (1 - p) / n)`` and a 95 % Wilson interval for both), classifier IS (max 10) and classifier-FVD of the first
8 frames against ``--num-real`` held-out clips (with a bootstrap standard error over the generated videos).

Cost: network evaluations per video (NFE: the guided teacher evaluates the network on a doubled batch, 2 per step;
the student 1 per step), and wall time per video, measured separately in ``--timing-repeats`` interleaved rounds of
``--timing-batch`` videos per row (medians; the machine may be shared, so compare the ratios measured side by side in
one run, not times across runs).

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/distill_steps.py --teacher moving-mnist \\
        --student 8=runs/moving-mnist-fast/rounds/steps_0008 --student 4=moving-mnist-fast \\
        --student 2=runs/moving-mnist-fast-2/rounds/steps_0002 --out benchmarks/results/distill

(the runs: docs/distillation.md). A student sampled at other steps than its own is named "off its grid".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from videodiff import VideoPipeline
from videodiff.data.moving_mnist import DIRECTIONS
from videodiff.metrics.classifier import classifier_outputs, load_classifier
from videodiff.metrics.frechet import frechet_distance_from_features
from videodiff.runtime import tune_malloc


def _tables():
    spec = importlib.util.spec_from_file_location("pretrained_tables", Path(__file__).with_name("pretrained_tables.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def binomial(p: float, n: int) -> dict:
    """Standard error ``sqrt(p (1 - p) / n)`` and the 95 % Wilson score interval of a proportion ``p`` of ``n``."""
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"se": math.sqrt(p * (1 - p) / n), "wilson95": [max(0.0, centre - half), min(1.0, centre + half)]}


def bootstrap_fvd(real_feats: np.ndarray, fake_feats: np.ndarray, reps: int, seed: int = 0) -> float:
    """Standard deviation of the Fréchet distance over ``reps`` resamplings (with replacement) of the generated set."""
    rng = np.random.default_rng(seed)
    n = len(fake_feats)
    vals = [frechet_distance_from_features(real_feats, fake_feats[rng.integers(0, n, n)]) for _ in range(reps)]
    return float(np.std(vals))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_students(items: list[str]) -> list[tuple[int, str]]:
    out = []
    for item in items:
        steps, _, model = item.partition("=")
        if not model or not steps.isdigit():
            raise SystemExit(f"--student takes STEPS=MODEL, got {item!r}")
        out.append((int(steps), model))
    return out


def rows_plan(a, students: list[tuple[int, str]], trained: dict[str, int] | None = None,
              w_input: set[str] = frozenset()) -> list[dict]:
    """One row per (method, steps): the teacher's default, then per step count DDIM, DPM-Solver++ and the students.
    ``trained``: each student's own step count (its ``sample.steps``); a student sampled at other steps (off the
    grid it was distilled for) is named so. ``w_input``: students that take the guidance weight as an input
    (``model.guidance_input``, method ``student-w``): they sample at ``--guidance``, the others at 0 (w in the
    weights)."""
    trained = trained or {}
    plan = [{"name": f"teacher DPM-Solver++ {a.teacher_steps} (default)", "method": "teacher-default",
             "model": "teacher", "sampler": "dpmpp2m", "steps": a.teacher_steps, "guidance": a.guidance}]
    for n in a.steps:
        plan.append({"name": f"teacher DDIM {n}", "method": "teacher-ddim", "model": "teacher", "sampler": "ddim",
                     "steps": n, "guidance": a.guidance})
        plan.append({"name": f"teacher DPM-Solver++ {n}", "method": "teacher-dpmpp2m", "model": "teacher",
                     "sampler": "dpmpp2m", "steps": n, "guidance": a.guidance})
        for steps, model in students:
            if steps != n:
                continue
            own, takes_w = trained.get(model, n), model in w_input
            name = (f"student {n} (the {own}-step student off its grid)" if own != n
                    else f"w-input student {n} (DDIM, w as input)" if takes_w
                    else f"student {n} (DDIM, w in the weights)")
            plan.append({"name": name, "method": "student-w" if takes_w else "student", "model": model,
                         "sampler": "ddim", "steps": n, "guidance": a.guidance if takes_w else 0.0})
    return plan


def figure(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    ref = next(r for r in rows if r["method"] == "teacher-default")
    metrics = [("digit_accuracy", "digit accuracy"), ("direction_accuracy", "direction accuracy"),
               ("classifier_is", "classifier IS (max 10)"), ("cfvd", "cFVD (lower is better)")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    styles = {"teacher-ddim": ("DDIM (teacher)", "o-"), "teacher-dpmpp2m": ("DPM-Solver++(2M) (teacher)", "s-"),
              "student": ("distilled student (w in the weights)", "D-"),
              "student-w": ("distilled student (w as input)", "v-")}
    for ax, (key, label) in zip(axes, metrics):
        for method, (name, style) in styles.items():
            rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["steps"])
            if not rs:
                continue
            x = [r["steps"] for r in rs]
            y = [r[key] for r in rs]
            err = [r.get(key + "_se", 0.0) for r in rs]
            ax.errorbar(x, y, yerr=err, fmt=style, capsize=3, label=name)
        ax.axhline(ref[key], color="k", ls="--", lw=1, label=f"teacher, {ref['steps']} DPM-Solver++ steps")
        if key + "_se" in ref:
            ax.axhspan(ref[key] - ref[key + "_se"], ref[key] + ref[key + "_se"], color="k", alpha=0.08)
        ax.set_xscale("log", base=2)
        ax.set_xticks(res["args"]["steps"])
        ax.set_xticklabels([str(s) for s in res["args"]["steps"]])
        ax.set_xlabel("sampling steps")
        ax.set_title(label)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{res['teacher']} at w = {res['args']['guidance']:g}: quality against steps "
                 f"({res['num_videos']} videos per point, error bars: 1 binomial / bootstrap s.e.)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(res: dict) -> str:
    head = ("| sampler | steps | NFE / video | digit acc. (± s.e.) | direction acc. (± s.e.) | classifier IS | "
            "cFVD (± s.e.) | s / video | speed-up vs default |\n|---|---|---|---|---|---|---|---|---|\n")
    ref = res["rows"][0]["seconds_per_video"]
    body = "".join(
        f"| {r['name']} | {r['steps']} | {r['nfe']} | {r['digit_accuracy']:.3f} ± {r['digit_accuracy_se']:.3f} | "
        f"{r['direction_accuracy']:.3f} ± {r['direction_accuracy_se']:.3f} | {r['classifier_is']:.2f} | "
        f"{r['cfvd']:.1f} ± {r['cfvd_se']:.1f} | {r['seconds_per_video']:.3f} | "
        f"{ref / r['seconds_per_video']:.1f}x |\n"
        for r in res["rows"])
    real = res["real"]
    body += (f"| real held-out clips | | | {real['digit_accuracy']:.3f} | {real['direction_accuracy']:.3f} | "
             f"{real['classifier_is']:.2f} | | | |\n")
    return head + body


def goals(res: dict, at: int = 4) -> dict:
    """Issue 30's bars at ``at`` steps: accuracies within one standard error of the difference from the default
    teacher (``|p - p_ref| <= sqrt(se^2 + se_ref^2)``) and cFVD within 20 % of it."""
    ref = res["rows"][0]
    out = {}
    for method in ("student", "student-w", "teacher-dpmpp2m", "teacher-ddim"):
        r = next((r for r in res["rows"] if r["method"] == method and r["steps"] == at), None)
        if r is None:
            continue
        check = {}
        for key in ("digit_accuracy", "direction_accuracy"):
            se = math.hypot(r[key + "_se"], ref[key + "_se"])
            check[key] = {"diff": r[key] - ref[key], "se_diff": se,
                          "within": abs(r[key] - ref[key]) <= se + 1e-12}
        check["cfvd"] = {"ratio": r["cfvd"] / ref["cfvd"], "within": r["cfvd"] <= 1.2 * ref["cfvd"]}
        check["speedup"] = ref["seconds_per_video"] / r["seconds_per_video"]
        check["nfe_ratio"] = ref["nfe"] / r["nfe"]
        check["all_quality_bars"] = all(v["within"] for k, v in check.items() if isinstance(v, dict))
        out[method] = check
    return out


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="moving-mnist")
    p.add_argument("--student", action="append", default=[], metavar="STEPS=MODEL",
                   help="a distilled student sampling with STEPS DDIM steps (shipped name or run directory)")
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--teacher-steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--directions", nargs="+", default=["right", "up", "left", "down"], choices=DIRECTIONS)
    p.add_argument("--per-prompt", type=int, default=2)
    p.add_argument("--num-real", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=40)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--timing-batch", type=int, default=4)
    p.add_argument("--timing-repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/distill"))
    p.add_argument("--cache", type=Path, default=None,
                   help="folder of each row's videos (.pt); a row whose model, sampler, steps, guidance, seed and "
                        "prompts match a cached one is scored from it instead of sampled again")
    p.add_argument("--no-timing", action="store_true", help="skip the interleaved timing (e.g. to fill --cache)")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    tables = _tables()
    students = parse_students(a.student)
    pipes = {"teacher": VideoPipeline.from_pretrained(a.teacher, device="cpu", precision="fp32")}
    for _, model in students:
        pipes[model] = VideoPipeline.from_pretrained(model, device="cpu", precision="fp32")
    w_input = {m for _, m in students if pipes[m].config.model.guidance_input}
    clf = load_classifier("moving-mnist-32")
    cfg = pipes["teacher"].config
    frames = cfg.data.num_frames
    prompts, labels, dirs = tables.prompt_set(a.directions, a.per_prompt)
    n = len(labels)
    real = tables.real_clips(cfg.data, a.num_real, frames)
    real_feats = classifier_outputs(real["video"][:, :, :frames], clf)["features"]
    plan = rows_plan(a, students, {m: pipes[m].config.sample.steps for _, m in students}, w_input)
    rows, samples = [], {}
    for row in plan:
        pipe = pipes[row["model"]]
        key = {"model": a.teacher if row["model"] == "teacher" else row["model"], "sampler": row["sampler"],
               "steps": row["steps"], "guidance": row["guidance"], "seed": a.seed, "prompts": prompts,
               "per_prompt": a.per_prompt}
        cached = a.cache / (row["name"].split(" (")[0].replace(" ", "_").replace("+", "p") + ".pt") if a.cache else None
        if cached is not None and cached.exists() and torch.load(cached)["key"] == key:
            entry = torch.load(cached)
            videos, calls, seconds = entry["videos"], entry["calls"], entry["seconds"]
        else:
            calls = []
            hook = pipe.denoiser.net.register_forward_hook(lambda mod, args, out: calls.append(out.shape[0]))
            t0 = time.perf_counter()
            videos = pipe.generate(prompts, num=a.per_prompt, guidance=row["guidance"], steps=row["steps"],
                                   sampler=row["sampler"], seed=a.seed, batch_size=a.batch_size)
            seconds = time.perf_counter() - t0
            hook.remove()
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"key": key, "videos": videos, "calls": calls, "seconds": seconds}, cached)
        s = tables.score(videos, labels, dirs, clf, real["video"][:, :, :frames])
        fake_feats = classifier_outputs(videos, clf)["features"]
        out = {**row, **s, "nfe": sum(calls) // n, "eval_seconds": seconds, "num_videos": n,
               "cfvd_se": bootstrap_fvd(real_feats, fake_feats, a.bootstrap, a.seed)}
        for key in ("digit_accuracy", "direction_accuracy"):
            b = binomial(s[key], n)
            out[key + "_se"], out[key + "_wilson95"] = b["se"], b["wilson95"]
        rows.append(out)
        samples[row["name"]] = videos
        print(f"{row['name']}: digit {s['digit_accuracy']:.3f} direction {s['direction_accuracy']:.3f} "
              f"IS {s['classifier_is']:.2f} cFVD {s['cfvd']:.1f} NFE {out['nfe']} ({seconds:.0f} s)", flush=True)
    # Wall time per video: the rows interleaved, repeat by repeat, so that a change of load hits every row alike.
    times = {r["name"]: [] for r in plan}
    tp = prompts[: max(1, a.timing_batch // a.per_prompt)]
    for _ in range(0 if a.no_timing else a.timing_repeats):
        for row in plan:
            t0 = time.perf_counter()
            pipes[row["model"]].generate(tp, num=a.per_prompt, guidance=row["guidance"], steps=row["steps"],
                                         sampler=row["sampler"], seed=a.seed + 1, batch_size=a.batch_size)
            times[row["name"]].append((time.perf_counter() - t0) / (len(tp) * a.per_prompt))
    for r in rows:
        r["seconds_per_video_all"] = times[r["name"]]
        r["seconds_per_video"] = statistics.median(times[r["name"]]) if times[r["name"]] else r["eval_seconds"] / n
    res = {"teacher": a.teacher, "students": students, "num_videos": n, "cpu": cpu_name(),
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "args": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}},
           "real": tables.score(real["video"][:, :, :frames], real["labels"], real["directions"], clf),
           "rows": rows}
    res["goals_at_4"] = goals(res, 4)
    (a.out / "results.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    (a.out / "table.md").write_text(markdown(res))
    figure(res, a.out / "quality_vs_steps.png")
    from PIL import Image

    from videodiff.conditional import frame_strip

    show = [d * len(a.directions) * a.per_prompt for d in range(0, 10, 2)]  # "digit d moving <first>", even d
    names = [r["name"] for r in rows if r["steps"] == 4 or r["method"] == "teacher-default"]
    strips = [frame_strip(samples[name][show][:, :, ::2]) for name in names]
    Image.fromarray(np.concatenate(strips, 1)).save(a.out / "samples_4_steps.png")
    (a.out / "samples_4_steps.txt").write_text("columns, left to right: " + "; ".join(names) + "\n")
    print(markdown(res))
    print(json.dumps(res["goals_at_4"], indent=1))


if __name__ == "__main__":
    main()
