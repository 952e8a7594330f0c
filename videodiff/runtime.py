"""Process-wide settings that make CPU runs faster; the CLI applies them, library users may call them.

glibc's ``malloc`` serves blocks above a *dynamic* threshold with ``mmap`` and returns freed heap tops to the
system above ``M_TRIM_THRESHOLD``. A denoising step allocates and frees activations of a few MB each, so with the
defaults every step maps, faults in and unmaps fresh pages: sampling the shipped model on one thread spent 9 s of
system time beside 20 s of user time (`BENCHMARKS.md`, "malloc settings"). :func:`tune_malloc` keeps blocks below
32 MB on the heap and the freed memory in the process (as ``MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=... MALLOC_TOP_PAD_=...`` would, but from inside the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_applied: bool | None = None


def tune_malloc(*, mmap_threshold: int = 32 << 20, trim_threshold: int = (1 << 31) - 1,
                top_pad: int = 1 << 30) -> bool:
    """Set glibc's ``mallopt`` thresholds (Linux only); returns whether they were applied. Skipped, returning
    False, on other platforms or C libraries and when ``VIDEODIFF_MALLOC_TUNING=0`` is set. Idempotent."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("VIDEODIFF_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, mmap_threshold), (_M_TRIM_THRESHOLD, trim_threshold), (_M_TOP_PAD, top_pad)))
    _applied = ok
    return ok
