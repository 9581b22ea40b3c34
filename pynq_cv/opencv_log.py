"""OpenCV's native log, silenced around the command line's and the examples' own I/O.

OpenCV prints its own lines (``[ WARN:0@0.01] global cap_v4l.cpp ...``) to stderr when a
capture or writer cannot open, even though Python gets the answer (``isOpened()`` is False)
and says it in one line. Only short calls go inside: stderr itself is muted meanwhile. A user
who set ``OPENCV_LOG_LEVEL`` or ``OPENCV_VIDEOIO_DEBUG`` asked for those lines, so they are
left alone then.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cv2

from .forklocks import module_lock

_lock = module_lock(__name__, "_lock")  # renewed in a forked child
_depth = 0
_restore: Any = None


def user_wants_opencv_log() -> bool:
    return bool(os.environ.get("OPENCV_LOG_LEVEL") or os.environ.get("OPENCV_VIDEOIO_DEBUG"))


def _silence() -> Any:
    """Silence OpenCV now; return how to undo it."""
    undo = []
    api = getattr(getattr(cv2, "utils", None), "logging", None)  # OpenCV 4.6+
    if api is not None:
        level = api.getLogLevel()
        api.setLogLevel(api.LOG_LEVEL_SILENT)
        undo.append(lambda: api.setLogLevel(level))
    # Some lines bypass the log level (FFmpeg's "tag ... is not supported", and every line of
    # OpenCV before 4.6): they go to file descriptor 2, pointed at /dev/null meanwhile.
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        pass
    else:
        os.dup2(devnull, 2)
        os.close(devnull)

        def restore_fd() -> None:
            os.dup2(saved, 2)
            os.close(saved)

        undo.append(restore_fd)

    def undo_all() -> None:
        for step in reversed(undo):
            step()

    return undo_all


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
