"""Autoregressive extension of held-out Moving MNIST clips with a trained model (paper Sec. 4.4, Table 4, Fig. 4).

Quality experiment, not a timed test. Each held-out test clip is cut after its first ``--given`` frames; the model
extends it to ``--frames`` frames, block by block with context ``--context``, once per conditioning method
(gradient method eq. 6, replacement method eq. 1 / eq. 3), from the same seed. Reported per method:

The gradient method runs with ``x~`` clamped to the data range [-1, 1] (the CLI's default when the model clips
``x_hat``) and, for the weights in ``--literal``, also as eq. (6) literally (``x~`` unbounded): with a trained
network the correction is enormous at high noise (the eps-parameterised ``x_hat`` amplifies errors of the network's
Jacobian by ``1 / alpha_t``, and eq. 6 divides by ``alpha_t`` again).

* error to the true continuation, per future frame: MSE and PSNR (pixels in [0, 1]) and SSIM (Wang et al. 2004,
  11x11 Gaussian window, sigma 1.5: :mod:`videodiff.metrics.paired`);
* temporal coherence across block boundaries: the mean squared difference between consecutive frames where a block
  starts (last conditioning frame -> first generated frame) divided by the same quantity within blocks. A coherent
  video has a ratio near the real clips' ratio (about 1); blocks that ignore their context jump at the boundary.

Baselines: "copy last frame" (repeat the last given frame) and "unconditional" (fresh samples, no conditioning).
Writes ``results.json``, ``metrics.png`` (per-frame curves) and ``samples.png`` (Fig. 4-style strips, conditioning
frames outlined red) into ``--out-dir``, and prints a markdown table.

    python benchmarks/extension.py --checkpoint runs/ext --num 16 --given 4 --context 4 --frames 24 --steps 64 \
        --w-r 1 4 --literal 1

``--gaussian`` instead prints the exact-Gaussian tables of BENCHMARKS.md (no model needed): distances of each
method's conditional samples to the exact ``p(x^b | x^a)`` (temporal, eq. 6) and ``p(x | D x = y)`` (eq. 7).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from videodiff.conditional import extend, extension_plan, frame_strip
from videodiff.data import build_dataset
from videodiff.denoiser import Denoiser
from videodiff.metrics.paired import frame_pair_metrics
from videodiff.pipeline import load_model
from videodiff.sampling import sampler_options


# ------------------------------------------------------------------------------------------------ metrics


def frame_metrics(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-frame MSE, PSNR, SSIM (:mod:`videodiff.metrics.paired`) of videos ``(B, C, F, H, W)`` in [-1, 1], with
    the prediction clamped to [-1, 1]; MSE as on [0, 1] pixels (a quarter of it on [-1, 1]), PSNR capped at
    100 dB (MSE 1e-10 on [0, 1]) where a frame is copied exactly. Shape (B, F)."""
    m = frame_pair_metrics(pred.clamp(-1, 1), truth)
    return {"mse": (m["mse"] / 4).numpy(), "psnr": m["psnr"].clamp(max=100.0).numpy(), "ssim": m["ssim"].numpy()}


def boundary_ratio(video: torch.Tensor, plan) -> tuple[float, float, float]:
    """(mean squared frame difference at block starts, within blocks, their ratio) for videos ``(B, C, F, H, W)``."""
    d = (video[:, :, 1:] - video[:, :, :-1]).double().square().mean(dim=(1, 3, 4))  # (B, F-1): frame i -> i+1
    boundary, within = set(), set()
    for blk in plan:
        if not blk.known:
            continue
        first = blk.start + blk.new[0]
        boundary.add(first - 1)  # last conditioning frame -> first generated frame
        within.update(blk.start + i for i in blk.new[:-1])  # generated -> generated
    bnd = d[:, sorted(boundary)].mean().item()
    wit = d[:, sorted(within - boundary)].mean().item()
    return bnd, wit, (bnd / wit if wit > 0 else float("nan"))


# ------------------------------------------------------------------------------------------------ exact Gaussian


def gaussian_tables(n: int = 4000, steps: int = 128) -> None:
    """Exact-Gaussian comparison of the methods (the setting of tests/test_conditional.py, more variants)."""
    from videodiff.conditional import Downsample, frame_mask, sample_conditional
    from videodiff.gaussian import GaussianData, ar1_covariance
    from videodiff.schedule import ScheduleConfig

    sched = ScheduleConfig()
    gen = lambda: torch.Generator().manual_seed(1)  # noqa: E731

    def floors(c):
        return (torch.trace(c) / n).sqrt().item(), ((torch.trace(c) ** 2 + c.square().sum()) / n).sqrt().item()

    def dist(x, idx, m, c):
        xb = x.reshape(n, -1)[:, idx]
        mh, ch = xb.mean(0), torch.cov(xb.T)
        d = m.numel()
        kl = 0.5 * (torch.trace(torch.linalg.solve(c, ch)) + (m - mh) @ torch.linalg.solve(c, m - mh) - d
                    + torch.logdet(c) - torch.logdet(ch))
        return (mh - m).norm().item(), (ch - c).norm().item(), kl.item()

    pix = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    for frames, k, rho in [(6, 2, 0.95), (8, 4, 0.95), (6, 1, 0.9)]:
        shape = (1, frames, 1, 2)
        data = GaussianData(torch.zeros(frames * 2), ar1_covariance(frames, rho, pix), shape)
        mask = frame_mask(frames, range(k))
        x_a = torch.zeros(n, *shape, dtype=torch.float64)
        x_a[:, :, :k] = torch.tensor([1.5, 1.0], dtype=torch.float64)
        known = mask[0].expand(shape)
        m, c = data.conditional(known, x_a[0][known])
        idx = ~known.reshape(-1)
        cond = GaussianData(m, c, (int(idx.sum()),))

        def oracle(z, logsnr, **kw):
            out = x_a.reshape(n, -1).clone()
            out[:, idx] = cond.denoise(z.reshape(n, -1)[:, idx], logsnr)
            return out.reshape(z.shape)

        fm, fc = floors(c)
        print(f"\nAR(1) rho={rho}, {frames} frames x 2 pixels, first {k} frames known, N={n}, {steps} steps; "
              f"noise floors: mean {fm:.3f}, cov {fc:.3f}, KL ~{m.numel() * (m.numel() + 1) / (4 * n):.3f}")
        print("| sampler | method | mean dist | cov dist (Frobenius) | KL(sample Gaussian ‖ exact) |")
        print("|---|---|---|---|---|")
        for sampler, extra in [("ancestral γ=0.3", {"sampler": "ancestral", "gamma": 0.3}),
                               ("DDIM η=0", {"sampler": "ddim", "eta": 0.0})]:
            rows = [("exact conditional denoiser (reference)", oracle, {"method": "replacement"}),
                    ("replacement, eq. 1 draws", data.denoise, {"method": "replacement"}),
                    ("replacement, eq. 3 draws", data.denoise, {"method": "replacement", "variant": "posterior"})]
            rows += [(f"gradient, w_r={w:g}", data.denoise, {"method": "gradient", "w_r": w}) for w in (0.5, 1, 2)]
            for name, den, kw in rows:
                x = sample_conditional(den, (n, *shape), sched, x_a=x_a, mask=mask, steps=steps, generator=gen(),
                                       dtype=torch.float64, sampler=extra["sampler"],
                                       options={k: v for k, v in extra.items() if k != "sampler"}, **kw)
                dm, dc, kl = dist(x, idx, m, c)
                print(f"| {sampler} | {name} | {dm:.3f} | {dc:.3f} | {kl:.3f} |")

    import torch.nn.functional as F_

    s1 = ar1_covariance(4, 0.8)
    shape = (1, 1, 4, 4)
    data = GaussianData(torch.zeros(16), torch.kron(s1, s1), shape)
    x0 = data.sample(1, torch.Generator().manual_seed(0))
    for mode in ("area", "bilinear"):
        down = Downsample(2, mode)
        d_mat = down(torch.eye(16, dtype=torch.float64).reshape(16, *shape)).reshape(16, -1).T
        y0 = down(x0)
        gain = data.cov @ d_mat.T @ torch.linalg.inv(d_mat @ data.cov @ d_mat.T)
        m = gain @ y0.reshape(-1)
        c = data.cov - gain @ d_mat @ data.cov
        c = (c + c.T) / 2
        fm, fc = floors(c)
        eig = torch.linalg.eigvalsh(d_mat @ d_mat.T)
        print(f"\nSuper-resolution 4x4 -> 2x2 ({mode}; eigenvalues of D D^T {eig.min():.3f}..{eig.max():.3f}), "
              f"AR(1) 0.8 in both axes, N={n}, {steps} ancestral steps; floors: mean {fm:.3f}, cov {fc:.3f}")
        print("| method | mean dist | cov dist | RMS(D x - y) |")
        print("|---|---|---|---|")
        y = y0.expand(n, 1, 1, 2, 2)

        def sr(x):
            flat = x.reshape(n, -1)
            res = (down(x) - y).reshape(n, -1).square().mean().sqrt().item()
            return (flat.mean(0) - m).norm().item(), (torch.cov(flat.T) - c).norm().item(), res

        oracle = GaussianData(m, c, shape)
        rows = [("exact conditional denoiser (reference)",
                 sample_conditional(oracle.denoise, (n, *shape), sched, steps=steps, generator=gen(),
                                    dtype=torch.float64)),
                ("unconditional samples", sample_conditional(data.denoise, (n, *shape), sched, steps=steps,
                                                             generator=gen(), dtype=torch.float64)),
                ("bilinear upsampling of y", F_.interpolate(y0.reshape(1, 1, 2, 2), size=(4, 4), mode="bilinear")
                 .reshape(1, *shape).expand(n, *shape))]
        for w in (1, 2, 4, 8, 16):
            rows.append((f"eq. 7, w_r={w}", sample_conditional(data.denoise, (n, *shape), sched, y=y, down=down,
                                                               w_r=w, steps=steps, generator=gen(),
                                                               dtype=torch.float64)))
        for name, x in rows:
            dm, dc, res = sr(x)
            print(f"| {name} | {dm:.3f} | {dc:.3f} | {res:.2g} |")


# ------------------------------------------------------------------------------------------------ experiment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="runs/ext")
    ap.add_argument("--num", type=int, default=16, help="held-out clips")
    ap.add_argument("--given", type=int, default=4, help="real frames each clip starts from")
    ap.add_argument("--context", type=int, default=4)
    ap.add_argument("--frames", type=int, default=24, help="total frames after extension")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--w-r", type=float, nargs="+", default=[1.0, 4.0], help="gradient-method weights to run")
    ap.add_argument("--literal", type=float, nargs="*", default=[1.0],
                    help="weights also run as eq. 6 literally, without clamping x~ to [-1, 1]")
    ap.add_argument("--unclipped", action="store_true",
                    help="also run the gradient method with the gradient taken through the unclipped x_hat "
                         "(x~ clamped to [-1, 1] afterwards)")
    ap.add_argument("--save-videos", action="store_true", help="also save all videos to OUT_DIR/videos.pt")
    ap.add_argument("--skip-posterior", action="store_true", help="do not run the eq. 3 replacement variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--out-dir", type=Path, default=Path("benchmarks/results/extension"))
    ap.add_argument("--gaussian", action="store_true", help="print the exact-Gaussian tables instead (no model)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.gaussian:
        gaussian_tables()
        return

    loaded = load_model(a.checkpoint, device="cpu", precision="fp32")
    cfg = loaded.config
    f_model = cfg.data.num_frames
    data_cfg = dataclasses.replace(cfg.data, num_frames=a.frames)  # the same clips, a longer horizon
    ds = build_dataset(data_cfg, "test")
    truth = torch.stack([ds[i]["video"] for i in range(a.num)])  # (B, C, frames, H, W)
    given = truth[:, :, : a.given]
    plan = extension_plan(a.frames, f_model, a.context, a.given)
    sk = {"steps": a.steps, "sampler": cfg.sample.sampler,
          "options": sampler_options(cfg.sample.sampler, gamma=cfg.sample.gamma, eta=cfg.sample.eta)}
    print(f"model {loaded.path} (step {loaded.step}), {f_model} frames {cfg.data.image_size}px; {a.num} test clips, "
          f"{a.given} given -> {a.frames} frames, context {a.context}, {len(plan)} blocks, {sk}")

    runs: dict[str, torch.Tensor] = {}
    timing: dict[str, float] = {}
    unclipped = Denoiser(loaded.denoiser.net, cfg.diffusion.parameterization, clip_x=False)
    methods = []
    for w in a.w_r:
        if w in a.literal:
            methods += [(f"gradient w_r={w:g}, literal eq. 6", loaded.denoiser, dict(method="gradient", w_r=w))]
        methods += [(f"gradient w_r={w:g}", loaded.denoiser, dict(method="gradient", w_r=w, guidance_clip=(-1.0, 1.0)))]
        if a.unclipped:
            methods += [(f"gradient w_r={w:g}, unclipped grad", unclipped,
                         dict(method="gradient", w_r=w, guidance_clip=(-1.0, 1.0)))]
    methods += [("replacement eq.1", loaded.denoiser, dict(method="replacement", variant="marginal"))]
    if not a.skip_posterior:
        methods += [("replacement eq.3", loaded.denoiser, dict(method="replacement", variant="posterior"))]
    for name, den, kw in methods:
        t0 = time.perf_counter()
        runs[name] = extend(den, cfg.diffusion.schedule, total_frames=a.frames, block_frames=f_model,
                            context=a.context, video=given, generator=torch.Generator().manual_seed(a.seed),
                            progress=True, **kw, **sk)
        timing[name] = time.perf_counter() - t0
        print(f"  {name}: {timing[name]:.0f} s")
    t0 = time.perf_counter()  # no conditioning at all: independent samples of the same length, block by block
    runs["unconditional"] = extend(loaded.denoiser, cfg.diffusion.schedule, total_frames=a.frames,
                                   block_frames=f_model, context=0, num_videos=a.num,
                                   frame_shape=tuple(given.shape[i] for i in (1, 3, 4)),
                                   generator=torch.Generator().manual_seed(a.seed), progress=True, **sk)
    timing["unconditional"] = time.perf_counter() - t0
    runs["copy last frame"] = torch.cat([given, given[:, :, -1:].expand(-1, -1, a.frames - a.given, -1, -1)], 2)

    meta = {"checkpoint_step": loaded.step, "model_frames": f_model, "image_size": cfg.data.image_size,
            "blocks": len(plan), **sk}
    a.out_dir.mkdir(parents=True, exist_ok=True)
    if a.save_videos:
        torch.save({"runs": runs, "truth": truth}, a.out_dir / "videos.pt")
    results = analyze(runs, truth, plan, timing, a, meta)
    _plots(results, runs, truth, a, plan)


def analyze(runs, truth, plan, timing, a, meta) -> dict:
    """Metrics per method, paired differences against the replacement method, results.json, markdown tables."""
    future = slice(a.given, a.frames)
    results = {"config": {**vars(a), "out_dir": str(a.out_dir), **meta}, "methods": {}}
    gt_b, gt_w, gt_r = boundary_ratio(truth, plan)
    results["truth_boundary"] = {"boundary": gt_b, "within": gt_w, "ratio": gt_r}
    per_clip = {}
    for name, video in runs.items():
        m = frame_metrics(video[:, :, future], truth[:, :, future])  # (B, F_future) each
        per_clip[name] = m
        b, w, r = boundary_ratio(video, plan)
        results["methods"][name] = {
            **{f"{k}_per_frame": v.mean(0).tolist() for k, v in m.items()},
            **{f"{k}_mean": float(v.mean()) for k, v in m.items()},
            **{f"{k}_se": float(v.mean(1).std(ddof=1) / math.sqrt(v.shape[0])) for k, v in m.items()},
            **{f"{k}_first": float(v[:, 0].mean()) for k, v in m.items()},
            "boundary_msd": b, "within_msd": w, "boundary_ratio": r, "seconds": timing.get(name, 0.0),
        }
    ref = "replacement eq.1"
    if ref in per_clip:  # paired over the same clips: mean difference and its standard error
        for name, m in per_clip.items():
            for k in ("mse", "ssim"):
                d_all = m[k].mean(1) - per_clip[ref][k].mean(1)
                d_first = m[k][:, 0] - per_clip[ref][k][:, 0]
                results["methods"][name][f"{k}_diff_vs_replacement"] = [
                    float(d_all.mean()), float(d_all.std(ddof=1) / math.sqrt(len(d_all)))]
                results["methods"][name][f"{k}_first_diff_vs_replacement"] = [
                    float(d_first.mean()), float(d_first.std(ddof=1) / math.sqrt(len(d_first)))]
    (a.out_dir / "results.json").write_text(json.dumps(results, indent=1))

    print("\n| method | MSE ↓ | PSNR ↑ | SSIM ↑ | boundary / within frame change | time (s) |")
    print("|---|---|---|---|---|---|")
    for name, r in results["methods"].items():
        print(f"| {name} | {r['mse_mean']:.4f} ± {r['mse_se']:.4f} | {r['psnr_mean']:.2f} ± {r['psnr_se']:.2f} | "
              f"{r['ssim_mean']:.3f} ± {r['ssim_se']:.3f} | {r['boundary_ratio']:.2f} | {r['seconds']:.0f} |")
    print(f"| real continuation | 0 | ∞ | 1 | {gt_r:.2f} | |")
    if ref in per_clip:
        print(f"\nPaired differences to {ref} over the same {truth.shape[0]} clips (mean ± standard error):")
        print("| method | ΔMSE, all future frames | ΔMSE, first new frame | ΔSSIM, all | ΔSSIM, first new frame |")
        print("|---|---|---|---|---|")
        for name, r in results["methods"].items():
            if name == ref:
                continue
            cells = [r[f"{k}_diff_vs_replacement"] if "first" not in k else r[k.replace("_first", "") +
                     "_first_diff_vs_replacement"] for k in ("mse", "mse_first", "ssim", "ssim_first")]
            print(f"| {name} | " + " | ".join(f"{m:+.4f} ± {se:.4f}" for m, se in cells) + " |")
    return results


def _plots(results, runs, truth, a, plan) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    frames = np.arange(a.given, a.frames)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, key, label in zip(axes, ("mse", "psnr", "ssim"), ("MSE ↓", "PSNR (dB) ↑", "SSIM ↑")):
        for name, r in results["methods"].items():
            ax.plot(frames, r[f"{key}_per_frame"], marker=".", label=name)
        for blk in plan[1:]:
            ax.axvline(blk.start + blk.new[0] - 0.5, color="gray", lw=0.5, ls=":")
        ax.set_xlabel("frame (dotted: block starts)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Extension of {a.num} held-out Moving MNIST clips from {a.given} frames "
                 f"(context {a.context}, {a.steps} steps)")
    fig.tight_layout()
    fig.savefig(a.out_dir / "metrics.png", dpi=110)
    plt.close(fig)

    known = [i < a.given for i in range(a.frames)]
    strips = [("real", truth)] + [(n, v) for n, v in runs.items() if n != "copy last frame"]
    rows = [frame_strip(v[:3].float(), None if n == "unconditional" else known) for n, v in strips]
    width = max(r.shape[1] for r in rows)
    gap = np.full((4, width, 3), 255, np.uint8)
    img = np.concatenate([np.concatenate([r, gap]) for r in rows])
    Image.fromarray(img).resize((img.shape[1] * 2, img.shape[0] * 2), Image.NEAREST).save(a.out_dir / "samples.png")
    print("strips (top to bottom, 3 clips each):", ", ".join(n for n, _ in strips))
    print(f"wrote {a.out_dir}/results.json, metrics.png, samples.png")


if __name__ == "__main__":
    main()
