"""The app under load (issue 29), the short form of ``benchmarks/app_load.py``: 8 simultaneous clients against
``videodiff app`` (the shipped model, 1 sampling step) with one request sampled at a time and a queue of 4: the
requests that fit are served, each with its own video (no mixing between sessions), the rest are told at once that
the queue is full, nothing errors, the server lives on; written videos are bounded and prompts are limited."""

import importlib.util
import sys
from pathlib import Path

import pytest

from test_text import needs_transformers

pytestmark = [pytest.mark.usefixtures("one_thread"), needs_transformers]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_eight_clients_against_a_queue_of_four(tmp_path):
    pytest.importorskip("gradio_client")  # with the app extra (make install-app); required under CI
    import app_load

    server = app_load.Server(tmp_path, steps=1, concurrency=1, max_queue=4)
    try:
        row = app_load.load_round(server, 8, steps=1, timeout=120)
        again = app_load.load_round(server, 2, steps=1, timeout=120)  # the server still serves after the burst
    finally:
        server.close()
    assert row["errors"] == 0 and row["mixed"] == 0, row
    assert row["ok"] + row["busy"] == 8 and row["ok"] >= 5 and row["busy"] >= 1, row  # 1 running + 4 waiting
    assert row["busy_max_s"] < row["max_s"], row  # turned away at once, not after waiting
    assert row["server_alive"] and row["video_files"] == row["ok"], row
    assert again["ok"] == 2 and again["errors"] == 0, again


def test_videos_are_pruned_and_long_prompts_refused(tmp_path):
    from videodiff import VideoPipeline
    from videodiff.app import AppDefaults, VideoApp

    app = VideoApp(VideoPipeline.from_pretrained("moving-mnist", device="cpu"), tmp_path,
                   AppDefaults(steps=1, keep_videos=2))
    for seed in range(3):
        app.generate("digit 1 moving up", 2, 1, "ddim", seed)
    assert len(list(tmp_path.glob("*.mp4"))) == 2  # the oldest was deleted
    with pytest.raises(ValueError, match="the prompt is 301 characters long; keep it under 300"):
        app.generate("x" * 301, 2, 1, "ddim", 0)


def test_cli_refuses_bad_queue_settings(capsys):
    if importlib.util.find_spec("gradio") is None:
        pytest.skip("gradio is not installed (make install-app)")
    from conftest import assert_one_line_error
    from videodiff.cli import main

    assert main(["app", "--concurrency", "0"]) == 2
    assert_one_line_error(capsys, "--concurrency must be >= 1, got 0")
    assert main(["app", "--max-queue", "-1"]) == 2
    assert_one_line_error(capsys, "--max-queue must be >= 0, got -1")
