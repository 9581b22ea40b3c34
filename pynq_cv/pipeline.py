"""Pipelined submission: while the PL resizes frame N, the CPU prepares N+1 and delivers N-1.

``submit`` returns a ``PendingFrame`` at once; results come back in submission order. At
most one frame is in the PL and one being prepared, so pool use stays at two frames of
buffers. A ``dst`` given to ``submit`` is written when its frame runs: do not hand the same
``dst`` to the next frame before collecting this one.

Everything here runs in the engine's turn (``Resizer._turn``), so a submitted frame's
buffers are taken in turn like any other frame's. An interrupt (Ctrl-C) in ``submit`` gives
back what the new frame took; an interrupt while some call waits for a submitted frame
turns that frame into a CPU frame for its owner -- never an error in someone else's frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .dispatch import Job, Resizer, _Ticket
from .errors import PLFault
from .pool import PoolClosed, PoolExhausted

COLLECT_BOUND = 0.05  # a place in the turn to copy a finished frame out: seconds


def submit(resizer: Resizer, args: tuple[Any, ...]) -> PendingFrame:
    """Start a frame with cv2's ``args`` on ``resizer``; the previous one is collected first
    (its copy-out overlapping this frame's PL work)."""
    handle = PendingFrame(resizer, args, None)
    try:
        handle.job = resizer._plan(*args, pipelined=True)
    except Exception as exc:  # noqa: BLE001 -- surfaces from .result(), like cv2 would
        handle.job = exc
    job = handle.job
    if isinstance(job, str):  # a CPU frame: computed now, from the pixels the caller has now
        handle._settle()  # (a stream may refill the same buffer with the next frame)
    handle.bound = job.bound if isinstance(job, Job) else COLLECT_BOUND
    try:
        resizer._turn.enter(handle)
        if isinstance(job, Job):
            handle._start()
        previous = resizer._pending
        if previous is not None and previous is not handle:
            previous._settle()  # its copy-out overlaps the PL work on this frame
        resizer._pending = handle if isinstance(handle.job, Job) else None
        resizer._turn.leave(handle)
        return handle
    except BaseException:
        if isinstance(job, Job):
            resizer._abort(job, handle)
        resizer._turn.leave(handle)
        if resizer._pending is handle:
            resizer._pending = None
        raise


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
    """A frame handed to ``Resizer.submit``; ``result()`` returns it (or raises cv2's error)."""

    def __init__(self, owner: Resizer, args: tuple[Any, ...], job: Any) -> None:
        self._owner = owner
        self._args = args
        self.job = job
        self.bound = COLLECT_BOUND
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._warning: tuple[str, str] | None = None

    def _start(self) -> None:
        """Take buffers and post the frame (in the turn), after the frame in the IP is in."""
        owner, job = self._owner, self.job
        try:
            previous = owner._pending
            if previous is not None:
                previous._wait()  # the IP is free once the previous frame is in
            owner._prepare(job)
            owner._post(job)
        except (PLFault, PoolExhausted) as fault:
            owner._abort(job, self)
            self.job, self._warning = owner._fault(fault)
        except PoolClosed:
            owner._abort(job, self)
            self.job = "closed"

    def _wait(self) -> None:
        """Wait for the PL part of the frame (a fault turns it into a CPU frame). Runs in
        the turn of whoever calls it."""
        job = self.job
        if isinstance(job, Job) and job.inflight is not None and not job.waited:
            owner = self._owner
            try:
                owner._finish(job)
            except (PLFault, PoolExhausted) as fault:
                owner._abort(job, self)
                self.job, self._warning = owner._fault(fault)
            except BaseException:
                owner._abort(job, self)
                self.job = "fault_interrupted"  # its owner gets a CPU frame, not our error
                raise

    def _settle(self) -> None:
        """Collect the PL result or compute the fallback (called in submission order)."""
        if self._done:
            return
        self._wait()
        owner, job, args = self._owner, self.job, self._args
        watch = owner._watch
        try:
            if isinstance(job, Job):
                value = owner._deliver(job)
            elif isinstance(job, BaseException):
                raise job
            else:
                if watch is not None:  # strict mode raises here, from result()
                    watch.fallback(owner, args[0], args[1], args[3], args[4], job)
                value = owner._cpu_frame(job, args)
        except Exception as exc:  # noqa: BLE001 -- cv2's error, re-raised from result()
            if isinstance(job, Job):
                owner._abort(job, self)  # its buffers go back whatever failed
            self._error = exc
        except BaseException:
            if isinstance(job, Job):
                owner._abort(job, self)
                self.job = "fault_interrupted"
            raise
        else:
            self._value = value
        if owner._pending is self:
            owner._pending = None
        self._done = True
        if isinstance(job, Job) and self._error is None and watch is not None:
            # after the frame is settled: an interrupt here cannot undo a delivered PL frame
            nbytes = job.in_buf.nbytes + job.out_buf.nbytes
            watch.on_pl(owner, args, self._value, job.board_seconds, nbytes)

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            owner = self._owner
            ticket = _Ticket(COLLECT_BOUND)
            try:
                owner._turn.enter(ticket)
                self._settle()
                owner._turn.leave(ticket)
            except BaseException:
                owner._turn.leave(ticket)
                raise
            if self._warning is not None:
                warning, self._warning = self._warning, None
                owner._warn_once(*warning)
        if self._error is not None:
            raise self._error
        return self._value
