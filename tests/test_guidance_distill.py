"""A student that takes the guidance weight w as an input (Meng et al., CVPR 2023; issue 30): the zero-initialised w
input leaves the network unchanged, the round-1 teacher is guided at each clip's own w, the distilled student samples
any w of its range with one network call per step, and refuses a w outside it."""

import json

import pytest
import torch

from videodiff.nn.unet3d import UNet3D, UNetConfig
from videodiff.sampling.guidance import ClassifierFreeGuidance, GuidanceInput, guided
from videodiff.train.init_from import init_from_state

NET = dict(in_channels=1, image_size=8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
           attn_resolutions=(4,), head_dim=8, dropout=0.0, cond_dim=4)


def _inputs(b=3):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(b, 1, 2, 8, 8, generator=g), torch.linspace(-5, 5, b), torch.randn(b, 4, generator=g))


def test_the_w_input_starts_at_zero_and_then_changes_the_output():
    torch.manual_seed(0)
    plain = UNet3D(UNetConfig(**NET))
    for name, param in plain.named_parameters():  # a trained-looking network (zero-initialised layers filled in)
        if name.endswith("weight") and not param.abs().sum():
            torch.nn.init.normal_(param, std=0.1)
    student = UNet3D(UNetConfig(**NET, guidance_input=True))
    missing = init_from_state(student, plain.state_dict(), "plain")
    assert sorted(missing) == sorted(f"guidance_emb.mlp.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))
    z, lam, c = _inputs()
    ref = plain(z, lam, cond=c)
    for w in (None, 0.0, 3.0, torch.tensor([0.0, 1.0, 7.5])):
        assert torch.equal(student(z, lam, cond=c, guidance_w=w), ref)
    torch.nn.init.normal_(student.guidance_emb.mlp[2].weight, std=0.5)
    a, b = student(z, lam, cond=c, guidance_w=1.0), student(z, lam, cond=c, guidance_w=3.0)
    assert not torch.allclose(a, b)
    # per-example w: each video as if alone at its own w
    both = student(z[:2], lam[:2], cond=c[:2], guidance_w=torch.tensor([1.0, 3.0]))
    torch.testing.assert_close(both[0], a[0])
    torch.testing.assert_close(both[1], b[1])
    with pytest.raises(ValueError, match="no guidance input"):
        plain(z, lam, cond=c, guidance_w=1.0)


def test_guided_picks_one_call_for_a_w_input_network_and_eq5_otherwise():
    calls = []

    def den(z_t, logsnr, **kw):
        calls.append((z_t.shape[0], kw.get("guidance_w")))
        return torch.zeros_like(z_t)

    z = torch.randn(2, 1, 2, 4, 4)
    assert guided(den, 0.0) is den
    assert isinstance(guided(den, 2.0), ClassifierFreeGuidance)
    g = guided(den, 2.5, w_input=True)
    assert isinstance(g, GuidanceInput)
    g(z, torch.zeros(2), cond=torch.ones(2, 3))
    assert len(calls) == 1 and calls[0][0] == 2 and torch.equal(calls[0][1], torch.tensor([2.5, 2.5]))


def test_a_per_clip_w_teacher_gives_each_clip_the_target_of_its_own_w():
    """The round-1 teacher of a guidance_range run is eq. (5) with a (B,) tensor of weights: clip i's two-step target
    is the one a teacher guided at the number w_i gives it."""
    from videodiff.distillation import grid_points, teacher_target
    from videodiff.schedule import ScheduleConfig, time_grid

    def den(z_t, logsnr, cond=None):  # some denoiser whose prediction depends on the condition
        return torch.tanh(0.7 * z_t + cond[:, :, None, None, None] * torch.sigmoid(logsnr)[:, None, None, None, None])

    z, _, _ = _inputs(3)
    cond = torch.tensor([[0.5], [-1.0], [2.0]])
    w = torch.tensor([0.0, 1.5, 4.0])
    lt, lm, ls, last = grid_points(ScheduleConfig()(time_grid(8)), torch.tensor([0, 1, 3]))
    together = teacher_target(ClassifierFreeGuidance(den, w), z, lt, lm, ls, last, cond=cond)
    for i in range(3):
        one = teacher_target(ClassifierFreeGuidance(den, float(w[i])), z[i:i + 1], lt[i:i + 1], lm[i:i + 1],
                             ls[i:i + 1], last[i:i + 1], cond=cond[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], one)


@pytest.mark.parametrize("bad", ["[4.0, 1.0]", "[-1.0, 2.0]", "[1.0]", "[0.0, .nan]"])
def test_a_bad_guidance_range_is_refused(bad):
    from videodiff.distill import DistillConfig

    import yaml

    with pytest.raises(ValueError, match="guidance_range"):
        DistillConfig(source="m", guidance_range=yaml.safe_load(bad))
    with pytest.raises(ValueError, match="exclude each other"):
        DistillConfig(source="m", guidance=2.0, guidance_range=[0.0, 4.0])


def test_a_guidance_range_student_distils_and_samples_any_w_of_its_range(tmp_path):
    pytest.importorskip("transformers")
    from test_distill import TINY, _distil, _losses
    from test_text import make_tiny_bert

    import videodiff.sampling.guidance as guidance
    from videodiff.app import model_defaults
    from videodiff.config import load_config
    from videodiff.train import train
    from videodiff.train.randomness import draw_guidance
    from videodiff.video_pipeline import VideoPipeline

    make_tiny_bert(tmp_path / "bert")
    text = [f"text.encoder={tmp_path / 'bert'}", f"text.cache_dir={tmp_path / 'cache'}", "text.cond_dim=8",
            "sample.guidance=1.5"]
    train(load_config(None, TINY + text), tmp_path / "t", progress=False)
    wrapped, real = [], guidance.classifier_free_guidance
    monkey = pytest.MonkeyPatch()
    monkey.setattr(guidance, "classifier_free_guidance", lambda den, w, **kw: wrapped.append(w) or real(den, w, **kw))
    try:
        run = _distil(tmp_path / "t", tmp_path / "s", ["distill.guidance_range=[0.0, 4.0]",
                                                        "distill.steps_per_round=2"])
    finally:
        monkey.undo()
    assert [r["student_steps"] for r in run.rounds] == [2, 1]
    # round 1 only (2 steps), each clip guided at its own w, drawn from the range and keyed by (seed, step)
    assert len(wrapped) == 2
    for step, w in enumerate(wrapped):
        assert torch.equal(w, draw_guidance(0, step, 2, 0.0, 4.0)) and bool(((w >= 0) & (w <= 4)).all())
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in _losses(tmp_path / "s"))

    pipe = VideoPipeline.from_pretrained(tmp_path / "s", device="cpu", precision="fp32")
    cfg = pipe.config
    assert cfg.model.guidance_input and cfg.distill.guidance_range == [0.0, 4.0]
    assert cfg.sample.guidance == 1.5 and cfg.sample.steps == 1  # the teacher's w, inside the range
    seen = []
    pipe.denoiser.net.register_forward_hook(lambda mod, args, kw, out: seen.append((out.shape[0], kw["guidance_w"])),
                                            with_kwargs=True)
    v3 = pipe.generate("the digit one moving up", num=2, guidance=3.0)
    assert v3.shape == (2, 1, 2, 8, 8) and len(seen) == 1 and seen[0][0] == 2  # one call of 2, not a doubled batch
    assert torch.equal(seen[0][1], torch.tensor([3.0, 3.0]))
    with pytest.raises(ValueError, match=r"outside \[0, 4\]"):
        pipe.generate("the digit one moving up", num=1, guidance=5.0)
    for task in ("extend", "interpolate"):  # conditional tasks too sample on the student's own grid (DDIM, 1 step)
        assert (pipe.settings(task)["sampler"], pipe.settings(task)["steps"]) == ("ddim", 1)
    assert pipe.settings("interpolate", steps=3)["steps"] == 3
    d = model_defaults(cfg)
    assert (d.guidance, d.max_guidance, d.steps) == (1.5, 4.0, 1)
    # its teacher is one call away, on the same device; a model that is no student, or whose teacher is gone, has none
    teacher = pipe.teacher()
    assert teacher.source == str(tmp_path / "t") and not teacher.distilled
    assert teacher.teacher() is None
    gone = VideoPipeline.from_pretrained(tmp_path / "s", device="cpu", precision="fp32")
    gone.config.distill.source = str(tmp_path / "no-such-run")
    assert gone.teacher() is None
    # the demo samples the student on its own grid, at every w of its guidance column, and its extension,
    # super-resolution and interpolation rows with the teacher (the tasks a few-step student loses)
    from videodiff.cli import main

    assert main(["demo", "--model", str(tmp_path / "s"), "--out", str(tmp_path / "demo"), "--weights", "0", "3",
                 "--frames", "3", "--task-steps", "1", "--no-predict", "--no-progress"]) == 0
    info = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert (info["sampler"], info["steps"]) == ("ddim", 1)
    assert info["task_model"] == str(tmp_path / "t") and "ancestral, 1 steps" == info["task_sampler"]
    assert (info["extend_sampler"], info["extend_steps"]) == ("dpmpp2m", 20)  # the teacher's extension, its grid
    assert info["distilled_from"] == str(tmp_path / "t") and info["guidance_range"] == [0.0, 4.0]
    assert "distilled student of" in (tmp_path / "demo" / "index.html").read_text()
    assert main(["demo", "--model", str(tmp_path / "s"), "--out", str(tmp_path / "demo2"), "--weights", "0",
                 "--frames", "3", "--task-steps", "1", "--task-model", str(tmp_path / "s"), "--no-predict",
                 "--no-progress"]) == 0
    info = json.loads((tmp_path / "demo2" / "demo.json").read_text())
    assert info["task_model"] == str(tmp_path / "s") and info["task_sampler"] == "ddim, 1 steps"
