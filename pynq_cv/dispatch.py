"""``Resizer``: one engine per board -- plan per shape, eligibility, pool, driver, fallback.

Every call takes the same walk: the cheapest type checks first (so a frame the PL will never
take costs almost nothing over ``cv2.resize``), then cv2's own size rule, the loaded
overlay's envelope, the circuit breaker, and only then pool buffers and the driver. Any
doubt: the original ``cv2.resize`` computes the frame, and the reason is counted. A hardware
fault: the IP's exact arithmetic computes it on the CPU (``fallback="exact"``, the default),
so an eligible frame's values never depend on faults, or cv2 does (``fallback="cv2"``).

Determinism: an eligible frame takes its pool buffers only when its turn at the IP comes
(``turn.Turn``, first come first served), so frames queueing behind the IP hold no memory
and a frame's path depends on the frame, its arguments and the engine's plan -- never on
timing or on other threads.

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

import inspect
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import calibration as calibration_mod
from . import cv2compat, telemetry
from .backends.select import BOARD_ONLY, open_board, requested_backend
from .breaker import CircuitBreaker
from .descriptors import OverlayDescriptor, loaded_length_width
from .driver import Deadlines, InFlight, ResizeDriver
from .envelope import Envelope
from .errors import BackendUnavailable, PLFault, SettingError
from .forklocks import module_lock
from .log import debug_on, logger, on_level_change
from .planner import Planner, resolve_fps, resolve_policy
from .pool import BufferPool, PoolClosed, PoolExhausted
from .telemetry import FOLD_AT, Stats
from .timing import frame_seconds
from .turn import Turn
from .watch import COMPARE_ENV, LOG_ONLY, STRICT_ENV, Watch, env_flag

if TYPE_CHECKING:
    from . import pipeline

def _original_resize() -> Any:
    """cv2's own resize, even when this module is reloaded while cv2.resize is patched."""
    patching = sys.modules.get(__package__ + ".patching")
    original = getattr(patching, "_original", None)
    if original is not None:
        return original
    current = cv2.resize
    if getattr(current, "__module__", None) == __name__:  # patched, no record: an old copy
        return getattr(sys.modules.get(__name__), "CV2_RESIZE", current)
    return current


CV2_RESIZE = _original_resize()  # the original: patch() replaces cv2.resize, fallback never does
_U8 = np.dtype(np.uint8)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_log = logging.getLogger("pynq_cv")
FALLBACKS = ("exact", "cv2")
_EXACT_REASONS = ("breaker_open",)  # besides every "fault_*": frames the PL would have taken
_CV2_MAT: Any = getattr(cv2, "Mat", None)  # an ndarray subclass cv2 reads its own way


def _cv2_reads_as_mat(array: Any) -> bool:
    """A ``cv2.Mat`` with falsy ``wrap_channels``: cv2 takes an H x W x 3 one as a 3-D
    array, not a 3-channel image (and raises); only cv2 decides what to do with it."""
    return (
        _CV2_MAT is not None and isinstance(array, _CV2_MAT)
        and not getattr(array, "wrap_channels", False)
    )


def _under(lock: Any, step: Any, *args: Any) -> Any:
    """``step(*args)`` holding ``lock``; one line, so no interrupt lands between taking the
    lock and releasing it (a multi-line ``with`` has a line event before its exit)."""
    with lock: return step(*args)  # noqa: E701


@dataclass(eq=False)
class Job:
    """One frame on its way through the PL: what it holds (its turn, the IP through
    ``inflight``, pool buffers with ``holder=job``), the caller's target, what was copied.
    ``bound``: the most its PL part may take (``Deadlines.for_frame``), for the turn queue."""

    src: np.ndarray
    target: np.ndarray | None
    sizes: tuple[int, int, int, int]
    engine: Engine  # kept here: close() from another thread must not pull it away mid-frame
    bound: float
    in_buf: Any = None
    out_buf: Any = None
    copied_in: bool = False
    started: float = 0.0
    inflight: InFlight | None = None
    board_seconds: float = 0.0
    waited: bool = False
    ps_seconds: float = 0.0  # the plan's modelled copies and cache maintenance on the board
    in_cacheable: bool | None = None  # the plan's buffer kinds
    out_cacheable: bool | None = None


class Engine:
    """What an open PL path holds: the board, its envelope, its costs and plans, the pool
    and the driver."""

    def __init__(
        self, board: Any, budget_bytes: int | None, deadlines: Deadlines,
        policy: str | None = None, calibration_source: Any = None, backend: str = "emulator",
        planning: str | None = None, fps: float | None = None,
    ) -> None:
        desc: OverlayDescriptor = board.descriptor
        self.board = board
        self.descriptor = desc
        self.envelope = Envelope.from_descriptor(
            desc, loaded_length_width(desc, board.overlay.ip_dict)
        )
        pool_args = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
        can_free = getattr(board, "frees_memory", True)  # False on pynq 2.7
        self.pool = BufferPool(board.allocate, can_free=can_free, **pool_args)
        self.driver = ResizeDriver(
            board.overlay,
            desc.dma.name,
            desc.resizer.name,
            clock_hz=desc.clock_hz,
            deadlines=deadlines,
            reset_pl=board.reset_pl,
            scratch=self._scratch,
            shared=getattr(board, "shared_ip", None),
        )
        self._scratch_buf: Any = None
        on_board = backend == "board"  # board default: calibration_kind
        costs, self.costs_origin = calibration_mod.costs_for(
            desc.board, "board" if on_board else "emulator", calibration_source,
            getattr(desc, "cpu_family", None),
        )
        # board default: planning (measured once per shape; an emulated board measures
        # the board it emulates, see calibration.plan_measurer)
        measure = planning == "measure" or (planning is None and on_board)
        self.planner = Planner(
            costs, desc.clock_hz, policy,
            measure=calibration_mod.plan_measurer(self) if measure else None, fps=fps,
        )

    def _scratch(self, nbytes: int) -> Any:
        """A receive buffer for output a stuck IP still owes (kept, freed at close)."""
        if self._scratch_buf is None or self._scratch_buf.nbytes < nbytes:
            if self._scratch_buf is not None:
                self._scratch_buf.freebuffer()
            self._scratch_buf = self.board.allocate((nbytes,), np.uint8)
        return self._scratch_buf[:nbytes]

    def close(self) -> None:
        """Idempotent: a second close (after an interrupted one) finishes the job."""
        self.driver.close()  # waits for a frame in the IP; later begin() calls are refused
        self.pool.close()
        scratch, self._scratch_buf = self._scratch_buf, None
        if scratch is not None:
            scratch.freebuffer()
        self.board.close()


class Resizer:
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
        _check_backend_options(backend, backend_options)
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
        self._cpu_events = self.stats.cpu_events
        self.backend: str | None = None  # chosen at open
        self.why = "not opened yet"
        self._engine: Engine | None = None
        self._closed_pool: BufferPool | None = None  # where lent buffers go after close
        self._off: str | None = None  # set when the PL can never be used: the reason
        self._off_details: dict[str, Any] = {}  # what info() adds about it (e.g. pl_holder)
        self._reasons: dict[tuple[int, int, int, int], str | None] = {}
        self._warned: set[str] = set()
        self._fresh_locks()
        self.strict = env_flag(STRICT_ENV) if strict is None else bool(strict)
        self.compare = env_flag(COMPARE_ENV) if compare is None else bool(compare)
        self.rewatch()
        with _resizers_lock:  # complete before rewatch_all() can see it
            _resizers.add(self)

    def rewatch(self) -> None:
        """Decide again whether frames take the watched path (strict, compare, the frame
        observer, DEBUG logging); ``None`` keeps the plain path, which pays nothing."""
        watched = (
            self.strict or self.compare or telemetry.frame_observer is not None or debug_on()
        )
        self._watch: Watch | None = Watch(self.strict, self.compare) if watched else None

    def _fresh_locks(self) -> None:
        self._open_lock = threading.Lock()
        self._turn = Turn()  # the engine's FIFO turn at the IP (see the module docstring)
        self._pending: pipeline.PendingFrame | None = None  # submitted, PL not yet collected

    def _forget_after_fork(self) -> None:
        """In a forked child: fresh locks, no engine (the parent's board stays the
        parent's; a thread that held a lock does not exist here). Reopens lazily."""
        self._fresh_locks()
        self.stats._lock = threading.Lock()
        self.breaker._lock = threading.Lock()
        if self._engine is not None:
            self._engine = None
            self._off = None
        self._closed_pool = None

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Resizer:
        """Open the board and load its overlay now (otherwise the first frame does it).

        Raises ``BackendUnavailable`` (with the reason) when no PL path can be opened."""
        self._ensure_engine()
        if self._engine is None and self._off not in ("backend_cpu", "closed"):
            raise BackendUnavailable(self.why, reason=self._off or "no_backend")
        return self

    def _ensure_engine(self) -> Engine | None:
        if self._engine is not None or self._off is not None:
            return self._engine
        return _under(self._open_lock, self._open_engine)

    def _open_engine(self) -> Engine | None:
        if self._engine is None and self._off is None:
            try:
                try:
                    board, self.backend, self.why = open_board(
                        self.requested, **self.backend_options
                    )
                except Warning as warning:  # -W error: the news goes to the log, not a frame
                    _log.warning("pynq_cv: %s", warning)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        board, self.backend, self.why = open_board(
                            self.requested, **self.backend_options
                        )
                if board is None:
                    self._off = "backend_cpu"
                else:
                    self._engine = Engine(
                        board, self.budget_bytes, self.deadlines, self.policy,
                        self.calibration, self.backend, self.planning, self.fps,
                    )
                    self.stats.emulated = bool(
                        getattr(board, "emulated", False) or board.name.startswith("emul")
                    )
                    # INFO for a real board; select.py already says when auto chose the emulator
                    # board default: backend_notice
                    logger.log(logging.INFO if self.backend == "board" else logging.DEBUG,
                               "backend %s: %s", self.backend, self.why)
            except (BackendUnavailable, RuntimeError, OSError, ValueError) as exc:
                # a PL taken by another process or design is not a fault of ours
                self._off = getattr(exc, "reason", "no_backend")
                self._off_details = dict(getattr(exc, "details", {}))
                self.why = f"PL unavailable: {exc}"
                logger.info("no PL (%s): %s; frames run cv2.resize", self._off, self.why)
                if self._off == "no_backend":
                    self.stats.count_fault("overlay")
                self._warn_once("overlay" if self._off == "no_backend" else self._off, self.why)
            self.stats.backend = self.backend if self._engine is not None else "cpu"
        return self._engine

    def close(self) -> None:
        """Free every pool buffer and let go of the board; later frames run on the CPU.

        Safe while other threads resize: new frames go to the CPU at once, a submitted frame
        is collected, a frame in the IP is waited for (boundedly), and a frame that was being
        prepared falls back to the CPU instead of reaching a closed board. Interrupted, it
        can be called again to finish."""
        ticket = _Ticket(self.deadlines.margin)
        try:
            engine = _under(self._open_lock, self._shut)
            try:
                self._turn.enter(ticket)  # frames ahead finish first (boundedly)
            except PLFault:
                pass  # a frame that never lets go: close anyway (the driver refuses it later)
            pending = self._pending
            if pending is not None:
                pending._settle()
            self._pending = None
            self._turn.leave(ticket)
            if engine is not None:
                engine.close()
                self._closed_pool = engine.pool
                self._engine = None
        except BaseException:
            self._turn.leave(ticket)
            raise

    def _shut(self) -> Engine | None:
        self._off = "closed"
        return self._engine

    def __enter__(self) -> Resizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine | None:
        return self._engine

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
        if self._watch is not None:
            return self._resize_watched(src, dsize, dst, fx, fy, interpolation)
        # The cheapest rejections first, inline: a frame the PL never takes pays ~nothing.
        if self._off is None and isinstance(src, np.ndarray) and src.ndim == 3:
            job = self._plan(src, dsize, dst, fx, fy, interpolation)
        else:
            job = self._off or ("channels" if isinstance(src, np.ndarray) else "not_ndarray")
        if job.__class__ is str:
            if job in _EXACT_REASONS:
                return self._cpu_frame(job, (src, dsize, dst, fx, fy, interpolation))
            events = self._cpu_events
            events.append(job)  # atomic; Stats folds these into its counters
            if len(events) > FOLD_AT:
                self.stats.fold()
            return CV2_RESIZE(src, dsize, dst, fx, fy, interpolation)
        try:
            return self._run(job)
        except (PLFault, PoolExhausted) as fault:
            self._abort(job)
            reason, warning = self._fault(fault)
            out = self._cpu_frame(reason, (src, dsize, dst, fx, fy, interpolation))
            self._warn_once(*warning)  # after the frame: a warnings filter cannot lose it
            return out
        except PoolClosed:  # closed from another thread while this frame waited its turn
            self._abort(job)
            return self._cpu_frame("closed", (src, dsize, dst, fx, fy, interpolation))
        except BaseException:  # e.g. KeyboardInterrupt anywhere: give back all it holds
            self._abort(job)
            raise

    def _resize_watched(self, *args: Any) -> Any:
        """``resize`` with the watch told of each decision: logs, strict, compare, observer."""
        watch = self._watch or LOG_ONLY  # (None if un-watched meanwhile by another thread)
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

    def _run(self, job: Job) -> np.ndarray:
        """The frame's turn at the IP: buffers, post, wait, copy out, in that order."""
        self._turn.enter(job)
        pending = self._pending
        if pending is not None:
            pending._settle()  # a submitted frame still in the IP goes first (kept for its owner)
        self._prepare(job)
        self._post(job)
        self._finish(job)
        result = self._deliver(job)
        self._turn.leave(job)
        return result

    def _plan(
        self, src: Any, dsize: Any, dst: Any, fx: Any, fy: Any, interp: Any,
        pipelined: bool = False,
    ) -> Any:
        """A ``Job`` for the PL (nothing taken yet: buffers come with its turn), or a
        fallback reason (str)."""
        if self._off is not None:
            return self._off
        if type(src) is not np.ndarray:
            if not isinstance(src, np.ndarray):
                return "not_ndarray"
            if _cv2_reads_as_mat(src):
                return "cv2_mat"
        if src.ndim != 3:
            return "channels"
        if dst is not None and type(dst) is not np.ndarray and _cv2_reads_as_mat(dst):
            return "cv2_mat"
        engine = self._engine or self._ensure_engine()
        if engine is None:
            return self._off or "no_backend"
        env = engine.envelope
        if type(interp) is not int or interp not in env.interpolations:
            return "interpolation"
        if src.shape[2] != env.channels:
            return "channels"
        dtype = src.dtype
        if dtype is not env.dtype and dtype != env.dtype:  # identity first: == is slow
            return "dtype"
        out = cv2compat.output_size(src.shape, dsize, fx, fy)
        if out is None:
            return "arguments"
        sizes = (src.shape[0], src.shape[1], out[0], out[1])
        reason = self._reasons.get(sizes, False)
        if reason is False:
            if len(self._reasons) > 4096:  # a stream of ever-new sizes: keep the cache small
                self._reasons.clear()
            reason = self._reasons[sizes] = env.size_reason(*sizes)
        if reason is not None:
            return reason
        target = None
        if dst is not None:
            try:
                target = cv2compat.dst_target(dst, (out[0], out[1], env.channels), env.dtype)
            except cv2compat.Cv2Raises:
                return "dst"
        # The routing plan: fixed per shape, so the path never depends on timing or load.
        zero_in = hasattr(src, "physical_address")
        key = (sizes, not zero_in, not hasattr(target, "physical_address"), pipelined,
               getattr(src, "cacheable", True) if zero_in else True)
        plan = engine.planner._plans.get(key) or self._new_plan(engine, key)
        if plan.reason is not None:
            return plan.reason
        if not self.breaker.allow():
            return "breaker_open"
        bound = self.deadlines.for_frame(frame_seconds(*sizes, engine.descriptor.clock_hz))
        job = Job(src, target, sizes, engine, bound)
        job.ps_seconds = plan.pl.ps_seconds
        job.in_cacheable, job.out_cacheable = plan.in_cacheable, plan.out_cacheable
        return job

    def _new_plan(self, engine: Engine, key: Any) -> Any:
        """Plan a new shape. Measuring (a real board) times the PL itself, so it takes the
        engine's turn, after any submitted frame: the IP is free, the plan never depends
        on what else was running."""
        if engine.planner.measure is None:
            return engine.planner.plan(key)
        ticket = _Ticket(self.deadlines.margin + 5.0)
        try:
            try:
                self._turn.enter(ticket)
            except PLFault:  # a frame ahead never let go: plan as well as can be, now
                return engine.planner.plan(key)
            pending = self._pending
            if pending is not None:
                pending._settle()
            return engine.planner.plan(key)
        finally:
            self._turn.leave(ticket)

    def _prepare(self, job: Job) -> None:
        """Pool buffers for the frame (``holder=job``), the input copied in unless it
        already lives there. Runs in the frame's turn."""
        src, target, sizes = job.src, job.target, job.sizes
        pool = job.engine.pool
        job.started = time.perf_counter()
        # zero copy only for the pool's own buffer objects (pynq's DMA needs flush/address)
        addr = pool.address_of(src) if hasattr(src, "physical_address") else None
        zero_in = addr is not None and addr % 4 == 0 and src.flags.c_contiguous
        job.in_buf = src if zero_in else pool.acquire(src.shape, _U8, job.in_cacheable, job)
        # zero copy out only into a whole lent allocation: pynq 3.1+ invalidates the whole
        # allocation, which would drop unflushed CPU writes elsewhere in it
        whole = hasattr(target, "physical_address") and pool.root_of(target) is target
        addr = pool.address_of(target) if whole else None
        zero_out = addr is not None and addr % 4 == 0 and target.flags.c_contiguous
        shape = (sizes[2], sizes[3], src.shape[2])
        job.out_buf = target if zero_out else pool.acquire(shape, _U8, job.out_cacheable, job)
        if not zero_in:
            np.copyto(job.in_buf, src)
            job.copied_in = True

    def _post(self, job: Job) -> Job:
        """Start the frame on the PL (its turn is held: no other frame of this engine is
        in the IP)."""
        driver = job.engine.driver
        job.inflight = driver.frame(job.in_buf, job.out_buf, job.sizes)
        driver.begin(
            job.in_buf, job.out_buf, job.sizes, clean_dst=job.out_buf is job.target,
            job=job.inflight,
        )
        return job

    def _finish(self, job: Job) -> None:
        """Wait for the PL (never past the deadline)."""
        job.board_seconds = job.engine.driver.finish(job.inflight)
        job.waited = True
        self.breaker.success()

    def _deliver(self, job: Job) -> np.ndarray:
        """Copy the PL's output out of pool memory (unless it is the caller's own buffer)."""
        result = job.target
        if result is not job.out_buf:
            if result is None:
                result = np.empty(job.out_buf.shape, _U8)
            np.copyto(result, job.out_buf)
        job.engine.pool.release_held(job)
        self.stats.count_pl(
            job.in_buf.nbytes, job.out_buf.nbytes, time.perf_counter() - job.started,
            job.board_seconds + job.ps_seconds, job.copied_in, job.out_buf is not job.target,
        )
        return result

    def _abort(self, job: Job) -> None:
        """Give back everything ``job`` holds, its turn too; idempotent."""
        self._release(job)
        self._turn.leave(job)

    @staticmethod
    def _release(job: Job) -> None:
        """Give back the IP and the buffers ``job`` holds (not its turn); idempotent. The DMA
        is stopped before its buffers go back, so nothing writes them afterwards."""
        engine = job.engine
        if job.inflight is not None:
            engine.driver.abandon(job.inflight)
        engine.pool.release_held(job)

    def _fault(self, fault: Exception) -> tuple[str, tuple[str, str]]:
        """Count a fault and feed the breaker; returns the fallback reason and the warning
        to give (once per kind) after the frame is computed."""
        kind = getattr(fault, "kind", None) or (
            "cma_exhausted" if getattr(fault, "reason", "") == "cma" else "pool_budget"
        )
        self.stats.count_fault(kind)
        logger.info("PL fault %s: %s; recovery: %s", kind, fault,
                    getattr(fault, "recovery", "") or "none needed")
        if isinstance(fault, PLFault):
            if fault.recovery:
                self.stats.count_recovery(fault.recovery)
            failed = fault.recovery == "failed"
            if fault.kind not in ("busy", "closed"):  # not a sign of a sick PL
                self.breaker.failure(permanent="recovery failed" if failed else None)
        how = "the IP's exact arithmetic on the CPU" if self.fallback == "exact" else "cv2.resize"
        return f"fault_{kind}", (kind, f"{fault}; frame computed by {how}")

    def _cpu_frame(self, reason: str, args: tuple[Any, ...]) -> Any:
        """A frame the PL did not compute: with the IP's arithmetic (``fallback="exact"``)
        when the PL should have, else with cv2; counted under ``reason``."""
        self.stats.count_cpu(reason)
        if self.fallback == "exact" and (reason.startswith("fault_") or reason in _EXACT_REASONS):
            out = _exact_frame(*args)
            if out is not None:
                return out
        return CV2_RESIZE(*args)

    def _warn_once(self, kind: str, message: str) -> None:
        """Warn once per kind, pointing at the caller's line; a warnings filter that turns
        it into an error cannot lose a frame (it is logged instead)."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        text = f"pynq_cv: {kind}: {message}"
        try:
            warnings.warn(text, RuntimeWarning, stacklevel=_caller_stacklevel())
        except Warning:  # -W error: the frame is already computed; keep the news in the log
            _log.warning(text)

    # -- zero copy ---------------------------------------------------------------------------

    def lend(
        self, shape: tuple[int, ...], dtype: Any = np.uint8, role: str = "input"
    ) -> np.ndarray:
        """A pool buffer to fill in place (e.g. ``cap.read(image=buf)``): no copy into the PL.

        Give it back with ``give_back`` when done. Passing it as ``dst`` skips the copy out
        (lend it with ``role="output"``: the buffer kind is chosen for its role, see
        ``costs.roles``). Raises ``BackendUnavailable`` when there is no PL path.
        """
        engine = self._ensure_engine()
        if engine is None:
            raise BackendUnavailable(f"no PL buffers to lend: {self.why}")
        if role not in ("input", "output"):
            raise ValueError(f"role must be 'input' or 'output', got {role!r}")
        planner = engine.planner
        cacheable = planner.in_cacheable if role == "input" else planner.out_cacheable
        return engine.pool.lend(tuple(shape), np.dtype(dtype), cacheable)

    def give_back(self, buffer: np.ndarray) -> None:
        """Return a buffer from ``lend`` -- that very object, once. After ``close()`` it is
        freed instead. A second ``give_back`` or an array this engine did not lend raises
        ``ValueError``."""
        pool = self._engine.pool if self._engine is not None else self._closed_pool
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
        from .pipeline import submit  # pipelining builds on this module

        return submit(self, (src, dsize, dst, fx, fy, interpolation))

    def stream(
        self, frames: Iterable[Any], dsize: Any, fx: Any = 0, fy: Any = 0,
        interpolation: Any = cv2.INTER_LINEAR,
    ) -> Iterator[Any]:
        """Resize an iterable of frames, pipelined, yielding results in order."""
        from .pipeline import stream

        return stream(self, frames, (dsize, None, fx, fy, interpolation))

    # -- routing plans (planner.py) -------------------------------------------------------------

    def replan(self) -> None:
        """Forget the routing plans: each shape is planned again at its next frame (its path,
        and so its values, may change: the PL and cv2 differ by up to 1)."""
        engine = self._engine
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


class _Ticket:
    """A place in the turn for work that is not a frame (close, collecting a result)."""

    __slots__ = ("bound",)

    def __init__(self, bound: float) -> None:
        self.bound = bound


def _exact_frame(
    src: Any, dsize: Any, dst: Any = None, fx: Any = 0, fy: Any = 0, interpolation: Any = 1
) -> Any:
    """The IP's output for cv2's arguments, computed on the CPU; None if not applicable."""
    if not (isinstance(src, np.ndarray) and src.ndim == 3 and src.dtype == _U8):
        return None
    out = cv2compat.output_size(src.shape, dsize, fx, fy)
    if out is None:
        return None
    from .backends.emulator.arith import resize_exact  # the fault path only

    result = resize_exact(np.ascontiguousarray(src), out[0], out[1])
    if dst is not None:
        try:
            target = cv2compat.dst_target(dst, result.shape, _U8)
        except cv2compat.Cv2Raises:
            return None
        if target is not None:
            np.copyto(target, result)
            return target
    return result


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside pynq_cv."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


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


def _check_backend_options(backend: str | None, options: dict[str, Any]) -> None:
    """Options the chosen built-in backend does not take fail at construction."""
    if not options:
        return
    name = (backend or os.environ.get("PYNQ_CV_BACKEND", "")).strip().lower() or "auto"
    from .backends.board import PynqBoard
    from .backends.emulator import EmulatedBoard

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
        engine = resizer._engine
        if engine is not None:
            _inherited.append(engine)
        resizer._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the process-wide default engine (what pynq_cv.resize and the patched cv2.resize use) ----

_default: Resizer | None = None
_default_lock = module_lock(__name__, "_default_lock")


# -- which engines watch their frames ------------------------------------------------------


def rewatch_all() -> None:
    """Every engine decides again whether to watch its frames (see ``Resizer.rewatch``)."""
    with _resizers_lock:  # no Resizer is added meanwhile (the set would change under us)
        resizers = list(_resizers)
    for resizer in resizers:
        resizer.rewatch()


on_level_change(rewatch_all)  # DEBUG switched on or off: engines start or stop logging


def default_resizer() -> Resizer:
    """The shared ``Resizer``, created (not opened) on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Resizer()
    return _default


def use_backend(backend: str | None = None, **options: Any) -> Resizer:
    """Replace the shared engine with one on ``backend`` ("board", "emulator", "cpu", or an
    entry-point name; None: ``PYNQ_CV_BACKEND`` or auto). The old one is closed."""
    global _default
    with _default_lock:
        old, _default = _default, Resizer(backend, **options)
    if old is not None:
        old.close()
    return _default


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
    if not kwargs and 2 <= len(args) <= 6:
        src = args[0]
        if (
            (resizer._off is not None or not (isinstance(src, np.ndarray) and src.ndim == 3))
            and resizer._watch is None
        ):
            # Resizer.resize's first rejection, inlined on the hottest path (the patched
            # cv2.resize): one call layer less, and cv2 gets the caller's own arguments
            events = resizer._cpu_events
            kind = "channels" if isinstance(src, np.ndarray) else "not_ndarray"
            events.append(resizer._off or kind)
            if len(events) > FOLD_AT:
                resizer.stats.fold()
            return CV2_RESIZE(*args)
        return resizer.resize(*args)
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
    with _default_lock:
        old = _default
        if old is not None:
            _default = Resizer(
                old.requested, budget_bytes=old.budget_bytes, deadlines=old.deadlines,
                breaker=old.breaker, stats=old.stats, policy=old.policy,
                calibration=old.calibration, planning=old.planning, fallback=old.fallback,
                strict=old.strict, compare=old.compare, fps=old.fps, **old.backend_options,
            )
            old.breaker.reset()  # a fresh engine deserves a fresh chance
    if old is not None:
        old.close()
