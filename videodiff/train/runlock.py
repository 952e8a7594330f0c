"""One writer per run directory: ``RUN/writer.lock``, held for as long as a process writes into the run.

Every command that writes checkpoints into a run directory (``videodiff train``, and fine-tuning through
``train.init_from``; a future ``distill`` takes the same :func:`run_lock`) holds the lock, so that a re-submitted
cluster job, or a second terminal, pointed at a run that is still training refuses in one line instead of
interleaving checkpoints and metrics with it.

The lock is two things at once:

- a kernel lock (``flock``) on the file, held on an open descriptor: the kernel drops it when the process dies
  (also by ``kill -9``), so a crashed run never blocks the next one on the same host;
- the holder's pid, hostname, command and start time written in the file, for the message, and for hosts where the
  kernel lock cannot be trusted: on a file system without ``flock`` the pid is checked for liveness, and a lock
  written on *another* host cannot be checked from here, so it refuses and names the file to delete once that job is
  known to be gone.

A lock file whose holder is gone (pid no longer running on this host) is stale: it is taken over with a note.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the pid check alone
    fcntl = None

__all__ = ["LOCK_NAME", "RunLockedError", "RunLock", "run_lock", "read_lock"]

LOCK_NAME = "writer.lock"


class RunLockedError(OSError):
    """Another live process holds the run directory's lock; the message names it and the lock file (an OSError, as
    for a busy resource: the CLI prints it as its one-line error)."""


def _alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_lock(path: str | Path) -> dict:
    """The holder recorded in a lock file (``{}`` if it is empty or unreadable)."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict) -> str:
    since = info.get("started")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    return f"{info.get('command', 'videodiff')} (pid {info.get('pid', '?')} on host {info.get('host', '?')}{when})"


class RunLock:
    """The held lock of one run directory; :meth:`release` (or leaving :func:`run_lock`) gives it back."""

    def __init__(self, run_dir: str | Path, command: str = "train", *, note=None):
        self.path = Path(run_dir) / LOCK_NAME
        self.command = command
        self.fd: int | None = None
        self.took_over: dict | None = None  # the stale holder replaced, if any
        self._acquire(note)

    def _acquire(self, note) -> None:
        host, pid = socket.gethostname(), os.getpid()
        for _ in range(20):  # retried only when the file is replaced under us by a holder that just released it
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                kernel = self._flock(fd)
                if kernel is False:
                    raise RunLockedError(self._busy(read_lock(self.path)))
                try:  # the file we locked must still be the one at the path (a releasing holder unlinks it)
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                info = read_lock(self.path)
                if info and info.get("pid") != pid:
                    other_host = info.get("host") not in (None, host)
                    if other_host:  # its liveness cannot be checked from here
                        raise RunLockedError(self._busy(info, remote=True))
                    if kernel is None and _alive(int(info.get("pid", 0))):  # no kernel lock here: the pid decides
                        raise RunLockedError(self._busy(info))
                    self.took_over = info
                    if note is not None:
                        note(f"note: {self.path}: the previous writer {_describe(info)} is no longer running; "
                             f"taking over its stale lock")
                record = {"pid": pid, "host": host, "command": self.command, "started": time.time()}
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
                os.fsync(fd)
                self.fd = fd
                return
            except BaseException:
                if self.fd != fd:
                    os.close(fd)
                raise
        raise RunLockedError(f"{self.path}: could not take the run's lock (it keeps being replaced)")

    @staticmethod
    def _flock(fd: int) -> bool | None:
        """True: the kernel lock is ours; False: another process holds it; None: no kernel locks here."""
        if fcntl is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return None
            raise

    def _busy(self, info: dict, remote: bool = False) -> str:
        run = self.path.parent
        if remote:
            return (f"run directory {run} is locked by {_describe(info)}, whose liveness cannot be checked from "
                    f"this host; if that job is no longer running, delete {self.path} and rerun")
        return (f"run directory {run} is in use by {_describe(info)}; wait for it to finish or stop it, or use "
                f"another --out (lock file {self.path})")

    def release(self) -> None:
        """Remove the lock file (while still holding the kernel lock) and close it; idempotent."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        finally:
            os.close(fd)


@contextlib.contextmanager
def run_lock(run_dir: str | Path, command: str = "train", *, note=None):
    """Hold ``RUN/writer.lock`` for the ``with`` block; raises :class:`RunLockedError` (one line) if another live
    process holds it. ``note(line)`` reports the takeover of a stale lock."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    lock = RunLock(run_dir, command, note=note)
    try:
        yield lock
    finally:
        lock.release()
