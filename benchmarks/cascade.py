"""The Fig. 2 cascade from a prompt, against the high-resolution model sampled and extended directly (issue 14).

Quality and time experiment, not a timed test. For each prompt "digit d moving <direction>":

* **cascade** (``videodiff cascade --model moving-mnist-base --prompt ...``): the base model (16 frames, 16x16,
  frameskip 4) samples 16 low-resolution frames spanning 61 frame steps; the shipped 32x32 frameskip-1 model then
  interpolates x4 and super-resolves them in one pass (eq. 7 through ``D`` on every 4th frame, eq. 6 on the context
  frames of the previous window), conditioned on the same prompt, with the command's defaults;
* **direct** (``videodiff sample --model moving-mnist --prompt ...`` then ``videodiff extend --frames 61``): the
  32x32 model samples 16 frames and extends them autoregressively (gradient method, context 8, the prompt and
  guidance in every block) to 61 frames, with those commands' defaults.

Both give 61 frames at 32x32. Scored with the shipped classifier on windows of 16 frames starting at 0, 15, 30, 45
(the classifier reads the first 8 frames of each): cFVD per window position against the same windows of 256 real
61-frame held-out clips; digit accuracy against the prompt in the first window; "digit kept" (the first window's
predicted digit still predicted in the last window); the block-boundary ratio (mean squared frame change where a
window starts over the change inside windows; real clips: about 1); for the cascade, the RMS of ``D x - y`` on the
low-resolution frames; and the wall time of each pipeline (run one after the other in this process).

    python benchmarks/cascade.py --low moving-mnist-base --high moving-mnist --num 8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from extension import boundary_ratio
from superres_interp import _cfvd_ci, _options, _wilson
from videodiff import VideoPipeline
from videodiff.conditional import Downsample, cascade_plan, extension_plan, frame_strip
from videodiff.data import build_dataset
from videodiff.metrics.classifier import classifier_outputs, digit_sets, load_classifier

WINDOWS = (0, 15, 30, 45)
COMPASS = ("right", "up", "left", "down")


def _windows(video: torch.Tensor, length: int = 16) -> list[torch.Tensor]:
    return [video[:, :, s: s + length] for s in WINDOWS]


def _digits(video: torch.Tensor, classifier) -> list[int]:
    logits = classifier_outputs(video, classifier)["digit_logits"]
    return [min(s) if s else -1 for s in digit_sets(logits, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--low", default="moving-mnist-base", help="base model: 16x16, frameskip 4")
    ap.add_argument("--high", default="moving-mnist", help="high-resolution frameskip-1 model")
    ap.add_argument("--num", type=int, default=8, help="prompts (digit i mod 10, direction i mod 4)")
    ap.add_argument("--ref", type=int, default=256, help="real 61-frame held-out clips for cFVD")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=None, help="override every sampler's steps (smoke tests only)")
    ap.add_argument("--save-videos", action="store_true", help="also write OUT_DIR/videos.pt")
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/cascade"))
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    low = VideoPipeline.from_pretrained(a.low, device="cpu", precision=a.precision)
    high = VideoPipeline.from_pretrained(a.high, device="cpu", precision=a.precision)
    lcfg, hcfg = low.config, high.config
    factor = lcfg.data.frameskip // hcfg.data.frameskip
    total = (lcfg.data.num_frames - 1) * factor + 1
    f_model, size = hcfg.data.num_frames, hcfg.data.image_size
    prompts = [f"digit {i % 10} moving {COMPASS[i % 4]}" for i in range(a.num)]
    digits = [i % 10 for i in range(a.num)]
    results = {"config": {**vars(a), "out_dir": str(a.out_dir), "frames": total, "factor": factor,
                          "low_step": low.model.step, "high_step": high.model.step}, "methods": {}}
    videos, timing, extra = {}, {}, {}

    # cascade: base samples, then x4 interpolation + super-resolution with the high model (its own prompt, w = 0)
    t0 = time.perf_counter()
    videos["cascade"], base = low.cascade(prompts, high=high, num=1, low_steps=a.steps, steps=a.steps, seed=a.seed,
                                          progress=True)
    timing["cascade"] = time.perf_counter() - t0
    extra["cascade"] = {"options": _options("cascade", high, steps=a.steps), "consistency_rmse": list(_rmse_ci(
        Downsample(base.shape[-2:], "area")(videos["cascade"][:, :, ::factor]), base))}

    # direct: the high model's own text-to-video sample (its sample defaults), extended to `total` frames
    t0 = time.perf_counter()
    first = high.generate(prompts, seed=a.seed, steps=a.steps, progress=True)
    videos["direct"] = high.extend(first, frames=total, prompt=prompts, context=f_model // 2, seed=a.seed + 1,
                                   steps=a.steps)
    timing["direct"] = time.perf_counter() - t0
    extra["direct"] = {"options": _options("extend", high, steps=a.steps)}

    classifier = load_classifier("moving-mnist-32")
    ds = build_dataset(dataclasses.replace(hcfg.data, num_frames=total), "test")
    real = torch.stack([ds[i]["video"] for i in range(a.ref)]).float()
    real_feats = [classifier_outputs(w, classifier)["features"] for w in _windows(real)]
    plans = {"cascade": cascade_plan(lcfg.data.num_frames, factor, f_model, f_model // 2),
             "direct": extension_plan(total, f_model, f_model // 2, f_model)}
    for name, video in videos.items():
        wins = _windows(video)
        feats = [classifier_outputs(w, classifier)["features"] for w in wins]
        d_first, d_last = _digits(wins[0], classifier), _digits(wins[-1], classifier)
        _, _, ratio = boundary_ratio(video, plans[name])
        _, _, real_ratio = boundary_ratio(real, plans[name])
        results["methods"][name] = {
            "cfvd_per_window": [list(_cfvd_ci(r, f)) for r, f in zip(real_feats, feats)],
            "digit_accuracy": list(_wilson(np.array([d == t for d, t in zip(d_first, digits)]))),
            "digit_kept": list(_wilson(np.array([f == last for f, last in zip(d_first, d_last)]))),
            "boundary_ratio": ratio, "real_boundary_ratio": real_ratio, "seconds": round(timing[name], 1),
            **extra[name]}
    up = torch.nn.functional.interpolate(base.transpose(1, 2).flatten(0, 1), size=(size, size), mode="bilinear",
                                         antialias=False, align_corners=False)
    up = up.reshape(base.shape[0], base.shape[2], -1, size, size).transpose(1, 2)  # the base samples at 32x32
    results["base_digit_accuracy"] = list(_wilson(np.array([d == t for d, t in zip(_digits(up, classifier), digits)])))
    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "results.json").write_text(json.dumps(results, indent=1))
    if a.save_videos:
        torch.save({"videos": videos, "base": base, "prompts": prompts}, a.out_dir / "videos.pt")
    _report(results, prompts)
    _strip(videos, base, factor, a.out_dir)


def _rmse_ci(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    from videodiff.metrics.paired import mean_ci

    return mean_ci((a - b).square().mean(dim=(1, 2, 3, 4)).sqrt().numpy())


def _report(results: dict, prompts: list[str]) -> None:
    n = len(prompts)
    print(f"\n{n} prompts, 61 frames at 32x32; 95 % intervals (cFVD: jackknife over videos)\n")
    print("| pipeline | cFVD windows 0 / 15 / 30 / 45 ↓ | digit acc. ↑ | digit kept ↑ | boundary ratio (real) | "
          "time (s) |")
    print("|---|---|---|---|---|---|")
    for name, r in results["methods"].items():
        cf = " / ".join(f"{c[0]:.0f}" for c in r["cfvd_per_window"])
        acc, kept = r["digit_accuracy"], r["digit_kept"]
        print(f"| {name} | {cf} | {acc[0]:.2f} [{acc[1]:.2f}, {acc[2]:.2f}] | {kept[0]:.2f} [{kept[1]:.2f}, "
              f"{kept[2]:.2f}] | {r['boundary_ratio']:.2f} ({r['real_boundary_ratio']:.2f}) | {r['seconds']:.0f} |")
    b = results["base_digit_accuracy"]
    print(f"\nbase samples alone (bilinear to 32x32, frameskip 4): digit accuracy {b[0]:.2f} [{b[1]:.2f}, {b[2]:.2f}]")
    c = results["methods"]["cascade"]["consistency_rmse"]
    print(f"\ncascade: RMS of D x - y on the low-resolution frames {c[0]:.4f} ± {c[1]:.4f}")


def _strip(videos: dict, base: torch.Tensor, factor: int, out_dir: Path) -> None:
    """First three prompts: the base samples (every 4th frame, upsampled), then each pipeline's frames 0, 4, ..."""
    from PIL import Image

    from videodiff.conditional import upsample_nearest

    size = next(iter(videos.values())).shape[-1]
    rows = [frame_strip(upsample_nearest(base[:3], size), None)]
    rows += [frame_strip(v[:3, :, ::factor], None) for v in videos.values()]
    gap = np.full((4, max(r.shape[1] for r in rows), 3), 255, np.uint8)
    Image.fromarray(np.concatenate([np.concatenate([r, gap]) for r in rows])).save(out_dir / "samples.png")
    print(f"wrote {out_dir}/results.json, samples.png (rows: base, {', '.join(videos)}; every "
          f"{factor}th frame)")


if __name__ == "__main__":
    main()
