"""Drop-in: make ``cv2.resize`` itself dispatch, so existing loops speed up without edits.

``patch()`` swaps ``cv2.resize`` for a function with cv2's signature that calls
``pynq_cv.resize``; ``unpatch()`` puts back the exact original object. Both are idempotent
and thread-safe; ``patched()`` is the scoped form and restores only what it changed.
``patch_with(wrapper)`` installs a wrapper of ``pynq_cv.resize`` instead (the per-call-site
profile of ``pynq-cv run --profile``); the plain patch never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cv2

from .dispatch import default_resizer
from .dispatch import resize as _dispatching_resize  # patching builds on dispatch, one way
from .forklocks import module_lock

_lock = module_lock(__name__, "_lock")
_original: Any = None
_wrapper: Any = None  # what patch_with() installed, if anything


def _ours(fn: Any) -> bool:
    return fn is _dispatching_resize or (_wrapper is not None and fn is _wrapper)


def is_patched() -> bool:
    return _ours(cv2.resize)


def patch() -> None:
    """Route ``cv2.resize`` through pynq_cv (no-op if already patched).

    Raises ``BackendUnavailable`` now if ``PYNQ_CV_BACKEND`` names no known backend."""
    global _original
    default_resizer()  # made (not opened) here, so a bad backend name fails at this line
    with _lock:
        if not _ours(cv2.resize):
            _original = cv2.resize
            cv2.resize = _dispatching_resize


def patch_with(wrapper: Callable[..., Any]) -> None:
    """Route ``cv2.resize`` through ``wrapper``, a function that calls ``pynq_cv.resize``
    (replacing a plain patch); ``unpatch()`` restores the original as usual."""
    global _original, _wrapper
    with _lock:
        if not _ours(cv2.resize):
            _original = cv2.resize
        _wrapper = cv2.resize = wrapper


def unpatch() -> None:
    """Restore the exact original ``cv2.resize`` (no-op if not patched)."""
    global _original, _wrapper
    with _lock:
        if _ours(cv2.resize) and _original is not None:
            cv2.resize = _original
            _original = None
            _wrapper = None


@contextmanager
def patched() -> Iterator[None]:
    """``with pynq_cv.patched(): ...`` -- patched inside, as before outside."""
    with _lock:
        was = _ours(cv2.resize)
    patch()
    try:
        yield
    finally:
        if not was:
            unpatch()
