"""The data source registry: a kind added from outside the package (tests/registry_examples/data_source.py) loads from --set
overrides, builds, trains and fails with one-line errors; the built-in kinds read only the options they declare."""

import dataclasses
import json
import math

from registry_examples import data_source as example_source
import pytest
import torch
from conftest import assert_one_line_error

from videodiff.cli import main
from videodiff.config import load_config
from videodiff.data import DataConfig, build_dataset, get_source, register_source, source_kinds, unregister_source
from videodiff.data.joint import join_image_frames
from videodiff.data.registry import COMMON_OPTIONS, DataSource
from videodiff.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # a shared 2-core machine

TINY = ["data.image_size=8", "data.num_frames=4", "model.base_channels=8", "model.channel_mults=[1, 2]",
        "model.num_res_blocks=1", "model.attn_resolutions=[4]", "model.head_dim=8", "train.batch_size=2",
        "train.warmup_steps=1", "train.log_every=1", "train.steps=2", "train.loggers=[]", "sample.steps=2",
        "sample.num=2"]
NOISE = ["data.kind=gaussian_noise", "data.options.std=0.25", "data.options.mean=0.1"]


@pytest.fixture
def noise_kind():
    register_source(example_source.SOURCE)  # the one registry line a new kind needs
    yield example_source.SOURCE.kind
    unregister_source(example_source.SOURCE.kind)


def test_example_data_source(noise_kind, tmp_path):
    cfg = load_config(None, TINY + NOISE)
    assert cfg.data.kind == noise_kind and cfg.data.options == {"std": 0.25, "mean": 0.1}
    train_set, test_set = build_dataset(cfg.data, "train"), build_dataset(cfg.data, "test")
    assert len(train_set) == 64  # NoiseOptions.clips
    videos = torch.stack([train_set[i]["video"] for i in range(len(train_set))])
    assert videos.shape == (64, 1, 4, 8, 8) and videos.dtype == torch.float32
    # 16384 pixels: standard errors 0.002 (mean), 0.0014 (std); clamping at +-1 is 3.6 sigma away
    assert abs(videos.mean().item() - 0.1) < 0.01 and abs(videos.std().item() - 0.25) < 0.01
    assert torch.equal(train_set[3]["video"], build_dataset(cfg.data, "train")[3]["video"])  # deterministic
    assert not torch.equal(train_set[3]["video"], test_set[3]["video"])  # the splits differ

    # the wrapping every kind shares: joint image frames are appended to the train split only
    joint = load_config(None, TINY + NOISE + ["data.image_frames=2"]).data
    item = build_dataset(joint, "train")[0]
    assert item["video"].shape == (1, 6, 8, 8) and item["num_image_frames"] == 2
    assert torch.equal(item["video"][:, :4], train_set[0]["video"])
    assert build_dataset(joint, "test")[0]["video"].shape == (1, 4, 8, 8)

    train(cfg, tmp_path / "run", progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    saved = load_config(tmp_path / "run" / "config.yaml")  # the options round-trip through the run's YAML
    assert saved.data.kind == noise_kind and saved.data.options == {"std": 0.25, "mean": 0.1}


@pytest.mark.parametrize("override, message", [
    ("data.kind=kinetics", "data.kind must be 'moving_mnist', 'smmnist', 'video_folder', 'manifest', 'shards', "
                           "'ucf101', 'bair', 'kinetics600' or 'gaussian_noise', got 'kinetics'"),
    ("data.options.sdt=0.5", "unknown option data.options.sdt; valid options under 'data.options.': "
                             "['clips', 'mean', 'std']"),
    ("data.options.std=wide", "data.options.std must be a number, got 'wide'"),
    ("data.options.clips=2.5", "data.options.clips must be an integer, got 2.5"),
    ("data.options.std=2", "data.options.std must be in (0, 1], got 2.0"),
    ("data.options=[1]", "data.options must be a mapping of options, got [1]"),
])
def test_example_source_errors_name_the_option(noise_kind, override, message):
    with pytest.raises(ValueError) as e:
        load_config(None, ["data.kind=gaussian_noise", override])
    assert str(e.value) == message


def test_registry_errors_are_one_line_at_the_command_line(noise_kind, tmp_path, capsys):
    for override, words in [("data.kind=gaussian", ("data.kind", "'gaussian_noise'")),
                            ("data.options.std=-1", ("data.options.std", "(0, 1]"))]:
        assert main(["train", "--out", str(tmp_path / "r"), "--set", "data.kind=gaussian_noise",
                     "--set", override]) == 2
        assert_one_line_error(capsys, *words)
    assert not (tmp_path / "r").exists()


def test_kind_checks(noise_kind):
    with pytest.raises(ValueError, match=r"^unknown option data.options.std; data.kind 'moving_mnist' takes no "):
        load_config(None, ["data.options.std=0.5"])
    text = load_config(None, ["data.kind=gaussian_noise", "text.encoder=minilm"])  # text needs captions
    with pytest.raises(ValueError, match=r"^data.kind 'gaussian_noise' has no captions"):
        build_dataset(text.data)
    with pytest.raises(ValueError, match="already registered"):
        register_source(example_source.SOURCE)

    @dataclasses.dataclass
    class ListOptions:
        sizes: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="option sizes has type"):
        register_source(DataSource("lists", example_source.build, options=ListOptions))
    assert "lists" not in source_kinds()


def test_builtin_kinds_declare_what_they_read():
    assert source_kinds()[:8] == ("moving_mnist", "smmnist", "video_folder", "manifest", "shards", "ucf101", "bair",
                                  "kinetics600")
    names = {f.name for f in dataclasses.fields(DataConfig)}
    for kind in source_kinds():
        reads = set(get_source(kind).reads)
        assert reads <= names and not reads & set(COMMON_OPTIONS), kind
    # Moving MNIST clips do not change with any option it does not declare
    mm = get_source("moving_mnist")
    unread = names - set(mm.reads) - set(COMMON_OPTIONS) - {"kind", "options"}
    other = {"root": "/nonexistent", "extensions": (".gif",), "on_error": "skip", "clips_per_video": 3,
             "manifest": "x.csv", "shards": "y/", "shuffle_buffer": 7}
    assert unread == set(other)
    base = dict(num_frames=3, image_size=16, num_digits=1, train_clips=4)
    a, b = build_dataset(DataConfig(**base)), build_dataset(DataConfig(**base, **other))
    for i in range(4):
        assert torch.equal(a[i]["video"], b[i]["video"])


def test_join_image_frames():
    video = torch.rand(3, 4, 5, 5)
    item = {"video": video, "caption": "a clip"}
    frames = [torch.rand(3, 5, 5, dtype=torch.float64) for _ in range(2)]
    joint = join_image_frames(item, frames, ["x", ""])
    assert item == {"video": video, "caption": "a clip"}  # the clip's item is not changed
    assert joint["video"].shape == (3, 6, 5, 5) and joint["video"].dtype == torch.float32
    assert torch.equal(joint["video"][:, :4], video) and torch.allclose(joint["video"][:, 5], frames[1].float())
    assert joint["num_image_frames"] == 2 and joint["image_captions"] == ["x", ""] and joint["caption"] == "a clip"
    bare = join_image_frames({"video": video}, [], None)
    assert bare["video"] is video and bare["num_image_frames"] == 0 and "image_captions" not in bare
