"""Reliability of a run directory shared by several processes (issue 29): one writer per run (a lock with stale-lock
detection), resumes whose config differs from the run's saved one, checksummed checkpoints."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from videodiff.checkpoint import load_checkpoint
from videodiff.cli import main
from videodiff.config import load_config
from videodiff.train import train
from videodiff.train.runlock import LOCK_NAME, RunLock, RunLockedError, read_lock

from test_train import TINY, _losses, assert_matches_uninterrupted


def _train_args(run: Path, *extra: str) -> list[str]:
    args = ["train", "--out", str(run), "--no-progress"]
    for o in TINY + list(extra):
        args += ["--set", o]
    return args


# Child processes load runlock.py by its path: it needs only the standard library, and importing videodiff.train
# would import torch (seconds per process on a loaded machine).
_RUNLOCK_PY = Path(__file__).resolve().parents[1] / "videodiff" / "train" / "runlock.py"
_LOAD_LOCK = ("import importlib.util\n"
              f"spec = importlib.util.spec_from_file_location('runlock', {str(_RUNLOCK_PY)!r})\n"
              "rl = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(rl)\n"
              "RunLock, RunLockedError = rl.RunLock, rl.RunLockedError\n")


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------------------------------------ one writer


def test_a_second_writer_on_a_live_run_is_refused_in_one_line(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    code = (_LOAD_LOCK + "import sys, time\n"
            f"lock = RunLock({str(run)!r}, 'train')\nprint('locked', flush=True)\ntime.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_train_args(run, "train.steps=1")) == 2
        line = assert_one_line_error(capsys, "is in use by train", f"pid {holder.pid}", socket.gethostname(),
                                     LOCK_NAME)
        assert "--out" in line
        assert not (run / "checkpoints").exists() and not (run / "config.yaml").exists()  # nothing written
    finally:
        holder.kill()
        holder.wait()
    # killed (as by kill -9): the kernel lock went with it; the next train takes over the stale file and runs
    assert read_lock(run / LOCK_NAME)["pid"] == holder.pid
    capsys.readouterr()
    assert main(_train_args(run, "train.steps=1")) == 0
    err = capsys.readouterr().err
    assert f"pid {holder.pid}" in err and "is no longer running" in err and "stale lock" in err
    assert load_checkpoint(run)["step"] == 1
    assert not (run / LOCK_NAME).exists()  # released at the end


def test_the_lock_is_held_during_training_and_released_after_an_error(tmp_path):
    run = tmp_path / "r"
    seen = []

    class Probe(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            seen.append(read_lock(run / LOCK_NAME))
            with pytest.raises(RunLockedError, match="is in use by train"):
                RunLock(run)  # a second writer, while the first trains
            return {"video": torch.zeros(1, 4, 16, 16) + float("nan")}  # diverges: training raises

    with pytest.raises(ValueError, match="training diverged"):
        train(load_config(None, TINY + ["train.steps=2"]), run, dataset=Probe(), progress=False)
    assert seen and seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert not (run / LOCK_NAME).exists()
    RunLock(run).release()  # free again


def test_a_stale_lock_is_taken_over_and_a_remote_one_is_refused(tmp_path, monkeypatch):
    run = tmp_path / "r"
    run.mkdir()
    lock = run / LOCK_NAME
    notes = []
    pid = _dead_pid()
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "train", "started": 0}))
    held = RunLock(run, note=notes.append)
    assert held.took_over["pid"] == pid and len(notes) == 1 and f"pid {pid}" in notes[0]
    assert read_lock(lock)["pid"] == os.getpid()
    held.release()
    # on a file system without kernel locks the pid alone decides: a live pid is refused, a dead one taken over
    import videodiff.train.runlock as rl

    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "command": "train"}))
    with monkeypatch.context() as m:
        m.setattr(rl.RunLock, "_flock", staticmethod(lambda fd: None))
        with pytest.raises(RunLockedError, match=f"pid {os.getppid()}"):
            RunLock(run)
        lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
        RunLock(run).release()
    # written on another host: its liveness cannot be checked here; refused, naming the file to delete
    lock.write_text(json.dumps({"pid": 12345, "host": "node-17.cluster", "command": "train"}))
    with pytest.raises(RunLockedError, match=r"pid 12345 on host node-17.cluster.*cannot be checked.*delete .*"
                                             + LOCK_NAME):
        RunLock(run)
    lock.unlink()
    RunLock(run).release()


def test_two_racing_writers_one_wins(tmp_path):
    """Eight processes start on one run directory at once: exactly one holds the lock, the others refuse."""
    run = tmp_path / "r"
    run.mkdir()
    code = (_LOAD_LOCK + "import sys, time\n"
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
            f"try:\n    lock = RunLock({str(run)!r})\nexcept RunLockedError:\n    print('refused'); sys.exit(0)\n"
            "print('held', flush=True)\ntime.sleep(15)\n")  # holds it while the others try
    start = time.time() + 5.0  # every process has started and loaded the module by then
    procs = [subprocess.Popen([sys.executable, "-c", code, str(start)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1")) for _ in range(8)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert sorted(outs) == ["held"] + ["refused"] * 7, outs


# ------------------------------------------------------------------------------------------------ config on resume


def test_a_resume_with_a_changed_config_names_the_keys_and_refuses(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(_train_args(run, "train.steps=1")) == 0
    capsys.readouterr()
    # the optimisation changed: refused naming the keys and both values, nothing written
    before = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert main(_train_args(run, "train.steps=2", "train.lr=0.001", "train.seed=3")) == 2
    line = assert_one_line_error(capsys, "train.lr (0.0003 -> 0.001)", "train.seed (0 -> 3)",
                                 "--allow-config-change")
    assert "train.steps" not in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == before
    # the network changed: refused even with the flag
    assert main(_train_args(run, "train.steps=2", "model.base_channels=8") + ["--allow-config-change"]) == 2
    assert_one_line_error(capsys, "'model' config differs", "model.base_channels (16 -> 8)")
    # told to continue: it does, and says what changed
    assert main(_train_args(run, "train.steps=2", "train.lr=0.001") + ["--allow-config-change"]) == 0
    err = capsys.readouterr().err
    assert "resuming" in err and "train.lr (0.0003 -> 0.001)" in err and "train.steps (1 -> 2)" in err
    assert load_checkpoint(run)["step"] == 2
    # the same option in YAML / --set; and more steps alone are a plain resume (with a note)
    assert main(_train_args(run, "train.steps=3", "train.lr=0.002", "train.allow_config_change=true")) == 0
    assert main(_train_args(run, "train.steps=4", "train.lr=0.002")) == 0
    assert "train.steps (3 -> 4)" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 4


def test_resume_with_the_same_config_stays_bit_exact(tmp_path):
    common = TINY + ["train.ckpt_every=1"]
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "full", progress=False)
    train(load_config(None, common + ["train.steps=1"]), tmp_path / "part", progress=False)
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "part", progress=False)
    assert _losses(tmp_path / "full") == _losses(tmp_path / "part")


# ------------------------------------------------------------------------------------------------ checksums


def _flip(path: Path, at: float = 0.6) -> None:
    """Flip one bit of one byte (the file keeps its length), as a bad disk or copy does."""
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.safetensors", "ema.safetensors", "state.safetensors", "state.json",
                                  "manifest.json"])
def test_a_flipped_byte_in_any_checkpoint_file_is_detected(tmp_path, name):
    from videodiff.checkpoint import CheckpointError

    run = tmp_path / "r"
    train(load_config(None, TINY + ["train.steps=1"]), run, progress=False)
    ck = run / "checkpoints" / "step_000001"
    manifest = json.loads((ck / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "ema.safetensors", "state.safetensors", "state.json"}
    size = (ck / name).stat().st_size
    _flip(ck / name)
    assert (ck / name).stat().st_size == size
    with pytest.raises(CheckpointError, match="could not read checkpoint .*step_000001"):
        load_checkpoint(run)


def test_a_flipped_tensor_byte_loads_silently_without_the_manifest(tmp_path):
    """Why the digests are needed: a bit flipped inside a tensor's data still parses (older checkpoints, without a
    manifest, keep loading unchecked)."""
    run = tmp_path / "r"
    train(load_config(None, TINY + ["train.steps=1"]), run, progress=False)
    ck = run / "checkpoints" / "step_000001"
    good = {k: v.clone() for k, v in load_checkpoint(run)["ema"].items()}  # (safetensors may map the file)
    _flip(ck / "ema.safetensors", at=0.9)
    (ck / "manifest.json").unlink()
    bad = load_checkpoint(run)["ema"]
    assert any(not torch.equal(good[k], bad[k]) for k in good)


def test_resume_falls_back_from_a_flipped_byte_and_stays_exact(tmp_path, capsys):
    common = TINY + ["train.ckpt_every=1", "train.keep_checkpoints=2"]
    train(load_config(None, common + ["train.steps=2"]), tmp_path / "r", progress=False)
    _flip(tmp_path / "r" / "checkpoints" / "step_000002" / "ema.safetensors", at=0.9)
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(tmp_path / "r"), "--num", "1", "--steps", "1",
                 "--out", str(tmp_path / "s.gif")]) == 2
    assert_one_line_error(capsys, "could not read checkpoint", "step_000002", "ema.safetensors", "sha256")
    train(load_config(None, common + ["train.steps=3"]), tmp_path / "r", progress=False)
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if "could not read checkpoint" in line]
    assert len(warn) == 1 and "ema.safetensors does not match its sha256" in warn[0] and "falling back" in warn[0]
    assert (tmp_path / "r" / "checkpoints" / "step_000002.damaged").is_dir()
    assert_matches_uninterrupted(tmp_path / "r", tmp_path / "full", common, 3)


# ------------------------------------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    train(load_config(None, TINY + ["train.steps=1", "sample.num=1", "sample.steps=1"]), run, progress=False)
    return run


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../../x", "", ".hidden", "a/b", "..", "/abs", "x" * 101, "-rf"])
def test_export_never_writes_outside_its_folder(tiny_run, tmp_path, capsys, name):
    out = tmp_path / "a" / "b" / "models"
    out.mkdir(parents=True)
    before = _tree(tmp_path)
    assert main(["export", "--checkpoint", str(tiny_run), f"--name={name}", "--out", str(out)]) == 2
    assert_one_line_error(capsys, "--name", "letters, digits")
    assert _tree(tmp_path) == before


def test_export_replaces_a_model_only_with_overwrite_and_a_shipped_one_never(tiny_run, tmp_path, capsys):
    import hashlib

    import videodiff.pretrained as pretrained

    out = tmp_path / "models"
    args = ["export", "--checkpoint", str(tiny_run), "--name", "tiny", "--out", str(out)]
    old = os.umask(0o022)
    try:
        assert main(args) == 0
    finally:
        os.umask(old)
    for f in ("tiny.safetensors", "tiny.json"):
        assert (out / f).stat().st_mode & 0o777 == 0o644, f  # as open() would, not mkstemp's 0600
    assert _tree(out) == ["tiny.json", "tiny.safetensors"]  # no temporary files left
    (out / "tiny.json").write_text((out / "tiny.json").read_text().replace('"weights": "ema"', '"weights": "ema" '))
    edited = (out / "tiny.json").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert_one_line_error(capsys, "--name 'tiny'", "exists", "--overwrite")
    assert (out / "tiny.json").read_bytes() == edited
    assert main(args + ["--overwrite"]) == 0 and (out / "tiny.json").read_bytes() != edited
    # the package's own models: never replaced, with or without --overwrite, --out given or not
    shipped = pretrained.available_models()
    assert shipped, "the package ships models"
    weights = pretrained.MODELS_DIR / f"{shipped[0]}.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    for extra in ([], ["--overwrite"], ["--out", str(pretrained.MODELS_DIR)]):
        capsys.readouterr()
        assert main(["export", "--checkpoint", str(tiny_run), "--name", shipped[0]] + extra) == 2
        assert_one_line_error(capsys, "ships with the package", "never replaced")
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == digest


def test_export_refuses_unwritable_and_file_outputs_in_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    base = ["export", "--checkpoint", str(tiny_run), "--name", "tiny"]
    (tmp_path / "f").write_text("x")
    assert main(base + ["--out", str(tmp_path / "f")]) == 2
    assert_one_line_error(capsys, "--out", "is a file, not a folder")
    assert main(base + ["--out", "/proc/self"]) == 2  # a folder nobody may create files in (root neither)
    assert_one_line_error(capsys, "--out /proc/self", "not writable")
    import videodiff.pretrained as pretrained

    monkeypatch.setattr(pretrained.os, "access", lambda *a: True)  # the write itself fails (as root on a ro mount)
    assert main(base + ["--out", "/proc/self"]) == 2
    assert_one_line_error(capsys, "--out /proc/self", "cannot write tiny.safetensors")


def test_weights_from_another_config_are_one_line(tiny_run, tmp_path, capsys):
    """A checkpoint whose state.json config is not the network of its weights (files from two runs): export, sample
    and resume each say so in one line instead of load_state_dict's traceback."""
    import shutil

    from videodiff.checkpoint import write_manifest

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ck = run / "checkpoints" / "step_000001"
    meta = json.loads((ck / "state.json").read_text())
    meta["config"]["model"]["base_channels"] = 8
    (ck / "state.json").write_text(json.dumps(meta))
    write_manifest(ck)  # consistent digests: the files are intact, they just do not belong together
    assert main(["export", "--checkpoint", str(run), "--name", "x", "--out", str(tmp_path / "m")]) == 2
    assert_one_line_error(capsys, "--checkpoint", "do not fit the network of its config", "of another shape")
    assert not (tmp_path / "m").exists()
    assert main(["sample", "--checkpoint", str(run), "--num", "1", "--steps", "1",
                 "--out", str(tmp_path / "s.gif")]) == 2
    assert_one_line_error(capsys, "step_000001", "do not fit the network of its config")
    assert main(_train_args(run, "train.steps=2", "model.base_channels=8")) == 2
    assert_one_line_error(capsys, "step_000001", "do not fit the network of its config")
