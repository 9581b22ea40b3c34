"""Pipelined submission: while the PL resizes frame N, the CPU prepares N+1 and delivers N-1.

``submit`` returns a ``PendingFrame`` at once; results come back in submission order. At
most one frame is in the PL and one being prepared, so pool use stays at two frames of
buffers. A ``dst`` given to ``submit`` is written when its frame runs: do not hand the same
``dst`` to the next frame before collecting this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .dispatch import CV2_RESIZE, Job, Resizer
from .errors import PLFault
from .pool import PoolExhausted


def submit(resizer: Resizer, args: tuple[Any, ...]) -> PendingFrame:
    """Start a frame with cv2's ``args`` on ``resizer``; the previous one is collected first
    (its copy-out overlapping this frame's PL work)."""
    with resizer._pipe_lock:
        try:
            job = resizer._plan(*args, pipelined=True)
        except Exception as exc:  # noqa: BLE001 -- surfaces from .result(), like cv2 would
            job = exc
        previous, resizer._pending = resizer._pending, None
        if previous is not None:
            try:
                previous._wait()  # the PL is free once the previous frame is in
            except BaseException:
                if isinstance(job, Job):
                    resizer._release(job)
                raise
        handle = PendingFrame(resizer, args, job)
        if isinstance(job, Job):
            try:
                resizer._post(job)
                resizer._pending = handle
            except (PLFault, PoolExhausted) as fault:
                handle.job = resizer._fault(fault)
        if previous is not None:
            previous._settle()  # its copy-out overlaps the PL work on this frame
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
    """A frame handed to ``Resizer.submit``; ``result()`` returns it (or raises cv2's error)."""

    def __init__(self, owner: Resizer, args: tuple[Any, ...], job: Any) -> None:
        self._owner = owner
        self._args = args
        self.job = job
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def _wait(self) -> None:
        """Wait for the PL part of the frame (a fault turns it into a CPU frame)."""
        job = self.job
        if isinstance(job, Job) and job.inflight is not None and not job.waited:
            try:
                self._owner._finish(job)
                job.waited = True
            except (PLFault, PoolExhausted) as fault:
                self.job = self._owner._fault(fault)
            except BaseException as exc:
                self.job = exc  # buffers are back in the pool: result() re-raises this
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
                self._value = owner._deliver(job)
                if watch is not None:
                    nbytes = job.in_buf.nbytes + job.out_buf.nbytes
                    watch.on_pl(owner, args, self._value, job.board_seconds, nbytes)
            else:
                if isinstance(job, BaseException):
                    raise job
                if isinstance(job, str):
                    if watch is not None:  # strict mode raises here, from result()
                        watch.fallback(owner, args[0], args[1], args[3], args[4], job)
                    owner.stats.count_cpu(job)
                self._value = CV2_RESIZE(*args)
        except BaseException as exc:  # noqa: BLE001 -- re-raised from result()
            self._error = exc
        self._done = True

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            with self._owner._pipe_lock:
                if self._owner._pending is self:
                    self._owner._pending = None
                self._settle()
        if self._error is not None:
            raise self._error
        return self._value
