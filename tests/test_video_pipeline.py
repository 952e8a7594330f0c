"""``videodiff.VideoPipeline`` (issue 31): every task method gives the tensors that wiring the library's functions by
hand gives on the same seed (so the pipeline adds defaults, not behaviour), save -> load gives the same outputs,
and ``.to`` / ``precision=`` / the mp4-gif helper work. On the shipped models, with 1-2 sampling steps."""

from __future__ import annotations

import pytest
import torch

from videodiff import VideoPipeline
from videodiff.conditional import cascade, extend, interpolate, task_options, upsample
from videodiff.pipeline import sample_from_prompts, text_condition
from videodiff.sampling.guidance import ClassifierFreeGuidance


@pytest.fixture(scope="module")
def pipe(one_thread):
    return VideoPipeline.from_pretrained("moving-mnist", device="cpu", precision="fp32")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _text(pipe, prompt: str, num: int) -> dict:
    return {k: v.expand(num, *v.shape[1:]) for k, v in text_condition(pipe.config, [prompt]).items()}


def test_generate_is_sample_from_prompts_with_the_models_guidance(pipe):
    cfg = pipe.config
    ours = pipe.generate(["digit 4 moving right", "digit 7 moving up"], num=2, steps=2, seed=3)
    ref = sample_from_prompts(pipe.denoiser, cfg, ["digit 4 moving right", "digit 7 moving up"], 2,
                              guidance=cfg.sample.guidance, steps=2, seed=3)
    assert ours.shape == (4, 1, 16, 32, 32) and torch.equal(ours, ref)
    other = pipe.generate("digit 4 moving right", guidance=0.0, steps=2, seed=3)
    assert not torch.equal(other, ours[:1])  # guidance= reaches eq. (5)


def test_extend_interpolate_upsample_are_the_hand_wired_calls(pipe):
    cfg, den, sched = pipe.config, pipe.denoiser, pipe.config.diffusion.schedule
    clip = pipe.generate("digit 3 moving down", steps=1, seed=0)  # (1, 1, 16, 32, 32)
    prompt, w = "digit 3 moving down", cfg.sample.guidance

    ours = pipe.extend(clip[:, :, :8], frames=24, prompt=prompt, steps=1, seed=5)
    opts = task_options("extend", cfg.sample, steps=1)
    ref = extend(ClassifierFreeGuidance(den, w), sched, total_frames=24, block_frames=16, video=clip[:, :, :8],
                 generator=_gen(5), progress=False, extra_args=_text(pipe, prompt, 1), **opts)
    assert ours.shape == (1, 1, 24, 32, 32) and torch.equal(ours, ref) and torch.equal(ours[:, :, :8], clip[:, :, :8])

    keys = clip[:, :, ::4]  # frames 0, 4, 8, 12
    ours = pipe.interpolate(keys, 4, steps=1, seed=6)
    ref = interpolate(den, sched, keys, 4, block_frames=16, generator=_gen(6), progress=False,
                      **task_options("interpolate", cfg.sample, steps=1))
    assert torch.equal(ours, ref) and torch.equal(ours[:, :, ::4], keys)

    low = torch.nn.functional.avg_pool3d(clip, (1, 2, 2))
    ours = pipe.upsample(low, prompt=prompt, guidance=0.0, steps=1, seed=7)
    ref = upsample(den, sched, low, size=32, block_frames=16, generator=_gen(7), progress=False,
                   extra_args=_text(pipe, prompt, 1), **task_options("upsample", cfg.sample, steps=1))
    assert ours.shape == clip.shape and torch.equal(ours, ref)
    with pytest.raises(ValueError, match="not below the model's 32x32"):
        pipe.upsample(clip)
    with pytest.raises(ValueError, match="no option 'eta'"):
        pipe.upsample(low, options={"eta": 1.0})  # upsample's sampler is ancestral: gamma, not eta


def test_cascade_is_the_base_samples_then_the_high_models_cascade(pipe):
    base = VideoPipeline.from_pretrained("moving-mnist-base", device="cpu", precision="fp32")
    prompt = "digit 2 moving left"
    out, low = base.cascade(prompt, high=pipe, num=1, low_steps=1, steps=1, seed=4)
    ref_low = sample_from_prompts(base.denoiser, base.config, [prompt], 1, guidance=base.config.sample.guidance,
                                  steps=1, seed=4)
    ref = cascade(pipe.denoiser, pipe.config.diffusion.schedule, ref_low, size=32, factor=4, block_frames=16,
                  generator=_gen(5), progress=False, extra_args=_text(pipe, prompt, 1),
                  **task_options("cascade", pipe.config.sample, steps=1))
    assert torch.equal(low, ref_low) and out.shape == (1, 1, 61, 32, 32) and torch.equal(out, ref)


def test_save_then_load_gives_the_same_outputs(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "my-model")
    assert sorted(p.name for p in folder.iterdir()) == ["my-model.json", "my-model.md", "my-model.safetensors"]
    again = VideoPipeline.from_pretrained(folder, device="cpu", precision="fp32")
    kw = dict(steps=2, seed=1)
    assert torch.equal(again.generate("digit 1 moving up", **kw), pipe.generate("digit 1 moving up", **kw))
    for a, b in zip(again.denoiser.net.state_dict().values(), pipe.denoiser.net.state_dict().values()):
        assert torch.equal(a, b)


def test_to_precision_and_the_video_helper(pipe, tmp_path):
    from videodiff.io import read_video

    assert pipe.precision == "fp32" and pipe.device == torch.device("cpu")
    assert pipe.to("cpu") is pipe and pipe.precision == "fp32"
    with pytest.raises(ValueError, match="not a device name|not available"):
        pipe.to("nonsense")
    video = pipe.generate("digit 5 moving right", steps=1)
    for name in ("v.mp4", "v.gif"):
        assert read_video(pipe.save_video(video, tmp_path / name)).shape[0] == 16
    with pytest.raises(ValueError, match="guidance needs a prompt"):
        pipe.extend(video, frames=20, guidance=2.0)
