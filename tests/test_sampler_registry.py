"""Adding a sampler is one file plus one registry entry (issue 18): the example of tests/registry_examples/sampler.py,
registered, is a choice of configs, of the CLI (``--sampler scaled --noise-scale X``) and of the library, with its
option travelling apart from the denoiser's keyword arguments."""

from __future__ import annotations

import pytest
import torch

from videodiff.gaussian import GaussianData, ar1_covariance
from videodiff.sampling import register_sampler, sample, unregister_sampler
from videodiff.schedule import ScheduleConfig

from registry_examples.sampler import SPEC


@pytest.fixture
def scaled_sampler():
    register_sampler(SPEC)
    yield SPEC
    unregister_sampler(SPEC.name)


def _data():
    cov = 0.25 * ar1_covariance(4, 0.8, torch.eye(4, dtype=torch.float64))
    return GaussianData(torch.zeros(16, dtype=torch.float64), cov, (1, 4, 2, 2))


def test_registered_sampler_runs_through_sample_with_its_option(scaled_sampler):
    """With the exact denoiser of Gaussian data, noise_scale = 1 is the ancestral sampler at gamma = 0 draw for
    draw, and noise_scale = 0 under-disperses; denoiser keywords arrive through extra_args."""
    data, sched = _data(), ScheduleConfig()
    seen = []

    def denoise(z, logsnr, tag=None):
        seen.append(tag)
        return data.denoise(z, logsnr)

    kw = dict(steps=50, dtype=torch.float64)
    x1 = sample(denoise, (64, 1, 4, 2, 2), sched, sampler="scaled", options={"noise_scale": 1.0},
                extra_args={"tag": "text"}, generator=torch.Generator().manual_seed(0), **kw)
    ref = sample(data.denoise, (64, 1, 4, 2, 2), sched, sampler="ancestral", options={"gamma": 0.0},
                 generator=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(x1, ref)
    assert set(seen) == {"text"}
    x0 = sample(data.denoise, (64, 1, 4, 2, 2), sched, sampler="scaled", options={"noise_scale": 0.0},
                generator=torch.Generator().manual_seed(0), **kw)
    assert x0.var() < 0.5 * x1.var()
    with pytest.raises(ValueError, match="no option 'gamma'"):
        sample(data.denoise, (2, 1, 4, 2, 2), sched, sampler="scaled", options={"gamma": 0.3}, steps=2)


def test_registered_sampler_is_a_config_choice(scaled_sampler):
    from videodiff.config import load_config

    cfg = load_config(None, ["sample.sampler=scaled", "sample.options.noise_scale=0.5"])
    assert cfg.sample.sampler == "scaled" and cfg.sample.options == {"noise_scale": 0.5}
    from videodiff.sampling import resolve_options

    assert resolve_options("scaled", cfg.sample) == {"noise_scale": 0.5}
    assert resolve_options("scaled", cfg.sample, noise_scale=0.2) == {"noise_scale": 0.2}
    assert resolve_options("ancestral", cfg.sample) == {"gamma": 0.3}
    with pytest.raises(ValueError, match="sample.options.churn"):
        load_config(None, ["sample.options.churn=1"])
    unregister_sampler("scaled")
    with pytest.raises(ValueError, match="sample.sampler must be one of"):
        load_config(None, ["sample.sampler=scaled"])
    register_sampler(SPEC)


def test_registered_sampler_is_a_cli_choice_with_its_flag(scaled_sampler, tmp_path, capsys):
    from videodiff.checkpoint import save_checkpoint
    from videodiff.cli import build_parser, main
    from videodiff.config import config_to_dict, load_config
    from videodiff.models import build_model

    args = build_parser().parse_args(["sample", "--model", "m", "--out", "o.gif", "--sampler", "scaled",
                                      "--noise-scale", "0.25"])
    assert (args.sampler, args.noise_scale) == ("scaled", 0.25)
    cfg = load_config(None, ["data.num_frames=4", "data.image_size=8", "model.base_channels=8",
                             "model.channel_mults=[1,2]", "model.attn_resolutions=[4]", "model.head_dim=8"])
    torch.manual_seed(0)
    net = build_model(cfg)
    save_checkpoint(tmp_path / "run", 1, net, net, torch.optim.AdamW(net.parameters()), {}, config_to_dict(cfg))
    out = tmp_path / "s.gif"
    common = ["sample", "--checkpoint", str(tmp_path / "run"), "--num", "2", "--steps", "2", "--out", str(out)]
    assert main(common + ["--sampler", "scaled", "--noise-scale", "0.5", "--save-tensor"]) == 0
    a = torch.load(out.with_suffix(".pt"))
    assert main(common + ["--sampler", "scaled", "--noise-scale", "0", "--save-tensor"]) == 0
    b = torch.load(out.with_suffix(".pt"))
    assert a.shape == (2, 1, 4, 8, 8) and not torch.equal(a, b)  # the flag reached the sampler
    capsys.readouterr()
    assert main(common + ["--sampler", "ddim", "--noise-scale", "0.5"]) == 2
    assert "--noise-scale applies to the scaled sampler only" in capsys.readouterr().err


def test_sampler_options_travel_one_way_and_loose_keywords_say_where_they_go():
    """Issue 31: options={...} for the sampler, extra_args={...} for the denoiser, at every entry point; the old
    mixed keywords (gamma=..., text_emb=...) are a TypeError that names both ways in."""
    from videodiff.conditional import sample_conditional
    from videodiff.config import ExperimentConfig
    from videodiff.pipeline import sample_videos

    data, sched = _data(), ScheduleConfig()
    shape = (2, 1, 4, 2, 2)
    calls = [lambda **kw: sample(data.denoise, shape, sched, steps=2, **kw),
             lambda **kw: sample_conditional(data.denoise, shape, sched, steps=2, **kw),
             lambda **kw: sample_videos(data.denoise, ExperimentConfig(), 1, steps=2, num_frames=1, **kw)]
    for call in calls:
        for loose in ({"gamma": 0.3}, {"text_emb": torch.zeros(2, 3)}):
            with pytest.raises(TypeError, match=r"unexpected keyword.*options=\{.*extra_args=\{"):
                call(**loose)
    a = sample(data.denoise, shape, sched, steps=3, options={"gamma": 1.0}, generator=torch.Generator().manual_seed(0))
    b = sample(data.denoise, shape, sched, steps=3, options={"gamma": 0.0}, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, b)  # the option arrives
