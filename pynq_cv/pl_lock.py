"""One process per PL: an advisory inter-process lock on a board's programmable logic.

Two processes driving one DMA and one resizer interleave their register writes (pynq's
drivers hold no locks). Opening a board therefore takes an exclusive ``fcntl.flock`` on a
file named after the PL. The kernel drops the lock with the process's last descriptor of
that file, so a holder that exits, crashes or is SIGKILLed frees the PL by construction;
no stale lock is ever cleaned up by guesswork. The holder writes its pid into the file so
that the process refused can say who has the PL.

The files live in ``PYNQ_CV_LOCK_DIR`` if set, else ``/tmp/pynq_cv-<uid>`` -- not
``$XDG_RUNTIME_DIR``, which differs between a board's Jupyter service and a ``sudo -E``
shell of the same user and would let both take "the" lock.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from pathlib import Path

from .errors import BackendUnavailable

LOCK_DIR_ENV = "PYNQ_CV_LOCK_DIR"
POLL_SECONDS = 0.02  # how often a bounded wait retries

try:
    import fcntl
except ImportError:  # not POSIX: no inter-process lock (pynq runs on Linux only)
    fcntl = None  # type: ignore[assignment]


class PLInUse(BackendUnavailable):
    """Another process holds the PL; ``holder`` is its pid (None if it could not be read)."""

    def __init__(self, message: str, holder: int | None) -> None:
        super().__init__(message, reason="pl_in_use", details={"pl_holder": holder})
        self.holder = holder


def lock_dir() -> Path:
    """Where the lock files live: ``PYNQ_CV_LOCK_DIR``, else a directory private to this
    user in /tmp (refused if someone else made it: it could not be trusted)."""
    env = os.environ.get(LOCK_DIR_ENV)
    if env:
        path = Path(env)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    path = Path("/tmp") / f"pynq_cv-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise BackendUnavailable(f"lock directory {path} is not a directory owned by this user")
    return path


def lock_path(key: str) -> Path:
    """The lock file of PL ``key`` (any characters; made safe for a file name)."""
    return lock_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".lock")


def holder_of(path: Path) -> int | None:
    """The pid written in a lock file by its holder, or None."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class PLLock:
    """An exclusive lock on one PL, held from ``acquire`` until ``release`` (or exit)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.path = lock_path(key) if fcntl is not None else None
        self._fd: int | None = None
        self._pid = 0  # the process that took it: a forked child's copy is not a hold

    @property
    def held(self) -> bool:
        return self._fd is not None and self._pid == os.getpid()

    def acquire(self, wait: float = 0.0) -> PLLock:
        """Take the lock, waiting at most ``wait`` seconds; raises ``PLInUse`` if held."""
        wait = float(wait)
        if not wait >= 0.0 or wait == float("inf"):
            raise ValueError(f"wait_for_pl must be a finite number of seconds >= 0, not {wait}")
        if self.held or fcntl is None or self.path is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                        raise
                left = deadline - time.monotonic()
                if left <= 0:
                    holder = holder_of(self.path)
                    who = f"process {holder}" if holder else "another process"
                    waited = f" (waited {wait:g} s)" if wait else ""
                    raise PLInUse(
                        f"the PL ({self.key}) is in use by {who}{waited}; lock {self.path}",
                        holder,
                    )
                time.sleep(min(POLL_SECONDS, left))
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._pid = fd, os.getpid()
        return self

    def release(self) -> None:
        """Let go of the PL (idempotent). The file stays: unlinking it would race."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                if self._pid == os.getpid():  # a forked child leaves the holder's pid alone
                    os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing the last descriptor drops the flock

    def __repr__(self) -> str:
        return f"PLLock({self.key!r}, {'held' if self.held else 'free'})"
