"""``Resizer``: one engine per board -- its life (open, close, fork) and its public face.

Every call takes the same walk: the cheapest checks first, flat in ``Resizer.resize`` (so a
frame the PL will never take costs almost nothing over ``cv2.resize``), then cv2's own size
rule, the loaded overlay's envelope, the routing plan, the circuit breaker (``frame.py``'s
``_plan``), and only then pool buffers and the driver (``frame.py``'s steps). Any doubt: the
original ``cv2.resize`` computes the frame, and the reason is counted. A hardware fault: the
IP's exact arithmetic computes it on the CPU (``fallback="exact"``, the default), so an
eligible frame's values never depend on faults, or cv2 does (``fallback="cv2"``).

Lock order (one, everywhere; a lock is only ever taken while holding those before it):

    Resizer._open_lock   (alone: opening/closing the engine; never held while waiting)
    Resizer._turn        (the engine's FIFO turn at the IP; buffers are taken under it)
    SharedIP.lock        (driver: one frame in the physical IP, begin..finish)
    BufferPool._lock, Stats._lock, CircuitBreaker._lock   (leaves: held for a few statements)

``close()`` takes ``_open_lock``, lets it go, then waits for its turn; a frame opens the
engine (``_open_lock``) before it queues for its turn, so the two never nest.

Interrupts (Ctrl-C lands anywhere): every resource a frame takes -- its place in the turn,
the IP (``InFlight.claims_ip``), its pool buffers (``holder=job``) -- is recorded on the
``Job`` in the statement that takes it and released by idempotent steps, which every
exception handler repeats (``_abort``); a lock is never held across a line boundary except
by ``with`` statements written on one line. Another caller's frame is never given up: an
interrupted wait for a submitted frame turns that frame into a CPU frame for its owner.

Fork: ``os.register_at_fork`` gives every ``Resizer`` in a child fresh locks and no engine
(it reopens lazily); module-level locks are made by ``forklocks``, which renews them all.
The parent's board is not touched. On a real board two processes must
not drive the PL at once.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from . import calibration as calibration_mod
from . import pipeline, telemetry
from .backends.select import check_options, open_board, requested_backend
from .breaker import CircuitBreaker
from .costs import LENT_CACHEABLE
from .cv2compat import CV2_RESIZE
from .descriptors import check_board_name
from .driver import Deadlines
from .engine import Engine
from .errors import BackendUnavailable, PLFault, SettingError
from .forklocks import module_lock
from .frame import EXACT_REASONS, FrameSteps, Ticket, under
from .log import debug_on, logger, on_level_change
from .planner import resolve_fps, resolve_policy
from .pool import BufferPool, PoolClosed, PoolExhausted
from .settings import check_names
from .telemetry import FOLD_AT, Stats
from .turn import Turn
from .watch import COMPARE_ENV, LOG_ONLY, STRICT_ENV, Watch, env_flag

REPROGRAM_ENV = "PYNQ_CV_REPROGRAM"  # read by backends/board.py at open

_NDARRAY = np.ndarray
_log = logging.getLogger("pynq_cv")
FALLBACKS = ("exact", "cv2")
LEND_WAIT_SECONDS = 1.0
"""How long ``lend`` waits for frames in flight to give budget back: any frame on any
shipped board finishes well within it (a KV260's 4K input is 83 ms at the IP), and a lend
that cannot succeed still answers within a second."""


class Resizer(FrameSteps):
    """The PL resize engine: ``resize`` with cv2's signature, pools, telemetry, pipelining.

    Nothing is opened at construction: the board (real or emulated) and its overlay are
    opened by the first frame that could use them, or by ``open()``. Use as a context
    manager to free every pool buffer on exit. The backend name is checked here, so a typo
    raises ``BackendUnavailable`` at the caller's line.

    On a real board: ``overlay`` is an ``Overlay`` the caller loaded (used as it is, never
    downloaded; IP names from the descriptor or ``dma_name=``/``resizer_name=``);
    ``reprogram=True`` (or ``PYNQ_CV_REPROGRAM=1``) lets the resizer replace another design
    the PL holds; ``wait_for_pl`` seconds to wait for another process's hold on the PL
    (default: do not wait; frames run on the CPU with reason ``pl_in_use``).

    Read by the plain path (``resize`` and ``dispatch.resize``), written only by the engine
    itself: ``engine`` (the open ``Engine``, or None), ``off_reason`` (why the PL can never
    be used, or None), ``watching`` (the ``Watch`` around each decision, None on the plain
    path), ``cpu_events`` (CPU frames not yet folded into ``stats``).
    """

    def __init__(
        self,
        backend: str | None = None,
        *,
        budget_bytes: int | None = None,
        deadlines: Deadlines | None = None,
        breaker: CircuitBreaker | None = None,
        stats: Stats | None = None,
        policy: str | None = None,
        calibration: str | os.PathLike[str] | dict[str, Any] | None = None,
        planning: str | None = None,
        overlay: Any = None,
        reprogram: bool | None = None,
        wait_for_pl: float | None = None,
        fallback: str = "exact",
        strict: bool | None = None,
        compare: bool | None = None,
        fps: float | None = None,
        **backend_options: Any,
    ) -> None:
        """``policy``: which eligible frames go to the PL (see ``planner``; default
        ``PYNQ_CV_POLICY`` or ``auto``). ``calibration``: a calibration file or a dict of cost
        constants (default: ``PYNQ_CV_CALIBRATION``, else the per-user file). ``planning``:
        ``"estimate"`` (the cost model) or ``"measure"`` (time both paths on scratch buffers
        once per new shape; the default on a real board). ``overlay``, ``reprogram``,
        ``wait_for_pl``: see the class docstring. ``fps``: the source's frame rate (default
        ``PYNQ_CV_FPS``): under ``offload`` and ``auto`` a stream's frames go to the PL only
        if it keeps up with that rate (see ``planner``).

        ``fallback``: how a frame the PL should have computed but could not (a hardware
        fault, an open circuit breaker) is computed instead: ``"exact"`` (default) with the
        IP's own arithmetic on the CPU, so the output never depends on faults; ``"cv2"``
        with ``cv2.resize`` (faster on the CPU, but rounds where the IP truncates).

        ``strict=True`` (default: ``PYNQ_CV_STRICT``) raises ``FallbackError`` instead of
        computing a uint8 H x W x 3 frame on the CPU; ``compare=True`` (default:
        ``PYNQ_CV_COMPARE``) also computes PL frames with cv2 and counts the difference in
        ``stats()["compare"]`` (see watch.py)."""
        _check_settings(budget_bytes, deadlines, breaker, stats, fallback)
        _check_kinds(backend=backend, calibration=calibration, planning=planning,
                     reprogram=reprogram, wait_for_pl=wait_for_pl, strict=strict,
                     compare=compare)
        check_options(backend, backend_options)
        if overlay is not None and backend is None:
            backend = "board"  # the caller's own overlay: a real board, whatever the env says
        chosen = requested_backend(backend)  # raises now, at the caller's line, on a typo
        if overlay is not None and chosen != "board":  # not a default: a check of the call
            raise BackendUnavailable(f"overlay= needs the board backend, not {chosen!r}")
        if wait_for_pl is not None and not 0.0 <= float(wait_for_pl) < float("inf"):
            raise ValueError(f"wait_for_pl must be finite seconds >= 0, not {wait_for_pl!r}")
        for key, value in (
            ("overlay", overlay), ("reprogram", reprogram), ("wait_for_pl", wait_for_pl),
        ):
            if value is not None:
                backend_options[key] = value
        self.policy = resolve_policy(policy)  # a bad name fails here, not inside a frame
        self.fps = resolve_fps(fps)  # the source's frame rate (planner.py), or None
        check_board_name(backend_options.get("board"))  # a typo fails here, not as "no PL"
        if planning not in (None, "estimate", "measure"):
            raise SettingError(f"planning must be 'estimate' or 'measure', got {planning!r}")
        if isinstance(calibration, (str, os.PathLike)):
            calibration_mod.read(calibration)  # a missing or bad file fails here too
        self.calibration = calibration
        self.planning = planning
        self.requested = backend
        self.backend_options = backend_options
        self.budget_bytes = budget_bytes
        self.deadlines = deadlines or Deadlines()
        self.breaker = breaker or CircuitBreaker()
        self.stats = stats or Stats()
        self.fallback = fallback
        self.cpu_events = self.stats.cpu_events
        self.backend: str | None = None  # chosen at open
        self.why = "not opened yet"
        self.engine: Engine | None = None
        self._closed_pool: BufferPool | None = None  # where lent buffers go after close
        self.off_reason: str | None = None  # set when the PL can never be used: the reason
        self._off_details: dict[str, Any] = {}  # what info() adds about it (e.g. pl_holder)
        self._reasons: dict[tuple[int, int, int, int], str | None] = {}
        self._warned: set[str] = set()
        self._fresh_locks()
        check_names()
        self.strict = env_flag(STRICT_ENV) if strict is None else bool(strict)
        self.compare = env_flag(COMPARE_ENV) if compare is None else bool(compare)
        if reprogram is None:
            env_flag(REPROGRAM_ENV)  # read at open; a bad value fails here, not as "no PL"
        self.rewatch()
        with _resizers_lock:  # complete before rewatch_all() can see it
            _resizers.add(self)

    def rewatch(self) -> None:
        """Decide again whether frames take the watched path (strict, compare, the frame
        observer, DEBUG logging); ``None`` keeps the plain path, which pays nothing."""
        watched = (
            self.strict or self.compare or telemetry.frame_observer is not None or debug_on()
        )
        self.watching: Watch | None = Watch(self.strict, self.compare) if watched else None

    def _fresh_locks(self) -> None:
        self._open_lock = threading.Lock()
        self._turn = Turn()  # the engine's FIFO turn at the IP (see the module docstring)
        self._pending: pipeline.PendingFrame | None = None  # submitted, PL not yet collected

    def _forget_after_fork(self) -> None:
        """In a forked child: fresh locks, no engine (the parent's board stays the
        parent's; a thread that held a lock does not exist here). Reopens lazily."""
        self._fresh_locks()
        self.stats.renew_lock()
        self.breaker.renew_lock()
        if self.engine is not None:
            self.engine = None
            self.off_reason = None
        self._closed_pool = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Resizer:
        """Open the board and load its overlay now (otherwise the first frame does it).

        Raises ``BackendUnavailable`` (with the reason) when no PL path can be opened."""
        self._ensure_engine()
        if self.engine is None and self.off_reason not in ("backend_cpu", "closed"):
            raise BackendUnavailable(self.why, reason=self.off_reason or "no_backend")
        return self

    def _ensure_engine(self) -> Engine | None:
        if self.engine is not None or self.off_reason is not None:
            return self.engine
        return under(self._open_lock, self._open_engine)

    def _open_engine(self) -> Engine | None:
        if self.engine is None and self.off_reason is None:
            try:
                try:
                    board, self.backend, self.why = open_board(
                        self.requested, **self.backend_options
                    )
                except Warning as warning:  # -W error: the news goes to the log, not a frame
                    _log.warning("%s", str(warning).removeprefix("pynq_cv: "))
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        board, self.backend, self.why = open_board(
                            self.requested, **self.backend_options
                        )
                if board is None:
                    self.off_reason = "backend_cpu"
                else:
                    try:
                        self.engine = Engine(
                            board, self.budget_bytes, self.deadlines, self.policy,
                            self.calibration, self.backend, self.planning, self.fps,
                        )
                    except BaseException:  # the board (a real one's PL lock) is let go
                        board.close()
                        raise
                    self.stats.emulated = bool(
                        getattr(board, "emulated", False) or board.name.startswith("emul")
                    )
                    # INFO for a real board; select.py already says when auto chose the emulator
                    # board default: backend_notice
                    logger.log(logging.INFO if self.backend == "board" else logging.DEBUG,
                               "backend %s: %s", self.backend, self.why)
            except (BackendUnavailable, RuntimeError, OSError, ValueError) as exc:
                # a PL taken by another process or design is not a fault of ours
                self.off_reason = getattr(exc, "reason", "no_backend")
                self._off_details = dict(getattr(exc, "details", {}))
                self.why = f"PL unavailable: {exc}"
                logger.info("no PL (%s): %s; frames run cv2.resize", self.off_reason, self.why)
                if self.off_reason == "no_backend":
                    self.stats.count_fault("overlay")
                off = self.off_reason
                self._warn_once("overlay" if off == "no_backend" else off, self.why)
            self.stats.backend = self.backend if self.engine is not None else "cpu"
        return self.engine

    def close(self) -> None:
        """Free every pool buffer and let go of the board; later frames run on the CPU.

        Safe while other threads resize: new frames go to the CPU at once, a submitted frame
        is collected, a frame in the IP is waited for (boundedly), and a frame that was being
        prepared falls back to the CPU instead of reaching a closed board. Interrupted, it
        can be called again to finish."""
        ticket = Ticket(self.deadlines.margin)
        try:
            engine = under(self._open_lock, self._shut)
            try:
                self._turn.enter(ticket)  # frames ahead finish first (boundedly)
            except PLFault:
                pass  # a frame that never lets go: close anyway (the driver refuses it later)
            pending = self._pending
            if pending is not None:
                pending.settle_in_turn()
            self._pending = None
            self._turn.leave(ticket)
            if engine is not None:
                engine.close()
                self._closed_pool = engine.pool
                self.engine = None
        except BaseException:
            self._turn.leave(ticket)
            raise

    def _shut(self) -> Engine | None:
        self.off_reason = "closed"
        return self.engine

    def __enter__(self) -> Resizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the call ----------------------------------------------------------------------------

    def resize(
        self,
        src: Any,
        dsize: Any,
        dst: Any = None,
        fx: Any = 0,
        fy: Any = 0,
        interpolation: Any = cv2.INTER_LINEAR,
    ) -> Any:
        """``cv2.resize``, with eligible frames computed by the PL resizer."""
        # A frame the PL never takes leaves here, flat: the cheapest checks first, in the
        # order ``_plan`` gives their reasons, and nothing called before cv2 but cv2.
        if self.watching is not None:
            return self._resize_watched(src, dsize, dst, fx, fy, interpolation)
        reason = self.off_reason
        if reason is None:
            engine = self.engine
            if (engine is None or src.__class__ is not _NDARRAY or dst is not None
                    or interpolation.__class__ is not int):
                reason = self._plan(src, dsize, dst, fx, fy, interpolation)
            elif src.ndim != 3:
                reason = "channels"
            elif interpolation not in engine.interpolations:
                reason = "interpolation"
            elif src.shape[2] != engine.channels:
                reason = "channels"
            elif src.dtype is not engine.dtype and src.dtype != engine.dtype:
                reason = "dtype"
            else:  # the kind of frame the PL takes: its sizes, its plan
                reason = self._admit(engine, src, dsize, None, fx, fy)
            if reason.__class__ is not str:
                return self._on_pl(reason, (src, dsize, dst, fx, fy, interpolation))
            if reason in EXACT_REASONS:
                return self._cpu_frame(reason, (src, dsize, dst, fx, fy, interpolation))
        events = self.cpu_events
        events.append(reason)  # atomic; Stats folds these into its counters
        if len(events) > FOLD_AT:
            self.stats.fold()
        return CV2_RESIZE(src, dsize, dst, fx, fy, interpolation)

    def _on_pl(self, job: Any, args: tuple[Any, ...]) -> Any:
        """An admitted frame's walk on the PL; a fault or a close makes it a CPU frame."""
        try:
            return self._run(job)
        except (PLFault, PoolExhausted) as fault:
            self._abort(job)
            reason, warning = self._fault(fault)
            out = self._cpu_frame(reason, args)
            self._warn_once(*warning)  # after the frame: a warnings filter cannot lose it
            return out
        except PoolClosed:  # closed from another thread while this frame waited its turn
            self._abort(job)
            return self._cpu_frame("closed", args)
        except BaseException:  # e.g. KeyboardInterrupt anywhere: give back all it holds
            self._abort(job)
            raise

    def _resize_watched(self, *args: Any) -> Any:
        """``resize`` with the watch told of each decision: logs, strict, compare, observer."""
        watch = self.watching or LOG_ONLY  # (None if un-watched meanwhile by another thread)
        job = self._plan(*args)
        if job.__class__ is str:
            watch.fallback(self, args[0], args[1], args[3], args[4], job)  # strict: raises
            return self._cpu_frame(job, args)
        try:
            result = self._run(job)
        except (PLFault, PoolExhausted) as fault:
            self._abort(job)
            reason, warning = self._fault(fault)
            try:
                watch.fallback(self, args[0], args[1], args[3], args[4], reason)  # strict: raises
                out = self._cpu_frame(reason, args)
            finally:
                self._warn_once(*warning)  # never raises: a -W error filter goes to the log
            return out
        except PoolClosed:
            self._abort(job)
            watch.fallback(self, args[0], args[1], args[3], args[4], "closed")
            return self._cpu_frame("closed", args)
        except BaseException:
            self._abort(job)
            raise
        watch.on_pl(self, args, result, job.board_seconds + job.ps_seconds,  # the whole PL path
                    job.in_buf.nbytes + job.out_buf.nbytes)
        return result

    # -- zero copy ---------------------------------------------------------------------------

    def lend(
        self, shape: tuple[int, ...], dtype: Any = np.uint8, role: str = "input",
        cacheable: bool | None = None,
    ) -> np.ndarray:
        """A pool buffer to fill in place (e.g. ``cap.read(image=buf)``): no copy into the PL.

        Give it back with ``give_back`` when done. Passing it as ``dst`` skips the copy out
        (lend it with ``role="output"``). The buffer kind follows the role unless
        ``cacheable`` says: an input is write-combined (a decoder writes each byte once, and
        the DMA needs no flush), an output cacheable (the CPU reads it, after one
        invalidate); the plan models the kind of the buffer a frame actually comes in.
        Raises ``BackendUnavailable`` when there is no PL path, and ``PoolExhausted`` when
        the budget has no room: at once if lent buffers fill it, else after waiting up to
        ``LEND_WAIT_SECONDS`` for frames in flight to give their buffers back.
        """
        engine = self._ensure_engine()
        if engine is None:
            raise BackendUnavailable(f"no PL buffers to lend: {self.why}")
        if role not in ("input", "output"):
            raise ValueError(f"role must be 'input' or 'output', got {role!r}")
        if cacheable is None:
            cacheable = LENT_CACHEABLE[role]
        shape, dtype, cacheable = tuple(shape), np.dtype(dtype), bool(cacheable)
        try:
            return engine.pool.lend(shape, dtype, cacheable)
        except PoolExhausted:  # a frame this thread submitted may hold the budget: settle it
            self._in_turn(_nothing)
        return engine.pool.lend(shape, dtype, cacheable, LEND_WAIT_SECONDS)

    def give_back(self, buffer: np.ndarray) -> None:
        """Return a buffer from ``lend`` -- that very object, once. After ``close()`` it is
        freed instead. A second ``give_back`` or an array this engine did not lend raises
        ``ValueError``."""
        engine = self.engine  # read once: close() on another thread may let go of it
        pool = engine.pool if engine is not None else self._closed_pool
        if pool is None:
            raise ValueError("give_back of a buffer this engine did not lend (nothing lent)")
        if pool.is_lent(buffer) and not pool.closed and hasattr(buffer, "flush"):
            buffer.flush()  # no dirty cache line may later land on a DMA's output
        pool.give_back(buffer)

    # -- pipelining (pipeline.py) -------------------------------------------------------------

    def submit(
        self, src: Any, dsize: Any, dst: Any = None, fx: Any = 0, fy: Any = 0,
        interpolation: Any = cv2.INTER_LINEAR,
    ) -> pipeline.PendingFrame:
        """Start a frame and return at once; ``.result()`` gives it (see ``pipeline.submit``)."""
        return pipeline.submit(self, (src, dsize, dst, fx, fy, interpolation))

    def stream(
        self, frames: Iterable[Any], dsize: Any, fx: Any = 0, fy: Any = 0,
        interpolation: Any = cv2.INTER_LINEAR,
    ) -> Iterator[Any]:
        """Resize an iterable of frames, pipelined, yielding results in order."""
        return pipeline.stream(self, frames, (dsize, None, fx, fy, interpolation))

    # -- routing plans (planner.py) -------------------------------------------------------------

    def replan(self) -> None:
        """Forget the routing plans: each shape is planned again at its next frame (its path,
        and so its values, may change: the PL and cv2 differ by up to 1)."""
        engine = self.engine
        if engine is not None:
            engine.planner.replan()

    # -- introspection -----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        engine = self._ensure_engine()
        out: dict[str, Any] = {"backend": self.backend or "cpu", "why": self.why}
        out.update(self._off_details)
        if engine is not None:
            desc = engine.descriptor
            out.update(
                board=desc.board,
                overlay=desc.name,
                build=desc.build,
                descriptor=desc.source,
                bitstream=str(getattr(engine.board, "bitstream", "emulated")),
                bitstream_origin=getattr(engine.board, "bitstream_origin", "emulator"),
                envelope=engine.envelope.describe(),
                pool=engine.pool.stats(),
                breaker=self.breaker.state(),
                turn_waits=self._turn.waits,  # frames that queued for the IP (not faults)
                policy=engine.planner.policy,
                costs_from=engine.costs_origin,
                costs=engine.planner.costs.describe(),
                plans=engine.planner.recent(),
            )
        return out


def _nothing() -> None:
    """The work of a turn taken only to settle a submitted frame."""


def _check_settings(
    budget_bytes: Any, deadlines: Any, breaker: Any, stats: Any, fallback: Any
) -> None:
    """Bad settings fail here, at construction, with the setting's name -- not in a frame."""
    if budget_bytes is not None and (
        isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int) or budget_bytes <= 0
    ):
        raise ValueError(f"budget_bytes must be a positive int (bytes), got {budget_bytes!r}")
    if deadlines is not None and not isinstance(deadlines, Deadlines):
        raise TypeError(f"deadlines must be a pynq_cv.Deadlines, got {deadlines!r}")
    if breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a pynq_cv.CircuitBreaker, got {breaker!r}")
    if stats is not None and not isinstance(stats, Stats):
        raise TypeError(f"stats must be a pynq_cv Stats, got {stats!r}")
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {  # None is always allowed: the default
    "backend": ((str,), "a backend name (str)"),
    "calibration": ((str, os.PathLike, dict), "a file path or a dict of cost constants"),
    "planning": ((str,), "'estimate' or 'measure'"),
    "reprogram": ((bool,), "True or False"),
    "wait_for_pl": ((int, float), "seconds (a number)"),
    "strict": ((bool,), "True or False"),
    "compare": ((bool,), "True or False"),
}


def _check_kinds(**settings: Any) -> None:
    """A setting of the wrong type fails here in one line naming it, not inside a frame."""
    for name, value in settings.items():
        kinds, what = _KINDS[name]
        if value is not None and (
            not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        ):
            raise SettingError(f"{name} must be {what}, got {value!r}")


_resizers: weakref.WeakSet[Resizer] = weakref.WeakSet()
_resizers_lock = module_lock(__name__, "_resizers_lock")  # never held while calling out
_inherited: list[Engine] = []  # a parent's engines, kept (never closed) in a forked child


def _after_fork_in_child() -> None:
    """After ``fork()`` the child holds copies of its parent's engines: the same DMA, the
    same buffers, the parent's PL lock, and locks a parent's thread may have held. Every
    ``Resizer`` gets fresh locks and lets go of its engine, which is kept, never closed here
    (that would free the parent's buffers). The next eligible frame opens an engine like
    any new process would: an emulated board of its own, or -- on a real board, whose PL
    lock the parent holds -- nothing (frames go to cv2 with ``pl_in_use``)."""
    for resizer in list(_resizers):
        engine = resizer.engine
        if engine is not None:
            _inherited.append(engine)
        resizer._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def rewatch_all() -> None:
    """Every engine decides again whether to watch its frames (see ``Resizer.rewatch``)."""
    with _resizers_lock:  # no Resizer is added meanwhile (the set would change under us)
        resizers = list(_resizers)
    for resizer in resizers:
        resizer.rewatch()


on_level_change(rewatch_all)  # DEBUG switched on or off: engines start or stop logging
