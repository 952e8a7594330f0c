"""What a training run of an experiment config costs, before it runs: parameters, FLOPs per step, memory per GPU and
GPU-hours (``videodiff train --config X --dry-run``, ``benchmarks/recipe_plans.py`` for the paper's recipes).

Everything is measured on the ``meta`` device (shapes only: nothing is allocated or computed, a paper-sized model
plans in seconds on a CPU):

- **FLOPs**: one training step of one video (forward and backward, and the recomputed forward when
  ``train.activation_checkpointing`` is on) counted by :func:`videodiff.bench.flops.count_flops` (matmuls,
  convolutions, attention; not elementwise work), times the global batch.
- **Activations**: the bytes autograd saves for backward in fp32 for one video (a ``saved_tensors_hooks`` count; a
  tensor saved by two operations counts twice, so this is an upper estimate), with checkpointing the blocks' inputs
  plus the largest block's own activations (recomputed one block at a time).
- **Memory per GPU**: model state (fp32 weights, gradients, two AdamW moments and the EMA copy: 20 bytes a
  parameter; replicated on every GPU by DDP, sharded over the GPUs under ``train.parallel: fsdp``) plus the activations of the micro-batch
  ``train.batch_size / (GPUs x train.grad_accum)``. bf16 autocast (``train.precision``) keeps most activations in
  bf16 and needs less; allocator overhead and workspace are not counted.
- **GPU-hours**: ``train.steps x FLOPs per step / (peak x MFU)`` on the dense bf16 tensor-core peak of an A100
  (312 TFLOP/s) and an H100 SXM (989 TFLOP/s) at the stated MFU.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import ExperimentConfig
from .flops import count_flops

__all__ = ["PEAK_BF16", "GPU_MEMORY_GB", "plan_recipe", "format_plan", "check_data"]

PEAK_BF16 = {"A100": 312e12, "H100": 989e12}  # dense bf16 tensor-core FLOP/s (NVIDIA data sheets; H100 SXM)
GPU_MEMORY_GB = 80  # A100 80GB and H100 80GB
STATE_BYTES_PER_PARAM = 20  # fp32 weights + gradients + AdamW m and v + EMA


def _meta_network(cfg: ExperimentConfig):
    from ..nn import UNet3D, set_activation_checkpointing

    model_cfg = dataclasses.replace(cfg.model)
    with torch.device("meta"):
        net = UNet3D(model_cfg)
    set_activation_checkpointing(net, False)
    return net.train()


def _inputs(cfg: ExperimentConfig, net, batch: int = 1):
    f = cfg.data.num_frames + cfg.data.image_frames
    z = torch.empty(batch, cfg.data.channels, f, cfg.data.image_size, cfg.data.image_size, device="meta")
    logsnr = torch.empty(batch, device="meta")
    cond = torch.empty(batch, cfg.model.cond_dim, device="meta") if cfg.model.cond_dim else None
    return z, logsnr, cond


def _saved_bytes(fn) -> int:
    total = [0]

    def pack(x):
        total[0] += x.numel() * x.element_size()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        fn()
    return total[0]


def plan_recipe(cfg: ExperimentConfig, *, gpus: int = 8, mfu: float = 0.35) -> dict:
    """The cost of training ``cfg`` on ``gpus`` GPUs at model-FLOP utilisation ``mfu`` (see the module docstring).
    The U-Net is measured; a text encoder (frozen, its caption embeddings cached) is not counted."""
    from ..nn import set_activation_checkpointing
    from ..nn.unet3d import _Block

    tc = cfg.train
    if tc.batch_size % (gpus * tc.grad_accum):
        raise ValueError(f"train.batch_size ({tc.batch_size}) must be divisible by the GPUs ({gpus}, --gpus) x "
                         f"train.grad_accum ({tc.grad_accum}), as training requires")
    net = _meta_network(cfg)
    params = sum(p.numel() for p in net.parameters())
    z, logsnr, cond = _inputs(cfg, net)

    def step():
        net(z, logsnr, cond).square().mean().backward()

    def forward():
        net(z, logsnr, cond).square().mean()

    # per-block saved bytes (the peak of a checkpointed block's recompute), then the totals with and without
    per_block, marks = [], {}
    counter = [0]

    def pack(x):
        counter[0] += x.numel() * x.element_size()
        return x

    hooks = [m.register_forward_pre_hook(lambda m, a: marks.__setitem__(id(m), counter[0])) for m in net.modules()
             if isinstance(m, _Block)]
    hooks += [m.register_forward_hook(lambda m, a, o: per_block.append(counter[0] - marks[id(m)]))
              for m in net.modules() if isinstance(m, _Block)]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        forward()
    for h in hooks:
        h.remove()
    act = counter[0]
    set_activation_checkpointing(net, True)
    act_ckpt = _saved_bytes(forward) + max(per_block, default=0)
    set_activation_checkpointing(net, tc.activation_checkpointing)
    flops_video = count_flops(step)
    flops_step = flops_video * tc.batch_size
    micro = tc.batch_size // (gpus * tc.grad_accum)
    state = STATE_BYTES_PER_PARAM * params / (gpus if tc.parallel == "fsdp" else 1)
    act_used = act_ckpt if tc.activation_checkpointing else act
    mem = state + micro * act_used
    hours = {gpu: tc.steps * flops_step / (peak * mfu) / 3600 for gpu, peak in PEAK_BF16.items()}
    return {
        "name": cfg.name, "params": params, "video": [cfg.data.num_frames, cfg.data.image_size, cfg.data.image_size],
        "image_frames": cfg.data.image_frames, "global_batch": tc.batch_size, "steps": tc.steps, "gpus": gpus,
        "grad_accum": tc.grad_accum, "micro_batch": micro, "parallel": tc.parallel,
        "activation_checkpointing": tc.activation_checkpointing, "flops_per_video": flops_video,
        "flops_per_step": flops_step, "activation_bytes_per_video": act,
        "activation_bytes_per_video_checkpointed": act_ckpt, "state_bytes_per_gpu": state,
        "memory_bytes_per_gpu": mem, "fits_80gb": mem <= GPU_MEMORY_GB * 1e9, "mfu": mfu, "gpu_hours": hours,
        "wall_hours": {gpu: h / gpus for gpu, h in hours.items()},
    }


def format_plan(p: dict) -> str:
    """The plan as the lines ``--dry-run`` prints (and the recipes' header comments quote)."""
    f, h, w = p["video"]
    img = f" + {p['image_frames']} image frames" if p["image_frames"] else ""
    ck = ", activation checkpointing" if p["activation_checkpointing"] else ""
    fit = "fits" if p["fits_80gb"] else "DOES NOT FIT"
    lines = [
        f"plan for {p['name']}: {f}x{h}x{w}{img}, global batch {p['global_batch']}, {p['steps']} steps",
        f"  parameters     : {p['params'] / 1e6:.1f}M",
        f"  FLOPs per step : {p['flops_per_step'] / 1e12:.1f} TFLOP ({p['flops_per_video'] / 1e12:.3f} TFLOP per video, "
        f"forward + backward{' + recompute' if p['activation_checkpointing'] else ''})",
        f"  memory per GPU : {p['memory_bytes_per_gpu'] / 1e9:.1f} GB on {p['gpus']} GPUs ({p['parallel'].upper()}{ck}, "
        f"micro-batch {p['micro_batch']:g}, grad_accum {p['grad_accum']}): state {p['state_bytes_per_gpu'] / 1e9:.1f} "
        f"GB + activations {p['activation_bytes_per_video'] / 1e9:.2f} GB/video "
        f"({p['activation_bytes_per_video_checkpointed'] / 1e9:.2f} checkpointed), fp32 estimate; {fit} in "
        f"{GPU_MEMORY_GB} GB",
        "  GPU-hours      : " + ", ".join(
            f"{gpu} {p['gpu_hours'][gpu]:,.0f} ({p['wall_hours'][gpu]:,.1f} h on {p['gpus']})" for gpu in PEAK_BF16)
        + f" at {p['mfu']:.0%} MFU of the dense bf16 peak",
    ]
    return "\n".join(lines)


def check_data(cfg: ExperimentConfig) -> str:
    """Build both splits and read their first clip (a missing or corrupt file fails here, naming it); returns a
    line describing them."""
    from ..data import build_dataset

    out = []
    for split in ("train", "test"):
        ds = build_dataset(cfg.data, split)
        stream = isinstance(ds, torch.utils.data.IterableDataset)
        item = next(iter(ds)) if stream else ds[0]
        n = None if stream else len(ds)
        out.append(f"{split}: {n if n is not None else 'a stream of'} clips, first {tuple(item['video'].shape)}")
    return "  data           : " + "; ".join(out)
