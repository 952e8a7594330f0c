from pathlib import Path

import pytest

from videodiff.config import ExperimentConfig, config_to_dict, config_from_dict, load_config


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data: {image_size: 32, channels: 3}\ntrain: {steps: 10}\n")
    cfg = load_config(p, ["train.lr=1e-4", "model.channel_mults=[1, 2]", "diffusion.schedule.kind=cosine_shifted"])
    assert cfg.train.steps == 10 and cfg.train.lr == pytest.approx(1e-4)
    assert cfg.model.channel_mults == (1, 2)
    # derived from the data config
    assert cfg.model.in_channels == 3 and cfg.model.image_size == 32
    assert cfg.diffusion.schedule.image_size == 32


def test_round_trip_through_dict():
    cfg = load_config(None, ["model.attn_resolutions=[8]", "sample.sampler=ddim"])
    again = config_from_dict(ExperimentConfig, config_to_dict(cfg))
    assert config_to_dict(again) == config_to_dict(cfg)


@pytest.mark.parametrize("override,match", [
    (["train.stepz=3"], "unknown option train.stepz"),
    (["train.steps=abc"], "train.steps must be an integer"),
    (["train.steps=0"], "train.steps must be >= 1"),
    (["sample.sampler=euler"], "sample.sampler"),
    (["data.frameskip=0"], "data.frameskip"),
    (["model.head_dim=7"], "head_dim"),
])
def test_bad_options_are_named(override, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, override)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_configs_load():
    for name in ("moving_mnist_tiny", "moving_mnist_16x64x64", "moving_mnist_text"):
        cfg = load_config(f"configs/{name}.yaml")
        assert cfg.name == name


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_round_trips(path):
    cfg = load_config(path, [])
    assert cfg.train.steps > 0 and cfg.data.num_frames > 0
    assert config_to_dict(config_from_dict(ExperimentConfig, config_to_dict(cfg))) == config_to_dict(cfg)


def test_yaml_boolean_words_for_a_string_option_name_the_quoting():
    """YAML 1.1 reads an unquoted `on` as true: the error for a string option says so and how to quote it."""
    import pytest

    from videodiff.config import load_config

    with pytest.raises(ValueError, match=r"train.wandb_mode must be a string, got True \(YAML reads on"):
        load_config(None, ["train.wandb_mode=on"])
    assert load_config(None, ["train.wandb_mode='online'"]).train.wandb_mode == "online"
