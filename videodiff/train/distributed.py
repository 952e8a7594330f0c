"""Data-parallel training: the process group, the per-rank device, DDP, and the sharded global data stream.

``videodiff train`` started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``) joins a process
group (NCCL when the rank runs on a GPU, gloo on the CPU) and wraps the network in DistributedDataParallel, or with
``train.parallel: fsdp`` shards it with FSDP2 (:func:`shard_fsdp`: ``fully_shard`` per U-Net block, then the whole
network; each rank holds 1/W of the weights, gradients, AdamW moments and EMA). Without those variables (or with
``WORLD_SIZE=1``) training runs in one process exactly as before.

``train.batch_size`` is the GLOBAL batch: every optimizer step consumes the next ``batch_size`` clips of one seeded
index stream (a fresh permutation per epoch, :class:`GlobalIndexStream`); rank ``r`` of ``W`` takes the contiguous
slice ``[r * B / W, (r + 1) * B / W)`` of that global batch and splits it into ``train.grad_accum`` micro-batches.
The clips of step ``n`` are therefore the same set whatever the world size or accumulation, which is what makes a
resumed run exact in its data when the number of processes changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from datetime import timedelta
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..models import pick_device

__all__ = ["DistEnv", "init_distributed", "GlobalIndexStream", "RankSlice", "wrap_ddp", "shard_fsdp", "no_sync",
           "checksum_across_ranks", "is_sharded", "full_value"]


@dataclasses.dataclass
class DistEnv:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this process created the process group (and destroys it in close())

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, draws progress bars and sample grids, and writes checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of ``value`` over ranks (every rank must call it at the same point)."""
        if not self.distributed:
            return value
        value = value.clone()
        dist.all_reduce(value)
        return value

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def _rank_device(name: str, local_rank: int) -> torch.device:
    """The device of a rank: ``auto``/``cuda``/``cuda:N`` mean GPU ``LOCAL_RANK`` under torchrun; ``cpu`` is the CPU."""
    device = pick_device(name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} has no GPU: this node has {torch.cuda.device_count()}")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def init_distributed(device_name: str = "auto", timeout_min: float = 30.0) -> DistEnv:
    """Join the process group torchrun describes (or one the caller set up), or run alone.

    A group initialised by the caller is used as is (and left open); one created here is destroyed by
    :meth:`DistEnv.close`. ``timeout_min`` bounds how long ranks wait for each other (rank 0 writes checkpoints and
    sample grids while the others wait at a barrier).
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        device = _rank_device(device_name, local) if world > 1 else pick_device(device_name)
        return DistEnv(rank, world, local, device, owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=pick_device(device_name))
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = _rank_device(device_name, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=timeout_min))
    return DistEnv(rank, world, local, device, owns_group=True)


class GlobalIndexStream:
    """Endless dataset indices: a fresh seeded permutation per epoch, starting ``start`` indices in."""

    def __init__(self, n: int, seed: int, start: int = 0):
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self) -> Iterator[int]:
        epoch, pos = divmod(self.start, self.n)
        while True:
            perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
            yield from perm[pos:].tolist()
            epoch, pos = epoch + 1, 0


class RankSlice(Sampler):
    """Rank ``rank``'s share of each global batch of ``global_batch`` consecutive indices of ``stream``: the
    contiguous slice ``[rank * B / W, (rank + 1) * B / W)``, global batch after global batch."""

    def __init__(self, stream: GlobalIndexStream, global_batch: int, rank: int, world_size: int):
        if global_batch % world_size:
            raise ValueError(f"train.batch_size ({global_batch}) must be divisible by the world size ({world_size})")
        self.stream, self.global_batch = stream, global_batch
        self.per_rank = global_batch // world_size
        self.lo = rank * self.per_rank

    def __iter__(self) -> Iterator[int]:
        it = iter(self.stream)
        while True:
            batch = [next(it) for _ in range(self.global_batch)]
            yield from batch[self.lo : self.lo + self.per_rank]


def wrap_ddp(model: nn.Module, env: DistEnv) -> nn.Module:
    """DDP around ``model`` in a multi-process run (its gradients are averaged over ranks in backward); else ``model``.
    DDP broadcasts rank 0's parameters and buffers at construction, so all ranks start identical."""
    if not env.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [env.device] if env.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=env.device if ids else None)


def shard_fsdp(model: nn.Module, env: DistEnv) -> nn.Module:
    """FSDP2 in place: ``fully_shard`` each U-Net block (a residual block with its attention), then ``model``, over a
    1-D mesh of all ranks. Each block's weights are all-gathered for its forward and backward and freed after; its
    gradients are reduce-scattered (averaged over ranks, as DDP). The parameters become DTensors: build the optimizer
    after this. Returns ``model``."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from ..nn.unet3d import _Block

    mesh = init_device_mesh(env.device.type, (env.world_size,))
    for block in [m for m in model.modules() if isinstance(m, _Block)]:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model``'s parameters are FSDP2 shards (DTensors)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def full_value(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's full value (a collective: every rank must call it), any other tensor as it is."""
    from torch.distributed.tensor import DTensor

    return t.full_tensor() if isinstance(t, DTensor) else t


def no_sync(net: nn.Module, sync: bool):
    """Context for one micro-batch's backward: DDP skips the gradient all-reduce, FSDP2 the reduce-scatter, unless
    ``sync`` (the last micro-batch)."""
    if hasattr(net, "set_requires_gradient_sync"):  # FSDP2
        net.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if sync or not hasattr(net, "no_sync"):
        return contextlib.nullcontext()
    return net.no_sync()


@torch.no_grad()
def checksum_across_ranks(module: nn.Module, env: DistEnv, what: str = "weights", strict: bool = False) -> bool:
    """Check that ``module``'s parameters agree on every rank (float64 sums per tensor, gathered from all ranks).

    They should, bit for bit: DDP hands every rank the same averaged gradient and the optimizer and EMA are
    deterministic. A mismatch warns (raises when ``strict``) and returns False.
    """
    if not env.distributed:
        return True
    sums = torch.stack([p.detach().double().sum() for p in module.parameters()]).to(env.device)
    gathered = [torch.empty_like(sums) for _ in range(env.world_size)]
    dist.all_gather(gathered, sums)
    same = all(torch.equal(gathered[0], g) for g in gathered[1:])
    if not same:
        msg = f"the {what} differ between ranks (rank 0 vs others); DDP replicas have diverged"
        if strict:
            raise RuntimeError(msg)
        warnings.warn(msg, stacklevel=2)
    return same
