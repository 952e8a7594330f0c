"""Plumbing of conditional generation: masks, block schedules, application shapes, determinism, the CLI."""

import argparse

import pytest
import torch

from videodiff.conditional import (
    Downsample,
    ReconstructionGuidance,
    ReplacementHook,
    as_mask,
    cascade,
    cascade_plan,
    comparison_grid,
    extend,
    extension_plan,
    frame_mask,
    frame_strip,
    interpolate,
    interpolation_plan,
    plan_blocks,
    sample_conditional,
    upsample,
)
from videodiff.gaussian import GaussianData, ar1_covariance
from videodiff.schedule import ScheduleConfig

SCHED = ScheduleConfig()


def _coverage(plan, total):
    made = [0] * total
    for b in plan:
        for i in b.new:
            made[b.start + i] += 1
    return made


# ------------------------------------------------------------------------------------------------ masks


def test_frame_mask_and_as_mask():
    m = frame_mask(5, [0, 2])
    assert m.shape == (1, 1, 5, 1, 1) and m.dtype == torch.bool
    assert m.flatten().tolist() == [True, False, True, False, False]
    x = torch.zeros(2, 1, 5, 3, 3)
    assert as_mask(m, x).dtype == x.dtype
    with pytest.raises(ValueError, match="broadcast"):
        as_mask(torch.ones(4), x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_mask(torch.full((1, 1, 5, 1, 1), 2.0), x)
    with pytest.raises(ValueError, match="out of range"):
        frame_mask(3, [3])


def test_float_mask_blends():
    x_a = torch.ones(1, 1, 2, 1, 1)
    hook = ReplacementHook(x_a, torch.tensor([1.0, 0.5]).reshape(1, 1, 2, 1, 1), final_logsnr=20.0)
    out = hook(torch.zeros_like(x_a), logsnr_s=torch.tensor(20.0, dtype=torch.float64), z_t=torch.zeros_like(x_a),
               logsnr_t=torch.tensor(0.0, dtype=torch.float64))
    assert out.flatten().tolist() == [1.0, 0.5]


# ------------------------------------------------------------------------------------------------ schedules


@pytest.mark.parametrize("context,blocks", [(8, 7), (4, 5), (12, 13), (0, 4)])
def test_extension_plan_64_frames_from_16_frame_model(context, blocks):
    plan = extension_plan(64, 16, context)
    assert len(plan) == blocks == 1 + -(-48 // (16 - context))
    assert plan[0].start == 0 and plan[0].known == ()  # an unconditional first block
    for b in plan[1:]:
        assert b.length == 16
        assert b.known == tuple(range(16 - len(b.new)))  # a prefix of known frames ...
        assert len(b.known) >= context  # ... at least `context` of them (the last block may have more)
    assert plan[-1].start + plan[-1].length == 64
    assert _coverage(plan, 64) == [1] * 64


def test_extension_plan_from_given_frames():
    plan = extension_plan(20, 8, 4, given=2)
    assert plan[0].start == 0 and plan[0].known == (0, 1) and plan[0].new == tuple(range(2, 8))
    assert [b.start for b in plan] == [0, 4, 8, 12]
    assert _coverage(plan, 20) == [0, 0] + [1] * 18
    assert extension_plan(5, 8, 4, given=5) == []
    with pytest.raises(ValueError, match="context"):
        extension_plan(20, 8, 8)


def test_interpolation_plan_brackets_every_new_frame():
    for num_key, k, f in [(5, 4, 8), (9, 4, 16), (16, 3, 8), (3, 2, 16), (4, 1, 8)]:
        plan = interpolation_plan(num_key, k, f)
        total = (num_key - 1) * k + 1
        made = _coverage(plan, total)
        assert made == [0 if i % k == 0 else 1 for i in range(total)]
        for b in plan:
            assert b.length == min(f, total)
            assert not set(b.new) & set(b.known)
            for i in b.new:  # a known frame on both sides inside the window
                assert any(j < i for j in b.known) and any(j > i for j in b.known)
            keys = [j for j in range(b.length) if (b.start + j) % k == 0]
            assert set(keys) <= set(b.known)
    with pytest.raises(ValueError, match="cannot hold two key frames"):
        interpolation_plan(5, 8, 8)


def test_cascade_plan_like_fig2():
    # Fig. 2: 16 frames at frameskip 4 -> 61 frames at frameskip 1 with a 9-frame model.
    plan = cascade_plan(16, 4, 9, 3)
    assert _coverage(plan, 61) == [1] * 61
    assert plan[0].known == () and plan[0].low == (0, 4, 8)
    for b in plan:
        assert all((b.start + j) % 4 == 0 for j in b.low)
        assert set(b.low) <= set(b.new)
    for b in plan[1:]:
        assert len(b.known) >= 3 and b.known == tuple(range(len(b.known)))
    assert [len(b.known) for b in cascade_plan(1, 1, 4, 2)] == [0]


def test_plan_blocks_rejects_gaps():
    with pytest.raises(ValueError, match="ungenerated"):
        plan_blocks([(0, 2)], [False] * 4)


# ------------------------------------------------------------------------------------------------ applications


def _gauss(frames=4, size=2):
    cov = ar1_covariance(frames, 0.9, torch.eye(size * size, dtype=torch.float64))
    return GaussianData(torch.zeros(frames * size * size), cov, (1, frames, size, size))


def test_extend_shapes_known_frames_and_seed():
    data = _gauss()
    given = torch.randn(2, 1, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def run(seed, **kw):
        return extend(data.denoise, SCHED, total_frames=9, block_frames=4, context=2, steps=4, progress=False,
                      generator=torch.Generator().manual_seed(seed), **kw)

    a, b, c = run(0, video=given), run(0, video=given), run(1, video=given)
    assert a.shape == (2, 1, 9, 2, 2)
    assert torch.equal(a[:, :, :3], given)
    assert torch.equal(a, b) and not torch.equal(a, c)
    r = run(0, video=given, method="replacement", variant="posterior")
    assert torch.equal(r[:, :, :3], given)
    u = run(0, num_videos=3, frame_shape=(1, 2, 2), dtype=torch.float64)
    assert u.shape == (3, 1, 9, 2, 2)
    with pytest.raises(ValueError, match="num_videos"):
        run(0)


def test_interpolate_keeps_key_frames():
    data = _gauss()
    low = torch.randn(1, 1, 4, 2, 2, dtype=torch.float64)
    out = interpolate(data.denoise, SCHED, low, 2, block_frames=4, steps=4, progress=False,
                      generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 1, 7, 2, 2)
    assert torch.equal(out[:, :, ::2], low)


def test_upsample_and_cascade_match_the_low_resolution_input():
    data = _gauss(frames=3, size=4)
    truth = data.sample(2, torch.Generator().manual_seed(0))  # (2, 1, 3, 4, 4)
    down = Downsample(2, "area")
    low = down(truth)
    out = upsample(data.denoise, SCHED, low, size=4, block_frames=3, down_mode="area", steps=32, progress=False,
                   generator=torch.Generator().manual_seed(0))
    assert out.shape == truth.shape
    assert (down(out) - low).abs().max() < 0.05  # eq. (7) with w_r_low = k^2
    out = cascade(data.denoise, SCHED, low[:, :, :2], size=4, factor=2, block_frames=3, down_mode="area", steps=8,
                  progress=False, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 3, 4, 4)
    with pytest.raises(ValueError, match="area"):  # low-frequency replacement needs a projection: area D only
        cascade(data.denoise, SCHED, low, size=4, block_frames=3, method="replacement")
    out = upsample(data.denoise, SCHED, low, size=4, block_frames=3, down_mode="area", method="replacement", steps=8,
                   progress=False, generator=torch.Generator().manual_seed(0))
    assert (down(out) - low).abs().max() < 1e-5  # replaced exactly at t = 0


def test_guidance_clip_bounds_the_adjusted_prediction():
    data = _gauss()
    x_a = torch.full((2, 1, 4, 2, 2), 5.0, dtype=torch.float64)  # far outside the data: a huge correction
    mask = frame_mask(4, [0])
    z = torch.randn(2, 1, 4, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    lam = torch.full((2,), -6.0, dtype=torch.float64)
    free = ReconstructionGuidance(data.denoise, x_a=x_a, mask=mask, w_r=1.0)(z, lam)
    bounded = ReconstructionGuidance(data.denoise, x_a=x_a, mask=mask, w_r=1.0, clip=(-1, 1))(z, lam)
    assert free[:, :, 1:].abs().max() > 1 and bounded[:, :, 1:].abs().max() <= 1
    assert torch.equal(bounded[:, :, 0], x_a[:, :, 0])  # known entries are x^a itself, never clamped
    torch.testing.assert_close(bounded[:, :, 1:], free[:, :, 1:].clamp(-1, 1))


def test_sample_conditional_checks_arguments():
    data = _gauss()
    with pytest.raises(ValueError, match="method"):
        sample_conditional(data.denoise, (1, 1, 4, 2, 2), SCHED, method="magic")
    with pytest.raises(ValueError, match="needs area downsampling"):
        sample_conditional(data.denoise, (1, 1, 4, 2, 2), SCHED, method="replacement", y=torch.zeros(1, 1, 4, 1, 1),
                           down=Downsample(1))
    with pytest.raises(ValueError, match="shape"):
        sample_conditional(data.denoise, (1, 1, 4, 2, 2), SCHED, x_a=torch.zeros(1, 1, 3, 2, 2),
                           mask=frame_mask(3, [0]))


def test_grids_mark_known_frames():
    v = torch.zeros(2, 1, 3, 4, 4)
    grid = comparison_grid([v, v], [[True, False, False], None])
    assert grid.shape[0] == 3 and grid.shape[-1] == 3 and grid.dtype.name == "uint8"
    f0, f1 = grid[0], grid[1]
    assert (f0[..., 0].astype(int) - f0[..., 1]).max() == 255  # a red border on the known frame ...
    assert (f1[..., 0].astype(int) - f1[..., 1]).max() == 0  # ... and none on the others
    strip = frame_strip(v, [True, False, False])
    assert strip.ndim == 3 and strip.shape[-1] == 3


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from videodiff.checkpoint import save_checkpoint
    from videodiff.config import config_to_dict, load_config
    from videodiff.pipeline import build_model

    cfg = load_config(None, ["data.num_frames=4", "data.image_size=8", "model.base_channels=8",
                             "model.channel_mults=[1,2]", "model.num_res_blocks=1", "model.attn_resolutions=[4]",
                             "model.head_dim=8", "sample.steps=2"])
    torch.manual_seed(0)
    net = build_model(cfg)
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run, 1, net, net, torch.optim.AdamW(net.parameters()), {}, config_to_dict(cfg))
    return run


def test_subcommands_register_on_the_main_parser():
    from videodiff.cli import build_parser as main_parser
    from videodiff.cli.conditional import add_subcommands

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["extend", "--checkpoint", "c", "--from-samples", "2", "--frames", "64", "--context",
                              "8", "--method", "replacement", "--w-r", "2", "--out", "x.mp4"])
    assert (args.frames, args.context, args.method, args.w_r, args.from_samples) == (64, 8, "replacement", 2.0, 2)
    for cmd in (["interpolate", "--checkpoint", "c", "--input", "v.mp4", "--factor", "4", "--out", "o.gif"],
                ["upsample", "--checkpoint", "c", "--input", "v.mp4", "--out", "o.gif"],
                ["cascade", "--low", "a", "--high", "b", "--out", "o.mp4"]):
        assert callable(parser.parse_args(cmd).func)
    assert main_parser() is not None  # the main CLI still builds (the lead adds add_subcommands to it)


def test_cli_names_missing_input_and_bad_output(tmp_path, capsys, tiny_checkpoint):
    from videodiff.cli import main

    missing = tmp_path / "nope.mp4"
    assert main(["extend", "--checkpoint", str(tiny_checkpoint), "--input", str(missing), "--out",
                 str(tmp_path / "o.mp4")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main(["interpolate", "--checkpoint", str(tiny_checkpoint), "--input", str(missing), "--factor", "2",
                 "--out", str(tmp_path / "o.mp4")]) == 2
    assert "nope.mp4" in capsys.readouterr().err
    assert main(["extend", "--checkpoint", str(tiny_checkpoint), "--from-samples", "1", "--out",
                 str(tmp_path / "o.avi")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["extend", "--checkpoint", str(tiny_checkpoint), "--from-samples", "1", "--context", "4", "--out",
                 str(tmp_path / "o.gif")]) == 2
    assert "--context" in capsys.readouterr().err


def test_cli_runs_end_to_end(tmp_path, tiny_checkpoint):
    from videodiff.cli import main
    from videodiff.io import read_video, write_video

    ckpt = str(tiny_checkpoint)
    assert main(["extend", "--checkpoint", ckpt, "--from-samples", "1", "--frames", "6", "--steps", "2",
                 "--out", str(tmp_path / "e.gif"), "--save-tensor"]) == 0
    ext = torch.load(tmp_path / "e.pt")
    assert ext.shape == (1, 1, 6, 8, 8)
    write_video(tmp_path / "in.gif", (torch.rand(5, 8, 8, 3) * 255).byte().numpy())
    assert main(["extend", "--checkpoint", ckpt, "--input", str(tmp_path / "in.gif"), "--frames", "6", "--given", "2",
                 "--steps", "2", "--compare", "--method", "replacement", "--out", str(tmp_path / "c.gif")]) == 0
    assert read_video(tmp_path / "c.gif").shape[0] == 6
    assert main(["interpolate", "--checkpoint", ckpt, "--input", str(tmp_path / "e.pt"), "--factor", "2",
                 "--steps", "2", "--out", str(tmp_path / "i.png")]) == 0
    assert main(["upsample", "--checkpoint", ckpt, "--input", str(tmp_path / "in.gif"), "--low-size", "4",
                 "--steps", "2", "--compare", "--out", str(tmp_path / "u.mp4")]) == 0
    assert main(["cascade", "--low", ckpt, "--high", ckpt, "--num", "1", "--factor", "2", "--low-steps", "2",
                 "--steps", "2", "--out", str(tmp_path / "k.gif")]) == 0
    assert read_video(tmp_path / "k.gif").shape[0] == 7


def test_task_options_fill_from_the_model_and_give_each_sampler_its_own_options():
    from videodiff.conditional import task_options
    from videodiff.config import SampleConfig

    sc = SampleConfig(sampler="ddim", steps=32, gamma=0.3, eta=0.0, clip_x=True)
    ext = task_options("extend", sc)  # no task-specific values: the model's sampling settings
    assert (ext["sampler"], ext["steps"], ext["options"], ext["guidance_clip"]) == ("ddim", 32, {"eta": 0.0},
                                                                                     (-1.0, 1.0))
    assert "down_mode" not in ext
    up = task_options("upsample", sc)
    assert up["sampler"] == "ancestral" and up["options"] == {"gamma": 0.3} and up["down_mode"] == "area"
    assert up["w_r_low"] is None
    over = task_options("upsample", sc, sampler="dpmpp2m", steps=7, down="bilinear", clamp=False, w_r_low=1.0)
    assert (over["steps"], over["down_mode"], over["w_r_low"], over["guidance_clip"]) == (7, "bilinear", 1.0, None)
    assert over["options"] == {}  # DPM-Solver++ takes neither gamma nor eta
    assert task_options("extend", SampleConfig(clip_x=False))["guidance_clip"] is None  # nothing to clamp to
    with pytest.raises(ValueError, match="unknown task"):
        task_options("inpaint", sc)
