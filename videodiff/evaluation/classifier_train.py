"""Training and held-out evaluation of the Moving MNIST classifier (:mod:`videodiff.metrics.classifier`).

Train clips come from the train split (4,000 MNIST digits), one fresh clip per example (clip ``i`` of a split
is a deterministic function of ``(seed, split, i)``, so the run is reproducible and never repeats a clip);
accuracy is measured on the test split, whose clips are made of the 1,000 held-out digits.

A fraction ``train.augment`` of the clips gets photometric nuisances (:func:`augment`: background and
stroke levels, flicker, pixel noise) so that the features, the digit readout and therefore classifier-FVD and
digit accuracy judge digits and motion rather than the global brightness of a sample.

Losses: the digit softmax against the uniform distribution over the classes present (soft-target cross
entropy), plus, for every digit class present exactly once, the cross entropy of its 8 direction logits
against the clip's initial compass direction (``directions`` metadata).
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

from ..data import DataConfig, build_dataset, collate_clips
from ..data.moving_mnist import DIRECTIONS
from ..metrics.classifier import (NUM_CLASSES, ClassifierConfig, VideoClassifier, classifier_outputs, digit_sets,
                                  normalize_levels, save_classifier)
from ..train.lr import lr_at

__all__ = ["ClassifierTrainConfig", "ClassifierExperiment", "PRESETS", "load_classifier_config",
           "train_classifier", "evaluate_classifier", "classifier_losses"]


@dataclass
class ClassifierTrainConfig:
    steps: int = 1200
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50  # linear warm-up, then cosine decay to 0
    direction_weight: float = 1.0  # weight of the motion loss beside the digit loss
    augment: float = 0.5  # fraction of clips with random background/contrast, flicker and pixel noise
    seed: int = 0
    eval_clips: int = 1000  # held-out test clips scored at the end
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_clips", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ClassifierExperiment:
    name: str = "moving-mnist-32"
    data: DataConfig = field(default_factory=DataConfig)
    net: ClassifierConfig = field(default_factory=ClassifierConfig)
    train: ClassifierTrainConfig = field(default_factory=ClassifierTrainConfig)

    def __post_init__(self) -> None:
        if self.data.kind != "moving_mnist":
            raise ValueError("the classifier is trained on Moving MNIST: data.kind must be 'moving_mnist'")
        # What the network sees is derived from the data, as the diffusion config derives the U-Net's size.
        self.net.num_frames, self.net.image_size = self.data.num_frames, self.data.image_size
        self.net.num_digits = self.data.num_digits
        self.net.__post_init__()


# The two shipped classifiers: the `make demo` data (configs/moving_mnist_tiny.yaml) and the paper-shaped
# 16x64x64 two-digit data (configs/moving_mnist_16x64x64.yaml), the latter seen at half resolution.
PRESETS = {
    "moving-mnist-32": {"data": {"num_frames": 8, "image_size": 32, "num_digits": 1, "speed": [2.0, 4.0]},
                        "net": {"net_size": 32}},
    "moving-mnist-64": {"data": {"num_frames": 16, "image_size": 64, "num_digits": 2, "speed": [2.0, 4.0]},
                        "net": {"net_size": 32, "stem_temporal_stride": 2}},
}


def load_classifier_config(preset: str | None = None, config: str | Path | None = None,
                           overrides: list[str] | None = None) -> ClassifierExperiment:
    """Preset, then a YAML file (its ``data``/``net``/``train``/``name`` groups; a diffusion experiment YAML
    contributes its ``data`` group only), then ``--set`` style overrides."""
    from ..config import apply_overrides, config_from_dict

    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown classifier preset {preset!r}; choose one of {sorted(PRESETS)}")
    data: dict = json.loads(json.dumps(PRESETS[preset])) if preset else {}
    if preset:
        data["name"] = preset
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        for group in ("data", "net", "train"):
            if isinstance(loaded.get(group), dict):
                data.setdefault(group, {}).update(loaded[group])
        if "net" in loaded and isinstance(loaded.get("name"), str):
            data["name"] = loaded["name"]
    apply_overrides(data, overrides or [])
    try:
        return config_from_dict(ClassifierExperiment, data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"classifier config: {e}") from e


def _targets(batch: dict, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft digit targets (B, 10), direction indices (B, 10) and their mask (B, 10) from a collated batch."""
    labels = torch.stack(batch["labels"])  # (B, k)
    b = labels.shape[0]
    counts = torch.zeros(b, NUM_CLASSES).scatter_add_(1, labels, torch.ones(labels.shape))
    present = (counts > 0).float()
    soft = present / present.sum(1, keepdim=True)  # uniform over the classes present
    direction = torch.zeros(b, NUM_CLASSES, dtype=torch.long)
    for i, names in enumerate(batch["directions"]):
        for c, name in zip(labels[i].tolist(), names):
            direction[i, c] = DIRECTIONS.index(name)
    mask = counts == 1  # a class present twice has two directions: no target for its row
    return soft.to(device), direction.to(device), mask.to(device)


def classifier_losses(out: dict, soft, direction, mask, direction_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Soft-target cross entropy of the digit softmax + masked cross entropy of the direction rows."""
    digit = -(soft * F.log_softmax(out["digit_logits"], -1)).sum(-1).mean()
    ce = F.cross_entropy(out["direction_logits"].flatten(0, 1), direction.flatten(), reduction="none")
    motion = (ce * mask.flatten()).sum() / mask.sum().clamp_min(1)
    return digit + direction_weight * motion, {"digit_loss": float(digit.detach()), "direction_loss": float(motion.detach())}


def evaluate_classifier(model: VideoClassifier, data: DataConfig, split: str = "test", num: int = 1000,
                        batch_size: int = 100, progress: bool = False) -> dict:
    """Accuracy on ``num`` clips of ``split``: digit sets (predicted set == true set), directions (per digit
    present once, read from its class row) and the fraction of true digits found."""
    cfg = dataclasses.replace(data, test_clips=max(num, 1), train_clips=max(num, 1))
    ds = build_dataset(cfg, split)
    loader = DataLoader(ds, batch_size=batch_size, collate_fn=collate_clips)
    was_training = model.training
    model.eval()
    sets_ok, found, total_digits, dir_ok, dir_n = 0, 0, 0, 0, 0
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, desc=f"eval {split}")
    for batch in loader:
        out = classifier_outputs(batch["video"], model, batch_size)
        pred = digit_sets(out["digit_logits"], model.cfg.num_digits)
        dirs = out["direction_logits"].argmax(-1)
        for i, (labels, names) in enumerate(zip(batch["labels"], batch["directions"])):
            labels = labels.tolist()
            sets_ok += pred[i] == frozenset(labels)
            found += sum(c in pred[i] for c in labels)
            total_digits += len(labels)
            for c, name in zip(labels, names):
                if labels.count(c) == 1:
                    dir_ok += DIRECTIONS[dirs[i, c]] == name
                    dir_n += 1
    model.train(was_training)
    return {"split": split, "num_clips": len(ds), "digit_set_accuracy": sets_ok / len(ds),
            "digit_recall": found / total_digits, "direction_accuracy": dir_ok / max(dir_n, 1)}


def augment(x: torch.Tensor, prob: float, gen: torch.Generator, noise: float = 0.1) -> torch.Tensor:
    """Photometric nuisances on prepared clips ``(B, 1, F, s, s)`` in [-1, 1], each clip with probability
    ``prob``: background level in [0, 0.8] and stroke level in [bg + 0.2, 1] (on a 0..1 scale), a per-frame
    brightness flicker (std 0.05) and Gaussian pixel noise (std up to ``noise``). Generated videos from
    short-trained models show exactly these (gray or white backgrounds, flicker, grain); without them the
    features of such samples land anywhere and classifier-FVD stops ranking models sensibly."""
    b, f = x.shape[0], x.shape[2]

    def u(*shape):
        return torch.rand(*shape, generator=gen)

    on = (u(b, 1, 1, 1, 1) < prob).float()
    bg = 0.8 * u(b, 1, 1, 1, 1)
    fg = bg + 0.2 + (0.8 - bg) * u(b, 1, 1, 1, 1)
    v = (x + 1) / 2  # 0..1
    v_aug = bg + (fg - bg) * v + 0.05 * torch.randn(b, 1, f, 1, 1, generator=gen)
    v_aug = v_aug + noise * u(b, 1, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    v = on * v_aug.clamp(0, 1) + (1 - on) * v
    return v * 2 - 1


def train_classifier(cfg: ClassifierExperiment, out_dir: str | Path, *, command: str | None = None,
                     progress: bool = True) -> dict:
    """Train on fresh train-split clips, score the held-out split, and write ``out_dir/classifier.safetensors``
    and ``classifier.json`` (config, steps, test accuracy, time, ``command``). Returns the JSON record."""
    from tqdm.auto import tqdm

    from ..config import config_to_dict

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tc = cfg.train
    data = dataclasses.replace(cfg.data, train_clips=max(cfg.data.train_clips, tc.steps * tc.batch_size))
    loader = DataLoader(build_dataset(data, "train"), batch_size=tc.batch_size, collate_fn=collate_clips,
                        drop_last=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    log_path = out_dir / "log.jsonl"
    log_path.write_text("")
    with torch.random.fork_rng():
        torch.manual_seed(tc.seed)
        model = VideoClassifier(cfg.net)
        opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
        aug_gen = torch.Generator().manual_seed(tc.seed + 1)
        model.train()
        bar = tqdm(total=tc.steps, desc=f"train {cfg.name}", disable=not progress, dynamic_ncols=True)
        for step, batch in enumerate(loader):
            if step >= tc.steps:
                break
            soft, direction, mask = _targets(batch, "cpu")
            x = augment(model.prepare(batch["video"], levels=False), tc.augment, aug_gen)  # (B, 1, f, s, s)
            out = model(normalize_levels(x) if cfg.net.normalize else x)
            loss, parts = classifier_losses(out, soft, direction, mask, tc.direction_weight)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, tc, "cosine")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
            if (step + 1) % tc.log_every == 0 or step + 1 == tc.steps:
                acc = (out["digit_logits"].argmax(-1)[:, None] == torch.stack(batch["labels"])).any(1).float().mean()
                rec = {"step": step + 1, "loss": float(loss.detach()), **parts, "batch_top1_in_set": float(acc),
                       "lr": lr_at(step, tc, "cosine"), "elapsed_s": round(time.perf_counter() - t0, 1)}
                with log_path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{float(acc):.2f}")
        bar.close()
    train_time, cpu_time = time.perf_counter() - t0, time.process_time() - cpu0
    record = {"name": cfg.name, "steps": tc.steps, "train_time_s": round(train_time, 1),
              "train_cpu_time_s": round(cpu_time, 1), "torch_threads": torch.get_num_threads(),
              "experiment": config_to_dict(cfg), "command": command, "torch": torch.__version__}
    path = save_classifier(model, out_dir / "classifier.safetensors", record)
    # Score the weights as they are stored (float16 -> float32), i.e. exactly what load_classifier returns.
    from ..metrics.classifier import load_classifier

    stored = load_classifier(path)
    record["test_accuracy"] = evaluate_classifier(stored, cfg.data, "test", tc.eval_clips, progress=progress)
    record["train_accuracy"] = evaluate_classifier(stored, cfg.data, "train", min(tc.eval_clips, 500))
    save_classifier(stored, path, record)
    return record
