"""The interactive app (``videodiff app``, :mod:`videodiff.app`): its actions and input checks on the shipped model,
and the page itself in a real browser: a headless Chromium (driven by Playwright, using the system's ``chromium``,
never a browser of Playwright's own) types a prompt, presses Generate and waits for the video.

Gradio, Playwright and Chromium are optional (``make install-app``, ``apt-get install chromium``): without them the
browser tests skip, except under ``VIDEODIFF_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where they fail instead.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from videodiff.app import AppDefaults, VideoApp
from videodiff.cli import main
from videodiff import VideoPipeline

from conftest import assert_one_line_error
from test_text import needs_transformers

pytestmark = [pytest.mark.usefixtures("one_thread"), needs_transformers]

REQUIRE_BROWSER = os.environ.get("VIDEODIFF_REQUIRE_BROWSER") == "1"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
SCREENSHOT_DIR = os.environ.get("VIDEODIFF_SCREENSHOT_DIR")  # keep the screenshots (README images) when set


def _missing(what: str):
    """Skip, or under VIDEODIFF_REQUIRE_BROWSER=1 fail: CI installs everything the browser tests need."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{what} (VIDEODIFF_REQUIRE_BROWSER=1: .ci/run should have installed it)")
    pytest.skip(what)


def _import(name: str, hint: str):
    try:
        return __import__(name)
    except ImportError:
        _missing(f"{name} is not installed: {hint}")


def _chromium() -> str:
    path = os.environ.get("VIDEODIFF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.path.isfile(path):
        _missing(f"no Chromium ({path or 'none on PATH'}): apt-get install chromium, or set VIDEODIFF_CHROMIUM")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The shipped model behind the app, at 2 sampling steps so that every action takes a second or two."""
    return VideoApp(VideoPipeline.from_pretrained("moving-mnist", device="cpu"), tmp_path_factory.mktemp("app"),
                    AppDefaults(steps=2, extend_frames=24), name="moving-mnist")


def test_actions_write_videos_of_the_right_length(app):
    from videodiff.io import read_video

    path, state, note = app.generate("digit 3 moving down", 2, 2, "ddim", 0)
    assert state["video"].shape == (1, 1, 16, 32, 32) and "'digit 3 moving down', w = 2" in note
    frames = read_video(path)
    assert frames.shape[0] == 16 and frames.shape[1] >= 32 * app.defaults.scale  # upscaled so it is visible
    again, state2, _ = app.generate("digit 3 moving down", 2.0, 2.0, "ddim", 0.0)  # number boxes give floats
    torch.testing.assert_close(state2["video"], state["video"])  # the seed decides

    grad, repl, note = app.extend(state, 24, 1, "ddim", 1)
    g, r = read_video(grad), read_video(repl)
    assert g.shape == r.shape and g.shape[0] == 24 and "extended to 24" in note
    assert abs(g[:16].astype(float) - r[:16]).mean() < 1  # both keep the generated block (up to mp4 coding)

    sr, note = app.superres(state, 1, "ddim", 0)
    assert read_video(sr).shape[0] == 16 and "bicubic" in note


def test_a_students_conditional_tabs_run_its_teacher(app, tmp_path):
    """The default model (the 4-step student moving-mnist-fast-w) samples text to video itself, but its gradient method
    leaves seams and speckle and eq. (7) breaks at its 4 steps (docs/distillation.md), so its extension and
    super-resolution tabs run the teacher: the same videos as the teacher's page gives from the same input, steps and
    seed, and the extension tab starts at the teacher's sampler and steps."""
    from videodiff.app import DEFAULT_MODEL
    from videodiff.io import read_video

    student = VideoPipeline.from_pretrained(DEFAULT_MODEL, device="cpu")
    assert student.distilled and student.config.distill.source == "moving-mnist"
    page = VideoApp(student, tmp_path, AppDefaults(steps=2), name=DEFAULT_MODEL, task_pipe=student.teacher())
    assert page.teacher_name == "moving-mnist" and app.teacher_name is None
    assert (page.task_defaults.sampler, page.task_defaults.steps) == ("dpmpp2m", 20)
    path, state, note = page.generate("digit 3 moving down", 2, 2, "ddim", 0)
    sr, note = page.superres(state, 1, "ddim", 0)
    assert "by the teacher moving-mnist" in note
    theirs, _ = app.superres(state, 1, "ddim", 0)
    assert abs(read_video(sr).astype(float) - read_video(theirs)).max() == 0
    grad, _, note = page.extend(state, 20, 1, "ddim", 1)
    assert "by the teacher moving-mnist" in note
    their_grad, _, _ = app.extend(state, 20, 1, "ddim", 1)
    assert abs(read_video(grad).astype(float) - read_video(their_grad)).max() == 0


@pytest.mark.parametrize("call, message", [
    (lambda a: a.generate("   ", 2, 2, "ddim", 0), "type a prompt"),
    (lambda a: a.generate("digit 1", -1, 2, "ddim", 0), "guidance w must be from 0 to 20"),
    (lambda a: a.generate("digit 1", 2, 0, "ddim", 0), "steps must be from 1 to 200"),
    (lambda a: a.generate("digit 1", 2, 2.5, "ddim", 0), "steps must be a whole number"),
    (lambda a: a.generate("digit 1", 2, None, "ddim", 0), "steps: enter a whole number"),
    (lambda a: a.generate("digit 1", 2, 2, "euler", 0), "sampler must be one of"),
    (lambda a: a.generate("digit 1", 2, 2, "ddim", -1), "seed must be from 0"),
    (lambda a: a.extend(None, 24, 2, "ddim", 0), "generate a video on the 'Text to video' tab first"),
    (lambda a: a.extend({"video": None}, 16, 2, "ddim", 0), "frames must be from 17 to 128"),
    (lambda a: a.superres(None, 2, "ddim", 0), "generate a video"),
])
def test_bad_inputs_are_refused_with_a_message(app, call, message):
    with pytest.raises(ValueError, match=message):
        call(app)


def test_cli_without_gradio_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert main(["app", "--port", "0"]) == 2
    assert_one_line_error(capsys, "pip install 'videodiff[app]'")


# ------------------------------------------------------------------------------------------------ in a browser


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``videodiff app`` on a free localhost port, in a process of its own (Gradio stays out of this one), at 2
    sampling steps."""
    _import("gradio", "pip install 'videodiff[app]'")
    out = tmp_path_factory.mktemp("served")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(out / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "videodiff", "app", "--port", str(port), "--steps", "2",
                             "--out", str(out / "videos")], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"videodiff app did not serve {url}:\n{(out / 'app.log').read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    _import("playwright", "pip install playwright (the Python package; the browser is the system's chromium)")
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _screenshot(page, tmp_path, name: str):
    folder = SCREENSHOT_DIR or tmp_path
    path = os.path.join(folder, name)
    page.screenshot(path=path)  # the viewport: a full-page capture would leave out the (fixed) error toast
    assert os.path.getsize(path) > 1000
    return path


def test_page_generates_a_video(browser, served, tmp_path):  # browser first: no server when it skips
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    page.goto(served)
    prompt = page.locator("#prompt textarea")
    prompt.fill("digit 7 moving left")
    page.click("#generate")
    page.wait_for_selector("#t2v-video video[src]", timeout=30_000)
    page.get_by_text("'digit 7 moving left', w = 2").wait_for(timeout=10_000)
    page.wait_for_timeout(500)  # let the first frame show
    _screenshot(page, tmp_path, "app.png")
    page.close()


def test_page_shows_an_input_error(browser, served, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    page.goto(served)
    page.locator("#prompt textarea").fill("")
    page.click("#generate")
    page.get_by_text("type a prompt").first.wait_for(timeout=15_000)
    assert page.locator("#t2v-video video[src]").count() == 0
    _screenshot(page, tmp_path, "app_error.png")
    page.close()


def test_a_distilled_student_starts_the_page_at_its_own_sampler_steps_and_guidance():
    """A progressively distilled student (docs/distillation.md) samples DDIM at the steps it was distilled for with
    w = 0 (its teacher's guidance is in its weights): the page starts there; other models at AppDefaults'."""
    from videodiff.app import model_defaults
    from videodiff.config import load_config

    teacher = load_config(None, ["sample.sampler=dpmpp2m", "sample.steps=20", "sample.guidance=2.0"])
    d = model_defaults(teacher, concurrency=2)
    assert (d.sampler, d.steps, d.guidance, d.concurrency) == ("dpmpp2m", 20, 2.0, 2)
    student = load_config(None, ["sample.sampler=ddim", "sample.steps=4", "sample.guidance=0.0",
                                 "distill.source=moving-mnist", "distill.guidance=2.0"])
    d = model_defaults(student)
    assert (d.sampler, d.steps, d.guidance) == ("ddim", 4, 0.0)
    assert model_defaults(student, steps=8).steps == 8  # --steps still sets the starting value
