"""The README's examples run as pasted (issue 31): every ```bash and ```python block, in the README's order, from a
folder that holds only ``configs/`` (a fresh clone; each input is shipped or made by an earlier example, every
output lands in ``runs/``), with fewer steps:

* every sampling run takes 1 step (``VideoPipeline.settings``, through which the CLI and the Python API sample);
* training runs take 2 steps (``--set train.steps=2``; ``finetune --steps 2``; ``steps=`` in Python) and write no
  preview samples; a checkpoint named in a later example (``step_003000``) is then ``step_000002``;
* counts shrink: ``--num`` to at most 4 (clips: 8), ``--from-samples`` to 2, ``--frames`` of extend and demo to 24,
  ``--num-clips`` to 4; the demo's extra rows take 1 step.

Commands that install (make, pip), serve (videodiff app, tensorboard) or start 8 processes (torchrun) are not
run; ``mkdir -p`` makes its folder; any other line must be a ``videodiff`` command that exits 0.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from videodiff.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
NOT_RUN = ("make", "pip", "torchrun", "tensorboard", "videodiff app")
TRAIN_STEPS = 2


def blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of the README's ```bash / ```python blocks, in order."""
    return re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.M | re.S)


def commands(code: str) -> list[list[str]]:
    """Each shell line (continuations joined, comments dropped) as an argv."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(argv)
    return out


def _cap(argv: list[str], flag: str, most: int) -> None:
    if flag in argv:
        i = argv.index(flag) + 1
        argv[i] = str(min(int(argv[i]), most))


def shrink(argv: list[str]) -> list[str]:
    argv = [re.sub(r"step_\d{6}", f"step_{TRAIN_STEPS:06d}", a) for a in argv]
    cmd = argv[1]
    _cap(argv, "--num", 8 if cmd == "clips" else 4)
    _cap(argv, "--from-samples", 2)
    _cap(argv, "--num-clips", 4)
    if cmd in ("extend", "demo"):
        _cap(argv, "--frames", 24)
    if cmd == "train" or cmd == "train-classifier":
        argv += ["--set", f"train.steps={TRAIN_STEPS}"]
    if cmd == "finetune":
        argv += ["--steps", str(TRAIN_STEPS)]
    if cmd == "demo":
        argv += ["--task-steps", "1", "--no-progress"]
    return argv


@pytest.fixture
def one_step(monkeypatch):
    import videodiff.train.loop as loop
    from videodiff import VideoPipeline

    settings = VideoPipeline.settings
    monkeypatch.setattr(VideoPipeline, "settings", lambda self, task, **kw: settings(self, task, **{**kw, "steps": 1}))
    monkeypatch.setattr(loop, "_write_samples", lambda *a, **k: [])


def test_every_readme_example_runs_in_order(tmp_path, monkeypatch, one_step):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    ran, skipped = [], []
    for lang, code in blocks((ROOT / "README.md").read_text()):
        if lang == "python":
            exec(compile(re.sub(r"\bsteps=\d+", "steps=1", code), "README.md", "exec"), {})
            ran.append("python block")
            continue
        for argv in commands(code):
            if " ".join(argv).startswith(NOT_RUN):
                skipped.append(argv)
                continue
            if argv[:2] == ["mkdir", "-p"]:
                for folder in argv[2:]:
                    Path(folder).mkdir(parents=True, exist_ok=True)
                continue
            assert argv[0] == "videodiff", f"a README example that is not a videodiff command: {argv}"
            assert main(shrink(argv)[1:]) == 0, argv
            ran.append(argv)
    assert len(ran) >= 35 and len(skipped) <= 8, (len(ran), skipped)  # 34 commands and 2 Python blocks
    outputs = {p.relative_to(tmp_path).parts[0] for p in tmp_path.iterdir()}
    assert outputs <= {"configs", "runs"}, outputs  # nothing lands beside the clone's files
