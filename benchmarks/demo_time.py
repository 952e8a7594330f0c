"""`make demo` with the distilled student (today's default) against the teacher's demo, timed side by side (issue 30:
"`make demo` at most half its time on the same machine").

Runs ``videodiff demo`` alternately with its default (the student for text to video, its teacher for the
conditional rows), with ``--model moving-mnist`` (the teacher for every row, 20 DPM-Solver++ steps) and with each
``--also`` variant, ``--repeats`` times each, each a fresh process (as a user runs it: imports, loading, sampling,
writing the page), and reports the median wall time of each, its share of the teacher's and the per-row timings the
demo writes into ``demo.json``. Time it alone: a second torch process on the same cores slows both (OpenMP
spin-waits).

    python benchmarks/demo_time.py --repeats 2 --also "--task-model moving-mnist-fast-w" \
        --out benchmarks/results/demo_time.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name and whether it has native bf16 (the demo's ``auto`` precision differs by that)."""
    from videodiff.precision import has_native_bf16
    from videodiff.precision_probe import cpu_model

    return f"{cpu_model()} ({'native bf16' if has_native_bf16('cpu') else 'no native bf16'})"


def run_once(extra: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "videodiff", "demo", "--out", str(out), "--no-progress", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    info = json.loads((out / "demo.json").read_text())
    return {"wall_s": round(wall, 2), "demo_s": round(info["seconds"], 2), "timings": info["timings"],
            "model": info["model"], "task_model": info.get("task_model"), "precision": info["precision"],
            "sampler": info["sampler"], "steps": info["steps"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="runs of each demo, alternating (default 2)")
    p.add_argument("--teacher", default="moving-mnist", help="the --model of the comparison demo")
    p.add_argument("--also", action="append", default=[], metavar="ARGS",
                   help='another variant to time, as demo options in one string (repeatable), e.g. '
                        '"--task-model moving-mnist-fast-w" (the student for every row)')
    p.add_argument("--out", type=Path, default=None, help="JSON file for the results (default: print only)")
    a = p.parse_args()
    if a.repeats < 1:
        p.error("--repeats must be >= 1")
    variants = {"default (distilled student)": [], f"--model {a.teacher}": ["--model", a.teacher],
                **{extra: shlex.split(extra) for extra in a.also}}
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for name, extra in variants.items():
                res = run_once(extra, Path(tmp) / f"{list(variants).index(name)}_{len(runs[name])}")
                runs[name].append(res)
                print(f"run {r + 1}: {name}: {res['wall_s']:.1f} s wall ({res['demo_s']:.1f} s in the demo) "
                      f"{res['timings']}", flush=True)
    median = {k: statistics.median(x["wall_s"] for x in v) for k, v in runs.items()}
    old = median[f"--model {a.teacher}"]
    share = {k: round(v / old, 3) for k, v in median.items()}
    res = {"cpu": cpu_name(), "repeats": a.repeats, "median_wall_s": median, "share_of_teacher_demo": share,
           "command": "python " + " ".join(sys.argv), "runs": runs}
    for k, v in median.items():
        print(f"median wall {v:.1f} s ({share[k]:.2f} of the teacher's demo): {k}")
    print(f"on {res['cpu']}")
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
