"""Calibration: the machine's own cost constants, measured once, saved, loaded by later runs.

``pynq-cv calibrate`` times copies by cacheability, flush, invalidate, a register access and
``cv2.resize`` at a few sizes, and writes them to a JSON file::

    {"pynq_cv_calibration": 1, "created": "...", "backend": "board" | "emulator",
     "board": "Pynq-Z2", "family": "zynq7000", "machine": {...}, "note": "...",
     "constants": {"memcpy_bytes_per_s": {"value": 3.1e8, "source": "..."}, ...},
     "checks": {"pl_frame_1080p_to_540p_s": 0.052, ...}}

Which file is loaded: ``Resizer(calibration=path)``, else ``PYNQ_CV_CALIBRATION`` (``none``
turns calibration off), else the default per-user file (``default_path()``) -- the default
one only when it was measured on a board of the engine's CPU family, and only by a board
engine: a host is not a board, so a file measured off a board (through the emulator: the
host's costs) never replaces a board's model unless asked for by path or by
``PYNQ_CV_CALIBRATION``. The costs returned say which machine they describe
(``BoardCosts.machine``).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import costs as cost_model
from .costs import BoardCosts, PathCost
from .cv2compat import CV2_RESIZE
from .driver import IP_SRC_ROWS
from .errors import BackendUnavailable
from .timing import frame_seconds

if TYPE_CHECKING:
    from .planner import Measure

CALIBRATION_ENV = "PYNQ_CV_CALIBRATION"
SCHEMA = 1


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/pynq_cv/calibration.json`` (``~/.config/...`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "pynq_cv" / "calibration.json"


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A calibration file's content, checked (ValueError naming the problem)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"calibration file {path} does not exist or is not a file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"calibration file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("pynq_cv_calibration") != SCHEMA:
        raise ValueError(f"{path} is not a pynq_cv calibration file (schema {SCHEMA})")
    if not isinstance(data.get("constants"), dict):
        raise ValueError(f"calibration file {path} has no 'constants' object")
    cost_model.for_board("Pynq-Z2").with_values(data["constants"], "", "check")  # validates
    return data


def apply(costs: BoardCosts, data: dict[str, Any], path: str) -> BoardCosts:
    """``costs`` with the file's constants in force (each keeps the file as its source),
    saying which machine they now describe."""
    note = f"{path} (measured on {data.get('backend', '?')}/{data.get('family', '?')}, " \
           f"{data.get('created', '?')})"
    values = {
        name: {"value": c["value"] if isinstance(c, dict) else c, "source": note}
        for name, c in data["constants"].items()
    }
    board = data.get("board") or "?"
    if data.get("backend") == "board":  # not a default: names the machine a file describes
        machine = f"{board} (calibrated on the board: {path})"
    else:
        host = (data.get("machine") or {}).get("machine") or "?"
        machine = f"this host ({host}, calibrated through the emulator: {path}), not a {board}"
    return replace(costs.with_values(values, note, "calibration"), machine=machine)


def costs_for(
    board: str, backend: str, explicit: str | os.PathLike[str] | dict[str, Any] | None = None,
    cpu_family: str | None = None,
) -> tuple[BoardCosts, str]:
    """The constants in force for an engine, and a sentence saying where they came from and
    which machine they describe (a board's model, a board, or a host: never left unsaid).
    A board without a shipped profile gets its CPU family's (``costs.for_board``)."""
    costs, origin = _costs_for(board, backend, explicit, cpu_family)
    return costs, f"{origin}; the numbers describe {costs.machine}"


def _costs_for(
    board: str, backend: str, explicit: str | os.PathLike[str] | dict[str, Any] | None,
    cpu_family: str | None,
) -> tuple[BoardCosts, str]:
    costs = cost_model.for_board(board, cpu_family)
    if isinstance(explicit, dict):
        given = costs.with_values(explicit, "given in the call", "override")
        if explicit:
            given = replace(given, machine=f"{board} (model with constants given in the call)")
        return given, "given in the call"
    if explicit is not None:
        data = read(explicit)
        return apply(costs, data, str(explicit)), f"calibration file {explicit}" + _mismatch(
            data, backend, costs.family)
    env = os.environ.get(CALIBRATION_ENV, "").strip()
    if env.lower() in ("none", "off", "0"):
        return costs, f"published defaults ({CALIBRATION_ENV}={env})"
    if env:  # set outside this program: a bad file must not turn the PL off, only be said
        try:
            data = read(env)
            return apply(costs, data, env), (
                f"calibration file {env} (from {CALIBRATION_ENV})"
                + _mismatch(data, backend, costs.family)
            )
        except ValueError as exc:  # said on stderr, never an exception under -W error
            logging.getLogger("pynq_cv").warning(
                "%s: %s; using the published costs", CALIBRATION_ENV, exc)
            return costs, f"published defaults ({CALIBRATION_ENV}: {exc})"
    path = default_path()
    if not path.is_file():
        # board default: calibration_kind
        hint = "run `pynq-cv calibrate`" if backend == "board" else (
            "on a board, `pynq-cv calibrate` measures it")
        return costs, f"published defaults (no calibration file; {hint})"
    try:
        data = read(path)
    except ValueError as exc:
        return costs, f"published defaults ({exc})"
    # board default: calibration_kind (only a board's own file stands in for its model)
    if data.get("backend") != "board" or backend != "board" or data.get("family") != costs.family:
        return costs, (
            f"published defaults ({path} was measured on {data.get('backend')}/"
            f"{data.get('family')}, this engine is {backend}/{costs.family}: a calibration "
            f"replaces a board's model by default only when measured on such a board; load it "
            f"with calibration={str(path)!r} or {CALIBRATION_ENV}={path})"
        )
    return apply(costs, data, str(path)), f"calibration file {path}"


def _mismatch(data: dict[str, Any], backend: str, family: str) -> str:
    """A named file is applied as asked; say so when it was measured somewhere else."""
    where = f"{data.get('backend')}/{data.get('family')}"
    if where == f"{backend}/{family}":
        return ""
    return f"; NOTE: measured on {where}, this engine is {backend}/{family}"


# -- measuring ---------------------------------------------------------------------------------


def _best(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs (the least disturbed by the rest of the machine)."""
    fn()  # warm: first-call costs (thread pools, page faults) are not the steady state
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return max(best, 1e-9)


def cv2_constants(rows: int, cols: int, repeat: int) -> dict[str, float]:
    """cv2.resize's constants on this CPU: exact 2x rate, bilinear cost, per-call cost."""
    frame = np.random.default_rng(0).integers(0, 256, (rows, cols, 3), dtype=np.uint8)
    area = _best(lambda: CV2_RESIZE(frame, (cols // 2, rows // 2)), repeat)
    out = (cols * 2 // 3, rows * 2 // 3)
    bilinear = _best(lambda: CV2_RESIZE(frame, out), repeat)
    tiny = frame[:8, :8]
    call = _best(lambda: CV2_RESIZE(tiny, (4, 4)), repeat * 20)
    return {
        "cv2_area2x_bytes_per_s": frame.nbytes / max(area - call, 1e-9),
        "cv2_bilinear_s_per_out_byte": max(bilinear - call, 1e-9) / (out[0] * out[1] * 3),
        "cv2_call_s": call,
        "cv2_threads": float(max(1, cv2.getNumThreads())),
    }


def buffer_seconds(hw: Any, src: np.ndarray, repeat: int) -> dict[str, float]:
    """Seconds (best of ``repeat``) to copy ``src``'s bytes into and out of a cacheable and a
    non-cacheable buffer of ``hw``, to flush and to invalidate the cacheable one."""
    nbytes = src.nbytes
    cached = hw.allocate((nbytes,), np.uint8, cacheable=True)
    uncached = hw.allocate((nbytes,), np.uint8, cacheable=False)
    plain = np.empty_like(src)
    try:
        return {
            "plain_copy": _best(lambda: np.copyto(plain, src), repeat),
            "into_cacheable": _best(lambda: np.copyto(cached, src), repeat),
            "out_of_cacheable": _best(lambda: np.copyto(plain, cached), repeat),
            "into_non_cacheable": _best(lambda: np.copyto(uncached, src), repeat),
            "out_of_non_cacheable": _best(lambda: np.copyto(plain, uncached), repeat),
            "flush": _best(cached.flush, repeat),
            "invalidate": _best(cached.invalidate, repeat),
        }
    finally:
        cached.freebuffer()
        uncached.freebuffer()


def buffer_constants(seconds: dict[str, float], nbytes: int) -> dict[str, float]:
    """The cost model's copy and cache-maintenance constants from ``buffer_seconds``."""
    return {
        "memcpy_bytes_per_s": nbytes / seconds["plain_copy"],
        "wc_write_bytes_per_s": nbytes / seconds["into_non_cacheable"],
        "uncached_read_bytes_per_s": nbytes / seconds["out_of_non_cacheable"],
        "flush_s_per_byte": seconds["flush"] / nbytes,
        "invalidate_s_per_byte": seconds["invalidate"] / nbytes,
    }


def register_seconds(ip: Any, repeat: int, offset: int = IP_SRC_ROWS) -> dict[str, float]:
    """One Python MMIO read of ``offset``, and one write of the value it held (a size
    register by default: reading it clears nothing, rewriting it changes nothing), in
    seconds: best of ``repeat`` runs of 100."""
    value = int(ip.read(offset))
    read = _best(lambda: [ip.read(offset) for _ in range(100)], repeat) / 100
    write = _best(lambda: [ip.write(offset, value) for _ in range(100)], repeat) / 100
    return {"read": read, "write": write}


DRIVER_FRAME = (16, 16, 8, 8)
"""The frame ``driver_seconds`` runs: the smallest of round sizes, so that its IP time and
cache maintenance are negligible beside the driver's own work."""


def driver_seconds(engine: Any, repeat: int) -> dict[str, Any]:
    """One frame's PS work in the driver -- posts, polls, register accesses, no copies:
    ``frame_s`` is the wall time of ``driver.run`` on ``DRIVER_FRAME`` (best of ``repeat``),
    ``ip_s`` its modelled IP time, ``accesses`` the register accesses the frame made where
    the bus counts them (an emulated one: ``board.bus_accesses``), else None."""
    in_rows, in_cols, out_rows, out_cols = DRIVER_FRAME
    pool, planner, board = engine.pool, engine.planner, engine.board
    with pool.lease((in_rows, in_cols, 3), cacheable=planner.in_cacheable) as src, \
            pool.lease((out_rows, out_cols, 3), cacheable=planner.out_cacheable) as dst:
        src[:] = 0
        if hasattr(src, "flush"):
            src.flush()
        before = getattr(board, "bus_accesses", None)
        engine.driver.run(src, dst, DRIVER_FRAME)
        after = getattr(board, "bus_accesses", None)
        wall = _best(lambda: engine.driver.run(src, dst, DRIVER_FRAME), repeat)
    return {"frame_s": wall, "ip_s": frame_seconds(*DRIVER_FRAME, engine.descriptor.clock_hz),
            "accesses": None if before is None or after is None else after - before}


def measure(
    backend: str | None = None, board: str | None = None, rows: int = 1080, cols: int = 1920,
    repeat: int = 5, *, resizer: Callable[..., Any],
) -> dict[str, Any]:
    """Measure this machine's constants (through ``backend``'s buffers) as a calibration dict.

    ``resizer``: the engine class (``pynq_cv.Resizer``), given by the caller: engines are
    built above this module (they load calibrations), this module only measures through one.
    On the emulator the numbers are the host's (its buffers are host memory and its flush is
    a copy): the file says so, and only emulator engines load it by default."""
    Resizer = resizer  # noqa: N806 -- the class, as the caller knows it

    options = {"board": board} if board else {}
    # calibration={}: measuring needs no earlier calibration (nor a readable one)
    with Resizer(backend, policy="pl", calibration={}, **options) as resizer:
        engine = resizer.open().engine
        if engine is None:  # the cpu backend: no PL path to measure
            raise BackendUnavailable(f"nothing to calibrate: {resizer.why}")
        hw = engine.board
        nbytes = rows * cols * 3
        src = np.random.default_rng(1).integers(0, 256, nbytes, dtype=np.uint8)
        found = buffer_constants(buffer_seconds(hw, src, repeat), nbytes)
        ip = getattr(engine.driver, "ip", None) or getattr(
            hw.overlay, engine.descriptor.resizer.name
        )
        found["register_access_s"] = register_seconds(ip, repeat)["read"]
        found.update(cv2_constants(rows, cols, repeat))
        frame = src.reshape(rows, cols, 3)
        resizer.resize(frame, (cols // 2, rows // 2))  # the pool's buffers, warm
        pl_frame = _best(lambda: resizer.resize(frame, (cols // 2, rows // 2)), repeat)
        # board default: commands (only a board's own measurement is labelled a board's)
        emulated = resizer.backend != "board" or bool(getattr(hw, "emulated", False))
        desc = engine.descriptor
        family = engine.planner.costs.family
    how = f"pynq-cv calibrate on {platform.node() or 'this machine'}, best of {repeat}"
    checks = {f"pl_frame_{rows}p_to_{rows // 2}p_s" + ("_host_emulated" if emulated else ""):
              pl_frame}
    return document(found, emulated=emulated, board=desc.board, family=family, how=how,
                    checks=checks)


def document(
    found: dict[str, float], *, emulated: bool, board: str, family: str, how: str,
    checks: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A calibration file's content for measured constants (``found``: name -> value)."""
    return {
        "pynq_cv_calibration": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": "emulator" if emulated else "board",
        "board": board,
        "family": family,
        "machine": {
            "machine": platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "opencv": cv2.__version__,
            "cv2_threads": cv2.getNumThreads(),
        },
        "note": (
            "measured on the host through the board emulator: these are this machine's "
            "costs, not a board's" if emulated else "measured on the board"
        ),
        "constants": {name: {"value": value, "source": how} for name, value in found.items()},
        "checks": dict(checks or {}),
    }


def write(data: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Save a calibration (default: ``PYNQ_CV_CALIBRATION`` if set, else ``default_path()``)."""
    env = os.environ.get(CALIBRATION_ENV, "").strip()
    target = Path(path or (env if env and env.lower() not in ("none", "off", "0") else "")
                  or default_path())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def plan_measurer(engine: Any, repeat: int = 3) -> Measure:
    """Time both paths for a new shape on scratch buffers, once, at plan time (FFTW's
    MEASURE), so the plan rests on this board, never on the user's frames.

    cv2 is timed through the original ``cv2.resize`` (``cv2compat.CV2_RESIZE``): the module
    attribute may be pynq_cv's own patch, and measuring must never re-enter pynq_cv. On an
    emulated board (``board.emulated``) the host's timings say nothing about the board:
    one frame still runs through the emulated PL (so a broken path keeps the model), and
    the costs are the board's -- the IP's cycles and the board's modelled PS work."""
    emulated = bool(getattr(engine.board, "emulated", False))

    def measure_shape(
        key: Any, pl: PathCost, cv2_model: PathCost
    ) -> tuple[PathCost, PathCost, str]:
        sizes, copy_in, copy_out, _, src_cacheable, dst_cacheable = key
        in_rows, in_cols, out_rows, out_cols = sizes
        scratch = np.random.default_rng(2).integers(0, 256, (in_rows, in_cols, 3), np.uint8)
        pool, planner = engine.pool, engine.planner
        # the buffers the plan is for: the pool's kinds, or the kind the caller's frame
        # lives in (a lent write-combined input is slow for cv2 to read, fast to write)
        in_kind = planner.in_cacheable if copy_in else src_cacheable
        out_kind = planner.out_cacheable if copy_out else dst_cacheable
        with pool.lease((in_rows, in_cols, 3), cacheable=in_kind) as in_buf, \
                pool.lease((out_rows, out_cols, 3), cacheable=out_kind) as out_buf:
            out = np.empty((out_rows, out_cols, 3), np.uint8)

            def pl_frame() -> float:
                if copy_in:
                    np.copyto(in_buf, scratch)
                board_seconds = engine.driver.run(in_buf, out_buf, sizes)
                if copy_out:
                    np.copyto(out, out_buf)
                return float(board_seconds)

            if emulated:
                ip = pl_frame()
                parts = {**pl.parts, "ip": ip}
                latency = pl.latency - pl.parts.get("ip", 0.0) + ip
                return PathCost(latency, pl.cpu, parts), cv2_model, "measured (emulated)"
            pl_wall = _best(pl_frame, repeat)
            if not copy_in:  # cv2 reads the frame where the caller keeps it
                np.copyto(in_buf, scratch)
            source = scratch if copy_in else in_buf
            cv2_wall = _best(lambda: CV2_RESIZE(source, (out_cols, out_rows)), repeat)
        ip = pl.parts.get("ip", 0.0)
        threads = cv2_model.cpu / max(cv2_model.latency, 1e-12)
        return (
            PathCost(pl_wall, max(pl_wall - ip, 0.0), {"measured": pl_wall, "ip": ip}),
            PathCost(cv2_wall, cv2_wall * threads, {"measured": cv2_wall}),
            "measured",
        )

    return measure_shape
