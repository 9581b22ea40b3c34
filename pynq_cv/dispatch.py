"""``Resizer``: one engine per board -- plan per shape, eligibility, pool, driver, fallback.

Every call takes the same walk: the cheapest type checks first (so a frame the PL will never
take costs almost nothing over ``cv2.resize``), then cv2's own size rule, the loaded
overlay's envelope, the circuit breaker, and only then pool buffers and the driver. Any
doubt, any fault: the original ``cv2.resize`` computes the frame, and the reason is counted.
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
from .backends.select import open_board, requested_backend
from .breaker import CircuitBreaker
from .descriptors import OverlayDescriptor, loaded_length_width
from .driver import Deadlines, InFlight, ResizeDriver
from .envelope import Envelope
from .errors import BackendUnavailable, PLFault
from .log import debug_on, logger, on_level_change
from .planner import Planner, resolve_policy
from .pool import BufferPool, PoolClosed, PoolExhausted
from .telemetry import FOLD_AT, Stats
from .watch import COMPARE_ENV, LOG_ONLY, STRICT_ENV, Watch, env_flag

if TYPE_CHECKING:
    from . import pipeline

CV2_RESIZE = cv2.resize  # the original: patch() replaces cv2.resize, the fallback never does
_U8 = np.dtype(np.uint8)
_DEBUG = logging.DEBUG


@dataclass
class Job:
    """One frame on its way through the PL: buffers, the caller's target, what was copied."""

    src: np.ndarray
    in_buf: Any
    out_buf: Any
    target: np.ndarray | None
    sizes: tuple[int, int, int, int]
    pooled: tuple[Any, ...]  # buffers to give back to the pool
    copied_in: bool
    started: float
    engine: Engine  # kept here: close() from another thread must not pull it away mid-frame
    inflight: InFlight | None = None
    board_seconds: float = 0.0
    waited: bool = False
    ps_seconds: float = 0.0  # the plan's modelled copies and cache maintenance on the board


class Engine:
    """What an open PL path holds: the board, its envelope, its costs and plans, the pool
    and the driver."""

    def __init__(
        self, board: Any, budget_bytes: int | None, deadlines: Deadlines,
        policy: str | None = None, calibration_source: Any = None, backend: str = "emulator",
        planning: str | None = None,
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
        on_board = backend == "board"
        costs, self.costs_origin = calibration_mod.costs_for(
            desc.board, "board" if on_board else "emulator", calibration_source
        )
        # Measure-at-plan-time only on a real board: on the emulator it would time the host.
        measure = planning == "measure" or (planning is None and on_board)
        self.planner = Planner(
            costs, desc.clock_hz, policy,
            measure=calibration_mod.plan_measurer(self) if measure else None,
        )

    def _scratch(self, nbytes: int) -> Any:
        """A receive buffer for output a stuck IP still owes (kept, freed at close)."""
        if self._scratch_buf is None or self._scratch_buf.nbytes < nbytes:
            if self._scratch_buf is not None:
                self._scratch_buf.freebuffer()
            self._scratch_buf = self.board.allocate((nbytes,), np.uint8)
        return self._scratch_buf[:nbytes]

    def close(self) -> None:
        self.driver.close()  # waits for a frame in the IP; later begin() calls are refused
        self.pool.close()
        if self._scratch_buf is not None:
            self._scratch_buf.freebuffer()
            self._scratch_buf = None
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

    ``strict=True`` (default: ``PYNQ_CV_STRICT``) raises ``FallbackError`` instead of
    computing a uint8 H x W x 3 frame on the CPU; ``compare=True`` (default:
    ``PYNQ_CV_COMPARE``) also computes PL frames with cv2 and counts the difference in
    ``stats()["compare"]`` (see watch.py).
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
        strict: bool | None = None,
        compare: bool | None = None,
        **backend_options: Any,
    ) -> None:
        """``policy``: which eligible frames go to the PL (see ``planner``; default
        ``PYNQ_CV_POLICY`` or ``auto``). ``calibration``: a calibration file or a dict of cost
        constants (default: ``PYNQ_CV_CALIBRATION``, else the per-user file). ``planning``:
        ``"estimate"`` (the cost model) or ``"measure"`` (time both paths on scratch buffers
        once per new shape; the default on a real board). ``overlay``, ``reprogram``,
        ``wait_for_pl``: see the class docstring."""
        if overlay is not None and backend is None:
            backend = "board"  # the caller's own overlay: a real board, whatever the env says
        chosen = requested_backend(backend)  # raises now, at the caller's line, on a typo
        if overlay is not None and chosen != "board":
            raise BackendUnavailable(f"overlay= needs the board backend, not {chosen!r}")
        if wait_for_pl is not None and not 0.0 <= float(wait_for_pl) < float("inf"):
            raise ValueError(f"wait_for_pl must be finite seconds >= 0, not {wait_for_pl!r}")
        for key, value in (
            ("overlay", overlay), ("reprogram", reprogram), ("wait_for_pl", wait_for_pl),
        ):
            if value is not None:
                backend_options[key] = value
        self.policy = resolve_policy(policy)  # a bad name fails here, not inside a frame
        if planning not in (None, "estimate", "measure"):
            raise ValueError(f"planning must be 'estimate' or 'measure', got {planning!r}")
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
        self._cpu_events = self.stats.cpu_events
        self.backend: str | None = None  # chosen at open
        self.why = "not opened yet"
        self._engine: Engine | None = None
        self._closed_pool: BufferPool | None = None  # where lent buffers go after close
        self._off: str | None = None  # set when the PL can never be used: the reason
        self._off_details: dict[str, Any] = {}  # what info() adds about it (e.g. pl_holder)
        self._open_lock = threading.Lock()
        self._reasons: dict[tuple[int, int, int, int], str | None] = {}
        self._warned: set[str] = set()
        self._pipe_lock = threading.RLock()
        self._pending: pipeline.PendingFrame | None = None  # submitted, PL not yet collected
        self.strict = env_flag(STRICT_ENV) if strict is None else bool(strict)
        self.compare = env_flag(COMPARE_ENV) if compare is None else bool(compare)
        self.rewatch()

    def rewatch(self) -> None:
        """Decide again whether frames take the watched path (strict, compare, the frame
        observer, DEBUG logging); ``None`` keeps the plain path, which pays nothing."""
        watched = (
            self.strict or self.compare or telemetry.frame_observer is not None or debug_on()
        )
        self._watch: Watch | None = Watch(self.strict, self.compare) if watched else None
        _all_resizers.add(self)

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
        with self._open_lock:
            if self._engine is None and self._off is None:
                try:
                    board, self.backend, self.why = open_board(
                        self.requested, **self.backend_options
                    )
                    if board is None:
                        self._off = "backend_cpu"
                    else:
                        self._engine = Engine(
                            board, self.budget_bytes, self.deadlines, self.policy,
                            self.calibration, self.backend, self.planning,
                        )
                        _open_engines.add(self)
                        self.stats.emulated = bool(
                            getattr(board, "emulated", False) or board.name.startswith("emul")
                        )
                    # INFO for a real board; select.py already says when auto chose the emulator
                    logger.log(logging.INFO if self.backend == "board" else _DEBUG,
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
        prepared falls back to the CPU instead of reaching a closed board."""
        with self._open_lock:
            self._off = "closed"
            with self._pipe_lock:
                pending, self._pending = self._pending, None
                if pending is not None:
                    try:
                        pending.result()
                    except Exception:  # noqa: BLE001 -- closing: the frame's owner sees it
                        pass
            if self._engine is not None:
                self._engine.close()
                self._closed_pool = self._engine.pool
                self._engine = None

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
            events = self._cpu_events
            events.append(job)  # atomic; Stats folds these into its counters
            if len(events) > FOLD_AT:
                self.stats.fold()
            return CV2_RESIZE(src, dsize, dst, fx, fy, interpolation)
        try:
            return self._collect(self._post(job))
        except (PLFault, PoolExhausted) as fault:
            self.stats.count_cpu(self._fault(fault))
            return CV2_RESIZE(src, dsize, dst, fx, fy, interpolation)
        except BaseException:  # e.g. KeyboardInterrupt between posting and collecting
            job.engine.driver.abandon()
            self._release(job)
            raise

    def _resize_watched(self, *args: Any) -> Any:
        """``resize`` with the watch told of each decision: logs, strict, compare, observer."""
        watch = self._watch or LOG_ONLY  # (None if un-watched meanwhile by another thread)
        job = self._plan(*args)
        if job.__class__ is str:
            watch.fallback(self, args[0], args[1], args[3], args[4], job)  # strict: raises
            self.stats.count_cpu(job)
            return CV2_RESIZE(*args)
        try:
            result = self._collect(self._post(job))
        except (PLFault, PoolExhausted) as fault:
            reason = self._fault(fault)
            watch.fallback(self, args[0], args[1], args[3], args[4], reason)
            self.stats.count_cpu(reason)
            return CV2_RESIZE(*args)
        except BaseException:
            job.engine.driver.abandon()
            self._release(job)
            raise
        watch.on_pl(self, args, result, job.board_seconds, job.in_buf.nbytes + job.out_buf.nbytes)
        return result

    def _plan(
        self, src: Any, dsize: Any, dst: Any, fx: Any, fy: Any, interp: Any,
        pipelined: bool = False,
    ) -> Any:
        """A prepared ``Job`` for the PL, or a fallback reason (str)."""
        if self._off is not None:
            return self._off
        if type(src) is not np.ndarray and not isinstance(src, np.ndarray):
            return "not_ndarray"
        if src.ndim != 3:
            return "channels"
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
        plan = engine.planner._plans.get(key) or engine.planner.plan(key)
        if plan.reason is not None:
            return plan.reason
        if not self.breaker.allow():
            return "breaker_open"
        try:
            job = self._prepare(engine, src, sizes, target, plan.in_cacheable, plan.out_cacheable)
            job.ps_seconds = plan.pl.ps_seconds
            return job
        except PoolExhausted as exc:
            return self._fault(exc)
        except PoolClosed:
            return "closed"

    def _prepare(
        self, engine: Engine, src: np.ndarray, sizes: tuple[int, int, int, int],
        target: np.ndarray | None, in_cacheable: bool | None = None,
        out_cacheable: bool | None = None,
    ) -> Job:
        """Pool buffers for one frame, with the input copied in unless it already lives there."""
        pool = engine.pool
        started = time.perf_counter()
        # zero copy only for the pool's own buffer objects (pynq's DMA needs flush/address)
        addr = pool.address_of(src) if hasattr(src, "physical_address") else None
        zero_in = addr is not None and addr % 4 == 0 and src.flags.c_contiguous
        in_buf = src if zero_in else pool.acquire(src.shape, _U8, in_cacheable)
        pooled: tuple[Any, ...] = () if zero_in else (in_buf,)
        # zero copy out only into a whole lent allocation: pynq 3.1+ invalidates the whole
        # allocation, which would drop unflushed CPU writes elsewhere in it
        whole = hasattr(target, "physical_address") and pool.root_of(target) is target
        addr = pool.address_of(target) if whole else None
        zero_out = addr is not None and addr % 4 == 0 and target.flags.c_contiguous
        try:
            out_buf = target if zero_out else pool.acquire(
                (sizes[2], sizes[3], src.shape[2]), _U8, out_cacheable
            )
        except BaseException:
            for buf in pooled:
                pool.release(buf)
            raise
        if not zero_out:
            pooled += (out_buf,)
        if not zero_in:
            try:
                np.copyto(in_buf, src)
            except BaseException:
                for buf in pooled:
                    pool.release(buf)
                raise
        return Job(src, in_buf, out_buf, target, sizes, pooled, not zero_in, started, engine)

    def _post(self, job: Job) -> Job:
        """Start the frame on the PL, first freeing the IP of a submitted frame if need be
        (under the pipeline's lock, so no submit() can slip a frame in between)."""
        try:
            with self._pipe_lock:
                if self._pending is not None:
                    self._pending._wait()
                job.inflight = job.engine.driver.begin(
                    job.in_buf, job.out_buf, job.sizes, clean_dst=job.out_buf is job.target
                )
        except BaseException:
            self._release(job)
            raise
        return job

    def _collect(self, job: Job) -> np.ndarray:
        """Wait for the PL, then hand the caller a frame no later call will overwrite."""
        self._finish(job)
        return self._deliver(job)

    def _finish(self, job: Job) -> None:
        """Wait for the PL (never past the deadline); on a fault the buffers go back."""
        try:
            job.board_seconds = job.engine.driver.finish(job.inflight)
        except BaseException:
            self._release(job)
            raise
        self.breaker.success()

    def _deliver(self, job: Job) -> np.ndarray:
        """Copy the PL's output out of pool memory (unless it is the caller's own buffer)."""
        try:
            result = job.target
            if result is not job.out_buf:
                if result is None:
                    result = np.empty(job.out_buf.shape, _U8)
                np.copyto(result, job.out_buf)
        finally:
            self._release(job)
        self.stats.count_pl(
            job.in_buf.nbytes, job.out_buf.nbytes, time.perf_counter() - job.started,
            job.board_seconds + job.ps_seconds, job.copied_in, job.out_buf is not job.target,
        )
        return result

    def _release(self, job: Job) -> None:
        for buf in job.pooled:
            job.engine.pool.release(buf)  # a closed pool frees it instead
        job.pooled = ()

    def _fault(self, fault: Exception) -> str:
        """Count a fault, feed the breaker, warn once; returns the fallback reason."""
        kind = getattr(fault, "kind", None) or (
            "cma_exhausted" if getattr(fault, "reason", "") == "cma" else "pool_budget"
        )
        self.stats.count_fault(kind)
        logger.info("PL fault %s: %s; recovery: %s; frame computed by cv2.resize", kind, fault,
                    getattr(fault, "recovery", "") or "none needed")
        if isinstance(fault, PLFault):
            if fault.recovery:
                self.stats.count_recovery(fault.recovery)
            failed = fault.recovery == "failed"
            if fault.kind not in ("busy", "closed"):  # not a sign of a sick PL
                self.breaker.failure(permanent="recovery failed" if failed else None)
        self._warn_once(kind, f"{fault}; frame computed by cv2.resize")
        return f"fault_{kind}"

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"pynq_cv: {kind}: {message}", RuntimeWarning,
                          stacklevel=_callers_level())

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
        """Return a lent buffer (after ``close()`` it is freed instead)."""
        pool = self._engine.pool if self._engine is not None else self._closed_pool
        if pool is not None:
            if hasattr(buffer, "flush"):
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
                policy=engine.planner.policy,
                costs_from=engine.costs_origin,
                costs=engine.planner.costs.describe(),
                plans=engine.planner.recent(),
            )
        return out


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside pynq_cv (for its caller's warn()):
    a warning points at the user's line, however deep in pynq_cv it was raised."""
    frame, level = sys._getframe(1), 1  # level 1: the function calling warn()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


# -- a forked child never drives its parent's PL ---------------------------------------------

_open_engines: weakref.WeakSet[Resizer] = weakref.WeakSet()
_inherited: list[Engine] = []  # a parent's engines, kept (never closed) in a forked child


def _forget_the_parents_pl() -> None:
    """After ``fork()`` the child holds copies of its parent's engines: the same DMA, the
    same buffers, and the parent's PL lock. Its engines stop using them -- frames go to cv2
    with ``pl_in_use`` -- and are never closed here (that would free the parent's buffers);
    a new engine in the child takes the lock like any other process."""
    for resizer in list(_open_engines):
        engine, resizer._engine = resizer._engine, None
        if engine is not None:
            _inherited.append(engine)
            resizer._off = "pl_in_use"
            resizer._off_details = {"pl_holder": os.getppid()}
            resizer.why = "PL unavailable: it belongs to the parent process (this is a fork)"
            resizer._open_lock = threading.Lock()  # may have been held by a parent's thread
            resizer._pipe_lock = threading.RLock()
            resizer._pending = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_parents_pl)


# -- which engines watch their frames ------------------------------------------------------

_all_resizers: weakref.WeakSet[Resizer] = weakref.WeakSet()


def rewatch_all() -> None:
    """Every engine decides again whether to watch its frames (see ``Resizer.rewatch``)."""
    for resizer in list(_all_resizers):
        resizer.rewatch()


on_level_change(rewatch_all)  # DEBUG switched on or off: engines start or stop logging


# -- the process-wide default engine (what pynq_cv.resize and the patched cv2.resize use) ----

_default: Resizer | None = None
_default_lock = threading.Lock()


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
    except TypeError:
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
                calibration=old.calibration, planning=old.planning, strict=old.strict,
                compare=old.compare, **old.backend_options,
            )
            old.breaker.reset()  # a fresh engine deserves a fresh chance
    if old is not None:
        old.close()
