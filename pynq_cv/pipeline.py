"""Pipelined submission: while the PL resizes frame N, the CPU prepares N+1 and delivers N-1.

``submit`` returns a ``PendingFrame`` at once; results come back in submission order. At
most one frame is in the PL and one being prepared, so pool use stays at two frames of
buffers. A ``dst`` given to ``submit`` is written when its frame runs: do not hand the same
``dst`` to the next frame before collecting this one.

Everything here runs in the engine's turn, so a submitted frame's buffers are taken in
turn like any other frame's. A submitted frame walks the same steps as any other, through
``frame``'s small interface for this module (``frame.start``, ``frame.finish``, ...): no
private state of the engine is touched here. An interrupt (Ctrl-C) in ``submit`` gives
back what the new frame took; an interrupt while some call waits for a submitted frame
turns that frame into a CPU frame for its owner -- never an error in someone else's frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import frame as steps
from .errors import PLFault
from .frame import Job, Ticket
from .pool import PoolClosed, PoolExhausted
from .turn import SLACK

if TYPE_CHECKING:
    from .resizer import Resizer  # the engine calls us; we walk its frame steps (frame.py)

COLLECT_BOUND = 0.05  # a place in the turn to copy a finished frame out: seconds


def submit(resizer: Resizer, args: tuple[Any, ...]) -> PendingFrame:
    """Start a frame with cv2's ``args`` on ``resizer``; the previous one is collected first
    (its copy-out overlapping this frame's PL work). The frame's place in the turn is left
    here, once, on every path; a fault (``busy`` included) makes it a CPU frame."""
    handle = PendingFrame(resizer, args, None)
    try:
        handle.job = steps.plan_submitted(resizer, args)
    except Exception as exc:  # noqa: BLE001 -- surfaces from .result(), like cv2 would
        handle.job = exc
    job = handle.job
    if isinstance(job, Job):
        handle.bound = job.bound
        try:
            handle._enter_and_start()
        except BaseException:
            steps.release(resizer, job)
            steps.drop_pending(resizer, handle)
            steps.turn_of(resizer).leave(handle)
            raise
    if not isinstance(handle.job, Job):  # a CPU frame: computed now, from the pixels the
        handle.settle_in_turn()  # caller has now (a stream may refill the same buffer next)
    return handle


def stream(resizer: Resizer, frames: Iterable[Any], args: tuple[Any, ...]) -> Iterator[Any]:
    """Resize ``frames`` with cv2's other ``args`` (dsize, dst, fx, fy, interpolation),
    pipelined, yielding results in order. Leaving early (``break``) collects the frame
    still in flight."""
    waiting: PendingFrame | None = None  # submitted, not yet yielded
    try:
        for frame in frames:
            previous, waiting = waiting, submit(resizer, (frame, *args))
            if previous is not None:
                yield previous.result()
        if waiting is not None:
            last, waiting = waiting, None
            yield last.result()
    finally:
        if waiting is not None:
            waiting.result()


class PendingFrame:
    """A frame handed to ``Resizer.submit``; ``result()`` returns it (or raises cv2's error).

    Two things happen to it, each once: its value is made (``_done``: the PL output, or a
    CPU frame) and its PL part is collected (``_collected``: buffers and IP given back).
    Usually ``settle_in_turn`` does both in the turn; a ``result()`` that cannot get the turn
    (``busy``) makes a CPU frame at once and leaves the PL part to the next turn holder.
    Whoever makes the value first claims it (``_claims``), so a frame is counted once."""

    def __init__(self, owner: Resizer, args: tuple[Any, ...], job: Any) -> None:
        self._owner = owner
        self._args = args
        self.job = job
        self.bound = COLLECT_BOUND
        self._done = False
        self._collected = False
        self._claims: list[object] = []  # list.append is atomic: the first entry won
        self._value: Any = None
        self._error: BaseException | None = None
        self._warning: tuple[str, str] | None = None

    def _enter_and_start(self) -> None:
        """In submit: take the turn, start the frame, collect the one before; leave."""
        owner = self._owner
        turn = steps.turn_of(owner)
        try:
            turn.enter(self)
        except PLFault as fault:  # a frame ahead never let go: this one runs on the CPU
            self.job, self._warning = steps.count_fault(owner, fault)
            return
        self._start()
        previous = steps.pending_of(owner)
        if previous is not None and previous is not self:
            previous.settle_in_turn()  # its copy-out overlaps the PL work on this frame
        steps.hold_pending(owner, self if isinstance(self.job, Job) else None)
        turn.leave(self)

    def _start(self) -> None:
        """Take buffers and post the frame (in the turn), after the frame in the IP is in.
        A fault gives back what the frame took; the turn stays with ``submit``."""
        owner, job = self._owner, self.job
        try:
            previous = steps.pending_of(owner)
            if previous is not None:
                previous._wait()  # the IP is free once the previous frame is in
            steps.start(owner, job)
        except (PLFault, PoolExhausted) as fault:
            steps.release(owner, job)
            self.job, self._warning = steps.count_fault(owner, fault)
        except PoolClosed:
            steps.release(owner, job)
            self.job = "closed"

    def _wait(self) -> None:
        """Wait for the PL part of the frame (a fault turns it into a CPU frame). Runs in
        the turn of whoever calls it."""
        job = self.job
        if isinstance(job, Job) and job.inflight is not None and not job.waited:
            owner = self._owner
            try:
                steps.finish(owner, job)
            except (PLFault, PoolExhausted) as fault:
                steps.release(owner, job)
                self.job, self._warning = steps.count_fault(owner, fault)
            except BaseException:
                steps.release(owner, job)
                self.job = "fault_interrupted"  # its owner gets a CPU frame, not our error
                raise

    def _claim(self, tag: object) -> bool:
        claims = self._claims
        claims.append(tag)
        return claims[0] is tag

    def settle_in_turn(self) -> None:
        """Collect the PL result or compute the fallback (called in submission order, only
        by the holder of the engine's turn: the engine's steps call it, never a user)."""
        if self._collected:
            return
        self._wait()
        owner, job, args = self._owner, self.job, self._args
        tag = object()
        if not self._claim(tag):  # its caller already has a CPU frame: only give back
            if isinstance(job, Job):
                steps.release(owner, job)
            self._collected = True
            steps.drop_pending(owner, self)
            return
        watch = owner.watching
        try:
            if isinstance(job, Job):
                value = steps.deliver(owner, job)
            elif isinstance(job, BaseException):
                raise job
            else:
                if watch is not None:  # strict mode raises here, from result()
                    watch.fallback(owner, args[0], args[1], args[3], args[4], job)
                value = steps.cpu_frame(owner, job, args)
        except Exception as exc:  # noqa: BLE001 -- cv2's error, re-raised from result()
            if isinstance(job, Job):
                steps.release(owner, job)  # its buffers go back whatever failed
            self._error = exc
        except BaseException:
            if isinstance(job, Job):
                steps.release(owner, job)
                self.job = "fault_interrupted"
            self._claims.clear()  # not made: the next claimant makes it
            raise
        else:
            self._value = value
        steps.drop_pending(owner, self)
        self._collected = True
        self._done = True
        if isinstance(job, Job) and self._error is None and watch is not None:
            # after the frame is settled: an interrupt here cannot undo a delivered PL frame
            nbytes = job.in_buf.nbytes + job.out_buf.nbytes
            watch.on_pl(owner, args, self._value, job.board_seconds + job.ps_seconds, nbytes)

    def _cpu_unless_done(self, reason: str) -> None:
        """Without the turn: a CPU frame for the caller, unless another thread holding the
        turn claimed the frame first (then its value is made within moments: wait)."""
        owner, args = self._owner, self._args
        tag, deadline = object(), time.perf_counter() + SLACK
        while not self._done:
            if self._claim(tag) or time.perf_counter() > deadline:
                try:
                    watch = owner.watching
                    if watch is not None:  # strict mode raises here, from result()
                        watch.fallback(owner, args[0], args[1], args[3], args[4], reason)
                    self._value = steps.cpu_frame(owner, reason, args)
                except Exception as exc:  # noqa: BLE001 -- cv2's error, from result()
                    self._error = exc
                self._done = True
                return
            time.sleep(0.001)

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            owner = self._owner
            ticket = Ticket(COLLECT_BOUND)
            try:
                try:
                    steps.turn_of(owner).enter(ticket)
                except PLFault as fault:  # a frame ahead never let go: a CPU frame now
                    reason, self._warning = steps.count_fault(owner, fault)
                    self._cpu_unless_done(reason)
                else:
                    self.settle_in_turn()
                    steps.turn_of(owner).leave(ticket)
                    # done, unless a thread told busy claimed it first: wait for its value
                    self._cpu_unless_done("fault_busy")
            except BaseException:
                steps.turn_of(owner).leave(ticket)
                raise
            if self._warning is not None:
                warning, self._warning = self._warning, None
                steps.warn_once(owner, *warning)
        if self._error is not None:
            raise self._error
        return self._value
