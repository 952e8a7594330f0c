"""Reliability of the commands (issue 15): bad inputs through the CLI in-process (``videodiff.cli.main([...])``)
give exit status 2 and one line on stderr naming the bad file or option (:func:`conftest.assert_one_line_error`),
checked before any expensive work. Media files (umask, reproducibility, video headers, frame counts of evaluated
sets): test_reliability_io.py."""

import os

import pytest
import torch

from conftest import assert_one_line_error
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train

from test_text import needs_transformers
from test_train import TINY, train_argv

# ------------------------------------------------------------------------------------------------ bad inputs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained TINY run (1 step) for the commands that load a model."""
    path = tmp_path_factory.mktemp("rel") / "run"
    train(load_config(None, TINY + ["train.steps=1"]), path, progress=False)
    return path


class _Hostile:
    def __reduce__(self):  # unpickling would run os.system
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    torch.save(_Hostile(), d / "hostile.pt")
    torch.save({"a": 1, "b": [2, 3]}, d / "dict.pt")
    torch.save(torch.full((1, 1, 4, 16, 16), float("nan")), d / "nan.pt")
    torch.save(torch.zeros(2, 1, 8, 32, 32), d / "ok.pt")
    torch.save(torch.zeros(3), d / "vector.pt")
    data = (d / "ok.pt").read_bytes()
    (d / "truncated.pt").write_bytes(data[: len(data) // 2])
    (d / "garbage.pt").write_bytes(b"\x00\x01 not a torch file at all")
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.gif").write_bytes(b"GIF89a garbage")
    (d / "config.yaml").write_text("train: [unclosed\n")
    return d


def _sample(run, out, *extra):
    return ["sample", "--checkpoint", str(run), "--num", "1", "--steps", "1", "--out", str(out), *extra]


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--frames", "0"), ("--fps", "0"), ("--num", "0"),
                                        ("--batch-size", "0"), ("--num", "-3"), ("--steps", "-1")])
def test_sample_refuses_zero_and_negative_counts(run, tmp_path, capsys, flag, value):
    out = tmp_path / "s.gif"
    assert main(_sample(run, out) + [flag, value]) == 2
    assert_one_line_error(capsys, f"{flag} must be >= 1, got {value}")
    assert not out.exists()


def test_sample_refuses_bad_outputs_and_devices_before_any_work(run, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "no" / "dir" / "a.gif"
    assert main(_sample(run, missing)) == 2
    assert_one_line_error(capsys, "--out", "does not exist")
    assert not (tmp_path / "no").exists()  # no silent mkdir
    (tmp_path / "file").write_text("x")
    assert main(_sample(run, tmp_path / "file" / "a.gif")) == 2
    assert_one_line_error(capsys, "--out", "is a file, not a folder")
    assert main(_sample(run, tmp_path / "a.gif", "--device", "nosuchdevice")) == 2
    assert_one_line_error(capsys, "nosuchdevice", "not a device name")
    import videodiff.cli.options

    monkeypatch.setattr(videodiff.cli.options.os, "access", lambda path, mode: False)  # (root may write anywhere)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    assert_one_line_error(capsys, "--out", "not writable")


def test_disk_full_while_writing_a_video_is_one_line(run, tmp_path, capsys, monkeypatch):
    import videodiff.io

    def full(tmp, frames, fps):
        raise OSError(28, "No space left on device", tmp)

    monkeypatch.setattr(videodiff.io, "_write_gif", full)
    assert main(_sample(run, tmp_path / "a.gif")) == 2
    assert_one_line_error(capsys, "No space left on device", str(tmp_path / "a.gif"))
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_train_refuses_bad_settings_before_training(tmp_path, bad_files, capsys):
    def train_args(out, *sets, config=None):
        args = ["train", "--out", str(out), "--no-progress"] + (["--config", str(config)] if config else [])
        for o in TINY + ["train.steps=1", *sets]:
            args += ["--set", o]
        return args

    for sets, words in ((["sample.num=0"], "sample.num must be >= 1"), (["sample.fps=0"], "sample.fps must be >= 1"),
                        (["train.steps=-1"], "train.steps must be >= 1"),
                        (["train.device=nosuchdevice"], "nosuchdevice")):
        assert main(train_args(tmp_path / "r", *sets)) == 2, sets
        assert_one_line_error(capsys, words)
        assert not (tmp_path / "r" / "checkpoints").exists()
    assert main(train_args(tmp_path / "r", config=bad_files / "config.yaml")) == 2
    assert_one_line_error(capsys, "config.yaml")
    assert main(train_args(bad_files / "ok.pt")) == 2  # --out is a file
    assert_one_line_error(capsys, "ok.pt")


@pytest.mark.parametrize("name,words", [
    ("hostile.pt", "Python objects"), ("dict.pt", "expected a (B, C, F, H, W) tensor"), ("nan.pt", "NaN"),
    ("truncated.pt", "cannot load"), ("garbage.pt", "cannot load"), ("empty.pt", "cannot load"),
    ("vector.pt", "expected a (B, C, F, H, W) tensor"), ("garbage.gif", "garbage.gif"), ("missing.pt", "does not exist"),
])
def test_conditional_commands_refuse_bad_inputs_in_one_line(run, bad_files, tmp_path, capsys, name, words):
    out = tmp_path / "o.gif"
    assert main(["extend", "--checkpoint", str(run), "--input", str(bad_files / name), "--frames", "6",
                 "--steps", "1", "--out", str(out)]) == 2
    line = assert_one_line_error(capsys, words)
    assert name in line
    assert not out.exists()


def test_hostile_pickle_runs_no_code(bad_files, tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd))
    from videodiff.io import load_tensor_file

    with pytest.raises(ValueError, match="hostile.pt: cannot load as a tensor file") as e:
        load_tensor_file(bad_files / "hostile.pt", "--input")
    assert not ran and "weights_only" not in str(e.value)


@pytest.mark.parametrize("argv,words", [
    (["upsample", "--low-size", "0"], "--low-size must be >= 1, got 0"),
    (["upsample", "--max-frames", "0"], "--max-frames must be >= 1"),
    (["interpolate", "--factor", "0"], "--factor must be >= 1, got 0"),
    (["interpolate", "--factor", "2", "--fps", "0"], "--fps must be >= 1"),
    (["interpolate", "--factor", "2", "--steps", "0"], "--steps must be >= 1"),
])
def test_conditional_commands_refuse_zero_counts(run, bad_files, tmp_path, capsys, argv, words):
    out = tmp_path / "o.gif"
    cmd = argv[:1] + ["--checkpoint", str(run), "--input", str(bad_files / "ok.pt"), "--out", str(out)] + argv[1:]
    assert main(cmd) == 2
    assert_one_line_error(capsys, words)
    assert not out.exists()


def test_extend_refuses_zero_counts(run, bad_files, tmp_path, capsys):
    for extra, words in ((["--input", str(bad_files / "ok.pt"), "--frames", "0"], "--frames must be >= 1"),
                         (["--from-samples", "0"], "--from-samples must be >= 1"),
                         (["--from-samples", "1", "--context", "-1"], "--context must be >= 0")):
        assert main(["extend", "--checkpoint", str(run), "--out", str(tmp_path / "o.gif"), *extra]) == 2
        assert_one_line_error(capsys, words)


def test_eval_refuses_bad_inputs_in_one_line(bad_files, tmp_path, capsys):
    ok = str(bad_files / "ok.pt")
    base = ["eval", "--real", ok, "--fake", ok, "--metrics", "cfvd", "--no-progress"]
    cases = [
        (["--json", str(tmp_path / "no" / "r.json")], "--json"),
        (["--num", "0"], "--num must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--frames", "0"], "--frames must be >= 1"),
        (["--device", "nosuchdevice"], "nosuchdevice"),
        (["--inception", str(tmp_path / "missing.pth")], "--inception"),
    ]
    for extra, words in cases:
        assert main(base + extra) == 2, extra
        assert_one_line_error(capsys, words)
    assert not (tmp_path / "no").exists()
    for name, words in (("nan.pt", "NaN"), ("hostile.pt", "Python objects"), ("dict.pt", "videos"),
                        ("truncated.pt", "cannot load")):
        assert main(["eval", "--real", ok, "--fake", str(bad_files / name), "--metrics", "cfvd"]) == 2, name
        assert_one_line_error(capsys, name, words)
    for name, words in (("ok.pt", "not an FID Inception state dict"), ("hostile.pt", "Python objects"),
                        ("garbage.pt", "cannot load")):
        assert main(base[:-3] + ["--metrics", "fid", "--inception", str(bad_files / name)]) == 2, name
        assert_one_line_error(capsys, name, words)


# ------------------------------------------------------------------------------------------------ issue 29: values


@pytest.fixture(scope="module")
def odd_tensors(tmp_path_factory):
    d = tmp_path_factory.mktemp("odd")
    torch.save(torch.zeros(0, 1, 4, 16, 16), d / "none.pt")
    torch.save(torch.ones(1, 1, 4, 16, 16, dtype=torch.bool), d / "bool.pt")
    torch.save(torch.full((1, 1, 4, 16, 16), 300), d / "int300.pt")
    torch.save(torch.rand(1, 1, 4, 16, 16) * 255, d / "float255.pt")
    torch.save(torch.randint(0, 256, (1, 1, 4, 16, 16), dtype=torch.uint8), d / "pixels.pt")
    return d


@pytest.mark.parametrize("name,words", [
    ("none.pt", "holds no videos"), ("bool.pt", "bool tensor"), ("int300.pt", "integer values in [300, 300]"),
    ("float255.pt", "divide by 127.5"),
])
def test_odd_tensor_inputs_are_refused_not_clamped(run, odd_tensors, tmp_path, capsys, name, words):
    assert main(["extend", "--checkpoint", str(run), "--input", str(odd_tensors / name), "--frames", "6",
                 "--steps", "1", "--out", str(tmp_path / "o.gif")]) == 2
    assert name in assert_one_line_error(capsys, words)
    assert not (tmp_path / "o.gif").exists()


def test_integer_pixels_are_read_as_pixels_with_a_note(run, odd_tensors, tmp_path, capsys):
    from videodiff.cli.conditional_io import read_input

    video = read_input(odd_tensors / "pixels.pt", channels=1, size=None)
    raw = torch.load(odd_tensors / "pixels.pt").float() / 127.5 - 1
    torch.testing.assert_close(video, raw)
    assert "read as 8-bit pixels" in capsys.readouterr().err


@pytest.mark.parametrize("name,words", [("none.pt", "holds no videos"), ("bool.pt", "torch.bool"),
                                        ("float255.pt", "must be in [-1, 1]")])
def test_eval_refuses_odd_tensors(bad_files, odd_tensors, capsys, name, words):
    assert main(["eval", "--real", str(bad_files / "ok.pt"), "--fake", str(odd_tensors / name), "--metrics",
                 "ssim", "--no-progress"]) == 2
    assert name in assert_one_line_error(capsys, words)


@pytest.mark.parametrize("argv,words", [
    (["sample", "{run}", "--guidance", "nan", "--prompt", "x"], "--guidance must be a finite number, got nan"),
    (["sample", "{run}", "--guidance", "inf", "--prompt", "x"], "--guidance must be a finite number, got inf"),
    (["sample", "{run}", "--gamma", "nan"], "--gamma must be a finite number"),
    (["extend", "{run}", "--from-samples", "1", "--w-r", "nan"], "--w-r must be a finite number"),
    (["demo", "--weights", "1", "inf", "--out", "{tmp}/d"], "--weights must be a finite number, got inf"),
    (["sample", "{run}", "--prompt", ""], "--prompt must not be empty"),
    (["sample", "{run}", "--prompt", "a", "--prompt", "   "], "--prompt must not be empty"),
    (["extend", "{run}", "--from-samples", "1", "--prompt", ""], "--prompt must not be empty"),
    (["sample", "{run}", "--seed", str(10**23)], "--seed must be an integer in [0, 2**63 - 1]"),
    (["sample", "{run}", "--seed", "-1"], "--seed must be an integer in [0, 2**63 - 1], got -1"),
    (["bench", "--repeats", "0"], "--repeats must be >= 1, got 0"),
    (["bench", "--batch", "-2"], "--batch must be >= 1, got -2"),
    (["bench", "--batch", "0"], "--batch must be >= 1, got 0"),
    (["bench", "--threads", "0"], "--threads must be >= 1, got 0"),
    (["bench", "--rounds", "0"], "--rounds must be >= 1, got 0"),
    (["bench", "--warmup", "-1"], "--warmup must be >= 0"),
    (["train", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["demo", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["eval", "--real", "{file}", "--fake", "{file}", "--cache-dir", "{file}"], "--cache-dir {file}: is a file"),
    (["config", "--set", "model.channel_mults=[1,2,4"], "--set model.channel_mults=[1,2,4: the value"),
    (["config", "--set", "train.steps={a: 1"], "is not valid YAML"),
    (["config", "--set", "train.steps=*alias"], "undefined alias"),
    (["sample", "--model", "nope"], "no shipped model named 'nope' (shipped: "),
    (["demo", "--model", "nope", "--out", "{tmp}/d"], "model 'nope': no such run directory or checkpoint"),
    (["demo", "--task-model", "nope", "--out", "{tmp}/d"], "model 'nope': no such run directory or checkpoint"),
    (["sample", "--checkpoint={file}"], "no checkpoint found at {file}: a file outside any checkpoint folder"),
    (["sample", "{run}", "--out", "{file}/o.gif"], "--out {file}/o.gif: {file} is a file, not a folder"),
    (["extend", "{run}", "--from-samples", "1", "--variant", "posterior"], "--variant applies to --method "
                                                                            "replacement only"),
    (["extend", "{run}", "--from-samples", "1", "--method", "replacement", "--w-r=2"], "--w-r applies to --method "
                                                                                       "gradient only"),
    (["extend", "{run}", "--from-samples", "1", "--method", "replacement", "--no-clamp"], "--no-clamp applies"),
    # the commands merged from main (issue 31 and the video prediction work) get the same checks
    (["finetune", "--model", "moving-mnist", "--data", "{tmp}", "--out", "{file}"], "--out {file}: is a file, "
                                                                                       "not a folder"),
    (["clips", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    (["predict", "{run}", "--input", "{file}", "--given", "2", "--frames", "4", "--variant", "posterior",
      "--out", "{tmp}/p.gif"], "--variant applies to --method replacement only"),
    (["predict", "{run}", "--input", "{file}", "--given", "2", "--frames", "4", "--method", "replacement",
      "--w-r", "2", "--out", "{tmp}/p.gif"], "--w-r applies to --method gradient only"),
    (["predict", "{run}", "--input", "{file}", "--given", "2", "--frames", "4", "--guidance", "nan",
      "--out", "{tmp}/p.gif"], "--guidance must be a finite number"),
])
def test_bad_values_are_one_line_before_any_work(run, tmp_path, capsys, argv, words):
    file = tmp_path / "a_file"
    file.write_text("x")
    fill = dict(run=f"--checkpoint={run}", tmp=str(tmp_path), file=str(file))
    def sub(text):
        for k, v in fill.items():
            text = text.replace("{" + k + "}", v)
        return text

    argv = [sub(a) for a in argv]
    if argv[0] in ("sample", "extend"):
        argv += ["--steps", "1"] + ([] if "--out" in argv else ["--out", str(tmp_path / "o.gif")])
    assert main(argv) == 2
    assert_one_line_error(capsys, sub(words))
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a_file"]  # no file written


def test_a_binary_config_file_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(bytes(range(256)) * 4)
    assert main(["config", "--config", str(tmp_path / "c.yaml")]) == 2
    assert_one_line_error(capsys, "c.yaml", "not a text (UTF-8) YAML file")


def test_extend_refuses_frames_not_beyond_the_given_ones(run, bad_files, tmp_path, capsys):
    assert main(["extend", "--checkpoint", str(run), "--input", str(bad_files / "ok.pt"), "--frames", "2",
                 "--steps", "1", "--out", str(tmp_path / "o.gif")]) == 2
    assert_one_line_error(capsys, "--frames 2 is not more than the 2 given frames", "nothing to extend")


def test_resuming_a_finished_run_says_so_instead_of_a_nan_loss(run, tmp_path, capsys):
    import shutil

    shutil.copytree(run, tmp_path / "r")
    args = train_argv(tmp_path / "r", TINY + ["train.steps=1"])
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "is already at step 1 (train.steps=1): no step was trained" in out and "nan" not in out


@needs_transformers
def test_an_over_long_prompt_is_reported_as_truncated(tmp_path, capsys):
    from test_text import make_tiny_bert
    from videodiff.text import EmbeddingCache, HFTextEncoder

    make_tiny_bert(tmp_path / "bert")
    cache = EmbeddingCache(HFTextEncoder(str(tmp_path / "bert"), max_length=8), tmp_path / "cache")
    long = "digit three moving left " * 100
    emb = cache.get(["digit 1", long])
    err = capsys.readouterr().err
    assert "has " in err and "tokens; the text encoder reads only its first 8 (text.max_length)" in err
    assert "'digit 1'" not in err and emb[1].shape[0] == 8
    again = EmbeddingCache(HFTextEncoder(str(tmp_path / "bert"), max_length=8), tmp_path / "cache")
    again.get([long])  # read from the disk cache: still reported
    assert "reads only its first 8" in capsys.readouterr().err


def test_a_long_sample_run_notes_its_estimated_time_after_the_first_batch(run, tmp_path, capsys):
    import re

    from videodiff.cli.sample import _duration

    base = ["sample", "--checkpoint", str(run), "--steps", "1", "--batch-size", "2"]
    assert main(base + ["--num", "5", "--out", str(tmp_path / "a.gif")]) == 0  # 3 batches: 2 remain after one
    notes = [x for x in capsys.readouterr().err.splitlines() if x.startswith("note:")]
    assert len(notes) == 1 and re.fullmatch(r"note: 2 videos in \d+\.\d s; about \d+(\.\d)? (s|min|h) for 5",
                                            notes[0]), notes
    assert main(base + ["--num", "4", "--out", str(tmp_path / "b.gif")]) == 0  # one batch remains: no estimate
    assert not [x for x in capsys.readouterr().err.splitlines() if x.startswith("note:")]
    assert [_duration(s) for s in (3.14, 42.0, 1920.0, 9000.0)] == ["3.1 s", "42 s", "32 min", "2.5 h"]


def test_attention_resolutions_that_match_no_level_are_refused(capsys):
    """attn_resolutions [7] at image_size 32 built a U-Net without any attention, silently."""
    import glob
    import json
    from pathlib import Path

    from videodiff.config import ExperimentConfig, config_from_dict
    from videodiff.nn.unet3d import UNetConfig

    with pytest.raises(ValueError, match=r"model.attn_resolutions \[7\] matches no level of the U-Net, whose levels "
                                         r"have sizes \[32, 16, 8, 4\]"):
        UNetConfig(image_size=32, attn_resolutions=(7,))
    assert UNetConfig(image_size=32, attn_resolutions=()).attention_levels() == []  # [] asks for none: allowed
    assert main(["config", "--set", "data.image_size=32", "--set", "model.attn_resolutions=[7]"]) == 2
    assert_one_line_error(capsys, "model.attn_resolutions [7] matches no level", "[32, 16, 8, 4]")
    # the check sees the data's size, not UNetConfig's default 64 (whose levels 64, 32 would not hold 8)
    cfg = load_config(None, ["data.image_size=16", "model.channel_mults=[1, 2]", "model.attn_resolutions=[8]"])
    assert cfg.model.attention_levels() == [1]
    root = Path(__file__).resolve().parents[1]
    configs = sorted(glob.glob(str(root / "configs" / "**" / "*.yaml"), recursive=True))
    assert any("/paper/" in p for p in configs) and any("/distill/" in p for p in configs)
    for path in configs:  # every shipped config and model still loads, with attention
        assert load_config(path, []).model.attention_levels(), path
    models = sorted((root / "videodiff" / "assets" / "models").glob("*.json"))
    assert models
    for path in models:
        assert config_from_dict(ExperimentConfig, json.loads(path.read_text())["config"]).model.attention_levels()
