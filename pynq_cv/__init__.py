"""pynq_cv: ``cv2.resize`` on the PYNQ PL resizer, exactly cv2 everywhere else.

    import cv2, pynq_cv
    pynq_cv.patch()                       # cv2.resize now dispatches
    small = cv2.resize(frame, (960, 540))  # eligible frames -> PL, the rest -> cv2
    pynq_cv.stats()                       # where frames ran, and why

The PL path runs on a real board through ``pynq`` when one is found, else on the bundled
board emulator; ``PYNQ_CV_BACKEND=board|emulator|cpu`` or ``use_backend()`` choose.
``with pynq_cv.emulate(): ...`` runs pynq's own code (``pynq.Overlay`` and all) on it.
"""

from __future__ import annotations

from typing import Any

from .breaker import CircuitBreaker
from .dispatch import (
    Resizer,
    close_default,
    default_resizer,
    resize,
    use_backend,
)
from .driver import Deadlines
from .emulate import emulate
from .errors import BackendUnavailable, FallbackError, PLFault, PynqCvError, SettingError
from .patching import is_patched, patch, patched, unpatch
from .pipeline import PendingFrame
from .pool import PoolClosed, PoolExhausted

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "CircuitBreaker",
    "Deadlines",
    "FallbackError",
    "PLFault",
    "PendingFrame",
    "PoolClosed",
    "PoolExhausted",
    "PynqCvError",
    "Resizer",
    "SettingError",
    "close",
    "default_resizer",
    "emulate",
    "info",
    "is_patched",
    "patch",
    "patched",
    "reset_stats",
    "resize",
    "stats",
    "unpatch",
    "use_backend",
]


def stats() -> dict[str, Any]:
    """Counters of the shared engine: frames on "pl" and "cpu", fallback reasons, bytes, time."""
    return default_resizer().stats.snapshot()


def reset_stats() -> None:
    default_resizer().stats.reset()


def info() -> dict[str, Any]:
    """Backend in use and why, overlay, envelope, pool (opens the backend if needed)."""
    return default_resizer().info()


def close() -> None:
    """Free the shared engine's buffers; the next eligible frame opens it again."""
    close_default()
