"""Does joint image-video training reduce the variance of minibatch gradients? (paper Sec. 4.2, Table 2)

The paper appends N independent image frames to each training video (temporal attention masked so that each image
attends only to itself, ``data.image_frames``) and says this "reduces the variance of minibatch gradients"; Table 2
reports the resulting sample quality for N = 0, 4, 8. This measures the mechanism, with the weights fixed, at stages:
``init`` (the seeded fresh network: its zero-initialised output convolution passes no gradient upstream, so only that
convolution's 145 weights have one, a degenerate stage), ``shipped`` (the shipped model's EMA weights, the only ones
it carries) and ``--checkpoint`` (a run's raw weights, which are what training differentiates). For each N, M
minibatches of B clips (for every N the same clips, and the same times, noise and caption dropout of the video
frames; N frames of other clips of the dataset appended) give M gradients G_m of the training loss as
``videodiff.train.loop`` computes it (``draw_step_noise``, ``_net_kwargs``, ``diffusion_loss``, summed over clips
divided by B; before clipping), for ``joint`` (what training uses: each clip's mean over its F + N frames) and
``video`` (the same forward pass, the mean over the first F frames: the N = 0 loss, since GroupNorm, convolutions and
spatial attention act per frame). The shipped net's learned frame positions (16; not in the paper) get zero rows for
the image frames.

Estimator, from the Gram matrix K = G G^T (M x M): tr(Sigma_B) = (tr K - 1'K1/M) / (M - 1), the unbiased trace of
the covariance of one minibatch gradient; |G|^2 = 1'K1/M^2 - tr(Sigma_B)/M, unbiased for the squared norm of the
true gradient; B_simple = B tr(Sigma_B) / |G|^2 (McCandlish et al. 2018), the per-clip noise scale (the clips of a
minibatch are i.i.d. with diffusion.low_discrepancy off, as shipped). The joint loss weighs the video frames
F/(F+N), so tr(Sigma) and |G|^2 change scale with N; their ratio B_simple is invariant to rescaling the loss.
95% intervals: percentile bootstrap over minibatches (2000 resamples; one resample shared by every N, so the ratios
to N = 0 are paired; resamples where both B_simple are unbounded are left out of the ratio). B_simple is a ratio
whose denominator may be poorly determined (|G|^2 small against tr(Sigma)/M), where a delta method's linearisation
fails and the bootstrap needs none. |G|^2 <= 0 makes B_simple unbounded (inf; null in results.json): M B clips do
not resolve it. Cost: seconds per gradient (median), peak RSS per gradient (VmHWM, reset before each one), and the
bytes autograd saves for backward (activations, deduplicated by storage, parameters excluded).

    python benchmarks/joint_gradient_variance.py --stages init shipped --image-frames 0 4 8 --batches 32
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from videodiff.bench.flops import sync
from videodiff.bench.measure import _peak_mem_bytes, _reset_peak
from videodiff.config import ExperimentConfig, apply_overrides, config_from_dict, config_to_dict
from videodiff.data import build_dataset, collate_clips
from videodiff.losses import diffusion_loss
from videodiff.pipeline import build_model, load_model, pick_device
from videodiff.precision import autocast, prepare_network, resolve_precision
from videodiff.text import build_text_cache
from videodiff.train.loop import _net_kwargs
from videodiff.train.randomness import draw_step_noise, seed_dropout

STATS = ("trace_cov", "grad_sq", "b_simple")


def noise_stats(gram: np.ndarray, batch_size: int) -> dict:
    """tr(Sigma_B), |G|^2 (both unbiased) and B_simple from the Gram matrix of M minibatch gradients."""
    m, total = gram.shape[0], gram.sum()
    trace = (np.trace(gram) - total / m) / (m - 1)
    grad_sq = total / m**2 - trace / m
    return {"trace_cov": trace, "grad_sq": grad_sq,
            "b_simple": batch_size * trace / grad_sq if grad_sq > 0 else np.inf}


def bootstrap(grams: list[np.ndarray], batch_size: int, reps: int = 2000, seed: int = 0) -> list[dict]:
    """Per Gram matrix: the statistics, their 95% percentile-bootstrap intervals, and the intervals of the ratios
    to the first matrix's statistics (one resample of minibatch indices shared by all: paired)."""
    rng, m = np.random.default_rng(seed), grams[0].shape[0]
    draws = [{s: [] for s in STATS} for _ in grams]
    for _ in range(reps):
        idx = rng.integers(0, m, m)
        for d, g in zip(draws, grams):
            for s, v in noise_stats(g[np.ix_(idx, idx)], batch_size).items():
                d[s].append(v)
    out = []
    for d, g in zip(draws, grams):
        row = {s: float(v) for s, v in noise_stats(g, batch_size).items()}
        for s in STATS:
            row[s + "_ci"] = [float(q) for q in np.percentile(d[s], [2.5, 97.5])]
            num, den = np.asarray(d[s]), np.asarray(draws[0][s])
            with np.errstate(invalid="ignore"):  # inf / inf: nan, left out (as a degenerate resample's x / 0)
                ratio = np.divide(num, den, out=np.full_like(num, np.nan), where=den != 0)
            row[s + "_ratio_ci"] = [float(q) for q in np.nanpercentile(ratio, [2.5, 97.5])]
        out.append(row)
    return out


def frame_losses(net, x, logsnr, eps, video_frames: int, parameterization: str, **net_kwargs):
    """Per-clip ``(joint, video, images)`` losses: the training loss (``diffusion_loss`` over all frames) and its
    restrictions to the first ``video_frames`` frames and to the rest (None when there are none). One forward pass:
    the restrictions are ``diffusion_loss`` on those frames with a "network" that returns the output's frames."""
    out = {}

    def tap(z_t, logsnr, **kwargs):
        out["all"] = net(z_t, logsnr, **kwargs)  # (B, C, F + N, H, W)
        return out["all"]

    def part(lo, hi):
        return diffusion_loss(lambda *_, **__: out["all"][:, :, lo:hi], x[:, :, lo:hi], logsnr, eps[:, :, lo:hi],
                              parameterization=parameterization)

    joint = diffusion_loss(tap, x, logsnr, eps, parameterization=parameterization, **net_kwargs)
    return joint, part(0, video_frames), part(video_frames, None) if x.shape[2] > video_frames else None


def widen_frame_positions(net: torch.nn.Module, frames: int) -> None:
    """A learned absolute frame-position table (``model.frame_positions``, not in the paper) shorter than F + N
    gets zero rows for the image frames (its initialisation: image frames get no position embedding)."""
    unet = getattr(net, "unet", net)
    if unet.frame_pos is None or unet.cfg.frame_positions >= frames:
        return
    old = unet.frame_pos.weight.detach()
    new = torch.cat([old, old.new_zeros(frames - len(old), old.shape[1])])  # (F + N, emb_dim)
    unet.frame_pos = torch.nn.Embedding.from_pretrained(new, freeze=False)
    unet.cfg = dataclasses.replace(unet.cfg, frame_positions=frames)


def stage_network(stage: str, a, device) -> tuple[torch.nn.Module, ExperimentConfig]:
    """The network (training mode, fp32 weights) and config of a stage, with ``--set`` applied to the config."""
    src = None if stage == "init" else load_model("moving-mnist" if stage == "shipped" else stage,
                                                  ema=stage == "shipped", device="cpu", precision="fp32",
                                                  compile=False)
    cfg = (src or load_model("moving-mnist", device="cpu", precision="fp32", compile=False)).config
    cfg = config_from_dict(ExperimentConfig, apply_overrides(config_to_dict(cfg), a.set))
    with torch.random.fork_rng():
        torch.manual_seed(a.seed)  # init: as the training loop seeds it with train.seed
        net = build_model(cfg)
    if src is not None:
        net.load_state_dict(src.denoiser.net.state_dict())
    widen_frame_positions(net, cfg.data.num_frames + max(a.image_frames))
    return net.to(device).train(), cfg


def saved_bytes_hooks(params, seen: dict):
    """Record in ``seen`` the bytes of each storage autograd saves for backward (parameters excluded)."""
    skip = {p.untyped_storage().data_ptr() for p in params}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t
    return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)


def measure(net, cfg: ExperimentConfig, k: int, a, device, dtype, text_cache) -> dict:
    """The M gradients' Gram matrices (joint and video-only loss) and the cost, for ``k`` image frames."""
    f, b = cfg.data.num_frames, a.batch_size
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_frames=k))
    data = build_dataset(cfg.data, "train")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(a.seed))  # the same clips for every k
    params = [p for p in net.parameters() if p.requires_grad]
    grads = {"joint": [], "video": []}
    secs, peaks, saved = [], [], []
    drop = cfg.train.cond_drop_prob if text_cache is not None else None
    for m in range(a.batches):
        batch = collate_clips([data[i] for i in order[m * b:(m + 1) * b].tolist()])
        x = batch["video"].to(device)  # (B, C, F + k, H, W): the video frames, then k image frames

        def draw(n):
            return draw_step_noise(range(b), (x.shape[1], f + n, *x.shape[3:]), seed=a.seed, step=m, global_batch=b,
                                   low_discrepancy=cfg.diffusion.low_discrepancy, drop_prob=drop, video_frames=f,
                                   image_frames=n, device=device)

        noise, video = draw(k), draw(0)  # pairing: the video frames get the k = 0 draws (t is the same draw)
        eps = torch.cat([video.eps, noise.eps[:, :, f:]], 2)  # (B, C, F + k, H, W)
        keep = noise.keep
        if keep is not None and k:
            keep = torch.cat([video.keep[:, None].expand(b, f), keep[:, f:]], 1)  # (B, F + k)
        kwargs = _net_kwargs(batch, cfg, text_cache, keep, device)
        seen = {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            seed_dropout(a.seed, m, 0)  # network dropout, as the loop seeds it
            _reset_peak(device)
            t0 = time.perf_counter()
            with autocast(device, dtype), saved_bytes_hooks(params, seen):
                joint, vid, _ = frame_losses(net, x, cfg.diffusion.schedule(noise.t), eps, f,
                                             cfg.diffusion.parameterization, **kwargs)
            g = torch.autograd.grad(joint.sum() / b, params, retain_graph=True)
            sync(device)
            secs.append(time.perf_counter() - t0)
            peaks.append(_peak_mem_bytes(device))
        saved.append(sum(seen.values()))
        for name, g in (("joint", g), ("video", torch.autograd.grad(vid.sum() / b, params))):
            grads[name].append(torch.cat([t.flatten() for t in g]).float().cpu())
    gram = {name: (lambda v: (v @ v.T).numpy())(torch.stack(v).double()) for name, v in grads.items()}
    return {"gram": gram, "seconds_per_gradient": float(np.median(secs)), "peak_rss_mb": max(peaks) / 2**20,
            "saved_for_backward_mb": max(saved) / 2**20}


def _ci(r: dict, s: str, fmt: str = ".3g", suffix: str = "_ci") -> str:
    return "[" + ", ".join(f"{v:{fmt}}" if np.isfinite(v) else "inf" for v in r[s + suffix]) + "]"


def report(results: list[dict], out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    lines = ["| stage | N | loss | tr(Sigma_B) [95%] | abs(G)^2 [95%] | B_simple [95%] | B_simple / N=0 [95%] "
             "| s/grad | peak RSS MB | saved MB |", "|---" * 10 + "|"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, r in enumerate(results):
        for j, (loss, style) in enumerate((("joint", "-"), ("video", "--"))):
            rows = [row[loss] for row in r["rows"]]
            ks = [row["image_frames"] for row in r["rows"]]
            for ax, s in zip(axes, ("trace_cov", "b_simple")):
                y = np.array([row[s] for row in rows])
                y[~np.isfinite(y)] = np.nan  # unbounded: not drawn
                err = np.abs(np.array([row[s + "_ci"] for row in rows]).T - y)
                err[~np.isfinite(err)] = 0
                ax.errorbar(np.array(ks) + 0.1 * i + 0.05 * j, y, yerr=err, ls=style, marker="o", color=f"C{i}",
                            capsize=3, label=f"{r['stage']} ({loss})")
            for row, st in zip(r["rows"], rows):
                lines.append(f"| {r['stage']} | {row['image_frames']} | {loss} | {st['trace_cov']:.3g} "
                             f"{_ci(st, 'trace_cov')} | {st['grad_sq']:.3g} {_ci(st, 'grad_sq')} | "
                             f"{st['b_simple']:.3g} {_ci(st, 'b_simple')} | {_ci(st, 'b_simple', '.2f', '_ratio_ci')} "
                             f"| {row['seconds_per_gradient']:.2f} | {row['peak_rss_mb']:.0f} | "
                             f"{row['saved_for_backward_mb']:.0f} |")
    for ax, title in zip(axes, ("tr(Sigma_B): minibatch gradient variance", "B_simple (clips)")):
        ax.set(xlabel="image frames N", title=title, yscale="log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "variance.png", dpi=120)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stages", nargs="*", default=["init", "shipped"], choices=["init", "shipped"])
    p.add_argument("--checkpoint", action="append", default=[], help="run dir or checkpoint (raw weights); repeatable")
    p.add_argument("--image-frames", nargs="+", type=int, default=[0, 4, 8])
    p.add_argument("--batches", type=int, default=32, help="M minibatches")
    p.add_argument("--batch-size", type=int, default=8, help="B clips per minibatch (the same for every N)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (smoke runs)")
    p.add_argument("--out-dir", default="benchmarks/results/joint_variance")
    a = p.parse_args(argv)
    if a.batches < 2 or sorted(set(a.image_frames)) != a.image_frames or a.image_frames[0] != 0:
        p.error("need --batches >= 2 and --image-frames increasing from 0 (ratios are to N = 0)")
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    dtype = resolve_precision(a.precision, device)
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for stage in a.stages + a.checkpoint:
        net, cfg = stage_network(stage, a, device)
        prepare_network(net, dtype)
        text_cache = build_text_cache(cfg.text, device=device) if cfg.text.enabled else None
        rows = [dict(image_frames=k, **measure(net, cfg, k, a, device, dtype, text_cache)) for k in a.image_frames]
        for loss in ("joint", "video"):
            for row, st in zip(rows, bootstrap([row["gram"][loss] for row in rows], a.batch_size, seed=a.seed)):
                row[loss] = st
        for row in rows:
            del row["gram"]
            print(f"{stage} N={row['image_frames']}: B_simple joint {row['joint']['b_simple']:.3g}, "
                  f"video {row['video']['b_simple']:.3g}", flush=True)
        results.append({"stage": stage, "weights": "init" if stage == "init" else "ema" if stage == "shipped"
                        else "raw", "parameters": sum(p.numel() for p in net.parameters()), "rows": rows})
    table = report(results, out_dir)
    payload = json.loads(json.dumps({"args": vars(a), "results": results}, default=float),
                         parse_constant=lambda c: None)  # inf (|G|^2 <= 0: unbounded) and nan become null
    (out_dir / "results.json").write_text(json.dumps(payload, indent=1) + "\n")
    (out_dir / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
