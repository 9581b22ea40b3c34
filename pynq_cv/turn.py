"""``Turn``: frames of one engine take the PL one after another, in arrival order.

A frame takes its pool buffers only when its turn comes, so frames queueing behind the IP
hold no memory: which frames reach the PL never depends on how many threads are waiting.
The queue is first-come first-served, so a frame's wait is bounded by the frames ahead of
it: each ticket carries its own bound (``bound`` seconds), and a frame waits at most twice
the bounds of the tickets ahead of it (each may first wait for a submitted frame) plus
``slack``; past that the engine is broken (a frame that never let go) and
``PLFault("busy")`` says so.

Interrupts: ``enter`` puts the ticket in the queue inside its own ``try``, and ``leave``
is idempotent, so ``leave(ticket)`` in an exception handler always undoes an ``enter``,
however far it got.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from .errors import PLFault

SLACK = 0.5  # beyond the bounds of the frames ahead: scheduling, copies, a loaded host


class Turn:
    """A FIFO of tickets; the head holds the turn. Tickets are any objects with ``bound``."""

    def __init__(self, slack: float = SLACK) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[Any] = deque()
        self.slack = slack
        self.waits = 0  # entries that had to queue

    def enter(self, ticket: Any) -> bool:
        """Wait (boundedly) until ``ticket`` is at the head; returns True."""
        return self._locked(self._enter, ticket)

    def leave(self, ticket: Any) -> None:
        """Give the turn up (or the place in the queue); a ticket not queued: no-op."""
        self._locked(self._leave, ticket)

    def holder(self) -> Any:
        """The ticket holding the turn, or None."""
        queue = self._queue
        return queue[0] if queue else None

    def queued(self) -> int:
        return len(self._queue)

    def _locked(self, step: Any, ticket: Any) -> Any:
        # one line: no interrupt lands between taking the condition's lock and releasing it
        with self._cond: return step(ticket)  # noqa: E701

    def _enter(self, ticket: Any) -> bool:
        queue = self._queue
        try:
            # each frame ahead may first wait for a submitted frame still in the IP: 2 bounds
            ahead = 2 * sum(getattr(t, "bound", 0.0) for t in queue)
            queue.append(ticket)
            if queue[0] is ticket:
                return True
            self.waits += 1
            deadline = time.perf_counter() + ahead + self.slack
            while queue[0] is not ticket:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise PLFault(
                        "busy",
                        f"waited {ahead + self.slack:.3f} s behind {len(queue) - 1} frames for "
                        "the PL: a frame ahead never let go",
                    )
                self._cond.wait(left)
            return True
        except BaseException:
            self._leave(ticket)
            raise

    def _leave(self, ticket: Any) -> None:
        queue = self._queue
        if queue and queue[0] is ticket:
            queue.popleft()
            self._cond.notify_all()
        elif any(t is ticket for t in queue):
            queue.remove(ticket)
            self._cond.notify_all()
