"""The training loop: eq. (2) with AdamW, LR warm-up, gradient clipping, EMA, checkpoints and exact resume.

Text-conditioned experiments (``text.encoder`` set) feed the captions' cached embeddings to the network and drop
each example's condition with probability ``train.cond_drop_prob`` (null condition c = 0, for classifier-free
guidance, eq. 5). Joint image-video training (``data.image_frames = N``, Sec. 4.2) appends N independent image
frames to each video and masks temporal attention with ``joint_frame_mask``; the loss covers all frames.

Everything random in a run is derived from ``train.seed`` and saved in checkpoints: the weight init, the data order
(a seeded permutation per epoch, so the position is a function of the step), the diffusion times and noise (a
dedicated generator) and dropout (the global RNG, forked so the caller's state is untouched). Resuming from a
checkpoint therefore continues with exactly the losses an uninterrupted run would have produced.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Iterator

import torch
import yaml
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..config import ExperimentConfig, config_from_dict, config_to_dict
from ..data import build_dataset, collate_clips
from ..denoiser import Denoiser
from ..io import save_video_grid
from ..losses import diffusion_loss, sample_t
from ..nn import joint_frame_mask
from ..pipeline import build_model, pick_device, sample_from_prompts, sample_videos
from ..checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .ema import EMA
from .report import MetricsLog, plot_loss

__all__ = ["train", "TrainResult", "lr_at"]


def lr_at(step: int, tc) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up over ``warmup_steps``, then constant."""
    return tc.lr * min(1.0, (step + 1) / max(1, tc.warmup_steps))


class _IndexStream(Sampler):
    """Endless dataset indices: a fresh seeded permutation per epoch, starting ``start`` indices in."""

    def __init__(self, n: int, seed: int, start: int = 0):
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self) -> Iterator[int]:
        epoch, pos = divmod(self.start, self.n)
        while True:
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
            yield from perm[pos:].tolist()
            epoch, pos = epoch + 1, 0


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    loss_plot: Path | None
    samples: list[Path]
    final_loss: float


def _rng_state(noise_gen: torch.Generator) -> dict[str, torch.Tensor]:
    state = {"torch": torch.get_rng_state(), "noise": noise_gen.get_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda{i}"] = s
    return state


def _restore_rng(state: dict[str, torch.Tensor], noise_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    noise_gen.set_state(state["noise"])
    cuda = [state[k] for k in sorted(state) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])


def _check_resumable(saved: dict, cfg: ExperimentConfig, path: Path) -> None:
    now = config_to_dict(cfg)
    try:  # options added to the config since the checkpoint was written take their defaults
        saved = config_to_dict(config_from_dict(ExperimentConfig, saved))
    except (TypeError, ValueError):
        pass
    for group in ("data", "model", "diffusion", "text"):
        a, b = dict(saved.get(group) or {}), dict(now[group])
        if group == "text":  # where embeddings are cached does not change the model
            a.pop("cache_dir", None)
            b.pop("cache_dir", None)
        if a != b:
            raise ValueError(
                f"cannot resume from {path}: its '{group}' config differs from the one given; "
                f"use a new --out directory or the same config (only train.* and sample.* may change)"
            )


def _net_kwargs(batch: dict, cfg: ExperimentConfig, text_cache, noise_gen: torch.Generator, device) -> dict:
    """The network's keyword arguments for a batch: the joint frame mask and the (dropped-out) caption condition."""
    kwargs = {}
    n_img = cfg.data.image_frames
    f_video = batch["video"].shape[2] - n_img
    if n_img:
        kwargs["frame_mask"] = joint_frame_mask(f_video, n_img, device)  # image frames attend only to themselves
    if text_cache is not None:
        from ..text import caption_condition

        kwargs.update(caption_condition(
            text_cache, batch["caption"], image_captions=batch.get("image_captions") if n_img else None,
            num_frames=f_video, drop_prob=cfg.train.cond_drop_prob, generator=noise_gen, device=device))
    return kwargs


def _preview_prompts(cfg: ExperimentConfig) -> list[str]:
    """Captions of the first ``sample.num`` test clips: the prompts of the preview grids of text models."""
    test = build_dataset(cfg.data, "test")
    return [test[i % len(test)]["caption"] for i in range(cfg.sample.num)]


def _write_samples(ema_net, cfg: ExperimentConfig, run_dir: Path, step: int, text_cache=None) -> list[Path]:
    den = Denoiser(ema_net, cfg.diffusion.parameterization, clip_x=cfg.sample.clip_x)
    if text_cache is None:
        videos = sample_videos(den, cfg, cfg.sample.num, seed=cfg.sample.seed, progress=True)
    else:
        prompts = _preview_prompts(cfg)
        videos = sample_from_prompts(den, cfg, prompts, 1, guidance=cfg.sample.guidance, cache=text_cache,
                                     seed=cfg.sample.seed, progress=True)
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (run_dir / "samples" / f"step_{step:06d}.txt").write_text("\n".join(prompts) + "\n")
    paths = []
    for ext in ("gif", "mp4"):
        p = run_dir / "samples" / f"step_{step:06d}.{ext}"
        save_video_grid(videos, p, fps=cfg.sample.fps)
        paths.append(p)
    return paths


def train(cfg: ExperimentConfig, run_dir: str | Path, *, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train ``cfg`` into ``run_dir`` (resuming from its latest checkpoint when there is one and ``resume``)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    device = pick_device(tc.device)
    if tc.amp == "bf16" and device.type != "cuda":
        raise ValueError("train.amp=bf16 needs a CUDA device (bf16 matmul has no hardware support on these CPUs)")
    resume_from = latest_checkpoint(run_dir) if resume else None
    ckpt = load_checkpoint(resume_from) if resume_from is not None else None
    if ckpt is not None:
        _check_resumable(ckpt["config"], cfg, resume_from)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    rng_devices = [device] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(tc.seed)
        model = build_model(cfg).to(device)
        ema = EMA(model, tc.ema_decay)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)
        noise_gen = torch.Generator(device=device).manual_seed(tc.seed + 1)
        step = 0
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            ema.model.load_state_dict(ckpt["ema"])
            opt.load_state_dict(ckpt["optimizer"])
            step = ckpt["step"]
            ema.updates = step
            _restore_rng(ckpt["rng"], noise_gen)
            print(f"resuming from {resume_from} (step {step})")
        dataset = build_dataset(cfg.data, "train")
        text_cache = None
        if cfg.text.enabled:
            from ..text import build_text_cache

            text_cache = build_text_cache(cfg.text, device=device)  # frozen encoder, loaded on the first cache miss
        loader = DataLoader(
            dataset,
            batch_size=tc.batch_size,
            sampler=_IndexStream(len(dataset), tc.seed, step * tc.batch_size),
            num_workers=tc.num_workers,
            collate_fn=collate_clips,
            drop_last=True,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(tc.seed),  # worker seeds; keeps the global RNG (dropout) exact
            persistent_workers=tc.num_workers > 0,
        )
        log = MetricsLog(run_dir / "metrics.jsonl", resume_step=step)
        samples: list[Path] = []
        loss_sum, loss_n, t_last, last_loss = 0.0, 0, time.perf_counter(), float("nan")
        bar = tqdm(total=tc.steps, initial=step, desc="train", disable=not progress, dynamic_ncols=True)
        data_iter = iter(loader)
        model.train()
        while step < tc.steps:
            batch = next(data_iter)
            x = batch["video"].to(device, non_blocking=True)  # (B, C, F + N, H, W): video frames, then N images
            t = sample_t(x.shape[0], generator=noise_gen, low_discrepancy=cfg.diffusion.low_discrepancy,
                         device=device)
            logsnr = cfg.diffusion.schedule(t)
            eps = torch.randn(x.shape, generator=noise_gen, device=device)
            net_kwargs = _net_kwargs(batch, cfg, text_cache, noise_gen, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.amp == "bf16"):
                loss = diffusion_loss(model, x, logsnr, eps, parameterization=cfg.diffusion.parameterization,
                                      **net_kwargs).mean()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, tc)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf"))
            opt.step()
            ema.update(model)
            step += 1
            loss_sum += loss.item()
            loss_n += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == tc.steps:
                now = time.perf_counter()
                last_loss = loss_sum / loss_n
                vps = loss_n * tc.batch_size / (now - t_last)
                log.append({"step": step, "loss": last_loss, "lr": lr_at(step - 1, tc),
                            "grad_norm": float(grad_norm), "videos_per_s": vps})
                bar.set_postfix(loss=f"{last_loss:.4f}", vid_s=f"{vps:.2f}")
                loss_sum, loss_n, t_last = 0.0, 0, now
            if step % tc.ckpt_every == 0 or step == tc.steps:
                save_checkpoint(run_dir, step, model, ema.model, opt, _rng_state(noise_gen),
                                config_to_dict(cfg), keep=tc.keep_checkpoints)
                plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
            if (tc.sample_every and step % tc.sample_every == 0) or step == tc.steps:
                with torch.random.fork_rng(devices=rng_devices):
                    samples = _write_samples(ema.model, cfg, run_dir, step, text_cache)
                t_last = time.perf_counter()  # sampling time is not training throughput
        bar.close()
    final = latest_checkpoint(run_dir)
    loss_png = run_dir / "loss.png"  # drawn with the last checkpoint; draw it here only if no step ran
    if not loss_png.is_file():
        loss_png = plot_loss(run_dir / "metrics.jsonl", loss_png)
    return TrainResult(run_dir, final, loss_png, samples, last_loss)
