"""OpenCV's native log, silenced around the command line's and the examples' own I/O.

OpenCV prints its own lines (``[ WARN:0@0.01] global cap_v4l.cpp ...``) to stderr when a
capture or writer cannot open, even though Python gets the answer (``isOpened()`` is False)
and says it in one line. A user who set ``OPENCV_LOG_LEVEL`` or ``OPENCV_VIDEOIO_DEBUG`` asked
for those lines, so they are left alone then.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cv2

_lock = threading.Lock()
_depth = 0
_restore: Any = None


def user_wants_opencv_log() -> bool:
    return bool(os.environ.get("OPENCV_LOG_LEVEL") or os.environ.get("OPENCV_VIDEOIO_DEBUG"))


def _silence() -> Any:
    """Silence OpenCV now; return how to undo it."""
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    if api is not None:
        level = api.getLogLevel()
        api.setLogLevel(api.LOG_LEVEL_SILENT)
        return lambda: api.setLogLevel(level)
    # OpenCV before 4.6 has no Python handle on its log level: its native lines go to
    # file descriptor 2, so that is pointed at /dev/null for the duration.
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        return lambda: None
    os.dup2(devnull, 2)
    os.close(devnull)

    def undo() -> None:
        os.dup2(saved, 2)
        os.close(saved)

    return undo


@contextmanager
def opencv_quiet() -> Iterator[None]:
    """Inside: OpenCV logs nothing. Nested and threaded uses share one silence and restore."""
    global _depth, _restore
    if user_wants_opencv_log():
        yield
        return
    with _lock:
        if _depth == 0:
            _restore = _silence()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()
                _restore = None
