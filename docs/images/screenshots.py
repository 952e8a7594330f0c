"""The README's screenshots, taken in headless Chromium (Playwright's Python package driving the system's
``chromium``, as tests/test_app.py does):

* ``docs/images/app.png``: ``videodiff app`` after generating "digit 7 moving left" (20 steps, the page's defaults);
* ``docs/images/tensorboard.png``: TensorBoard's scalars of a 100-step run of ``configs/moving_mnist_tiny.yaml``
  (``TRAIN_OVERRIDES``; ``--run DIR`` reuses a run trained with them).

    make install-app-test && apt-get install chromium
    OMP_NUM_THREADS=1 .venv/bin/python docs/images/screenshots.py

Each PNG is reduced to a 256-colour palette (well under 300 KB).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHROMIUM = os.environ.get("VIDEODIFF_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
VIEWPORT = {"width": 1200, "height": 760}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cmd: list[str], url: str, log: Path, timeout: float = 120) -> subprocess.Popen:
    """Start ``cmd`` and wait until ``url`` answers."""
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit(f"{cmd[:4]} did not serve {url}:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)


def save_small(png: bytes, path: Path) -> None:
    tmp = path.with_suffix(".full.png")
    tmp.write_bytes(png)
    with Image.open(tmp) as im:
        im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    tmp.unlink()
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1e3:.0f} KB")


def app_screenshot(browser, work: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = serve([sys.executable, "-m", "videodiff", "app", "--port", str(port), "--out", str(work / "videos")],
                 url, work / "app.log")
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url)
        page.locator("#prompt textarea").fill("digit 7 moving left")
        page.click("#generate")
        page.wait_for_selector("#t2v-video video[src]", timeout=120_000)
        page.wait_for_timeout(1200)  # a few frames into the video
        save_small(page.screenshot(), HERE / "app.png")
    finally:
        proc.terminate()
        proc.wait()


TRAIN_OVERRIDES = ["train.steps=100", "train.log_every=5", "train.sample_every=50", "sample.steps=16", "sample.num=4"]


def tensorboard_screenshot(browser, work: Path, run: Path | None = None) -> None:
    """TensorBoard's scalars of ``run``, or of a run trained here first (about 3 minutes on 2 busy CPU cores)."""
    if run is None:
        run = work / "runs" / "tiny"
        train(run)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = serve([sys.executable, "-m", "tensorboard.main", "--logdir", str(run / "tensorboard"), "--host",
                  "127.0.0.1", "--port", str(port)], url, work / "tensorboard.log")
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(url + "#scalars")
        page.get_by_text("train/loss").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # the charts draw after their data arrive
        save_small(page.screenshot(), HERE / "tensorboard.png")
    finally:
        proc.terminate()
        proc.wait()


def train(run: Path) -> None:
    sets = [a for o in TRAIN_OVERRIDES for a in ("--set", o)]
    subprocess.run([sys.executable, "-m", "videodiff", "train", "--config", "configs/moving_mnist_tiny.yaml", "--out",
                    str(run), "--no-progress", *sets], cwd=ROOT, check=True)


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, default=None,
                   help="a run directory already trained with TRAIN_OVERRIDES (default: train one first)")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="videodiff-shots-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        app_screenshot(browser, Path(tmp))
        tensorboard_screenshot(browser, Path(tmp), args.run)
        browser.close()


if __name__ == "__main__":
    main()
