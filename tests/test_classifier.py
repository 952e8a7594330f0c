"""The Moving MNIST evaluation classifier: shapes, targets, save/load, and the shipped checkpoints on held-out clips."""
import json

import numpy as np
import pytest
import torch

from videodiff.data import DataConfig, build_dataset
from videodiff.metrics.classifier import (ClassifierConfig, VideoClassifier, available_classifiers,
                                         default_classifier_name, digit_accuracy, direction_accuracy,
                                         load_classifier, predict, save_classifier)
from videodiff.evaluation.classifier_train import (_targets, augment, classifier_losses, load_classifier_config,
                                               train_classifier)

# Held-out accuracy of the shipped checkpoints on the test split (clips made of MNIST digits never seen in
# training). Their JSON records 1,000-clip test scores (digit sets / directions): moving-mnist-32 0.917 / 0.799,
# moving-mnist-64 0.635 / 0.445 (see BENCHMARKS.md). The tests score 48 and 24 further test clips.
MIN_RECORDED_ACC = {"moving-mnist-32": 0.9, "moving-mnist-64": 0.6}
MIN_DIGIT_ACC = {"moving-mnist-32": 0.85, "moving-mnist-64": 0.4}
MIN_DIRECTION_ACC = {"moving-mnist-32": 0.6, "moving-mnist-64": 0.25}


pytestmark = pytest.mark.usefixtures("one_thread")


def _clips(split="test", n=8, offset=0, **kw):
    ds = build_dataset(DataConfig(**{"num_frames": 8, "image_size": 32, "num_digits": 1, "test_clips": offset + n, **kw}), split)
    items = [ds[i] for i in range(offset, offset + n)]
    return (torch.stack([it["video"] for it in items]), [it["labels"].tolist() for it in items],
            [it["directions"] for it in items])


def test_shapes_and_input_layouts():
    torch.manual_seed(0)
    model = VideoClassifier(ClassifierConfig(num_frames=8, image_size=64, net_size=32)).eval()
    video = torch.rand(2, 1, 10, 64, 64) * 2 - 1
    x = model.prepare(video)
    assert x.shape == (2, 1, 8, 32, 32)  # first 8 frames, resized to the internal size
    out = model(x)
    assert out["features"].shape == (2, 128) and (out["features"] >= 0).all()
    assert out["digit_logits"].shape == (2, 10) and out["direction_logits"].shape == (2, 10, 8)
    # uint8 (N, F, H, W, 3) files-layout input gives the same prepared tensor as float (B, C, F, H, W)
    u8 = ((video + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).expand(-1, -1, -1, -1, 3)
    torch.testing.assert_close(model.prepare(u8.numpy()), model.prepare(((u8.float() / 127.5) - 1).permute(0, 4, 1, 2, 3)))
    with pytest.raises(ValueError, match="at least 8 frames"):
        model.prepare(torch.zeros(1, 1, 7, 32, 32))
    with pytest.raises(ValueError, match="divisible"):
        ClassifierConfig(net_size=30)


def test_targets_and_losses_handle_repeated_digits():
    batch = {"labels": [torch.tensor([3, 7]), torch.tensor([5, 5])],
             "directions": [["right", "up"], ["left", "down"]]}
    soft, direction, mask = _targets(batch, "cpu")
    assert soft[0, 3] == soft[0, 7] == 0.5 and soft[1, 5] == 1.0 and soft.sum(1).tolist() == [1.0, 1.0]
    assert direction[0, 3] == 0 and direction[0, 7] == 2  # DIRECTIONS.index("right"), ("up")
    assert mask[0, 3] and mask[0, 7] and not mask[1].any()  # "5 and 5" has no unique row to supervise
    logits = {"digit_logits": torch.log(soft + 1e-9), "direction_logits": torch.zeros(2, 10, 8)}
    loss, parts = classifier_losses(logits, soft, direction, mask)
    assert parts["direction_loss"] == pytest.approx(np.log(8), rel=1e-5)  # uniform logits over 8 directions


def test_augment_keeps_range_and_clean_clips():
    x = torch.full((64, 1, 4, 8, 8), -1.0)
    x[..., 2:5, 2:5] = 1.0  # a white stroke on black
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, 0.0, gen), x)
    y = augment(x, 0.5, gen)
    assert y.min() >= -1 and y.max() <= 1
    changed = (y != x).flatten(1).any(1)
    assert 16 < int(changed.sum()) < 48  # about half of the clips
    bg, fg = y[changed][..., 0, 0].mean(), y[changed][..., 3, 3].mean()
    assert fg > bg + 0.2  # strokes stay brighter than the background


def test_save_load_round_trip_and_errors(tmp_path):
    torch.manual_seed(0)
    model = VideoClassifier(ClassifierConfig(widths=(4, 8), feature_dim=16, net_size=32)).eval()
    path = save_classifier(model, tmp_path / "c.safetensors", {"steps": 3})
    loaded = load_classifier(tmp_path / "c.safetensors")
    assert loaded.meta["steps"] == 3 and loaded.cfg == model.cfg and len(loaded.weights_sha256) == 64
    x = model.prepare(torch.rand(2, 1, 8, 32, 32) * 2 - 1)
    torch.testing.assert_close(loaded(x)["features"], model(x)["features"], atol=2e-3, rtol=2e-3)  # fp16 storage
    assert load_classifier(tmp_path / "c.json").cfg == model.cfg and path.suffix == ".safetensors"
    with pytest.raises(FileNotFoundError, match="moving-mnist-32"):
        load_classifier("no-such-classifier")


def test_train_classifier_smoke(tmp_path):
    cfg = load_classifier_config("moving-mnist-32", overrides=[
        "data.image_size=16", "net.net_size=16", "net.widths=[4, 8]", "net.feature_dim=8", "train.steps=3",
        "train.batch_size=4", "train.eval_clips=8", "train.log_every=1"])
    assert cfg.net.image_size == 16 and cfg.net.num_frames == 8 and cfg.net.num_digits == 1  # derived from data
    rec = train_classifier(cfg, tmp_path, command="videodiff train-classifier ...", progress=False)
    stored = json.loads((tmp_path / "classifier.json").read_text())
    assert stored["steps"] == 3 and stored["command"] == "videodiff train-classifier ..."
    assert stored["test_accuracy"] == rec["test_accuracy"] and stored["test_accuracy"]["num_clips"] == 8
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="preset"):
        load_classifier_config("nope")


def test_shipped_checkpoints_are_small_and_named():
    names = available_classifiers()
    assert {"moving-mnist-32", "moving-mnist-64"} <= set(names)
    from videodiff.metrics.classifier import ASSETS_DIR
    assert sum(p.stat().st_size for p in ASSETS_DIR.iterdir()) < 2_000_000
    for name in ("moving-mnist-32", "moving-mnist-64"):
        meta = json.loads((ASSETS_DIR / f"{name}.json").read_text())
        assert meta["test_accuracy"]["digit_set_accuracy"] >= MIN_RECORDED_ACC[name]
        assert meta["command"].startswith("videodiff train-classifier") and meta["steps"] > 0
    assert default_classifier_name(8, 32) == "moving-mnist-32"
    assert default_classifier_name(16, 64) == "moving-mnist-64"
    with pytest.raises(ValueError, match="--classifier"):
        default_classifier_name(8, 48)


def test_shipped_32_classifies_held_out_clips():
    videos, labels, dirs = _clips("test", 48, offset=1000)  # test-split clips beyond those scored at training
    model = load_classifier("moving-mnist-32")
    assert digit_accuracy(videos, labels, model) >= MIN_DIGIT_ACC["moving-mnist-32"]
    assert direction_accuracy(videos, labels, dirs, model) >= MIN_DIRECTION_ACC["moving-mnist-32"]
    # the uint8 file layout and the default model give the same answer
    u8 = ((videos + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
    assert digit_accuracy(u8, labels) == digit_accuracy(videos, labels, model)
    pred = predict(videos[:2], model)
    assert set(pred[0]) == {"digits", "directions"} and all(0 <= d <= 9 for d in pred[0]["digits"])
    with pytest.raises(ValueError, match="target"):
        digit_accuracy(videos, labels[:-1], model)


def test_shipped_64_classifies_two_digit_clips():
    videos, labels, dirs = _clips("test", 24, offset=1000, num_frames=16, image_size=64, num_digits=2)
    model = load_classifier("moving-mnist-64")
    assert digit_accuracy(videos, labels, model) >= MIN_DIGIT_ACC["moving-mnist-64"]
    assert direction_accuracy(videos, labels, dirs, model) >= MIN_DIRECTION_ACC["moving-mnist-64"]
