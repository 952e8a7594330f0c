"""Sampling throughput of a trained model per precision (and compiled), side by side in one run.

    python benchmarks/sample_throughput.py                                  # the shipped model, CPU, fp32 and bf16
    python benchmarks/sample_throughput.py --device cuda --num 64 --precision fp32 bf16 --compile

Each setting loads the model afresh (:func:`videodiff.pipeline.load_model` with ``precision`` / ``compile``), draws
one untimed warm-up batch (with ``--compile``: the compilation, reported as ``first_s``), then times ``--num``
text-to-video samples (``--prompts`` cycled, guidance ``--guidance``, DPM-Solver++(2M), ``--steps`` steps) with the
same seed, and reports videos/s, denoiser calls/s and the largest difference from the first setting's videos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from videodiff.pipeline import load_model, pick_device, sample_from_prompts, sample_videos
from videodiff.precision import PRECISIONS

PROMPTS = ("digit 0 moving right", "digit 4 moving up", "digit 7 moving left", "digit 3 moving down")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _draw(loaded, num: int, a: argparse.Namespace) -> torch.Tensor:
    kw = dict(steps=a.steps, sampler="dpmpp2m", seed=0, batch_size=a.batch_size)
    if loaded.config.text.enabled:
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(num)]
        return sample_from_prompts(loaded.denoiser, loaded.config, prompts, 1, guidance=a.guidance, **kw)
    return sample_videos(loaded.denoiser, loaded.config, num, **kw)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="moving-mnist", help="shipped model name or run directory")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true", help="also measure each precision compiled")
    p.add_argument("--num", type=int, default=16, help="videos timed per setting (default 16)")
    p.add_argument("--batch-size", type=int, default=None, help="videos per batch (default: --num)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance w (text models)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    if a.num < 1 or a.steps < 1:
        p.error("--num and --steps must be >= 1")
    a.batch_size = a.batch_size or a.num
    device = pick_device(a.device)
    rows, ref = [], None
    for prec in a.precision:
        for comp in ([False, True] if a.compile else [False]):
            loaded = load_model(a.model, device=str(device), precision=prec, compile=comp)
            t = time.perf_counter()
            _draw(loaded, min(a.num, a.batch_size), a)  # warm-up (and compilation)
            _sync(device)
            first = time.perf_counter() - t
            t = time.perf_counter()
            videos = _draw(loaded, a.num, a)
            _sync(device)
            dt = time.perf_counter() - t
            calls = a.steps * (2 if loaded.config.text.enabled and a.guidance else 1) * -(-a.num // a.batch_size)
            row = dict(precision=loaded.precision, compile=comp, num=a.num, steps=a.steps, seconds=dt, first_s=first,
                       videos_per_s=a.num / dt, denoiser_calls_per_s=calls / dt,
                       max_abs_diff_vs_first=None if ref is None else float((videos - ref).abs().max()))
            ref = videos if ref is None else ref
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    out = dict(model=a.model, device=str(device), torch=torch.__version__, command=" ".join(sys.argv), rows=rows)
    print("| precision | compiled | videos | s | videos/s | x first row | max |diff| vs first |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = "–" if r["max_abs_diff_vs_first"] is None else f"{r['max_abs_diff_vs_first']:.3f}"
        print(f"| {r['precision']} | {r['compile']} | {r['num']} | {r['seconds']:.1f} | {r['videos_per_s']:.2f} | "
              f"{r['videos_per_s'] / rows[0]['videos_per_s']:.2f} | {diff} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
