"""Quality vs number of sampling steps (issue 6): ancestral (eq. 4, gamma = 0.3), DDIM and DPM-Solver++(2M).

Quality experiment, not a timed test. On Gaussian "videos" (AR(1) correlation over frames, correlated pixels within
a frame) the exact denoiser ``E[x | z_t]`` stands in for a perfect network, so every difference from the data law
is the sampler's discretisation error:

* DDIM and DPM-Solver++(2M) are deterministic; with this affine denoiser they are affine maps of ``z_1``, so their
  output law is computed **exactly** (:func:`videodiff.gaussian.affine_sampler_map`, no Monte-Carlo error), and so is
  their distance to the exact probability-flow ODE solution from the same ``z_1`` (``ode_rms``).
* the ancestral sampler is stochastic: its moments are estimated from ``--n`` samples; the row ``mc-floor`` scores
  ``--n`` exact draws of the data, the Monte-Carlo floor under which its numbers mean nothing.
* ``grid-floor`` is the exact ODE run to the last-but-one grid point followed by ``x_hat`` there: every sampler here
  returns ``x_hat`` at the last step, so this is the error of a perfect ODE solver on the same (uniform-time) grid.

Metrics between the output law ``N(m, C)`` and the data ``N(mu, Sigma)``: the 2-Wasserstein distance, the exact
Gaussian ``KL(N(m, C) || N(mu, Sigma))`` and the relative covariance error ``||C - Sigma||_F / ||Sigma||_F``.
Writes ``results.json``, ``table.md`` and ``curve.png`` into ``--out-dir`` and prints the table:

    python benchmarks/solver_steps.py

``--checkpoint RUN`` instead samples a trained model at each (sampler, steps) and scores the samples with the
project's Moving MNIST classifier against the held-out clips (cFVD and cIS, :mod:`videodiff.evaluation`); the loop is
:func:`quality_vs_steps`, reusable with any denoiser and metric.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from videodiff.gaussian import GaussianData, affine_sampler_map, ar1_covariance, gaussian_kl
from videodiff.metrics.frechet import frechet_distance
from videodiff.sampling import SAMPLERS, sample, sampler_options
from videodiff.schedule import ScheduleConfig, time_grid

STEPS = (5, 10, 20, 50, 100)
PLAN = {"ancestral": STEPS + (250,), "ddim": STEPS, "dpmpp2m": STEPS}  # sampler -> step counts
OPTIONS = {"gamma": 0.3, "eta": 0.0}  # the defaults of SampleConfig
LABELS = {"ancestral": "ancestral (γ=0.3)", "ddim": "DDIM (η=0)", "dpmpp2m": "DPM-Solver++(2M)",
          "grid-floor": "exact ODE on the grid", "mc-floor": "Monte-Carlo floor"}


# ------------------------------------------------------------------------------------------------ the loop


@torch.no_grad()
def quality_vs_steps(denoise, shape, schedule, metric, *, plan=None, n: int = 256, batch_size: int = 256,
                     seed: int = 0, device="cpu", dtype=torch.float64, options=None, progress: bool = False,
                     **denoise_kwargs) -> list[dict]:
    """Sample ``n`` draws of ``shape`` at each (sampler, steps) of ``plan`` and score them.

    Args:
        denoise: ``denoise(z_t, logsnr, **denoise_kwargs) -> x_hat`` (a trained :class:`Denoiser`, a guided one, an
            exact Gaussian denoiser...).
        schedule: maps times to log-SNR (e.g. ``cfg.diffusion.schedule``).
        metric: ``metric(samples (n, *shape)) -> dict`` of scores.
        plan: ``{sampler name: [steps, ...]}`` (default :data:`PLAN`).
        options: sampler hyperparameters, each sampler taking its own (default gamma 0.3, eta 0).
    Every (sampler, steps) starts from the same noise (per-batch generators seeded from ``seed``).
    Returns one record per point: ``{"sampler", "steps", "seconds", **metric(samples)}``.
    """
    plan, options = plan or PLAN, {**OPTIONS, **(options or {})}
    records = []
    for name, step_list in plan.items():
        for steps in step_list:
            t0, parts = time.perf_counter(), []
            for start in range(0, n, batch_size):
                g = torch.Generator(device=device).manual_seed(seed * 1_000_003 + start)
                parts.append(sample(denoise, (min(batch_size, n - start), *shape), schedule, steps=steps, sampler=name,
                                    generator=g, device=device, dtype=dtype, progress=progress,
                                    options=sampler_options(name, **options), extra_args=denoise_kwargs).cpu())
            rec = {"sampler": name, "steps": steps, "seconds": round(time.perf_counter() - t0, 2)}
            records.append({**rec, **metric(torch.cat(parts))})
            if progress:
                print(records[-1], flush=True)
    return records


# ------------------------------------------------------------------------------------------------ Gaussian data


def gaussian_video(frames: int = 8, size: int = 2, rho: float = 0.9, pixel_rho: float = 0.5, std: float = 0.5):
    """``N(mu, Sigma)`` over ``(1, frames, size, size)``: AR(1) over frames (``rho``), pixels correlated as
    ``pixel_rho^distance``, marginal std ``std``, a mean ramping from -0.5 to 0.5."""
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1).double()
    pix = pixel_rho ** torch.cdist(pos, pos)
    d = frames * size * size
    return GaussianData(torch.linspace(-0.5, 0.5, d, dtype=torch.float64), std**2 * ar1_covariance(frames, rho, pix),
                        (1, frames, size, size))


def gaussian_scores(mean, cov, data: GaussianData) -> dict:
    """W2, KL(N(mean, cov) || data) and the relative covariance error."""
    w2 = math.sqrt(max(frechet_distance(mean.numpy(), cov.numpy(), data.mean.numpy(), data.cov.numpy()), 0.0))
    return {"w2": w2, "kl": gaussian_kl(mean, cov, data.mean, data.cov),
            "cov_rel_err": float(torch.linalg.norm(cov - data.cov) / torch.linalg.norm(data.cov))}


def sample_scores(x, data: GaussianData) -> dict:
    x = x.reshape(x.shape[0], -1).double()
    return gaussian_scores(x.mean(0), torch.cov(x.T), data)


def exact_ode_on_grid(data: GaussianData):
    """The exact probability-flow map to ``logsnrs[-2]``, then ``x_hat`` there: a perfect ODE solver on the grid."""
    def run(denoise, z, logsnrs, **_):
        return data.denoise(data.flow(z, logsnrs[0], logsnrs[-2]), logsnrs[-2].expand(z.shape[0]))
    return run


def exact_rows(data: GaussianData, schedule, plan) -> list[dict]:
    """Exact scores of the deterministic samplers (and the grid floor) from their affine maps."""
    rows = []
    ode = exact_ode_on_grid(data)
    all_steps = sorted({s for name in plan for s in plan[name]})
    for name in [k for k in plan if k != "ancestral"] + ["grid-floor"]:
        for steps in plan.get(name, all_steps):
            lam = schedule(time_grid(steps))
            t0 = time.perf_counter()
            b_ref, a_ref = affine_sampler_map(ode, data, lam)
            b, a = (b_ref, a_ref) if name == "grid-floor" else affine_sampler_map(SAMPLERS[name], data, lam)
            ode_rms = math.sqrt((float((b - b_ref).square().sum()) + float((a - a_ref).square().sum())) / data.dim)
            rows.append({"sampler": name, "steps": steps, "estimate": "exact", "ode_rms": ode_rms,
                         "seconds": round(time.perf_counter() - t0, 3), **gaussian_scores(b, a @ a.T, data)})
    return rows


def run_gaussian(args) -> dict:
    data, sched = gaussian_video(), ScheduleConfig()
    plan = {"ancestral": args.ancestral_steps, "ddim": args.steps, "dpmpp2m": args.steps}
    rows = exact_rows(data, sched, plan)
    mc = quality_vs_steps(data.denoise, data.shape, sched, lambda x: sample_scores(x, data), n=args.n,
                          batch_size=args.batch_size, plan={"ancestral": args.ancestral_steps}, seed=args.seed,
                          progress=args.progress)
    rows += [{**r, "estimate": f"MC n={args.n}"} for r in mc]
    floor = sample_scores(data.sample(args.n, torch.Generator().manual_seed(args.seed + 1)), data)
    rows.append({"sampler": "mc-floor", "steps": None, "estimate": f"MC n={args.n}", **floor})
    eig = data.eigvals
    config = {"data": f"N(mu, Sigma) over (C, F, H, W) = {data.shape}: AR(1) rho 0.9 over frames x pixel "
                      f"correlation 0.5^dist, std 0.5 (D = {data.dim}, eigenvalues {float(eig.min()):.4f}.."
                      f"{float(eig.max()):.3f})",
              "schedule": "cosine, logsnr in [-20, 20], uniform time grid", "denoiser": "exact E[x | z_t]",
              "gamma": OPTIONS["gamma"], "eta": OPTIONS["eta"], "n": args.n, "seed": args.seed}
    return {"config": config, "rows": rows}


# ------------------------------------------------------------------------------------------------ a trained model


def run_checkpoint(args) -> dict:
    from videodiff.evaluation import compute_metrics
    from videodiff.pipeline import load_model
    from videodiff.evaluation.video_sets import dataset_videos, tensor_to_uint8

    loaded = load_model(args.checkpoint, device=args.device, precision="fp32")
    cfg = loaded.config
    real = dataset_videos(cfg.data, "test", args.n).videos
    shape = (cfg.data.channels, cfg.data.num_frames, cfg.data.image_size, cfg.data.image_size)

    def metric(x):
        res = compute_metrics(real, tensor_to_uint8(x.float().clamp(-1, 1)), args.metrics, device=args.device)
        out = {"cfvd": res["cfvd"]["value"]} if "cfvd" in res else {}
        if "cis" in res:  # classifier IS of the samples, [mean, std] over 10 splits (1 when too few)
            out["cis"] = res["cis"]["fake"].get("IS@10", res["cis"]["fake"].get("IS@1"))
        return out

    dev = next(loaded.denoiser.parameters()).device
    plan = {"ancestral": args.ancestral_steps, "ddim": args.steps, "dpmpp2m": args.steps}
    rows = quality_vs_steps(loaded.denoiser, shape, cfg.diffusion.schedule, metric, plan=plan, n=args.n,
                            batch_size=args.batch_size, seed=args.seed, device=dev, dtype=torch.float32,
                            progress=args.progress)
    return {"config": {"checkpoint": str(loaded.path), "step": loaded.step, "n": args.n, "metrics": args.metrics,
                       "seed": args.seed}, "rows": rows}


# ------------------------------------------------------------------------------------------------ report


def table(results: dict) -> str:
    rows = results["rows"]
    keys = [k for k in ("w2", "kl", "cov_rel_err", "ode_rms", "cfvd", "cis") if any(k in r for r in rows)]
    head = "| sampler | steps | estimate | " + " | ".join(keys) + " |"
    lines = [head, "|" + "---|" * (3 + len(keys))]
    for r in rows:
        vals = [_fmt(r.get(k)) for k in keys]
        lines.append(f"| {LABELS.get(r['sampler'], r['sampler'])} | {r['steps'] or '-'} | "
                     f"{r.get('estimate', 'samples')} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return f"{v[0]:.3g} ± {v[1]:.2g}"
    return f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.2e}"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    keys = [k for k in ("w2", "kl", "cfvd") if any(k in r for r in rows)]
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name in ("ancestral", "ddim", "dpmpp2m", "grid-floor"):
            pts = [(r["steps"], r[key]) for r in rows if r["sampler"] == name and r.get(key) is not None]
            if pts:
                style = {"ls": ":", "color": "gray"} if name == "grid-floor" else {"marker": "o"}
                ax.plot(*zip(*pts), label=LABELS[name], **style)
        floor = [r[key] for r in rows if r["sampler"] == "mc-floor"]
        if floor:
            ax.axhline(floor[0], color="k", lw=0.8, ls="--", label=LABELS["mc-floor"] + " (ancestral)")
        ax.set(xscale="log", yscale="log", xlabel="sampling steps", ylabel=key, title=f"{key} to the data law")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="steps for DDIM and DPM-Solver++(2M)")
    p.add_argument("--ancestral-steps", type=int, nargs="+", default=list(PLAN["ancestral"]))
    p.add_argument("--n", type=int, default=None,
                   help="samples per point (default 200000 on Gaussian data, 1024 with --checkpoint)")
    p.add_argument("--batch-size", type=int, default=None, help="default 50000 (Gaussian), 64 (--checkpoint)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="score a trained model with the Moving MNIST classifier")
    p.add_argument("--metrics", nargs="+", default=["cfvd", "cis"], choices=["cfvd", "cis"], help="with --checkpoint")
    p.add_argument("--device", default="auto", help="with --checkpoint")
    p.add_argument("--out-dir", type=Path, default=None, help="default benchmarks/results/solver_steps[_checkpoint]")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    ckpt = args.checkpoint is not None
    args.n = args.n or (1024 if ckpt else 200_000)
    args.batch_size = args.batch_size or (64 if ckpt else 50_000)
    out = args.out_dir or Path(__file__).parent / "results" / ("solver_steps_checkpoint" if ckpt else "solver_steps")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = run_checkpoint(args) if ckpt else run_gaussian(args)
    results["config"]["command"] = " ".join(["python benchmarks/solver_steps.py", *sys.argv[1:]])
    results["config"]["seconds"] = round(time.perf_counter() - t0, 1)
    md = table(results)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "table.md").write_text(md + "\n")
    plot(results, out / "curve.png")
    print(md)
    print(f"\nwrote {out}/results.json, table.md, curve.png in {results['config']['seconds']} s")


if __name__ == "__main__":
    main()
