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
from collections.abc import Callable

from . import settings
from .errors import SettingError

LOG_ENV = "PYNQ_CV_LOG"

logger = logging.getLogger("pynq_cv")
# No NullHandler: records reach the application's handlers, else logging's last-resort
# handler, which prints WARNING and above on stderr -- the emulator's one-line notice.
# INFO and DEBUG stay silent unless the application or PYNQ_CV_LOG asks for them.

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


class _Formatter(logging.Formatter):
    """``pynq_cv LEVEL: message``, without a second ``pynq_cv:`` the message may carry
    (warnings share their text with ``warnings.warn``, where it names the library)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        doubled = f"{record.name} {record.levelname}: pynq_cv: "
        if text.startswith(doubled):
            text = f"{record.name} {record.levelname}: " + text[len(doubled):]
        return text


def configure_from_env() -> None:
    """Honour ``PYNQ_CV_LOG`` once: a stderr handler at the level it names. A bad value
    is kept for the first engine to raise (see ``settings``)."""
    try:
        name = settings.env_choice(LOG_ENV, tuple(_LEVELS), "")
    except SettingError as exc:
        settings.defer(exc)
        return
    level = _LEVELS.get(name)
    if level is None:
        return
    if any(getattr(h, "_pynq_cv_env", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(name)s %(levelname)s: %(message)s"))
    handler._pynq_cv_env = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


configure_from_env()
