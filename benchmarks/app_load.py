"""The app under load (issue 29): N simultaneous clients against ``videodiff app`` on 127.0.0.1.

The server runs as its own process (``python -m videodiff app``, as a user starts it) with a bounded queue
(``--concurrency``, ``--max-queue``); N client sessions (gradio_client, one per simulated user, created before the
clock starts) are released together by a barrier and each asks for one text-to-video sample with its own prompt and
seed. Per N it reports: requests served, turned away with "queue is full, try again" (busy), other errors, latency
percentiles of the served ones, the wall time, the server's peak RSS (VmHWM), the files left in the video folder
and in Gradio's cache, and whether any client got another client's video (its note names the prompt and seed it
was made from). Bounded: N <= 64, every request times out after ``--timeout`` seconds, localhost only.

    python benchmarks/app_load.py --clients 1 4 16 64 --steps 2 --json benchmarks/results/app_load.json

``tests/test_app_load.py`` runs the short form (8 clients, 1 step, a queue of 4).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

MAX_CLIENTS = 64
DIRECTIONS = ("left", "right", "up", "down")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    """VmHWM (the peak resident set) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


class Server:
    """``python -m videodiff app`` on a free localhost port, with its videos and Gradio's cache in ``root``."""

    def __init__(self, root: Path, *, model: str = "moving-mnist", steps: int = 2, concurrency: int = 1,
                 max_queue: int = 16, start_timeout: float = 120):
        self.root = Path(root)
        self.videos, self.cache = self.root / "videos", self.root / "gradio-cache"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(self.root / "app.log", "w")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "GRADIO_TEMP_DIR": str(self.cache), "GRADIO_ANALYTICS_ENABLED": "False"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "videodiff", "app", "--model", model, "--host", "127.0.0.1", "--port",
             str(self.port), "--steps", str(steps), "--concurrency", str(concurrency), "--max-queue", str(max_queue),
             "--out", str(self.videos)], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"videodiff app did not serve {self.url}: "
                                       f"{(self.root / 'app.log').read_text()[-2000:]}")
                time.sleep(0.3)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def load_round(server: Server, n: int, *, steps: int = 2, sampler: str = "ddim", guidance: float = 2.0,
               timeout: float = 300) -> dict:
    """N simultaneous clients, one request each; the row of the table."""
    from gradio_client import Client

    if not 1 <= n <= MAX_CLIENTS:
        raise ValueError(f"clients must be from 1 to {MAX_CLIENTS}, got {n}")
    clients: list = [None] * n

    def connect(i):
        clients[i] = Client(server.url, verbose=False)

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    barrier = threading.Barrier(n)
    rows: list[dict] = [{} for _ in range(n)]

    def request(i):
        prompt = f"digit {i % 10} moving {DIRECTIONS[i % 4]}"
        barrier.wait()
        t0 = time.perf_counter()
        try:
            job = clients[i].submit(prompt, guidance, steps, sampler, i, api_name="/generate")
            video, note = job.result(timeout=timeout)[-2:]
            mixed = f"'{prompt}'" not in note or f"seed {i}:" not in note
            rows[i] = {"outcome": "ok", "latency_s": time.perf_counter() - t0, "mixed": mixed,
                       "video_exists": Path(video).is_file() if isinstance(video, str) else None}
        except Exception as e:  # the queue's "full, try again", a timeout, anything the server raised
            busy = "queue is full" in str(e).lower()
            rows[i] = {"outcome": "busy" if busy else "error", "latency_s": time.perf_counter() - t0,
                       "error": f"{type(e).__name__}: {e}"[:200]}

    t0 = time.perf_counter()
    threads = [threading.Thread(target=request, args=(i,)) for i in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    wall = time.perf_counter() - t0
    for c in clients:
        try:
            c.close()
        except Exception:
            pass
    ok = [r["latency_s"] for r in rows if r["outcome"] == "ok"]
    busy = [r["latency_s"] for r in rows if r["outcome"] == "busy"]
    return {"clients": n, "ok": len(ok), "busy": len(busy), "errors": sum(r["outcome"] == "error" for r in rows),
            "error_examples": [r["error"] for r in rows if r["outcome"] == "error"][:3],
            "mixed": sum(bool(r.get("mixed")) for r in rows),
            "p50_s": _percentile(ok, 0.5), "p90_s": _percentile(ok, 0.9), "p99_s": _percentile(ok, 0.99),
            "max_s": max(ok) if ok else None, "busy_max_s": max(busy) if busy else None,
            "mean_s": statistics.fmean(ok) if ok else None, "wall_s": wall,
            "server_peak_rss_mb": _peak_rss_mb(server.proc.pid), "server_alive": server.alive(),
            "video_files": _files(server.videos), "gradio_cache_files": _files(server.cache)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--model", default="moving-mnist")
    ap.add_argument("--steps", type=int, default=2, help="sampling steps per request")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--max-queue", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if any(not 1 <= n <= MAX_CLIENTS for n in args.clients):
        ap.error(f"--clients must be from 1 to {MAX_CLIENTS}")
    with tempfile.TemporaryDirectory(prefix="videodiff-app-load-") as root:
        server = Server(Path(root), model=args.model, steps=args.steps, concurrency=args.concurrency,
                        max_queue=args.max_queue)
        try:
            rows = []
            for n in args.clients:
                row = load_round(server, n, steps=args.steps, timeout=args.timeout)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            server.close()
    header = ("| clients | served | busy | errors | mixed | p50 s | p90 s | p99 s | busy reply s | wall s | "
              "server peak RSS MB | videos kept | Gradio cache files |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        print(f"| {r['clients']} | {r['ok']} | {r['busy']} | {r['errors']} | {r['mixed']} | {fmt(r['p50_s'])} | "
              f"{fmt(r['p90_s'])} | {fmt(r['p99_s'])} | {fmt(r['busy_max_s'])} | {r['wall_s']:.1f} | "
              f"{r['server_peak_rss_mb']:.0f} | {r['video_files']} | {r['gradio_cache_files']} |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
