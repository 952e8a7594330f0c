"""Typed experiment configuration: one dataclass per component, loaded from YAML with dotted overrides.

``ExperimentConfig`` composes the data, model (U-Net), diffusion, text-conditioning, training and sampling configs.
YAML files give nested mappings; ``--set train.lr=1e-4`` style overrides are parsed as YAML scalars and checked
against the field's type. Unknown keys and ill-typed values raise errors naming the option (no ``exec``, no string
reflection).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data.config import DataConfig
from .distill.config import DistillConfig
from .parameterization import check_parameterization
from .nn.unet3d import UNetConfig
from .precision import PRECISIONS
from .sampling.registry import get_sampler, option_owners
from .schedule import ScheduleConfig
from .text.config import TextConfig

__all__ = [
    "DiffusionConfig",
    "TrainConfig",
    "SampleConfig",
    "TextConfig",
    "LoraConfig",
    "ExperimentConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
    "apply_overrides",
]


@dataclass
class DiffusionConfig:
    """Sec. 2: the log-SNR schedule, the network's parameterisation and how training times are drawn."""

    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    parameterization: str = "eps"  # the paper's choice; "v" as an option
    low_discrepancy: bool = False  # stratified t in eq. (2)'s expectation (Kingma et al. 2021)

    def __post_init__(self) -> None:
        check_parameterization(self.parameterization, "diffusion.parameterization")


def _check_precision(group: str, value: str) -> None:
    if value not in PRECISIONS:
        raise ValueError(f"{group}.precision must be one of {' | '.join(PRECISIONS)}, got {value!r}")


ON_NONFINITE = ("stop", "skip")  # train.on_nonfinite
PARALLEL = ("ddp", "fsdp")  # train.parallel (videodiff/train/distributed.py)
LOGGERS = ("tensorboard", "wandb")  # train.loggers (videodiff/train/loggers.py)
WANDB_MODES = ("offline", "online")  # train.wandb_mode


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8  # the GLOBAL batch per optimizer step: world size x per-rank micro-batch x grad_accum
    grad_accum: int = 1  # micro-batches per optimizer step on each rank (gradients summed, then one step)
    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100  # linear LR warm-up from 0
    grad_clip: float = 1.0  # max global gradient norm (0: off)
    ema_decay: float = 0.999  # EMA of the weights used for sampling; effective decay min(d, (1+n)/(10+n))
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    # "auto" | "fp32" | "bf16" (autocast; videodiff/precision.py). auto: bf16 where the device has native bf16 (CUDA
    # with bf16, CPUs with AMX / AVX512-BF16), else fp32. Parameters, optimizer state, EMA and the loss stay fp32.
    precision: str = "auto"
    compile: bool = False  # torch.compile the U-Net (the first step compiles: minutes on a 2-core CPU)
    # Recompute each U-Net block's activations in backward instead of keeping them (less memory, about one more
    # forward pass of time; docs/recipes.md has the measurement). model.gradient_checkpointing is its old name.
    activation_checkpointing: bool = False
    # Under torchrun: "ddp" (a full replica per rank, DistributedDataParallel) or "fsdp" (FSDP2,
    # torch.distributed.fsdp.fully_shard per U-Net block: weights, gradients, optimizer state and EMA sharded over the
    # ranks, for models that do not fit one GPU; checkpoints are sharded, torch.distributed.checkpoint, and resume
    # at any world size). One process: no effect.
    parallel: str = "ddp"
    amp: str = "none"  # deprecated, kept so that older configs load: "bf16" means precision "bf16"
    log_every: int = 10
    sample_every: int = 0  # write a sample grid every N steps (0: only at the end)
    ckpt_every: int = 500  # write a checkpoint every N steps (and always at the end)
    keep_checkpoints: int = 3
    # > 0: stop after this many seconds of training (checked after every step; a checkpoint and samples are written
    # as at the last step). For runs of equal wall time, and for time-boxed checks; 0 (default): train.steps only.
    max_seconds: float = 0.0
    cond_drop_prob: float = 0.1  # text-conditioned runs: P(null condition c = 0) per video / image frame (eq. 5)
    # Explicit frame-conditional training (videodiff/context.py; paper Sec. 3.1 "could be trained explicitly"): each
    # clip draws a count n uniformly from this list and its first n frames are given clean, the loss covering the
    # rest; 0 in the list keeps the unconditional objective. () (default): the paper's unconditional training.
    context_frames: tuple[int, ...] = ()
    init_from: str | None = None  # a new run starts from these EMA weights (run dir or checkpoint): fine-tuning
    # A step whose loss or gradient norm is not finite (divergence): "stop" ends training with an error naming the
    # step (no checkpoint is written for it, the last good one stays the latest); "skip" drops the step (no optimizer
    # or EMA update), counts it ("skipped" in metrics.jsonl) and goes on.
    on_nonfinite: str = "stop"
    # Resuming a run whose saved config differs in an option that changes the optimisation (lr, batch_size, seed,
    # ...): refused, naming the keys, unless this is true (`videodiff train --allow-config-change`). Its length
    # (steps), logging and checkpoint cadence may always change; the data, model, diffusion and text never.
    allow_config_change: bool = False
    # Experiment trackers, besides metrics.jsonl (always written), on rank 0: "tensorboard" (event files in
    # RUN/tensorboard/) and/or "wandb" (the optional wandb package); [] for none.
    loggers: tuple[str, ...] = ("tensorboard",)
    wandb_mode: str = "offline"  # "offline": files in RUN/wandb/ only (`wandb sync` uploads them); "online": uploads
    wandb_project: str = "videodiff"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.loggers = tuple(self.loggers)
        self.context_frames = tuple(int(n) for n in self.context_frames)
        if any(n < 0 for n in self.context_frames):
            raise ValueError(f"train.context_frames must be counts >= 0, got {list(self.context_frames)}")
        for name in self.loggers:
            if name not in LOGGERS:
                raise ValueError(f"train.loggers: unknown logger {name!r}; choose from {' | '.join(LOGGERS)} "
                                 f"(or [] for none)")
        if len(set(self.loggers)) != len(self.loggers):
            raise ValueError(f"train.loggers names a logger twice: {list(self.loggers)}")
        if self.wandb_mode not in WANDB_MODES:
            raise ValueError(f"train.wandb_mode must be one of {' | '.join(WANDB_MODES)}, got {self.wandb_mode!r}")
        if not self.wandb_project:
            raise ValueError("train.wandb_project must not be empty")
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise ValueError(f"train.cond_drop_prob must be in [0, 1], got {self.cond_drop_prob}")
        for name in ("steps", "batch_size", "grad_accum", "log_every", "ckpt_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"train.batch_size ({self.batch_size}) must be divisible by train.grad_accum "
                             f"({self.grad_accum}) (and by the number of processes)")
        _check_precision("train", self.precision)
        if self.amp not in ("none", "bf16"):
            raise ValueError(f"train.amp must be 'none' or 'bf16' (it is replaced by train.precision: "
                             f"{' | '.join(PRECISIONS)}), got {self.amp!r}")
        if self.amp == "bf16":  # the old key: keep its meaning, refuse a contradiction
            if self.precision == "fp32":
                raise ValueError("train.amp=bf16 contradicts train.precision=fp32; set only train.precision")
            self.precision = "bf16"
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(f"train.lr must be a finite number >= 0, got {self.lr}")
        if self.max_seconds < 0:
            raise ValueError(f"train.max_seconds must be >= 0 (0: no limit), got {self.max_seconds}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.parallel not in PARALLEL:
            raise ValueError(f"train.parallel must be one of {' | '.join(PARALLEL)}, got {self.parallel!r}")
        if self.on_nonfinite not in ON_NONFINITE:
            raise ValueError(f"train.on_nonfinite must be one of {' | '.join(ON_NONFINITE)}, got {self.on_nonfinite!r}")


@dataclass
class SampleConfig:
    sampler: str = "ancestral"  # "ancestral" (eq. 4) | "ddim" | "dpmpp2m" (DPM-Solver++(2M)): videodiff/sampling/registry.py
    steps: int = 128
    gamma: float = 0.3  # eq. (4) stochasticity
    eta: float = 0.0  # DDIM stochasticity
    num: int = 8  # videos in the preview grid written during training
    seed: int = 0
    clip_x: bool = True  # clamp x_hat to the data range [-1, 1]
    fps: int = 8
    guidance: float = 0.0  # classifier-free guidance weight w of eq. (5) for text-conditioned previews
    precision: str = "auto"  # "auto" | "fp32" | "bf16" for the network while sampling (as train.precision)
    compile: bool = False  # torch.compile the U-Net for sampling (pays off over many sampling steps)
    # Options of registered samplers without a field above ({name: value}; each sampler takes only its own), e.g.
    # a sampler added to videodiff/sampling/registry.py: `--set sample.options.churn=0.5`. A value here wins over
    # the field of the same name (gamma, eta).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_precision("sample", self.precision)
        get_sampler(self.sampler, "sample.sampler")
        if not isinstance(self.options, dict):
            raise ValueError(f"sample.options must be a mapping of sampler options, got {self.options!r}")
        owners = option_owners()
        for name, value in self.options.items():
            if name not in owners:
                raise ValueError(f"sample.options.{name}: no registered sampler has this option (options: "
                                 f"{', '.join(sorted(owners)) or 'none'})")
            opt = owners[name][0]
            if opt.type is float and isinstance(value, int) and not isinstance(value, bool):
                self.options[name] = value = float(value)
            if type(value) is not opt.type:
                raise ValueError(f"sample.options.{name} must be a {opt.type.__name__}, got {value!r}")
        for name in ("steps", "num", "fps"):
            if getattr(self, name) < 1:
                raise ValueError(f"sample.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class LoraConfig:
    """Low-rank adapters for fine-tuning (videodiff/nn/lora.py): rank 0 trains every weight (full fine-tuning)."""

    rank: int = 0  # > 0: the base network is frozen and only adapters of this rank train
    alpha: float = 0.0  # adapter scale alpha / rank; 0: alpha = rank (scale 1)
    targets: tuple[str, ...] = ("attention", "conv")  # the attention projections, every other convolution

    def __post_init__(self) -> None:
        from .nn.lora import TARGETS

        self.targets = tuple(self.targets)
        if self.rank < 0 or self.alpha < 0 or not self.targets or set(self.targets) - set(TARGETS):
            raise ValueError(f"lora: need rank >= 0, alpha >= 0 and targets among {list(TARGETS)}, got "
                             f"rank={self.rank}, alpha={self.alpha}, targets={list(self.targets)}")


@dataclass
class ExperimentConfig:
    name: str = "run"
    data: DataConfig = field(default_factory=DataConfig)
    model: UNetConfig = field(default_factory=UNetConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)  # videodiff distill (progressive distillation)

    def __post_init__(self) -> None:
        # The model's channels and size, and the schedule's resolution, are derived from the data.
        if self.model.gradient_checkpointing:  # the old name of train.activation_checkpointing: move it there
            self.train.activation_checkpointing = True
            self.model.gradient_checkpointing = False
        self.model.in_channels = self.data.channels
        self.model.image_size = self.data.image_size
        if self.text.enabled:  # text-to-video: captions in the data, the pooled caption vector is c
            self.model.cond_dim = self.text.cond_dim
            self.data.captions = True
        self.model.__post_init__()
        self.diffusion.schedule.image_size = self.data.image_size
        if self.train.context_frames and max(self.train.context_frames) >= self.data.num_frames:
            raise ValueError(f"train.context_frames {list(self.train.context_frames)}: every count must be below "
                             f"data.num_frames ({self.data.num_frames}), or no frame is left to learn from")


# ----------------------------------------------------------------------------------------------- (de)serialisation


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value to the annotated type ``tp``; raise naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except (TypeError, ValueError) as e:
                errors.append(str(e))
        raise ValueError(errors[0] if errors else f"{key}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping of options, got {value!r}")
        return config_from_dict(tp, value, prefix=key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key} must be a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(args) != len(value):
            raise ValueError(f"{key} must have {len(args)} entries, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool):  # YAML 1.1 reads on/off/yes/no/true/false unquoted as booleans
            raise ValueError(f"{key} must be a string, got {value!r} (YAML reads on, off, yes, no unquoted as true or "
                             f"false: quote the value, e.g. --set {key}='\"on\"' or {key}: \"on\" in a file)")
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {value!r}")
        return value
    return value


def config_from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, type-checking every value; unknown keys are errors."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown option {prefix}{unknown[0]}; valid options under '{prefix or '(top)'}': {sorted(names)}")
    kwargs = {}
    for k in sorted(data, key=lambda k: k != "data"):  # the data first: the model's size derives from it
        v = data[k]
        if cls is ExperimentConfig and k == "model" and isinstance(v, dict):
            # ExperimentConfig sets model.image_size from data.image_size; give it before UNetConfig checks its
            # attention levels against it
            v = {**v, "image_size": kwargs["data"].image_size if "data" in kwargs else DataConfig().image_size}
        kwargs[k] = _coerce(v, hints[k], prefix + k)
    return cls(**{k: kwargs[k] for k in data})


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict (tuples as lists) suitable for YAML/JSON."""

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p} is not a group of options")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:  # e.g. "[1,2,4", "{a: 1", "*alias": one line, as for a config file
            why = " ".join(str(getattr(e, "problem", None) or e).split())
            raise ValueError(f"--set {item}: the value {raw!r} is not valid YAML ({why}); quote strings and close "
                             f"brackets, e.g. --set model.channel_mults='[1, 2, 4]'") from None
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load an :class:`ExperimentConfig` from YAML (``None``: defaults) with dotted ``overrides``."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"could not parse config {path}: {e}") from e
        except UnicodeDecodeError:
            raise ValueError(f"config {path} is not a text (UTF-8) YAML file") from None
        if not isinstance(data, dict):
            raise ValueError(f"config {path} must be a mapping of option groups, got {type(data).__name__}")
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(ExperimentConfig, data)
    except (TypeError, ValueError) as e:
        where = f" (in {path})" if path is not None else ""
        raise ValueError(f"{e}{where}") from e
