"""The shared default engine (what ``pynq_cv.resize`` and the patched ``cv2.resize`` use)
and the module-level functions on it: ``default_resizer``, ``use_backend``, ``resize``,
``close_default``.

The engine itself is ``resizer.Resizer`` (its life and public face) walking frames through
``frame.py`` (the frame's steps on the PL); pipelining is ``pipeline.py``. The names other
code has always imported from here stay importable here (``Resizer``, ``Job``,
``CV2_RESIZE``, ``rewatch_all``).
"""

from __future__ import annotations

import inspect
from typing import Any

import cv2
import numpy as np

from .cv2compat import CV2_RESIZE
from .forklocks import module_lock
from .frame import Job
from .resizer import FALLBACKS, Engine, Resizer, rewatch_all
from .telemetry import FOLD_AT

__all__ = [
    "CV2_RESIZE", "FALLBACKS", "Engine", "Job", "Resizer", "close_default", "default_resizer",
    "resize", "rewatch_all", "use_backend",
]

# cv2.resize's keywords a call may give after ``n`` positional arguments (n >= 2): such a
# call binds to ``Resizer.resize`` as it is, with no helper in between
_KEYWORDS_AFTER = {
    n: frozenset(("dst", "fx", "fy", "interpolation")[n - 2:]) for n in range(2, 6)
}
_NO_KEYWORDS: frozenset[str] = frozenset()
_NO_KWARGS: dict[str, Any] = {}  # never written
_NDARRAY = np.ndarray
_INTER_LINEAR = cv2.INTER_LINEAR


# -- the process-wide default engine (what pynq_cv.resize and the patched cv2.resize use) ----

_default: Resizer | None = None
_default_lock = module_lock(__name__, "_default_lock")


def peek_default() -> Resizer | None:
    """The shared ``Resizer`` if one was made, without making one (the profile reads it)."""
    return _default


def default_resizer() -> Resizer:
    """The shared ``Resizer``, created (not opened) on first use."""
    global _default
    if _default is None:
        # built outside the lock: a Resizer reads settings and entry points, and a third
        # party's code there may ask for the shared engine (a discarded one never opened)
        made = Resizer()
        with _default_lock:
            if _default is None:
                _default = made
    return _default


def use_backend(backend: str | None = None, **options: Any) -> Resizer:
    """Replace the shared engine with one on ``backend`` ("board", "emulator", "cpu", or an
    entry-point name; None: ``PYNQ_CV_BACKEND`` or auto). The old one is closed."""
    global _default
    new = Resizer(backend, **options)  # outside the lock (see default_resizer)
    with _default_lock:
        old, _default = _default, new
    if old is not None:
        old.close()
    return new


def _cv2_parameters(
    src: Any, dsize: Any, dst: Any = None, fx: Any = 0, fy: Any = 0,
    interpolation: Any = cv2.INTER_LINEAR,
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """cv2.resize's parameters, positional or keyword, in order."""
    return src, dsize, dst, fx, fy, interpolation


def resize(*args: Any, **kwargs: Any) -> np.ndarray:
    """``cv2.resize(src, dsize, dst=None, fx=0, fy=0, interpolation=INTER_LINEAR)``, with
    eligible frames on the PL resizer (see ``Resizer.resize``).

    Takes exactly cv2's arguments; a call cv2 could not parse (missing, extra or unknown
    arguments) goes to cv2 as it is, so the caller gets cv2's own error.
    """
    resizer = _default or default_resizer()
    n = len(args)
    if kwargs:
        if n == 2 and len(kwargs) == 1 and "interpolation" in kwargs:  # the common idiom
            args, n, kwargs = (*args, None, 0, 0, kwargs["interpolation"]), 6, _NO_KWARGS
        elif kwargs.keys() <= _KEYWORDS_AFTER.get(n, _NO_KEYWORDS):
            return resizer.resize(*args, **kwargs)
    if not kwargs and 2 <= n <= 6:
        if resizer.watching is not None:
            return resizer.resize(*args)
        # The hottest path there is (the patched cv2.resize): ``Resizer.resize``'s first
        # checks, in its order, inlined -- a frame the PL never takes goes to cv2 from
        # here, with the caller's own arguments (the keyword idiom: positionally, with
        # cv2's own defaults), counting the same reasons (tests/test_plain_path.py).
        reason = resizer.off_reason
        if reason is None:
            src = args[0]
            engine = resizer.engine
            if engine is None or src.__class__ is not _NDARRAY or (n > 2 and args[2] is not None):
                return resizer.resize(*args)
            if src.ndim != 3:
                reason = "channels"
            else:
                interpolation = args[5] if n == 6 else _INTER_LINEAR
                if interpolation.__class__ is not int:
                    return resizer.resize(*args)  # np.int32(1), an IntEnum: the full check
                if interpolation not in engine.interpolations:
                    reason = "interpolation"
                elif src.shape[2] != engine.channels:
                    reason = "channels"
                elif src.dtype is not engine.dtype and src.dtype != engine.dtype:
                    reason = "dtype"
                else:
                    return resizer.resize(*args)
        events = resizer.cpu_events
        events.append(reason)  # atomic; Stats folds these into its counters
        if len(events) > FOLD_AT:
            resizer.stats.fold()
        return CV2_RESIZE(*args)
    try:
        params = _cv2_parameters(*args, **kwargs)
    except TypeError:  # counted, then cv2 raises its own error for the caller
        resizer.stats.count_cpu("arguments_rejected")
        return CV2_RESIZE(*args, **kwargs)
    return resizer.resize(*params)


# help() and inspect show cv2's parameters; the result is the resized frame, not the helper's tuple
resize.__signature__ = inspect.signature(_cv2_parameters).replace(  # type: ignore[attr-defined]
    return_annotation="np.ndarray"
)


def close_default() -> None:
    """Free the shared engine's buffers and board; the next eligible frame reopens it."""
    global _default
    old = _default
    if old is None:
        return
    try:  # outside the lock (see default_resizer); the old engine is closed whatever happens
        new: Resizer | None = Resizer(
            old.requested, budget_bytes=old.budget_bytes, deadlines=old.deadlines,
            breaker=old.breaker, stats=old.stats, policy=old.policy,
            calibration=old.calibration, planning=old.planning, fallback=old.fallback,
            strict=old.strict, compare=old.compare, fps=old.fps, **old.backend_options,
        )
    except BaseException:
        new = None  # e.g. a setting that became invalid: the next frame makes a fresh one
        raise
    finally:
        with _default_lock:
            if _default is old:
                _default = new
        old.breaker.reset()  # a fresh engine deserves a fresh chance
        old.close()
