"""A small video classifier for Moving MNIST: the project's offline evaluator for its built-in data.

The paper evaluates with networks trained on real data (I3D for FVD, InceptionV3 / C3D for FID and IS, Sec. 4).
None of them knows Moving MNIST, and only I3D ships here, so this module gives the built-in data its own
evaluation network, trained by the project (:mod:`videodiff.evaluation.classifier_train`) on the train split
and measured on the held-out split (clips made of MNIST digits never seen in training):

* **digits**: 10 logits whose softmax is trained towards the uniform distribution over the digit classes
  present in the clip (1 or 2 digits). The predicted set is the ``k`` most probable classes for ``k`` digits
  per clip, those after the first only above probability ``1 / (5 k)``, so "3 and 7" and "3 and 3" are both
  representable (:func:`digit_sets`);
* **motion**: for every digit class, 8 direction logits (``DIRECTIONS``: right, up-right, ..., the initial
  direction of the ``directions`` metadata), so "digit 4 moving right" is read off row 4;
* **features**: the penultimate activations (``feature_dim``), for a Fréchet distance on them
  ("classifier-FVD", :func:`classifier_fvd`) and the digit softmax for a classifier Inception Score
  (:func:`classifier_inception_score`), the Moving MNIST analogues of FVD and IS.

Inputs are either library tensors ``(B, C, F, H, W)`` float in [-1, 1] or file-layout arrays
``(N, F, H, W, C)`` uint8 0..255; both are turned into gray ``(B, 1, num_frames, net_size, net_size)``
by :meth:`VideoClassifier.prepare` (channel mean, the first ``num_frames`` frames, antialiased bilinear
resize) and their gray levels normalised (:func:`normalize_levels`: each frame's background to black, the
clip's strokes to white). With that and photometric augmentation in training, the classifier measures digits
and motion, not the global brightness, flicker or grain of a sample; FVD (I3D) still sees those. Shipped checkpoints live in ``videodiff/assets/`` and load by name: ``load_classifier("moving-mnist-32")``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.moving_mnist import DIRECTIONS
from .frechet import MetricResult, frechet_distance_from_features
from .inception_score import inception_score

__all__ = ["ClassifierConfig", "VideoClassifier", "ASSETS_DIR", "available_classifiers", "load_classifier",
           "save_classifier", "classifier_outputs", "predict", "digit_accuracy", "direction_accuracy",
           "classifier_fvd", "classifier_inception_score", "default_classifier_name"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
NUM_CLASSES = 10
NUM_DIRECTIONS = len(DIRECTIONS)


@dataclass
class ClassifierConfig:
    num_frames: int = 8  # frames the network sees (the first num_frames of longer videos)
    image_size: int = 32  # frame size of the videos it was trained on
    net_size: int = 32  # internal resolution: inputs are resized to net_size x net_size
    num_digits: int = 1  # digits per training clip: the size of the predicted digit set
    widths: tuple[int, ...] = (16, 32, 48, 64)  # stem width, then one stride-2 stage per entry
    feature_dim: int = 128  # penultimate features (classifier-FVD)
    stem_temporal_stride: int = 1  # 2 halves the cost of long clips (motion is still seen by 3x3x3 kernels)
    normalize: bool = True  # per-frame background (median) to black, per-clip 99.5th percentile to white

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        for name in ("num_frames", "image_size", "net_size", "num_digits", "feature_dim", "stem_temporal_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"net.{name} must be a positive integer, got {value!r}")
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"net.widths must list at least two positive widths, got {self.widths!r}")
        if self.net_size % 2 ** (len(self.widths) - 1):
            raise ValueError(f"net.net_size ({self.net_size}) must be divisible by 2**{len(self.widths) - 1} "
                             f"(one halving per stage after the stem)")


def _unit(cin, cout, kernel, stride=(1, 1, 1)) -> nn.Sequential:
    pad = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, pad, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


def normalize_levels(x: torch.Tensor) -> torch.Tensor:
    """Map the background of every frame (its median: digits cover a small part of a frame) to -1 and the
    clip's bright strokes (its 99.5th percentile) to +1, on gray ``(B, 1, F, H, W)`` in [-1, 1]. Clean Moving
    MNIST clips are left nearly unchanged; generated clips with a gray or flickering background are brought to
    the same levels, so the network judges digits and motion rather than global brightness."""
    b, _, f = x.shape[:3]
    bg = x.flatten(3).median(dim=-1).values[..., None, None]  # (B, 1, F, 1, 1)
    v = x - bg
    hi = torch.quantile(v.flatten(1), 0.995, dim=1).clamp_min(0.1).view(b, 1, 1, 1, 1)
    return (v / hi).clamp(0, 1) * 2 - 1


class VideoClassifier(nn.Module):
    """3D ConvNet: a 3x3x3 stem (temporal stride ``stem_temporal_stride``), then per stage a (1,3,3)/2 spatial downsampling and a 3x3x3 conv; global
    mean over (F, H, W); a linear + ReLU layer gives the features; two linear heads read digits and motion."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        layers = [_unit(1, w[0], (3, 3, 3), (cfg.stem_temporal_stride, 1, 1))]
        for cin, cout in zip(w[:-1], w[1:]):
            layers += [_unit(cin, cout, (1, 3, 3), (1, 2, 2)), _unit(cout, cout, (3, 3, 3))]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(w[-1], cfg.feature_dim)
        self.digit_head = nn.Linear(cfg.feature_dim, NUM_CLASSES)
        self.direction_head = nn.Linear(cfg.feature_dim, NUM_CLASSES * NUM_DIRECTIONS)

    def prepare(self, videos, levels: bool = True) -> torch.Tensor:
        """Library ``(B, C, F, H, W)`` in [-1, 1] or uint8 ``(N, F, H, W, C)`` -> ``(B, 1, f, s, s)`` in [-1, 1]
        (gray, first ``num_frames`` frames, resized; then :func:`normalize_levels` if ``cfg.normalize`` and
        ``levels``)."""
        x = torch.from_numpy(np.ascontiguousarray(videos)) if isinstance(videos, np.ndarray) else videos
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            raise ValueError(f"expected (B, C, F, H, W) float videos or (N, F, H, W, C) uint8 videos, got "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        if x.dtype == torch.uint8:
            x = x.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0  # (B, C, F, H, W)
        elif x.shape[1] not in (1, 3):
            raise ValueError(f"float videos must be (B, C, F, H, W) with C in (1, 3), got {tuple(x.shape)}")
        f = self.cfg.num_frames
        if x.shape[2] < f:
            raise ValueError(f"the classifier needs at least {f} frames per video, got {x.shape[2]}")
        x = x[:, :, :f].float().mean(1, keepdim=True)  # (B, 1, f, H, W) gray
        b, _, _, h, w = x.shape
        s = self.cfg.net_size
        if (h, w) != (s, s):
            frames = x.reshape(b * f, 1, h, w)
            frames = F.interpolate(frames, size=(s, s), mode="bilinear", align_corners=False,
                                   antialias=min(h, w) > s)
            x = frames.reshape(b, 1, f, s, s)
        x = x.clamp(-1, 1)
        if self.cfg.normalize and levels:
            x = normalize_levels(x)
        return x.to(next(self.parameters()).device)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: prepared ``(B, 1, f, s, s)``. Returns features ``(B, D)``, digit logits ``(B, 10)`` and
        direction logits ``(B, 10, 8)``."""
        h = self.body(x).mean(dim=(2, 3, 4))  # (B, C)
        feats = F.relu(self.fc(h))  # (B, D)
        return {"features": feats, "digit_logits": self.digit_head(feats),
                "direction_logits": self.direction_head(feats).view(-1, NUM_CLASSES, NUM_DIRECTIONS)}


# ------------------------------------------------------------------------------------------- saving, loading


def _safetensors():
    from safetensors.torch import load_file, save_file
    return load_file, save_file


def save_classifier(model: VideoClassifier, path: str | Path, meta: dict | None = None) -> Path:
    """Write ``path`` (``.safetensors``, weights stored as float16 to keep shipped files small) and
    ``path.json`` beside it (the config plus ``meta``: training steps, test accuracy, command...)."""
    _, save_file = _safetensors()
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    save_file(sd, str(path))
    record = {"config": asdict(model.cfg), "weights_dtype": "float16", **(meta or {})}
    record["config"]["widths"] = list(model.cfg.widths)
    path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def available_classifiers() -> list[str]:
    """Names of the checkpoints shipped in ``videodiff/assets/`` (``load_classifier(name)``)."""
    return sorted(p.stem for p in ASSETS_DIR.glob("*.safetensors") if p.with_suffix(".json").is_file())


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "classifier.safetensors"
    elif p.suffix not in (".safetensors", ".json") and not p.exists():
        p = ASSETS_DIR / f"{name_or_path}.safetensors"
    p = p.with_suffix(".safetensors")
    if not p.is_file() or not p.with_suffix(".json").is_file():
        raise FileNotFoundError(f"no classifier at {name_or_path!r}: give a shipped name "
                                f"({', '.join(available_classifiers()) or 'none shipped'}), a training output "
                                f"folder, or a .safetensors file with its .json beside it")
    return p


def load_classifier(name_or_path: str | Path = "moving-mnist-32", device: str | torch.device = "cpu") -> VideoClassifier:
    """A classifier in eval mode: a shipped name (``available_classifiers()``), a folder written by
    ``videodiff train-classifier``, or a ``.safetensors`` file with its ``.json``. The JSON record is kept
    as ``model.meta`` and the weights' sha256 as ``model.weights_sha256``."""
    load_file, _ = _safetensors()
    path = _resolve(name_or_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    model = VideoClassifier(ClassifierConfig(**meta["config"]))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.meta, model.weights_path = meta, str(path)
    model.weights_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    model.name = path.stem if path.parent == ASSETS_DIR else str(path)
    return model.to(device).eval().requires_grad_(False)


def default_classifier_name(num_frames: int, image_size: int) -> str:
    """The shipped classifier for videos of this shape: the one whose training frame size matches and that
    needs no more frames than the videos have (the most frames among those). Errors name ``--classifier``."""
    fits = []
    for name in available_classifiers():
        cfg = json.loads((ASSETS_DIR / f"{name}.json").read_text())["config"]
        if cfg["image_size"] == image_size and cfg["num_frames"] <= num_frames:
            fits.append((cfg["num_frames"], name))
    if not fits:
        raise ValueError(f"no shipped Moving MNIST classifier for {num_frames}x{image_size}x{image_size} videos "
                         f"(shipped: {', '.join(available_classifiers()) or 'none'}); pass --classifier NAME_OR_PATH")
    return max(fits)[1]


# ----------------------------------------------------------------------------------------------- inference


def classifier_outputs(videos, model: VideoClassifier, batch_size: int = 64, progress: bool = False) -> dict:
    """Run the classifier over videos in batches: {'features' (N, D), 'digit_logits' (N, 10),
    'direction_logits' (N, 10, 8)} as float64 numpy arrays."""
    n = len(videos)
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="classifier", unit="batch")
    out: dict[str, list] = {"features": [], "digit_logits": [], "direction_logits": []}
    with torch.inference_mode():
        for s in starts:
            res = model(model.prepare(videos[s:s + batch_size]))
            for k in out:
                out[k].append(res[k].double().cpu())
    if not out["features"]:
        raise ValueError("no videos to classify")
    return {k: torch.cat(v).numpy() for k, v in out.items()}


def digit_sets(digit_logits, num_digits: int) -> list[frozenset]:
    """Predicted digit classes per video: the ``num_digits`` most probable classes, each beyond the first kept
    only if its probability exceeds ``1 / (5 num_digits)`` (so "5 and 5", one confident class, stays one)."""
    p = torch.softmax(torch.as_tensor(np.asarray(digit_logits)), -1)
    top = p.topk(min(num_digits, p.shape[-1]), dim=-1)
    return [frozenset([int(idx[0])] + [int(i) for v, i in zip(val[1:], idx[1:]) if v > 1.0 / (5 * num_digits)])
            for val, idx in zip(top.values, top.indices)]


def predict(videos, model: VideoClassifier, batch_size: int = 64, progress: bool = False) -> list[dict]:
    """Per video: {'digits': sorted predicted classes, 'directions': {digit: compass name}}."""
    out = classifier_outputs(videos, model, batch_size, progress)
    sets = digit_sets(out["digit_logits"], model.cfg.num_digits)
    dirs = out["direction_logits"].argmax(-1)  # (N, 10)
    return [{"digits": sorted(s), "directions": {d: DIRECTIONS[dirs[i, d]] for d in sorted(s)}}
            for i, s in enumerate(sets)]


def _targets(target_labels, n: int) -> list[list[int]]:
    t = target_labels.tolist() if hasattr(target_labels, "tolist") else list(target_labels)
    t = [[int(x)] if np.ndim(x) == 0 else [int(v) for v in x] for x in t]
    if len(t) != n:
        raise ValueError(f"{n} videos but {len(t)} target label entries")
    if any(not 0 <= v < NUM_CLASSES for row in t for v in row):
        raise ValueError("target labels must be digit classes 0..9")
    return t


def digit_accuracy(videos, target_labels, model: VideoClassifier | None = None, *, batch_size: int = 64) -> float:
    """Fraction of videos whose predicted digit set equals the set of ``target_labels`` (per video an int or
    a list of ints, e.g. ``[4]`` or ``[3, 7]``). ``videos`` as in :meth:`VideoClassifier.prepare`; ``model``
    defaults to the shipped classifier matching the videos' frame count and size."""
    model = model if model is not None else _default_for(videos)
    targets = _targets(target_labels, len(videos))
    sets = digit_sets(classifier_outputs(videos, model, batch_size)["digit_logits"], model.cfg.num_digits)
    return float(np.mean([s == frozenset(t) for s, t in zip(sets, targets)]))


def direction_accuracy(videos, target_labels, target_directions, model: VideoClassifier | None = None, *,
                       batch_size: int = 64) -> float:
    """Fraction of (video, digit) pairs whose direction, read from the row of the *target* digit class, is the
    target compass name (``DIRECTIONS``), e.g. labels ``[4]``, directions ``["right"]`` for "digit 4 moving
    right". Pairs where the same class appears twice in a video are skipped (their rows are ambiguous)."""
    model = model if model is not None else _default_for(videos)
    labels = _targets(target_labels, len(videos))
    dirs = [[d] if isinstance(d, str) else list(d) for d in target_directions]
    if len(dirs) != len(labels) or any(len(a) != len(b) for a, b in zip(dirs, labels)):
        raise ValueError("target_directions must give one compass name per target label")
    pred = classifier_outputs(videos, model, batch_size)["direction_logits"].argmax(-1)  # (N, 10)
    hits = [DIRECTIONS[pred[i, c]] == d for i, (ls, ds) in enumerate(zip(labels, dirs)) for c, d in zip(ls, ds)
            if ls.count(c) == 1]
    if not hits:
        raise ValueError("no (video, digit) pair with a unique digit class to score")
    return float(np.mean(hits))


def video_shape(videos) -> tuple[int, int]:
    """(frames, height) of videos in either layout: uint8 is ``(N, F, H, W, C)``, float is ``(B, C, F, H, W)``."""
    shape = tuple(videos.shape)
    if len(shape) != 5:
        raise ValueError(f"expected 5-d videos, got shape {shape}")
    uint8 = str(videos.dtype).endswith("uint8")
    return (shape[1], shape[2]) if uint8 else (shape[2], shape[3])


def _default_for(videos) -> VideoClassifier:
    return load_classifier(default_classifier_name(*video_shape(videos)))


def protocol_record(metric: str, model: VideoClassifier, **sets) -> dict:
    """What a classifier metric depends on: the network, its input pipeline and the sets it saw."""
    rec = {"metric": metric, "network": getattr(model, "name", "moving-mnist-classifier"),
           "features": "penultimate relu (classifier-FVD)" if metric == "cFVD" else "digit softmax",
           "feature_dim": model.cfg.feature_dim, "frames_used": model.cfg.num_frames, "net_size": model.cfg.net_size,
           "preprocess": "gray = channel mean, first num_frames frames, bilinear resize (antialiased when shrinking)",
           "weights_file": Path(getattr(model, "weights_path", "") or "").name or None,
           "weights_sha256": getattr(model, "weights_sha256", None),
           "classifier_test_accuracy": getattr(model, "meta", {}).get("test_accuracy")}
    for name, v in sets.items():
        rec[f"num_{name}"] = int(len(v))
    return rec


def classifier_fvd(real_videos, fake_videos, model: VideoClassifier, *, batch_size: int = 64,
                   progress: bool = False) -> MetricResult:
    """Fréchet distance between Gaussians fitted to the classifier's penultimate features of two sets."""
    real = classifier_outputs(real_videos, model, batch_size, progress)["features"]
    fake = classifier_outputs(fake_videos, model, batch_size, progress)["features"]
    return MetricResult(frechet_distance_from_features(real, fake),
                        protocol_record("cFVD", model, real=real_videos, fake=fake_videos))


def classifier_inception_score(videos, model: VideoClassifier, *, splits=(1, 10), batch_size: int = 64,
                               progress: bool = False) -> dict:
    """Inception Score of the digit softmax: {'IS@1': (mean, std), 'IS@10': ..., 'protocol': {...}}. Its
    maximum is 10 for one digit per clip (confident and balanced) and 5 for two (the softmax splits in half)."""
    logits = classifier_outputs(videos, model, batch_size, progress)["digit_logits"]
    ks = usable_splits(len(logits), splits)
    out = {f"IS@{k}": inception_score(logits, k) for k in ks}
    out["protocol"] = {**protocol_record("cIS", model, videos=videos), "splits": ks}
    return out


def usable_splits(n: int, splits=(1, 10)) -> list[int]:
    """The split counts that leave at least 2 samples per split (IS of a 1-sample split is always 1)."""
    return [k for k in splits if k == 1 or n // k >= 2]
