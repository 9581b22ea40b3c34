"""pynq_cv's logger: silent unless the application configures logging or sets PYNQ_CV_LOG.

``logging.getLogger("pynq_cv")`` logs one DEBUG line per routing decision (shape, path,
reason) and INFO lines for the backend chosen, faults and recoveries. ``PYNQ_CV_LOG=debug``
or ``=info`` attaches a stderr handler at that level (for a script you do not edit).

Per-frame lines must cost nothing while DEBUG is off, so the engines do not ask logging on
every frame: they cache the answer (``Resizer.watching``) and are told when it may change.
logging clears each logger's level cache whenever any level changes (``setLevel``,
``logging.disable``, ``dictConfig``); our logger's cache is a dict that reports its clearing.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable

LOG_ENV = "PYNQ_CV_LOG"

logger = logging.getLogger("pynq_cv")
logger.addHandler(logging.NullHandler())  # a library stays quiet unless configured

_listeners: list[Callable[[], None]] = []


def debug_on() -> bool:
    return logger.isEnabledFor(logging.DEBUG)


class _LevelCache(dict):  # type: ignore[type-arg]
    """logging's level cache of our logger, which logging clears on every level change."""

    def clear(self) -> None:
        super().clear()
        for callback in tuple(_listeners):
            try:  # runs under logging's lock: nothing may escape into setLevel()
                callback()
            except Exception:  # noqa: BLE001,S110 -- engines re-read levels when made
                pass


def on_level_change(callback: Callable[[], None]) -> bool:
    """Call ``callback`` after every change of logging levels. False if this Python's
    logging offers no way to notice: then levels are read when an engine is made."""
    _listeners.append(callback)
    return isinstance(getattr(logger, "_cache", None), _LevelCache)


if isinstance(getattr(logger, "_cache", None), dict):
    logger._cache = _LevelCache(logger._cache)

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def configure_from_env() -> None:
    """Honour ``PYNQ_CV_LOG`` once: a stderr handler at the level it names."""
    name = os.environ.get(LOG_ENV, "").strip().lower()
    level = _LEVELS.get(name)
    if level is None:
        if name:
            warnings.warn(f"{LOG_ENV}={name!r} is not one of {', '.join(_LEVELS)}; ignored",
                          RuntimeWarning, stacklevel=2)
        return
    if any(getattr(h, "_pynq_cv_env", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
    handler._pynq_cv_env = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


configure_from_env()
