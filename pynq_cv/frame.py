"""The frame's steps on the PL: admitted (``_plan``), buffers (``_prepare``), started
(``_post``), waited for (``_finish``), copied out (``_deliver``); or given back (``_abort``,
``_release``) and computed on the CPU (``_fault``, ``_cpu_frame``).

A ``Job`` records everything a frame takes, in the statement that takes it: its place in
the turn, the IP (``InFlight.claims_ip``), its pool buffers (``holder=job``). Every step that
gives something back is idempotent, so every exception handler can repeat it (Ctrl-C lands
anywhere). The steps run in the frame's turn at the IP (``turn.Turn``): a frame takes its
pool buffers only when its turn comes, so frames queueing behind the IP hold no memory and
a frame's path depends on the frame, its arguments and the engine's plan -- never on timing
or on other threads.

``FrameSteps`` is the part of ``resizer.Resizer`` that walks one frame (``pipeline`` walks
submitted frames with the same steps); the engine's life and public face are in
``resizer.py``. A hardware fault: the IP's exact arithmetic (``arith``) computes the frame
on the CPU (``fallback="exact"``, the default), so an eligible frame's values never depend
on faults, or cv2 does (``fallback="cv2"``).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import cv2compat
from .arith import resize_exact
from .cv2compat import CV2_RESIZE
from .driver import InFlight
from .errors import PLFault
from .log import logger
from .timing import frame_seconds

if TYPE_CHECKING:
    from .breaker import CircuitBreaker
    from .driver import Deadlines
    from .engine import Engine
    from .pipeline import PendingFrame
    from .pool import BufferPool
    from .telemetry import Stats
    from .turn import Turn

_U8 = np.dtype(np.uint8)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_log = logging.getLogger("pynq_cv")
EXACT_REASONS = ("breaker_open",)  # besides every "fault_*": frames the PL would have taken
_CV2_MAT: Any = getattr(cv2, "Mat", None)  # an ndarray subclass cv2 reads its own way


def cv2_reads_as_mat(array: Any) -> bool:
    """A ``cv2.Mat`` with falsy ``wrap_channels``: cv2 takes an H x W x 3 one as a 3-D
    array, not a 3-channel image (and raises); only cv2 decides what to do with it."""
    return (
        _CV2_MAT is not None and isinstance(array, _CV2_MAT)
        and not getattr(array, "wrap_channels", False)
    )


def under(lock: Any, step: Any, *args: Any) -> Any:
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


class Ticket:
    """A place in the turn for work that is not a frame (close, collecting a result)."""

    __slots__ = ("bound",)

    def __init__(self, bound: float) -> None:
        self.bound = bound


class FrameSteps:
    """One frame's walk, as methods of the engine (``resizer.Resizer``) that owns the state
    they use: its turn, its submitted frame, its plans, breaker, counters and fallback."""

    off_reason: str | None
    engine: Engine | None
    _reasons: dict[tuple[int, int, int, int], str | None]
    _warned: set[str]
    _turn: Turn
    _pending: PendingFrame | None
    breaker: CircuitBreaker
    deadlines: Deadlines
    stats: Stats
    fallback: str

    def _ensure_engine(self) -> Engine | None:  # resizer.py: the engine's life
        raise NotImplementedError

    def _run(self, job: Job) -> np.ndarray:
        """The frame's turn at the IP: buffers, post, wait, copy out, in that order."""
        self._turn.enter(job)
        pending = self._pending
        if pending is not None:
            pending.settle_in_turn()  # a submitted frame in the IP goes first (kept for its owner)
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
        if self.off_reason is not None:
            return self.off_reason
        if type(src) is not np.ndarray:
            if not isinstance(src, np.ndarray):
                return "not_ndarray"
            if cv2_reads_as_mat(src):
                return "cv2_mat"
        if src.ndim != 3:
            return "channels"
        if dst is not None and type(dst) is not np.ndarray and cv2_reads_as_mat(dst):
            return "cv2_mat"
        engine = self.engine or self._ensure_engine()
        if engine is None:
            return self.off_reason or "no_backend"
        env = engine.envelope
        if type(interp) is not int:  # as cv2 reads it: None is the default, INTER_LINEAR;
            # np.int32(1) or an IntEnum is 1
            interp = cv2.INTER_LINEAR if interp is None else cv2compat.int_argument(interp)
        if interp not in env.interpolations:
            return "interpolation"
        if src.shape[2] != env.channels:
            return "channels"
        dtype = src.dtype
        if dtype is not env.dtype and dtype != env.dtype:  # identity first: == is slow
            return "dtype"
        return self._admit(engine, src, dsize, dst, fx, fy, pipelined)

    def _admit(
        self, engine: Engine, src: np.ndarray, dsize: Any, dst: Any, fx: Any, fy: Any,
        pipelined: bool = False,
    ) -> Any:
        """``_plan`` past the checks of the frame's kind (an H x W x channels array of the
        envelope's dtype, an interpolation it takes, ``engine`` open): the sizes, ``dst``,
        the routing plan and the breaker. A ``Job``, or the fallback reason."""
        env = engine.envelope
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
        # Which buffers the DMA uses in place, and their kinds, are decided as _prepare does.
        pool = engine.pool
        zero_in = in_place_input(engine, src)
        zero_out = in_place_output(pool, target)
        key = (sizes, not zero_in, not zero_out, pipelined,
               buffer_kind(pool, src) if zero_in else True,
               buffer_kind(pool, target) if zero_out else True)
        plan = engine.planner.kept(key) or self._new_plan(engine, key)
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
        # a frame ahead that never lets go: plan as well as can be, now
        return self._in_turn(engine.planner.plan, key)

    def _in_turn(self, work: Any, *args: Any) -> Any:
        """``work(*args)`` in the engine's turn, once a submitted frame in the IP is settled
        (its result kept for its owner, its buffers given back); if a frame ahead never
        lets go of the turn, ``work`` runs all the same, outside it."""
        ticket = Ticket(self.deadlines.margin + 5.0)
        try:
            try:
                self._turn.enter(ticket)
            except PLFault:
                return work(*args)
            pending = self._pending
            if pending is not None:
                pending.settle_in_turn()
            return work(*args)
        finally:
            self._turn.leave(ticket)

    def _prepare(self, job: Job) -> None:
        """Pool buffers for the frame (``holder=job``), the input copied in unless it
        already lives there. Runs in the frame's turn."""
        src, target, sizes = job.src, job.target, job.sizes
        pool = job.engine.pool
        job.started = time.perf_counter()
        zero_in = in_place_input(job.engine, src)
        job.in_buf = src if zero_in else pool.acquire(src.shape, _U8, job.in_cacheable, job)
        zero_out = in_place_output(pool, target)
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
        if self.fallback == "exact" and (reason.startswith("fault_") or reason in EXACT_REASONS):
            out = exact_frame(*args)
            if out is not None:
                return out
        return CV2_RESIZE(*args)

    def _warn_once(self, kind: str, message: str) -> None:
        """Warn once per kind, pointing at the caller's line; a warnings filter that turns
        it into an error cannot lose a frame (it is logged instead)."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        text = f"{kind}: {message}"
        try:
            warnings.warn(f"pynq_cv: {text}", RuntimeWarning, stacklevel=_caller_stacklevel())
        except Warning:  # -W error: the frame is already computed; keep the news in the log
            _log.warning("%s", text)  # the record names pynq_cv already


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside pynq_cv."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level


# -- the steps ``pipeline`` walks a submitted frame by -------------------------------------
# A submitted frame takes the same steps as any other; ``pipeline`` reaches them only
# through these functions, so no other module touches an engine's private state. Each goes
# through the engine's own method (so a test may replace a step on one instance), and each
# is called by the holder of the engine's turn, except ``plan_submitted``, ``turn_of``,
# ``count_fault``, ``cpu_frame`` and ``warn_once``, which need no turn.


def plan_submitted(rz: FrameSteps, args: tuple[Any, ...]) -> Any:
    """``_plan`` for a pipelined frame with cv2's ``args``: a ``Job`` or the reason."""
    return rz._plan(*args, pipelined=True)


def turn_of(rz: FrameSteps) -> Turn:
    """The engine's FIFO turn at the IP (read anew each time: a test may replace it)."""
    return rz._turn


def pending_of(rz: FrameSteps) -> PendingFrame | None:
    """The submitted frame whose PL part is not yet collected (at most one)."""
    return rz._pending


def hold_pending(rz: FrameSteps, handle: PendingFrame | None) -> None:
    """Make ``handle`` the engine's submitted frame (in the turn)."""
    rz._pending = handle


def drop_pending(rz: FrameSteps, handle: PendingFrame) -> None:
    """The engine no longer has ``handle`` as its submitted frame (in the turn)."""
    if rz._pending is handle:
        rz._pending = None


def start(rz: FrameSteps, job: Job) -> None:
    """Buffers for ``job`` and its start on the PL: ``_prepare`` then ``_post``."""
    rz._prepare(job)
    rz._post(job)


def finish(rz: FrameSteps, job: Job) -> None:
    """Wait for ``job``'s PL part (``_finish``)."""
    rz._finish(job)


def deliver(rz: FrameSteps, job: Job) -> np.ndarray:
    """Copy ``job``'s output out and give its buffers back (``_deliver``)."""
    return rz._deliver(job)


def release(rz: FrameSteps, job: Job) -> None:
    """Give back the IP and buffers ``job`` holds, not its turn (``_release``; idempotent)."""
    rz._release(job)


def count_fault(rz: FrameSteps, fault: Exception) -> tuple[str, tuple[str, str]]:
    """Count ``fault`` (``_fault``): the fallback reason and the warning to give later."""
    return rz._fault(fault)


def cpu_frame(rz: FrameSteps, reason: str, args: tuple[Any, ...]) -> Any:
    """A frame the PL did not compute, counted under ``reason`` (``_cpu_frame``)."""
    return rz._cpu_frame(reason, args)


def warn_once(rz: FrameSteps, kind: str, message: str) -> None:
    """Give a fault's warning, once per kind (``_warn_once``)."""
    rz._warn_once(kind, message)


def _reaches(board: Any, array: Any) -> bool:
    """The board's DMA can read ``array`` where it lies (an optional board method)."""
    reaches = getattr(board, "reaches", None)
    return reaches is not None and bool(reaches(array))


def in_place_input(engine: Engine, src: Any) -> bool:
    """Whether the DMA reads ``src`` in place (no copy in): the pool's
    own buffers (pynq's DMA needs flush and address), and any buffer the board says its
    DMA reaches (``PynqBoard.reaches``: pynq.allocate'd), word-aligned and contiguous."""
    if not hasattr(src, "physical_address"):
        return False
    addr = engine.pool.address_of(src)
    if addr is None and _reaches(engine.board, src):
        addr = int(src.physical_address)
    return addr is not None and addr % 4 == 0 and bool(src.flags.c_contiguous)


def in_place_output(pool: BufferPool, target: Any) -> bool:
    """Whether the DMA writes the output into ``target`` in place (no copy out): only a
    whole lent allocation -- pynq 3.1+ invalidates the whole allocation, which would drop
    unflushed CPU writes elsewhere in it."""
    if not hasattr(target, "physical_address") or pool.root_of(target) is not target:
        return False
    addr = pool.address_of(target)
    return addr is not None and addr % 4 == 0 and bool(target.flags.c_contiguous)


def buffer_kind(pool: BufferPool, array: Any) -> bool:
    """Whether ``array``'s memory is cacheable: what the pool asked for its own buffers
    (pynq 4.0 reports every buffer as cacheable), else what the buffer says."""
    kind = pool.kind_of(array)
    return bool(getattr(array, "cacheable", True)) if kind is None else kind


def exact_frame(
    src: Any, dsize: Any, dst: Any = None, fx: Any = 0, fy: Any = 0, interpolation: Any = 1
) -> Any:
    """The IP's output for cv2's arguments, computed on the CPU; None if not applicable."""
    if not (isinstance(src, np.ndarray) and src.ndim == 3 and src.dtype == _U8):
        return None
    out = cv2compat.output_size(src.shape, dsize, fx, fy)
    if out is None:
        return None
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
