"""The ``PYNQ_CV_*`` environment switches, read and validated one way.

A switch with a value pynq_cv does not know raises ``SettingError`` in one line naming the
variable, its value, the values it takes and the nearest one ("did you mean"): a typo such
as ``PYNQ_CV_STRICT=ture`` must not silently leave strict mode off in a CI that relies on it.
An unset or empty variable means the default. A ``PYNQ_CV_*`` name pynq_cv does not read
(``PYNQ_CV_STICT=1``) gets one WARNING through the ``pynq_cv`` logger when an engine is made,
with the nearest name: not an error, since another version of pynq_cv may read it.

``PYNQ_CV_LOG`` is applied when pynq_cv is imported, where an exception would be a
traceback out of ``import``; a bad value is kept and raised when the first engine is made
(``patch()``, ``Resizer()``), with every other switch's error.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Sequence

from .errors import SettingError

ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")

NAMES = ("PYNQ_CV_BACKEND", "PYNQ_CV_BITSTREAM", "PYNQ_CV_BOARD", "PYNQ_CV_CALIBRATION",
         "PYNQ_CV_COMPARE", "PYNQ_CV_FPS", "PYNQ_CV_LOCK_DIR", "PYNQ_CV_LOG",
         "PYNQ_CV_POLICY", "PYNQ_CV_REPROGRAM", "PYNQ_CV_STRICT")
"""Every switch pynq_cv reads (tests/test_settings.py checks the list against the code)."""
SUITE_NAMES = ("PYNQ_CV_FORKS", "PYNQ_CV_HYPOTHESIS_EXAMPLES", "PYNQ_CV_REQUIRE_PYNQ",
               "PYNQ_CV_SOAK_SECONDS")
"""The test suite's and CI's own switches: not pynq_cv's, but no typo either."""

_deferred: list[SettingError] = []  # import-time errors, raised when an engine is made


def _refuse(name: str, value: str, accepted: Sequence[str]) -> SettingError:
    near = difflib.get_close_matches(value, accepted, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    return SettingError(
        f"{name}={value!r} is not a value pynq_cv knows; accepted: {', '.join(accepted)}{hint}"
    )


def env_choice(name: str, accepted: Sequence[str], default: str) -> str:
    """The lower-cased value of ``name`` if it is one of ``accepted``; ``default`` if unset."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in accepted:
        raise _refuse(name, value, accepted)
    return value


def env_flag(name: str) -> bool:
    """An on/off switch: 1, true, yes, on mean on; 0, false, no, off (or unset) mean off."""
    check_deferred()
    return env_choice(name, ON + OFF, "0") in ON


def defer(error: SettingError) -> None:
    """Keep an import-time error for the first engine (once)."""
    if not any(str(e) == str(error) for e in _deferred):
        _deferred.append(error)


def check_deferred() -> None:
    """Raise the first import-time switch error, if any (the value is still wrong)."""
    if _deferred:
        raise _deferred[0]


# unknown names already warned about -> the call that warned (setdefault is atomic, so two
# threads opening engines warn once, with no lock a fork could leave held)
_named: dict[str, object] = {}


def check_names() -> None:
    """One WARNING per unknown ``PYNQ_CV_*`` variable in the environment, naming the nearest."""
    known = NAMES + SUITE_NAMES
    for name in list(os.environ):
        if not name.startswith("PYNQ_CV_") or name in known:
            continue
        mine = object()
        if _named.setdefault(name, mine) is not mine:
            continue
        near = difflib.get_close_matches(name, NAMES, n=1)
        hint = f"did you mean {near[0]}? " if near else ""
        logging.getLogger("pynq_cv").warning(
            "pynq_cv: %s is set but is not a pynq_cv setting (%spynq_cv reads %s)",
            name, hint, ", ".join(NAMES))
