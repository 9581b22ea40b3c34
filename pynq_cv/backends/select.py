"""Which bottom layer runs the PL path, and why.

Order: an explicit name (API call) > ``PYNQ_CV_BACKEND`` > auto. Auto means the real board
when ``pynq`` imports and a resizer overlay is found on it, else the emulator. ``cpu`` means
no PL at all (every frame goes to ``cv2.resize``). Backends are entry points in the
``pynq_cv.backends`` group (name -> factory returning a board), so a package can add one.
"""

from __future__ import annotations

import os
import warnings
from importlib import metadata
from typing import Any

from ..errors import BackendUnavailable

BACKENDS_GROUP = "pynq_cv.backends"
ENV_VAR = "PYNQ_CV_BACKEND"
CPU = "cpu"
AUTO = "auto"


def _builtin_factories() -> dict[str, Any]:
    def board(**options: Any) -> Any:
        from .board import open_shared

        return open_shared(**options)

    def emulator(**options: Any) -> Any:
        from .emulator import EmulatedBoard

        return EmulatedBoard(**options)

    return {"board": board, "emulator": emulator}


def available_backends() -> dict[str, Any]:
    """Backend name -> factory: the built-in ones, then any from entry points."""
    found = _builtin_factories()
    for ep in metadata.entry_points(group=BACKENDS_GROUP):
        if ep.name not in found:
            found[ep.name] = _lazy(ep)
    return found


def _lazy(ep: metadata.EntryPoint) -> Any:
    """A factory that imports its entry point only when a board is really opened."""

    def factory(**options: Any) -> Any:
        return ep.load()(**options)

    return factory


def requested_backend(name: str | None = None) -> str:
    """The backend asked for: the argument, else the environment variable, else auto."""
    chosen = name or os.environ.get(ENV_VAR, "").strip().lower() or AUTO
    known = set(available_backends()) | {CPU, AUTO}
    if chosen not in known:
        raise BackendUnavailable(
            f"unknown pynq_cv backend {chosen!r} (from "
            f"{'the call' if name else ENV_VAR}); known: {sorted(known)}"
        )
    return chosen


def open_board(name: str | None = None, **options: Any) -> tuple[Any | None, str, str]:
    """Open the bottom layer: returns (board or None for cpu, backend name, why)."""
    chosen = requested_backend(name)
    if chosen == CPU:
        return None, CPU, "cpu backend requested: every frame runs cv2.resize"
    factories = available_backends()
    if chosen != AUTO:
        return factories[chosen](**options), chosen, f"{chosen} backend requested"
    board_options = {k: v for k, v in options.items() if k in ("bitstream", "board")}
    try:
        return factories["board"](**board_options), "board", "pynq and a resizer overlay found"
    except BackendUnavailable as exc:
        why = f"no board ({exc}); using the emulator"
        if exc.on_board:  # pynq is here, so probably a board: say so instead of hiding it
            warnings.warn(f"pynq_cv: {why}", RuntimeWarning, stacklevel=3)
    return factories["emulator"](**options), "emulator", why
