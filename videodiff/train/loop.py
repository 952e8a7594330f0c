"""The training loop: eq. (2) with AdamW, LR warm-up, gradient clipping, EMA, checkpoints and exact resume.

Text-conditioned experiments (``text.encoder`` set) feed the captions' cached embeddings to the network and drop
each example's condition with probability ``train.cond_drop_prob`` (null condition c = 0, for classifier-free
guidance, eq. 5). Joint image-video training (``data.image_frames = N``, Sec. 4.2) appends N independent image
frames to each video and masks temporal attention with ``joint_frame_mask``; the loss covers all frames.
Frame-conditional training (``train.context_frames``, :mod:`videodiff.context`) gives each clip's first ``n`` frames
clean and leaves them out of the loss. A resume checks the config against the run's (:mod:`.resume`).

Everything random in a run is a function of ``train.seed`` and the position in the run: the weight init, the data
order (a seeded permutation per epoch, so the position is a function of the step), the diffusion times, noise and
conditioning dropout (keyed by step and position in the global batch, :mod:`.randomness`) and network dropout (the
global RNG, reseeded per micro-batch inside a fork so the caller's state is untouched). Resuming from a checkpoint
therefore continues with exactly the losses an uninterrupted run would have produced.

Under ``torchrun`` the same loop runs data-parallel (:mod:`.distributed`): ``train.batch_size`` is the global batch,
split over ranks and ``train.grad_accum`` micro-batches; rank 0 alone logs, samples and writes checkpoints. The global
batch of a step, and its noise, do not depend on the world size, so a run may resume with a different one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader, IterableDataset
from tqdm.auto import tqdm

from ..config import ExperimentConfig, config_to_dict
from ..data import build_dataset, collate_clips
from ..denoiser import Denoiser
from ..io import save_video_grid
from ..context import known_first
from ..losses import diffusion_loss
from ..nn import joint_frame_mask, set_activation_checkpointing
from ..models import build_model, load_state_checked, load_weights
from ..pipeline import sample_from_prompts, sample_videos
from ..precision import autocast, compile_network, precision_name, prepare_network, resolve_precision
from ..checkpoint import latest_checkpoint, load_latest_checkpoint, save_checkpoint
from .distributed import (DistEnv, GlobalIndexStream, RankSlice, checksum_across_ranks, full_value, init_distributed,
                          is_sharded, no_sync, shard_fsdp, wrap_ddp)
from .ema import EMA
from .loggers import Loggers
from .lr import lr_at
from .randomness import draw_step_noise, seed_dropout
from .report import MetricsLog, plot_loss
from .init_from import init_from_state as _init_from
from .resume import check_resumable as _check_resumable
from .runlock import RunLock, RunLockedError
from .sharded import load_into_fsdp, save_sharded_checkpoint

__all__ = ["train", "TrainResult", "lr_at", "TrainingDivergedError"]


class TrainingDivergedError(ValueError):
    """A step's loss or gradient norm was not finite (``train.on_nonfinite: stop``), or the weights became
    non-finite; the message names the step and the last good checkpoint, which stays the latest."""


def _diverged(step: int, what: str, run_dir: Path) -> TrainingDivergedError:
    good = latest_checkpoint(run_dir)
    kept = f"the last good checkpoint {good} is kept" if good is not None else "no checkpoint was written"
    return TrainingDivergedError(f"training diverged: {what} at step {step}; {kept} (lower train.lr, or set "
                                 f"train.on_nonfinite=skip to drop such steps)")


def _weights_finite(model: torch.nn.Module, env: DistEnv | None = None) -> bool:
    """Every weight finite (FSDP2: every rank checks its shards, and all agree)."""
    local = all(bool(torch.isfinite(getattr(p, "_local_tensor", p)).all()) for p in model.parameters())
    if env is None or not is_sharded(model):
        return local
    return env.all_sum(torch.tensor(float(not local), device=env.device)).item() == 0


def _match_state_layout(opt: torch.optim.Optimizer) -> None:
    """Give each loaded optimizer moment its parameter's memory layout. Checkpoints store them contiguous; the
    fused AdamW kernel walks a channels-last parameter and a contiguous moment as flat memory, which pairs
    different elements (measured: resume no longer bit-exact, moments applied to the wrong weights)."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def _out_of_time(t_start: float, max_seconds: float, env: DistEnv, device) -> bool:
    """Whether ``train.max_seconds`` has passed; under torchrun, on any rank (so that all stop at the same step)."""
    if max_seconds <= 0:
        return False
    late = torch.tensor(float(time.perf_counter() - t_start >= max_seconds), device=device)
    return bool(env.all_sum(late).item() > 0)


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    loss_plot: Path | None
    samples: list[Path]
    final_loss: float
    is_main: bool = True  # False on the ranks > 0 of a distributed run (rank 0 logs and reports)
    step: int | None = None  # the step training ended at (below train.steps when train.max_seconds stopped it)
    skipped_steps: int = 0  # steps dropped for a non-finite loss or gradient norm (train.on_nonfinite=skip)
    start_step: int = 0  # the step this call started from (a resume: its checkpoint's step)
    skipped_files: list[str] = dataclasses.field(default_factory=list)  # unreadable data files left out (on_error)


def _net_kwargs(batch: dict, cfg: ExperimentConfig, text_cache, keep: torch.Tensor | None, device) -> dict:
    """The network's keyword arguments for a batch: the joint frame mask and the caption condition, dropped where
    ``keep`` (drawn per clip, :func:`.randomness.draw_step_noise`) is False."""
    kwargs = {}
    n_img = cfg.data.image_frames
    f_video = batch["video"].shape[2] - n_img
    if n_img:
        kwargs["frame_mask"] = joint_frame_mask(f_video, n_img, device)  # image frames attend only to themselves
    if text_cache is not None:
        from ..text import caption_condition

        cond = caption_condition(text_cache, batch["caption"], num_frames=f_video, device=device,
                                 image_captions=batch.get("image_captions") if n_img else None)
        cond["cond_keep"] = cond["cond_keep"] & keep  # empty captions stay null; the rest drop out with keep
        kwargs.update(cond)
    return kwargs


def _known(noise, x: torch.Tensor, cfg: ExperimentConfig) -> torch.Tensor | None:
    """``(b, F + N)``: the clean context frames of each clip (its first ``n``; never an appended image frame)."""
    if noise.context is None:
        return None
    video_frames = x.shape[2] - cfg.data.image_frames
    return known_first(noise.context.clamp(max=video_frames), x.shape[2])


def _preview_prompts(cfg: ExperimentConfig) -> list[str]:
    """Captions of the first ``sample.num`` test clips: the prompts of the preview grids of text models."""
    test = build_dataset(cfg.data, "test")
    if isinstance(test, IterableDataset):  # streamed shards: the first clips of the stream
        items = list(itertools.islice(iter(test), cfg.sample.num))
    else:
        items = [test[i] for i in range(min(len(test), cfg.sample.num))]
    if not items:
        raise ValueError("the test split is empty: no captions for the preview samples")
    return [items[i % len(items)]["caption"] for i in range(cfg.sample.num)]


def _write_samples(ema_net, cfg: ExperimentConfig, run_dir: Path, step: int, text_cache=None,
                   loggers: Loggers | None = None, write: bool = True) -> list[Path]:
    device = next(ema_net.parameters()).device
    den = Denoiser(ema_net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x,
                   autocast_dtype=resolve_precision(cfg.sample.precision, device))
    if text_cache is None:
        videos = sample_videos(den, cfg, cfg.sample.num, seed=cfg.sample.seed, progress=True)
    else:
        prompts = _preview_prompts(cfg)
        videos = sample_from_prompts(den, cfg, prompts, 1, guidance=cfg.sample.guidance, cache=text_cache,
                                     seed=cfg.sample.seed, progress=True)
        if write:
            (run_dir / "samples").mkdir(parents=True, exist_ok=True)
            (run_dir / "samples" / f"step_{step:06d}.txt").write_text("\n".join(prompts) + "\n")
    if not write:  # an FSDP rank > 0: it took part in the sampling, rank 0 writes the grid
        return []
    paths = []
    for ext in ("gif", "mp4"):
        p = run_dir / "samples" / f"step_{step:06d}.{ext}"
        save_video_grid(videos, p, fps=cfg.sample.fps)
        paths.append(p)
    if loggers is not None:
        loggers.samples(step, videos)
    return paths


def _make_loader(dataset, tc, env: DistEnv, micro: int, samples_seen: int, step: int) -> DataLoader:
    """Rank ``env.rank``'s micro-batches: its slice of each global batch of the seeded index stream, from the
    position ``samples_seen``. An IterableDataset (e.g. streamed shards) splits itself over ranks and workers and is
    iterated as it is; on resume its ``skip(n[, batch_size])`` (when it has one) gets the ``n`` clips this rank
    consumed (and the micro-batch size, which DataLoader workers hand out whole)."""
    common = dict(batch_size=micro, num_workers=tc.num_workers, collate_fn=collate_clips, drop_last=True,
                  pin_memory=env.device.type == "cuda", persistent_workers=tc.num_workers > 0,
                  generator=torch.Generator().manual_seed(tc.seed))  # worker seeds; keeps the global RNG exact
    if isinstance(dataset, IterableDataset):
        if step and hasattr(dataset, "skip"):
            consumed = step * micro * tc.grad_accum
            if "batch_size" in inspect.signature(dataset.skip).parameters:  # workers hand out whole batches
                dataset.skip(consumed, batch_size=micro)
            else:
                dataset.skip(consumed)
        elif step:
            warnings.warn(f"{type(dataset).__name__} has no skip(n): the resumed run starts its stream again")
        return DataLoader(dataset, **common)
    stream = GlobalIndexStream(len(dataset), tc.seed, samples_seen)
    return DataLoader(dataset, sampler=RankSlice(stream, tc.batch_size, env.rank, env.world_size), **common)


def train(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True,
          dataset=None) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (resuming from its latest checkpoint when there is one and ``resume``).

    Under ``torchrun`` (env ``WORLD_SIZE`` > 1), or in a process group the caller initialised, every rank calls this
    and trains data-parallel; see :mod:`.distributed`. ``dataset`` replaces ``cfg.data``'s train split (a map-style
    dataset, or an IterableDataset that shards itself over ranks).
    """
    env = init_distributed(cfg.train.device)
    try:
        with _writer_lock(Path(run_dir), env):  # one writer per run directory (:mod:`.runlock`)
            return _train(cfg, Path(run_dir), env, resume=resume, progress=progress, dataset=dataset)
    finally:
        env.close()


@contextlib.contextmanager
def _writer_lock(run_dir: Path, env: DistEnv, command: str = "train"):
    """Rank 0 holds ``RUN/writer.lock`` for the whole run; every rank refuses together when another process holds
    it (so that no rank waits at a barrier for a rank 0 that gave up)."""
    lock, error = None, None
    if env.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = RunLock(run_dir, command, note=lambda line: print(line, file=sys.stderr))
        except OSError as e:  # RunLockedError, or a run directory that cannot be created
            error = e
    failed = env.all_sum(torch.tensor(float(error is not None), device=env.device)).item() > 0
    if failed:
        raise error or RunLockedError(f"run directory {run_dir} is in use by another process (see rank 0's error)")
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


def _train(cfg: ExperimentConfig, run_dir: Path, env: DistEnv, *, resume: bool, progress: bool,
           dataset) -> TrainResult:
    tc, device, main = cfg.train, env.device, env.is_main
    dtype = resolve_precision(tc.precision, device)  # None: fp32; bf16: autocast around the network (eq. 2's loss: fp32)
    if tc.batch_size % (env.world_size * tc.grad_accum):
        raise ValueError(f"train.batch_size ({tc.batch_size}) must be divisible by the number of processes "
                         f"({env.world_size}) x train.grad_accum ({tc.grad_accum})")
    micro = tc.batch_size // (env.world_size * tc.grad_accum)  # clips per rank per micro-batch
    run_dir.mkdir(parents=True, exist_ok=True)
    # The newest checkpoint that loads; a damaged newer one is reported (one line) and set aside (renamed
    # *.damaged) so that checkpoint rotation cannot delete the good one in its favour.
    warn = (lambda line: print(f"videodiff: {line}", file=sys.stderr)) if main else None
    ckpt, damaged = load_latest_checkpoint(run_dir, warn=warn) if resume else (None, [])
    resume_from = ckpt["path"] if ckpt is not None else None
    if ckpt is not None:
        _check_resumable(ckpt["config"], cfg, resume_from, note=(lambda line: print(line, file=sys.stderr)) if main
                         else None)
    env.barrier()  # every rank has read the checkpoint before rank 0 writes anything
    if main:
        for path in damaged:
            aside = path.with_name(path.name + ".damaged")
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(path, aside)
            print(f"videodiff: set {path} aside as {aside.name}", file=sys.stderr)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    rng_devices = [device] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=rng_devices), contextlib.ExitStack() as closing:
        torch.manual_seed(tc.seed)
        model = prepare_network(build_model(cfg).to(device), dtype)  # channels-last for bf16 on the CPU
        ema = EMA(model, tc.ema_decay)
        step, samples_seen, skipped = 0, 0, 0
        if ckpt is None and tc.init_from:  # fine-tuning: a fresh run (optimizer, step 0) from another run's EMA weights
            src = load_weights(tc.init_from)  # a run, a checkpoint, a saved folder or a shipped model's name
            new = _init_from(model, src["ema"], tc.init_from)
            ema.model.load_state_dict(model.state_dict())
            if main:
                adapters = [k for k in new if ".lora." in k]  # LoRA fine-tunes add one trio per adapted layer
                named = [k for k in new if ".lora." not in k] + ([f"{len(adapters)} LoRA tensors"] if adapters else [])
                extra = f"; new, zero-initialised: {', '.join(named)}" if new else ""
                print(f"initialised from the EMA weights of {src['path']} (step {src['step']}){extra}")
        fsdp = tc.parallel == "fsdp" and env.distributed
        if fsdp:  # FSDP2: the network and its EMA sharded over the ranks, before the optimizer sees the parameters
            shard_fsdp(model, env)
            shard_fsdp(ema.model, env)
        # The fused AdamW kernel (CPU and CUDA): one pass over each tensor instead of a dozen (BENCHMARKS.md).
        # LoRA (cfg.lora.rank > 0): the base network is frozen, only the adapters are optimised.
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay,
                                fused=device.type in ("cpu", "cuda"))
        if ckpt is not None:
            if fsdp:  # full tensors (from a sharded or an unsharded checkpoint, any world size): each rank its slices
                load_into_fsdp(model, ema.model, opt, ckpt)
            else:
                load_state_checked(model, ckpt["model"], resume_from)  # one line if they are another network's
                load_state_checked(ema.model, ckpt["ema"], resume_from)
                opt.load_state_dict(ckpt["optimizer"])
                _match_state_layout(opt)
            step = ckpt["step"]
            samples_seen = ckpt.get("samples_seen", step * tc.batch_size)  # older checkpoints: the batch size
            skipped = ckpt.get("skipped_steps", 0)  # train.on_nonfinite=skip: steps without an update
            ema.updates = step - skipped
            if main:
                print(f"resuming from {resume_from} (step {step}, {samples_seen} clips seen)")
        set_activation_checkpointing(model, tc.activation_checkpointing)
        if tc.compile:
            compile_network(model)  # in place: the state dict keeps its keys
        if main:
            how = f"{tc.precision} -> {precision_name(dtype)}" if tc.precision == "auto" else tc.precision
            print(f"training in {how} on {device}" + (" (compiled: the first step compiles)" if tc.compile else ""))
        # forward/backward through DDP (or the FSDP2-sharded module itself); EMA, optimizer, checkpoints use the module
        net = model if fsdp else wrap_ddp(model, env)
        if dataset is None:
            dataset = build_dataset(cfg.data, "train")
        text_cache = None
        if cfg.text.enabled:
            from ..text import build_text_cache

            text_cache = build_text_cache(cfg.text, device=device)  # frozen encoder, loaded on the first cache miss
        data_iter = iter(_make_loader(dataset, tc, env, micro, samples_seen, step))
        log = MetricsLog(run_dir / "metrics.jsonl", resume_step=step) if main else None
        # train.loggers (TensorBoard, W&B) on rank 0; closed when training ends, also by an exception
        loggers = closing.enter_context(Loggers(
            tc.loggers if main else (), run_dir, step=step, config=config_to_dict(cfg), name=cfg.name,
            wandb_mode=tc.wandb_mode, wandb_project=tc.wandb_project))
        samples: list[Path] = []
        start_step = step
        loss_sum, loss_n, t_last, last_loss = torch.zeros((), device=device), 0, time.perf_counter(), float("nan")
        steps_n = 0  # steps since the last log line (loss_n: those of them not skipped)
        bar = tqdm(total=tc.steps, initial=step, desc="train", disable=not (progress and main), dynamic_ncols=True)
        t_start = time.perf_counter()
        model.train()
        while step < tc.steps:
            for group in opt.param_groups:
                group["lr"] = lr_at(step, tc)
            opt.zero_grad(set_to_none=True)
            step_loss = torch.zeros((), device=device)
            for m in range(tc.grad_accum):
                batch = next(data_iter)
                x = batch["video"].to(device, non_blocking=True)  # (b, C, F + N, H, W): video frames, then N images
                first = (env.rank * tc.grad_accum + m) * micro  # this micro-batch's place in the global batch
                noise = draw_step_noise(
                    range(first, first + x.shape[0]), tuple(x.shape[1:]), seed=tc.seed, step=step,
                    global_batch=tc.batch_size, low_discrepancy=cfg.diffusion.low_discrepancy,
                    drop_prob=tc.cond_drop_prob if text_cache is not None else None,
                    video_frames=x.shape[2] - cfg.data.image_frames, image_frames=cfg.data.image_frames,
                    context_choices=tc.context_frames, device=device)
                seed_dropout(tc.seed, step, first)
                net_kwargs = _net_kwargs(batch, cfg, text_cache, noise.keep, device)
                with no_sync(net, sync=m == tc.grad_accum - 1):  # all-reduce once, after the last micro-batch
                    with autocast(device, dtype):
                        losses = diffusion_loss(net, x, cfg.diffusion.schedule(noise.t), noise.eps,
                                                parameterization=cfg.diffusion.parameterization,
                                                known=_known(noise, x, cfg), concat=cfg.model.context_concat,
                                                **net_kwargs)
                    # DDP averages over ranks, so this makes the gradient the mean over the global batch
                    (losses.sum() / (micro * tc.grad_accum)).backward()
                step_loss += losses.detach().sum()
            clip = tc.grad_clip if tc.grad_clip > 0 else math.inf
            grad_norm = full_value(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))  # FSDP: a DTensor
            # Divergence: a non-finite loss (on any rank) or gradient norm. One flag summed over ranks, so that every
            # rank takes the same decision (one host sync per step).
            bad = env.all_sum((~torch.isfinite(step_loss + grad_norm)).float()).item() > 0
            if bad and tc.on_nonfinite == "stop":
                bar.close()
                what = (f"non-finite loss or gradient norm (loss sum {step_loss.item():g} on this rank, gradient "
                        f"norm {float(grad_norm):g})")
                raise _diverged(step + 1, what, run_dir)
            if bad:  # train.on_nonfinite=skip: no optimizer step, no EMA update; the step's data is consumed
                skipped += 1
                if main:
                    tqdm.write(f"train: step {step + 1}: non-finite loss or gradient norm, skipped "
                               f"({skipped} skipped so far)")
            else:
                opt.step()
                ema.update(model)  # identical on every rank: DDP gave every rank the same gradient
                loss_sum += step_loss
                loss_n += 1
            step += 1
            steps_n += 1
            samples_seen += tc.batch_size
            bar.update(1)
            last = step == tc.steps or _out_of_time(t_start, tc.max_seconds, env, device)
            if step % tc.log_every == 0 or last:
                now = time.perf_counter()
                total = env.all_sum(loss_sum).item()
                last_loss = total / (loss_n * tc.batch_size) if loss_n else float("nan")  # mean over global batches
                vps = steps_n * tc.batch_size / (now - t_last)
                if main:
                    row = {"step": step, "loss": last_loss, "lr": lr_at(step - 1, tc),
                           "grad_norm": float(grad_norm), "videos_per_s": vps}
                    if skipped:
                        row["skipped"] = skipped  # steps skipped so far (train.on_nonfinite=skip)
                    log.append(row)
                    loggers.scalars(step, row)
                bar.set_postfix(loss=f"{last_loss:.4f}", vid_s=f"{vps:.2f}")
                loss_sum, loss_n, steps_n, t_last = torch.zeros((), device=device), 0, 0, now
            if step % tc.ckpt_every == 0 or last:
                if not _weights_finite(model, env):  # never let a non-finite checkpoint rotate the good ones out
                    bar.close()
                    raise _diverged(step, "non-finite weights", run_dir)
                if fsdp:  # every rank writes its shards (torch.distributed.checkpoint); rank 0 the metadata
                    save_sharded_checkpoint(run_dir, step, model, ema.model, opt, config_to_dict(cfg),
                                            {"samples_seen": samples_seen, "world_size": env.world_size,
                                             "grad_accum": tc.grad_accum, "skipped_steps": skipped}, env,
                                            keep=tc.keep_checkpoints)
                else:
                    checksum_across_ranks(ema.model, env, "EMA weights")
                if main and fsdp:
                    plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
                    loggers.flush()
                elif main:
                    save_checkpoint(run_dir, step, model, ema.model, opt, {}, config_to_dict(cfg),
                                    extra={"samples_seen": samples_seen, "world_size": env.world_size,
                                           "grad_accum": tc.grad_accum, "skipped_steps": skipped},
                                    keep=tc.keep_checkpoints)
                    plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
                    loggers.flush()  # the logged steps up to the checkpoint are on disk
                env.barrier()  # the checkpoint is complete before any rank goes on (or returns)
            if (tc.sample_every and step % tc.sample_every == 0) or last:
                if main or fsdp:  # FSDP: every rank runs the sharded EMA network's forward passes; rank 0 writes
                    with torch.random.fork_rng(devices=rng_devices):
                        samples = _write_samples(ema.model, cfg, run_dir, step, text_cache,
                                                 loggers if main else None, write=main)
                env.barrier()
                t_last = time.perf_counter()  # sampling time is not training throughput
            if last and step < tc.steps:
                if main:
                    print(f"train.max_seconds ({tc.max_seconds:g} s) reached: stopped at step {step}")
                break
        bar.close()
    final = latest_checkpoint(run_dir)
    loss_png = run_dir / "loss.png"  # drawn with the last checkpoint; draw it here only if no step ran
    if main and not loss_png.is_file():
        loss_png = plot_loss(run_dir / "metrics.jsonl", loss_png)
    return TrainResult(run_dir, final, loss_png, samples, last_loss, is_main=main, step=step,
                       skipped_steps=skipped, start_step=start_step, skipped_files=_skipped_files(dataset))


def _skipped_files(dataset) -> list[str]:
    """The files a dataset left out as unreadable (``data.on_error=skip``: ``dataset.skipped``, also through a
    wrapper's ``dataset``), as this process saw them (failures inside DataLoader workers stay in the workers)."""
    for d in (dataset, getattr(dataset, "dataset", None), getattr(dataset, "base", None)):
        found = getattr(d, "skipped", None)
        if isinstance(found, list):
            return [str(x) for x in dict.fromkeys(found)]
    return []
