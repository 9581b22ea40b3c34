"""Which bottom layer runs the PL path, and why.

Order: an explicit name (API call) > ``PYNQ_CV_BACKEND`` > auto; names are case-insensitive
and an unknown one is an error (``BackendUnavailable``), never a silent CPU run. Auto means
the real board when ``pynq`` imports and a resizer overlay is usable on it; on a machine
that has a PL but no usable overlay, or a PL (Linux's fpga_manager) and a Python without
``pynq``, the CPU (with the reason; the latter warned once through the ``pynq_cv`` logger)
-- never the emulator, which on a board's ARM would be far slower than ``cv2.resize``;
inside ``pynq_cv.emulate()``, the board backend on the emulated board, as on that board;
off a board, the emulator, said once through the ``pynq_cv`` logger. ``cpu`` means no PL
at all (every frame goes to ``cv2.resize``). Backends are entry points in the
``pynq_cv.backends`` group (name -> factory returning a board), so a package can add one.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import os
import warnings
from importlib import metadata
from typing import Any

from ..errors import BackendUnavailable

BACKENDS_GROUP = "pynq_cv.backends"
ENV_VAR = "PYNQ_CV_BACKEND"
CPU = "cpu"
AUTO = "auto"
# options only the real board takes (the emulator would not know them)
BOARD_ONLY = ("overlay", "reprogram", "dma_name", "resizer_name")
# options the real board takes in auto mode (the rest are the emulator's)
BOARD_OPTIONS = ("bitstream", "board", "wait_for_pl", *BOARD_ONLY)

# The defaults that differ on a board (a machine with a PL, or inside ``emulate()``), each
# decided where a ``# board default: NAME`` marker stands; tests/test_board_defaults.py
# runs each under ``emulate()`` with the real pynq, so CI runs what a board runs.
BOARD_DEFAULTS = {
    "backend_choice": "auto opens the board backend (PynqBoard), never the emulator",
    "pl_lock": "the board backend takes the machine's PL lock (one process per PL)",
    "planning": "plans are measured once per shape, not only modelled",
    "calibration_kind": "only a calibration measured on a board stands in for the board",
    "backend_notice": "the backend chosen is said at INFO, not DEBUG",
    "commands": "demo, verify and calibrate run on the board backend",
    "run": "pynq-cv run: the patched cv2.resize on the board backend, with the profile",
}

log = logging.getLogger("pynq_cv")
_emulator_noticed = False
_pynq_missing_warned = False


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
        if ep.name.lower() not in found:
            found[ep.name.lower()] = _lazy(ep)
    return found


def _lazy(ep: metadata.EntryPoint) -> Any:
    """A factory that imports its entry point only when a board is really opened."""

    def factory(**options: Any) -> Any:
        return ep.load()(**options)

    return factory


def requested_backend(name: str | None = None) -> str:
    """The backend asked for (lower case): the argument, else the environment variable, else
    auto. Raises ``BackendUnavailable`` naming the known backends for any other name."""
    source = "the call" if name else ENV_VAR
    chosen = (name or os.environ.get(ENV_VAR, "")).strip().lower() or AUTO
    if chosen in (AUTO, CPU, "board", "emulator"):
        return chosen  # built in: no need to scan the installed entry points (~1 ms)
    known = set(available_backends()) | {CPU, AUTO}
    if chosen not in known:
        near = difflib.get_close_matches(chosen, sorted(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise BackendUnavailable(
            f"unknown pynq_cv backend {chosen!r} (from {source}); "
            f"known: {', '.join(sorted(known))}{hint}"
        )
    return chosen


def open_board(name: str | None = None, **options: Any) -> tuple[Any | None, str, str]:
    """Open the bottom layer: returns (board or None for cpu, backend name, why).

    Raises ``BackendUnavailable`` when the backend asked for cannot be opened, and in auto
    mode on a board whose PL cannot be used (its ``reason`` says why: "pl_in_use",
    "pl_holds_other_overlay", "no_backend")."""
    chosen = requested_backend(name)
    if chosen == CPU:
        return None, CPU, "cpu backend requested: every frame runs cv2.resize"
    factories = available_backends()
    if options.get("overlay") is not None and chosen not in ("board", AUTO):
        raise BackendUnavailable(f"overlay= is a real board's overlay; backend {chosen!r} "
                                 "cannot use it (use the board backend)")
    if chosen != AUTO:
        if chosen == "emulator":
            options = {k: v for k, v in options.items() if k not in BOARD_ONLY}
        return factories[chosen](**options), chosen, f"{chosen} backend requested"
    board_options = {k: v for k, v in options.items() if k in BOARD_OPTIONS}
    try:
        return factories["board"](**board_options), "board", "pynq and a resizer overlay found"
    except BackendUnavailable as exc:
        if exc.reason != "no_backend" or options.get("overlay") is not None:
            raise  # a board whose PL is taken, or the user's own overlay: never emulate
        from .board import fpga_manager_present, machine_has_pl

        if machine_has_pl():  # board default: backend_choice
            raise BackendUnavailable(
                f"on a PYNQ board without a usable resizer overlay ({exc}); every frame "
                "runs cv2.resize (the emulator is never used on a board)",
                on_board=True, details={"pl_present": True},
            ) from exc
        if fpga_manager_present():  # a board's Linux, but this Python has no pynq
            why = (f"this machine has a PL ({exc}: run in the PYNQ image's Python, e.g. "
                   "its venv, to use it); every frame runs cv2.resize (the emulator is "
                   "never used on a board)")
            _warn_pynq_missing(why)
            return None, CPU, why
        why = (f"no board ({exc}); using the emulator" if exc.on_board else
               f"no board (this machine has no PL; on a board: {exc}); using the emulator")
        if exc.on_board:  # a bitstream was configured but would not load: say so
            warnings.warn(f"pynq_cv: {why}", RuntimeWarning, stacklevel=3)
    _notice_emulator(why)
    emulator_options = {k: v for k, v in options.items() if k not in BOARD_ONLY}
    return factories["emulator"](**emulator_options), "emulator", why


def _warn_pynq_missing(why: str) -> None:
    """Once per process, a WARNING record: a board whose PL this Python cannot reach."""
    global _pynq_missing_warned
    if not _pynq_missing_warned:
        _pynq_missing_warned = True
        log.warning("%s", why)


def _notice_emulator(why: str) -> None:
    """Say once per process, as an INFO record, that auto chose the emulator.

    Not a warning: off a board the emulator is the documented default, not a fault, and a
    warning would break the suites of users who run with ``-W error``. ``stats()`` and
    ``info()`` name the backend too."""
    global _emulator_noticed
    if not _emulator_noticed:
        _emulator_noticed = True
        log.info(
            "%s; eligible frames are computed by the board emulator (the IP's "
            "fixed-point arithmetic, not cv2's bit for bit). %s=cpu or "
            "pynq_cv.use_backend('cpu') gives plain cv2.resize.", why, ENV_VAR,
        )


def check_options(backend: str | None, options: dict[str, Any]) -> None:
    """Options the chosen built-in backend does not take fail at construction (of a
    ``Resizer``), naming them; a third-party backend's factory judges its own."""
    if not options:
        return
    name = (backend or os.environ.get("PYNQ_CV_BACKEND", "")).strip().lower() or "auto"
    from .board import PynqBoard
    from .emulator import EmulatedBoard

    takes = {
        "emulator": set(inspect.signature(EmulatedBoard).parameters),
        "board": set(inspect.signature(PynqBoard).parameters),
        "cpu": set(),
    }
    takes["emulator"] |= set(BOARD_ONLY)  # accepted, and ignored, by the emulator
    takes["auto"] = takes["emulator"] | takes["board"]
    known = takes.get(name)
    if known is None:
        return  # a third-party backend: its factory judges its options
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for the {name!r} backend; "
            f"it takes {sorted(known) or 'none'}"
        )
