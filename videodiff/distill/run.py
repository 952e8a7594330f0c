"""Progressive distillation runs (Salimans & Ho 2022, Algorithm 2): rounds of halving DDIM steps, resumable.

Round ``r`` trains a student that samples with ``N_r`` DDIM steps against a teacher with ``2 N_r`` steps
(:func:`videodiff.distillation.distillation_loss`); the first teacher is the EMA weights of ``distill.source`` (a
shipped model or a run), and each round's student starts from its teacher and becomes, through its EMA weights, the
next round's teacher. Text models distil a classifier-free guided teacher (eq. 5 at ``distill.guidance``, round 1 only:
later teachers are students with the guidance in their weights, Meng et al. 2023) into a
student that takes the same condition and needs one network call per step. With ``distill.guidance_range`` each clip
draws its own ``w`` from the range, the round-1 teacher is guided at it and every student takes it as an input
(``model.guidance_input``, zero-initialised: the first student starts as its teacher), so one student serves the
whole range of ``w`` (Meng et al.'s w-conditioned student, with its progressive stage folded into the same rounds).

A run directory holds what ``videodiff train`` writes (``config.yaml``, ``metrics.jsonl``, ``checkpoints/`` through
:mod:`videodiff.checkpoint`, so that it loads as a model: its config samples with DDIM at the current round's steps),
and ``rounds/steps_NNNN/``, each round's final student as a run of its own (the next round's teacher; any of them
loads and samples like a model). Everything random is keyed by ``(distill.seed, global step, position)``
(:mod:`videodiff.train.randomness`) and the data order by the step, so a resumed run continues bit-exactly.
Single-process only (no torchrun).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from ..checkpoint import latest_checkpoint, load_checkpoint, load_latest_checkpoint, save_checkpoint
from ..config import ExperimentConfig, apply_overrides, config_from_dict, config_to_dict
from ..data import build_dataset
from ..denoiser import Denoiser
from ..distillation import distillation_loss, round_steps
from ..models import build_model, load_model, load_state_checked, pick_device
from ..precision import autocast, precision_name, resolve_precision
from ..schedule import time_grid
from ..train.distributed import DistEnv
from ..train.ema import EMA
from ..train.loop import _make_loader, _net_kwargs
from ..train.lr import lr_at
from ..train.init_from import init_from_state
from ..train.randomness import draw_guidance, draw_step_noise, seed_dropout
from ..train.report import MetricsLog

__all__ = ["distill", "distill_config", "DistillResult", "student_config"]


@dataclasses.dataclass
class DistillResult:
    run_dir: Path
    checkpoint: Path  # the last student's checkpoint (the run directory loads as this model)
    rounds: list[dict]  # per finished round: round, student_steps, teacher_steps, loss, seconds
    step: int  # global optimizer steps done
    stopped_early: bool = False  # distill.max_seconds stopped it before the last round ended (rerun to resume)


def distill_config(source: str | Path, *, target_steps: int | None = None, start_steps: int | None = None,
                   config: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """The experiment config of a distillation of ``source``: the teacher's own config, then the mapping in the YAML
    file ``config`` (e.g. a ``distill:`` group), then ``overrides`` (``distill.lr=3e-5``), with ``distill.source``
    set and ``distill.target_steps`` / ``distill.start_steps`` where given."""
    teacher = load_model(source, device="cpu", precision="fp32", compile=False)  # a shipped name or a path
    data = config_to_dict(teacher.config)
    if config is not None:
        extra = yaml.safe_load(Path(config).read_text()) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"config {config} must be a mapping of option groups")
        for group, values in extra.items():
            if isinstance(values, dict) and isinstance(data.get(group), dict):
                data[group].update(values)
            else:
                data[group] = values
    apply_overrides(data, list(overrides or []))
    data.setdefault("distill", {})["source"] = str(source)
    if data["distill"].get("guidance_range"):  # the students take w as an input (Meng et al. 2023)
        data["model"]["guidance_input"] = True
    for key, value in (("target_steps", target_steps), ("start_steps", start_steps)):
        if value is not None:
            data["distill"][key] = value
    return config_from_dict(ExperimentConfig, data)


def student_config(cfg: ExperimentConfig, steps: int) -> dict:
    """The config a student of ``steps`` DDIM steps is saved with: it samples deterministically at its steps, and
    a student of a guided teacher without guidance of its own (``sample.guidance = 0``: one network call per step)."""
    out = config_to_dict(cfg)
    out["sample"].update(sampler="ddim", steps=steps, eta=0.0)
    if cfg.text.enabled and cfg.distill.guidance > 0:  # guidance is in the weights: none on top of it by default
        out["sample"]["guidance"] = 0.0
    elif cfg.distill.guidance_range:  # w is an input: the teacher's default w where the range holds it
        low, high = cfg.distill.guidance_range
        out["sample"]["guidance"] = min(max(cfg.sample.guidance, low), high)
    out["sample"]["options"] = {k: v for k, v in out["sample"]["options"].items() if k != "eta"}
    return out


def _check_resumable(saved: dict, cfg: ExperimentConfig, path: Path) -> None:
    now = config_to_dict(cfg)
    saved = config_to_dict(config_from_dict(ExperimentConfig, saved))
    for group in ("data", "model", "diffusion", "text", "distill"):
        if group == "distill":  # the time limit of one invocation may change on resume
            saved[group], now[group] = ({**d, "max_seconds": 0.0} for d in (saved[group], now[group]))
        if saved[group] != now[group]:
            raise ValueError(f"cannot resume from {path}: its '{group}' config differs from the one given; use a new "
                             f"--out directory or the same settings")


def _round_dir(run_dir: Path, steps: int) -> Path:
    return run_dir / "rounds" / f"steps_{steps:04d}"


def _teacher_state(cfg: ExperimentConfig, run_dir: Path, rnd: int, plan: list[int], device) -> dict:
    """The EMA weights of round ``rnd``'s teacher: ``distill.source`` for the first, else the previous round's."""
    if rnd == 0:
        return load_model(cfg.distill.source, device=str(device), precision="fp32", compile=False).denoiser.net.state_dict()
    return load_checkpoint(_round_dir(run_dir, plan[rnd - 1]), device=device)["ema"]


def distill(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
            dataset=None, log=print) -> DistillResult:
    """Distil ``cfg.distill.source`` into ``run_dir`` down to ``cfg.distill.target_steps`` DDIM steps (resuming from
    the run's latest checkpoint when there is one and ``resume``). ``dataset``: replaces ``cfg.data``'s train split.
    One writer per run directory, as for training: ``RUN/writer.lock`` (:mod:`videodiff.train.runlock`)."""
    from ..train.runlock import RunLock

    dc, run_dir = cfg.distill, Path(run_dir)
    if not dc.source:
        raise ValueError("distill.source is not set: name the teacher (a shipped model or a run directory)")
    plan = round_steps(dc.start_steps, dc.target_steps)
    if (dc.guidance > 0 or dc.guidance_range) and not cfg.text.enabled:
        raise ValueError(f"distill.guidance / distill.guidance_range need a text-conditioned teacher; "
                         f"{dc.source} is not (text.enabled false)")
    if dc.guidance_range and not cfg.model.guidance_input:
        raise ValueError("distill.guidance_range needs model.guidance_input: true (distill_config sets it)")
    device = pick_device(cfg.train.device)
    dtype = resolve_precision(dc.precision, device)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, "distill", note=lambda line: print(line, file=sys.stderr))
    try:
        return _distill(cfg, run_dir, plan, device, dtype, resume=resume, progress=progress, dataset=dataset,
                        log=log)
    finally:
        lock.release()


def _distill(cfg: ExperimentConfig, run_dir: Path, plan: list[int], device, dtype, *, resume: bool, progress: bool,
             dataset, log) -> DistillResult:
    from ..sampling.guidance import classifier_free_guidance

    dc = cfg.distill
    warn = lambda line: print(f"videodiff: {line}", file=sys.stderr)  # noqa: E731
    ckpt, _ = load_latest_checkpoint(run_dir, warn=warn) if resume else (None, [])
    if ckpt is not None:
        _check_resumable(ckpt["config"], cfg, ckpt["path"])
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    step = ckpt["step"] if ckpt is not None else 0
    total = len(plan) * dc.steps_per_round
    if dataset is None:
        dataset = build_dataset(cfg.data, "train")
    text_cache = None
    if cfg.text.enabled:
        from ..text import build_text_cache

        text_cache = build_text_cache(cfg.text, device=device)
    loader_cfg = dataclasses.replace(cfg.train, batch_size=dc.batch_size, grad_accum=1, seed=dc.seed)
    data_iter = iter(_make_loader(dataset, loader_cfg, DistEnv(device=device), dc.batch_size,
                                  step * dc.batch_size, step))
    metrics = MetricsLog(run_dir / "metrics.jsonl", resume_step=step)
    done = [r for r in MetricsLog.read(run_dir / "metrics.jsonl") if r.get("round_done")]
    if ckpt is not None:
        log(f"resuming from {ckpt['path']} (step {step} of {total})")
    log(f"distilling {dc.source}: {dc.start_steps} -> {' -> '.join(map(str, plan))} DDIM steps, "
        f"{dc.steps_per_round} steps per round, {precision_name(dtype)} on {device}")
    bar = tqdm(total=total, initial=step, desc="distill", disable=not progress, dynamic_ncols=True)
    t_start, stopped = time.perf_counter(), False
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        while step < total:
            rnd, k0 = divmod(step, dc.steps_per_round)
            n = plan[rnd]
            teacher_net = build_model(cfg).to(device)
            # the source's network lacks the zero-initialised w input of a guidance_range student: it starts at zero
            init_from_state(teacher_net, _teacher_state(cfg, run_dir, rnd, plan, device), dc.source)
            teacher_net.eval().requires_grad_(False)
            teacher = Denoiser(teacher_net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x,
                               autocast_dtype=dtype)
            # eq. (5) in round 1 only: the student learns the guided x~, and later teachers are students that have
            # the guidance in their weights (Meng et al. 2023's second stage); guiding them again would compound it
            # (docs/distillation.md: the 4-step student of such a run scored like w = 5)
            guide = rnd == 0 and (dc.guidance > 0 or bool(dc.guidance_range))
            model = build_model(cfg).to(device)
            model.load_state_dict(teacher_net.state_dict())  # the student starts as its teacher
            ema = EMA(model, dc.ema_decay)
            opt = torch.optim.AdamW(model.parameters(), lr=dc.lr, weight_decay=0.0)
            seconds = 0.0
            if ckpt is not None and k0 > 0:  # mid-round: the student, its EMA and optimizer as saved
                load_state_checked(model, ckpt["model"], ckpt["path"])  # one line if another network's
                load_state_checked(ema.model, ckpt["ema"], ckpt["path"])
                opt.load_state_dict(ckpt["optimizer"])
                ema.updates = k0
                seconds = ckpt.get("round_seconds", 0.0)
            ckpt = None
            grid = cfg.diffusion.schedule(time_grid(2 * n, device=device))  # the teacher's 2N steps
            model.train()
            loss_sum, loss_n, t0 = 0.0, 0, time.perf_counter()
            for k in range(k0, dc.steps_per_round):
                for group in opt.param_groups:
                    group["lr"] = lr_at(k, dc)
                batch = next(data_iter)
                x = batch["video"].to(device)  # (B, C, F, H, W)
                noise = draw_step_noise(range(x.shape[0]), tuple(x.shape[1:]), seed=dc.seed, step=step,
                                        global_batch=dc.batch_size, low_discrepancy=cfg.diffusion.low_discrepancy,
                                        device=device)
                i = (noise.t * n).long().clamp_(0, n - 1)  # each clip's student step, uniform over the N steps
                keep = torch.ones(x.shape[0], dtype=torch.bool, device=device)
                kwargs = _net_kwargs(batch, cfg, text_cache, keep, device)
                w = dc.guidance
                if dc.guidance_range:  # each clip's w, given to the student (and to its unguided later teachers)
                    w = draw_guidance(dc.seed, step, x.shape[0], *dc.guidance_range, device=device)
                    kwargs["guidance_w"] = w
                seed_dropout(dc.seed, step, 0)
                with autocast(device, dtype):
                    losses, _ = distillation_loss(model, classifier_free_guidance(teacher, w) if guide else teacher,
                                                  x, noise.eps, i, grid,
                                                  parameterization=cfg.diffusion.parameterization,
                                                  weighting=dc.weighting, **kwargs)
                opt.zero_grad(set_to_none=True)
                losses.mean().backward()
                clip = dc.grad_clip if dc.grad_clip > 0 else math.inf
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                loss = float(losses.detach().mean())
                if not (math.isfinite(loss) and math.isfinite(float(grad_norm))):
                    raise ValueError(f"distillation diverged at step {step + 1} (round {rnd + 1}): non-finite loss or "
                                     f"gradient norm; lower distill.lr")
                opt.step()
                ema.update(model)
                step += 1
                bar.update(1)
                loss_sum, loss_n = loss_sum + loss, loss_n + 1
                end = k + 1 == dc.steps_per_round
                if (k + 1) % dc.log_every == 0 or end:
                    now = time.perf_counter()
                    seconds, t0 = seconds + now - t0, now
                    metrics.append({"step": step, "round": rnd + 1, "student_steps": n, "loss": loss_sum / loss_n,
                                    "lr": lr_at(k, dc), "grad_norm": float(grad_norm), "round_seconds": seconds})
                    bar.set_postfix(round=f"{rnd + 1}/{len(plan)}", steps=n, loss=f"{loss_sum / loss_n:.4f}")
                    last_loss, loss_sum, loss_n = loss_sum / loss_n, 0.0, 0
                if end:  # the round's student, as a model of its own: the next round's teacher
                    row = {"step": step, "round": rnd + 1, "round_done": True, "student_steps": n,
                           "teacher_steps": 2 * n, "loss": last_loss, "seconds": seconds}
                    save_checkpoint(_round_dir(run_dir, n), step, model, ema.model, opt, {}, student_config(cfg, n),
                                    extra={"distill_round": row}, keep=1)
                    metrics.append(row)
                    done.append(row)
                    bar.write(f"round {rnd + 1}/{len(plan)}: {2 * n} -> {n} DDIM steps, loss {last_loss:.4g}, "
                              f"{seconds:.1f} s")
                stopped = dc.max_seconds > 0 and time.perf_counter() - t_start >= dc.max_seconds and step < total
                if stopped and not ((k + 1) % dc.log_every == 0 or end):  # the round's time up to this step
                    now = time.perf_counter()
                    seconds, t0 = seconds + now - t0, now
                if step % dc.ckpt_every == 0 or end or stopped:
                    save_checkpoint(run_dir, step, model, ema.model, opt, {}, student_config(cfg, n),
                                    extra={"round": rnd + 1, "round_step": k + 1, "round_seconds": seconds,
                                           "student_steps": n}, keep=dc.keep_checkpoints)
                if stopped:
                    log(f"distill.max_seconds ({dc.max_seconds:g} s) reached: stopped at step {step} of {total} "
                        f"(round {rnd + 1}); the same command resumes")
                    break
            if stopped:
                break
    bar.close()
    return DistillResult(run_dir, latest_checkpoint(run_dir), done, step, stopped_early=stopped)
