"""A corpus of hostile video files, generated (issue 29): valid mp4/avi/gif files and what the internet does to
them (truncation, zero bytes, wrong magic, absurd header dimensions, absurd declared frame counts, random byte
flips), and a checker that reads each one in a child process with a time limit per file.

``make_corpus(folder, flips=N, seed=S)`` writes the files and returns ``{name: kind}``; ``probe(files)`` reads
every file with :func:`videodiff.io.video_info` and :func:`videodiff.io.read_video` in a fresh Python process
and returns per-file outcomes (``ok`` / ``refused`` with the error line / ``traceback`` with the exception type /
``hang``) and the child's peak RSS. Used by ``tests/test_reliability_media.py`` (a small corpus) and for the
campaign in BENCHMARKS.md (a large one: ``python tests/media_corpus.py --flips 40``).
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

__all__ = ["make_corpus", "probe", "PROBE_TIMEOUT_S"]

PROBE_TIMEOUT_S = 20  # per file: a read that takes longer is a hang


def _frames(n: int = 12, size: int = 32, seed: int = 0) -> np.ndarray:
    """A moving bright square on noise: uint8 (n, size, size, 3)."""
    g = np.random.default_rng(seed)
    v = g.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        x = (2 * i) % (size - 8)
        v[i, 8:16, x:x + 8] = 255
    return v


def _write_avi(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    import av

    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _patch(data: bytes, tag: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite the field ``offset`` bytes after the first ``tag`` with ``value`` packed as ``fmt``."""
    i = data.find(tag)
    if i < 0:
        return data
    b = bytearray(data)
    struct.pack_into(fmt, b, i + offset, value)
    return bytes(b)


def make_corpus(folder: str | Path, *, flips: int = 4, seed: int = 0) -> dict[str, str]:
    """Write the corpus into ``folder``; returns ``{file name: kind}``."""
    from videodiff.io import write_video

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kinds: dict[str, str] = {}
    rgb, gray = _frames(), _frames(seed=1)[..., :1]

    def put(name: str, data: bytes, kind: str) -> None:
        (folder / name).write_bytes(data)
        kinds[name] = kind

    write_video(folder / "valid.mp4", rgb, fps=8)
    write_video(folder / "valid.gif", rgb, fps=8)
    write_video(folder / "valid_gray.gif", gray, fps=8)  # another pixel format (pal8 gray)
    _write_avi(folder / "valid.avi", rgb)
    for n in ("valid.mp4", "valid.gif", "valid_gray.gif", "valid.avi"):
        kinds[n] = "valid"
    valid = {n: (folder / n).read_bytes() for n in ("valid.mp4", "valid.gif", "valid.avi")}
    for name, data in valid.items():
        stem, ext = name.split(".")
        for frac in (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
            put(f"trunc{int(frac * 100):02d}_{stem}.{ext}", data[: int(len(data) * frac)], "truncated")
        put(f"zero.{ext}", b"", "zero-byte")
        put(f"random.{ext}", random.Random(seed).randbytes(4096), "random bytes")
    put("gif_as.mp4", valid["valid.gif"], "wrong magic")
    put("mp4_as.gif", valid["valid.mp4"], "wrong magic")
    put("avi_as.gif", valid["valid.avi"], "wrong magic")
    put("text.mkv", b"not a video, just text\n" * 10, "wrong magic")
    put("png_as.mp4", b"\x89PNG\r\n\x1a\n" + bytes(100), "wrong magic")
    # Absurd dimensions in the header: a GIF's logical screen and image descriptor are 16-bit fields.
    gif = valid["valid.gif"]
    huge = bytearray(gif)
    struct.pack_into("<HH", huge, 6, 65535, 65535)
    put("screen_65535.gif", bytes(huge), "absurd dimensions")
    i = gif.find(b"\x2c")  # the first image descriptor: left, top, width, height
    if i > 0:
        desc = bytearray(gif)
        struct.pack_into("<HH", desc, i + 5, 65535, 65535)
        put("frame_65535.gif", bytes(desc), "absurd dimensions")
    one = bytearray(gif)
    struct.pack_into("<HH", one, 6, 1, 1)
    put("screen_1x1.gif", bytes(one), "absurd dimensions")
    # mp4: the track header's width/height (16.16 fixed point) and the avc1 sample entry's 16-bit width/height
    mp4 = valid["valid.mp4"]
    put("tkhd_huge.mp4", _patch(_patch(mp4, b"tkhd", 4 + 76, ">I", 65535 << 16), b"tkhd", 4 + 80, ">I",
                                65535 << 16), "absurd dimensions")
    put("avc1_huge.mp4", _patch(_patch(mp4, b"avc1", 4 + 24, ">H", 65535), b"avc1", 4 + 26, ">H", 65535),
        "absurd dimensions")
    # Absurd declared frame counts: 10^6 frames in the AVI main header and stream header, in the mp4 stts
    avi = valid["valid.avi"]
    put("avih_1e6.avi", _patch(_patch(avi, b"avih", 8 + 16, "<I", 10**6), b"strh", 8 + 32, "<I", 10**6),
        "absurd frame count")
    put("avi_huge.avi", _patch(_patch(avi, b"avih", 8 + 32, "<I", 100000), b"avih", 8 + 36, "<I", 100000),
        "absurd dimensions")
    put("stts_1e6.mp4", _patch(mp4, b"stts", 12, ">I", 10**6), "absurd frame count")
    put("stsz_1e6.mp4", _patch(mp4, b"stsz", 12, ">I", 10**6), "absurd frame count")
    # Damaged header fields found by the byte-flip campaign (each was a traceback before the reader checked it): an
    # mp4 whose edts box size is wrong (the stream's codec becomes unknown: no codec context), a GIF frame whose left
    # offset puts it outside the canvas (frames of different sizes).
    b = bytearray(mp4)
    i = b.find(b"edts")
    if i >= 4:
        b[i - 1] = 92
        put("edts_size.mp4", bytes(b), "damaged header")
    b = bytearray(gif)
    i = b.rfind(b"!\xf9\x04")  # the last frame's graphic control extension; its image descriptor follows it
    if i > 0 and b[i + 8:i + 9] == b",":
        struct.pack_into("<H", b, i + 9, 134)
        put("frame_offset.gif", bytes(b), "damaged header")
    # Random byte flips of the valid files (same length)
    rng = random.Random(seed)
    for name, data in valid.items():
        stem, ext = name.split(".")
        for k in range(flips):
            b = bytearray(data)
            for _ in range(rng.randint(1, 24)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            put(f"flip{k:03d}_{stem}.{ext}", bytes(b), "byte flips")
    return kinds


_CHILD = r"""
import json, resource, signal, sys, traceback
from pathlib import Path
from videodiff.io import VideoReadError, MAX_FRAME_PIXELS, read_video, video_info

class Hang(Exception):
    pass

def alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, alarm)
out = {}
for name in sys.argv[2:]:
    p = Path(sys.argv[1]) / name
    signal.alarm(__TIMEOUT__)
    try:
        try:
            video_info(p)
            v = read_video(p, max_frames=64)
            assert v.dtype.name == "uint8" and v.ndim == 4 and v.shape[-1] == 3 and len(v) >= 1, v.shape
            assert v.shape[1] * v.shape[2] <= MAX_FRAME_PIXELS, v.shape
            out[name] = ["ok", f"{tuple(v.shape)}"]
        except VideoReadError as e:
            out[name] = ["refused", " ".join(str(e).split())]
    except Hang:
        out[name] = ["hang", ""]
    except BaseException as e:
        out[name] = ["traceback", f"{type(e).__name__}: {e}"[:300]]
    finally:
        signal.alarm(0)
# VmHWM, the peak RSS of this process's own memory: ru_maxrss would also count the parent's at fork (Linux keeps it
# across exec), which under pytest is the whole test process
hwm = [l for l in open("/proc/self/status").read().splitlines() if l.startswith("VmHWM:")]
out["__peak_rss_mb__"] = (int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
print("RESULT " + json.dumps(out))
"""


def probe(folder: str | Path, names: list[str], timeout_s: int = PROBE_TIMEOUT_S) -> tuple[dict, float]:
    """Read each file in a child process (SIGALRM per file): ``({name: [outcome, detail]}, peak RSS in MB)``.
    A child that dies (a crash in a decoder) is reported as ``RuntimeError``."""
    code = _CHILD.replace("__TIMEOUT__", str(int(timeout_s)))
    res = subprocess.run([sys.executable, "-c", code, str(folder), *names], capture_output=True, text=True,
                         timeout=timeout_s * len(names) + 120, env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
    if res.returncode != 0 or line is None:
        raise RuntimeError(f"the probe process died (exit {res.returncode}): {res.stderr[-2000:]}")
    out = json.loads(line[7:])
    return out, out.pop("__peak_rss_mb__")


if __name__ == "__main__":  # the campaign of BENCHMARKS.md
    import argparse
    import tempfile
    import time
    from collections import Counter

    ap = argparse.ArgumentParser()
    ap.add_argument("--flips", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        kinds = make_corpus(d, flips=a.flips, seed=a.seed)
        t0 = time.perf_counter()
        out, rss = probe(d, sorted(kinds))
        by = Counter((kinds[n], o[0]) for n, o in out.items())
        print(json.dumps({"files": len(out), "outcomes": dict(Counter(o[0] for o in out.values())),
                          "by_kind": {f"{k} / {o}": c for (k, o), c in sorted(by.items())},
                          "peak_rss_mb": round(rss), "wall_s": round(time.perf_counter() - t0, 1),
                          "tracebacks": {n: o[1] for n, o in out.items() if o[0] in ("traceback", "hang")}},
                         indent=1))
