"""Conditional sampling with a distilled student (issue 30; paper Sec. 3.1): temporal extension and interpolation of
held-out captioned Moving MNIST clips by the replacement and the gradient method (eq. 6), the student on its own few
DDIM steps against its teacher at its task defaults and at the same few steps.

Each held-out test clip (16 frames) gives its caption as the prompt and either its first ``--given`` frames
(**extend** to 16 frames: one block whose first frames are known), every second frame (**interpolate** at
frameskip 2: 8 key frames -> 15 frames) or the clip area-downsampled by 2 (**upsample**, eq. 7, every frame
generated). Scored on the frames the model generates, against the true ones: PSNR and
SSIM (data range [-1, 1]: :mod:`videodiff.metrics.paired`), and on the whole output with the project's Moving MNIST
classifier: digit and direction accuracy of the caption (the student must keep the conditioning's digit and its
motion). Same clips, prompts and seed for every row; NFE counts network evaluations per video (a guided teacher: 2 per
step; the gradient method adds a backward pass, not counted); seconds per video are measured in the same run.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/distill_conditional.py --teacher moving-mnist \\
        --student moving-mnist-fast --student moving-mnist-fast-w --num 24 \\
        --out benchmarks/results/distill/conditional

A student that takes ``w`` as an input (``model.guidance_input``) samples at ``--guidance``; one with ``w`` in its
weights at 0. Writes ``results.json``, ``table.md`` and ``samples.png`` (per task, the first clip: truth, then each
row; known frames outlined).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from videodiff import VideoPipeline
from videodiff.metrics.classifier import load_classifier
from videodiff.metrics.paired import psnr, ssim
from videodiff.runtime import tune_malloc


def _distill_steps():
    """benchmarks/distill_steps.py (its ``_tables()`` loads pretrained_tables.py, its ``cpu_name()`` names the CPU)."""
    spec = importlib.util.spec_from_file_location("distill_steps", Path(__file__).with_name("distill_steps.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rows_plan(a, students: dict[str, VideoPipeline]) -> list[dict]:
    """Per task and method: the teacher at its task defaults, the teacher at ``--steps`` DPM-Solver++ steps, then
    each student at its own grid (its defaults)."""
    plan = []
    for task in a.tasks:
        for method in a.methods:
            plan.append({"task": task, "method": method, "model": "teacher", "name": "teacher, task defaults",
                         "sampler": None, "steps": None, "guidance": a.guidance})
            plan.append({"task": task, "method": method, "model": "teacher",
                         "name": f"teacher, DPM-Solver++ {a.steps}", "sampler": "dpmpp2m", "steps": a.steps,
                         "guidance": a.guidance})
            for name, pipe in students.items():
                w_input = pipe.config.model.guidance_input
                plan.append({"task": task, "method": method, "model": name,
                             "name": f"{name} (DDIM {pipe.config.sample.steps}"
                                     f"{', w as input' if w_input else ', w in the weights'})",
                             "sampler": None, "steps": None, "guidance": a.guidance if w_input else 0.0})
    return plan


def run_row(pipe: VideoPipeline, row: dict, real: torch.Tensor, captions: list[str], a) -> tuple[torch.Tensor, list]:
    """The row's outputs ``(B, C, F, H, W)`` and the mask of generated frames ``(F,)``."""
    kw = dict(prompt=captions, guidance=row["guidance"], method=row["method"], steps=row["steps"],
              sampler=row["sampler"], seed=a.seed)
    if row["task"] == "extend":
        out = pipe.extend(real[:, :, :a.given], frames=real.shape[2], context=a.given, **kw)
        generated = torch.arange(real.shape[2]) >= a.given
    elif row["task"] == "upsample":
        from videodiff.conditional import Downsample

        low = Downsample(real.shape[-1] // 2, "area")(real)
        out = pipe.upsample(low, down="area" if row["method"] == "replacement" else None, **kw)
        generated = torch.ones(real.shape[2], dtype=torch.bool)
    else:
        out = pipe.interpolate(real[:, :, ::2], 2, **kw)
        generated = torch.arange(out.shape[2]) % 2 == 1
    return out, generated


def score(out: torch.Tensor, truth: torch.Tensor, generated: torch.Tensor, real: dict, clf, tables) -> dict:
    fut, true = out[:, :, generated], truth[:, :, generated]
    per_video_psnr = psnr(fut, true).mean(1)
    per_video_ssim = ssim(fut, true).mean(1)
    s = tables.score(out, real["labels"], real["directions"], clf)
    n = out.shape[0]
    res = {"psnr": float(per_video_psnr.mean()), "psnr_se": float(per_video_psnr.std() / math.sqrt(n)),
           "ssim": float(per_video_ssim.mean()), "ssim_se": float(per_video_ssim.std() / math.sqrt(n)),
           "digit_accuracy": s["digit_accuracy"], "direction_accuracy": s["direction_accuracy"]}
    for key in ("digit_accuracy", "direction_accuracy"):
        res[key + "_se"] = math.sqrt(res[key] * (1 - res[key]) / n)
    return res


def markdown(res: dict) -> str:
    out = []
    for task in res["args"]["tasks"]:
        out.append(f"\n**{task}** ({res['tasks'][task]})\n\n| method | row | NFE / video | PSNR dB (± s.e.) | "
                   "SSIM (± s.e.) | digit acc. | direction acc. | s / video |\n|---|---|---|---|---|---|---|---|")
        for r in (r for r in res["rows"] if r["task"] == task):
            out.append(f"| {r['method']} | {r['name']} | {r['nfe']} | {r['psnr']:.2f} ± {r['psnr_se']:.2f} | "
                       f"{r['ssim']:.3f} ± {r['ssim_se']:.3f} | {r['digit_accuracy']:.3f} | "
                       f"{r['direction_accuracy']:.3f} | {r['seconds_per_video']:.3f} |")
    return "\n".join(out) + "\n"


def figure(res: dict, samples: dict, truth: torch.Tensor, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [("truth", None, truth[0])] + [(f"{k[0]} / {k[1]} / {k[2]}", k[0], v[0]) for k, v in samples.items()]
    fig, axes = plt.subplots(len(lines), truth.shape[2], figsize=(truth.shape[2] * 0.6, len(lines) * 0.7))
    for i, (label, task, video) in enumerate(lines):
        for j in range(truth.shape[2]):
            ax = axes[i, j]
            ax.axis("off")
            if j < video.shape[1]:
                ax.imshow(video[0, j].numpy(), cmap="gray", vmin=-1, vmax=1)
                known = task is not None and ((task == "extend" and j < res["args"]["given"])
                                              or (task == "interpolate" and j % 2 == 0))
                if known:
                    ax.add_patch(plt.Rectangle((-0.5, -0.5), video.shape[-1], video.shape[-2], fill=False,
                                               edgecolor="red", lw=1.5))
        axes[i, 0].text(-2, video.shape[-2] / 2, label, ha="right", va="center", fontsize=6)
    fig.subplots_adjust(left=0.3, wspace=0.05, hspace=0.1)
    fig.savefig(path, dpi=110)


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="moving-mnist")
    p.add_argument("--student", action="append", default=[], help="a distilled student (shipped name or run)")
    p.add_argument("--tasks", nargs="+", default=["extend", "interpolate", "upsample"],
                   choices=["extend", "interpolate", "upsample"])
    p.add_argument("--methods", nargs="+", default=["replacement", "gradient"], choices=["replacement", "gradient"])
    p.add_argument("--steps", type=int, default=4, help="the teacher's few-step row (DPM-Solver++(2M))")
    p.add_argument("--guidance", type=float, default=2.0)
    p.add_argument("--given", type=int, default=8, help="extend: the known first frames")
    p.add_argument("--num", type=int, default=24, help="held-out clips")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/distill/conditional"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    steps_bench = _distill_steps()
    tables = steps_bench._tables()
    teacher = VideoPipeline.from_pretrained(a.teacher, device="cpu", precision="fp32")
    students = {s: VideoPipeline.from_pretrained(s, device="cpu", precision="fp32") for s in a.student}
    pipes = {"teacher": teacher, **students}
    clf = load_classifier("moving-mnist-32")
    frames = teacher.config.data.num_frames
    real = tables.real_clips(teacher.config.data, a.num, frames)
    truth = real["video"]
    rows, samples = [], {}
    for row in rows_plan(a, students):
        pipe = pipes[row["model"]]
        calls = []
        hook = pipe.denoiser.net.register_forward_hook(lambda mod, args, out: calls.append(out.shape[0]))
        t0 = time.perf_counter()
        out, generated = run_row(pipe, row, truth, real["captions"], a)
        seconds = time.perf_counter() - t0
        hook.remove()
        ref = truth[:, :, :out.shape[2]]
        s = score(out, ref, generated, real, clf, tables)
        settings = pipe.settings(row["task"], sampler=row["sampler"], steps=row["steps"])
        r = {**row, **s, "sampler": settings["sampler"], "steps": settings["steps"], "nfe": sum(calls) // a.num,
             "seconds_per_video": seconds / a.num}
        rows.append(r)
        samples[(row["task"], row["method"], row["name"])] = out[:1]
        print(f"{row['task']} {row['method']} {row['name']}: PSNR {s['psnr']:.2f} SSIM {s['ssim']:.3f} digit "
              f"{s['digit_accuracy']:.3f} direction {s['direction_accuracy']:.3f} NFE {r['nfe']} "
              f"{r['seconds_per_video']:.2f} s/video", flush=True)
    res = {"teacher": a.teacher, "students": a.student, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                  for k, v in vars(a).items()},
           "tasks": {"extend": f"first {a.given} of {frames} frames known",
                     "interpolate": f"every second of {frames - 1} frames known (frameskip 2)",
                     "upsample": f"{frames} frames area-downsampled by 2 known (eq. 7 / low-frequency replacement)"},
           "cpu": steps_bench.cpu_name(), "torch_threads": torch.get_num_threads(), "rows": rows}
    (a.out / "results.json").write_text(json.dumps(res, indent=1))
    (a.out / "table.md").write_text(markdown(res))
    figure(res, samples, truth[:1], a.out / "samples.png")
    print(markdown(res))


if __name__ == "__main__":
    main()
