"""``Turn``: frames of one engine take the PL one after another, in arrival order.

A frame takes its pool buffers only when its turn comes, so frames queueing behind the IP
hold no memory: which frames reach the PL never depends on how many threads are waiting.
The queue is first-come first-served, so a frame's wait is bounded by the frames ahead of
it: each ticket carries its own bound (``bound`` seconds), and a frame waits at most twice
the bounds of the tickets ahead of it (each may first wait for a submitted frame) plus
``slack``; past that the engine is broken (a frame that never let go) and
``PLFault("busy")`` says so.

Interrupts (Ctrl-C lands anywhere, also inside ``threading``'s Python code): the queue is
changed only under a plain C lock taken by a one-line ``with`` (its acquire is C code and
the ``with`` body starts at once, so no exception can land between them) and held for a few
statements, never while waiting. A waiting ticket waits on a gate of its own, a C lock the
ticket ahead releases when it leaves: an interrupted wait leaves nothing held. ``leave`` is
idempotent, so ``leave(ticket)`` in an exception handler always undoes an ``enter``,
however far it got, and never waits for anything but that short lock.
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
        self._mutex = threading.Lock()
        self._queue: deque[tuple[Any, Any]] = deque()  # (ticket, its gate or None)
        self.slack = slack
        self.waits = 0  # entries that had to queue

    def enter(self, ticket: Any) -> bool:
        """Wait (boundedly) until ``ticket`` is at the head; returns True."""
        try:
            with self._mutex: gate, ahead = self._join(ticket)  # noqa: E701
            if gate is None:
                return True
            self.waits += 1
            deadline = time.perf_counter() + ahead + self.slack
            while True:
                # the gate only wakes us; the queue says whose turn it is
                gate.acquire(timeout=max(0.0, deadline - time.perf_counter()))
                with self._mutex: head = self._queue[0][0] is ticket  # noqa: E701
                if head:
                    return True
                if time.perf_counter() >= deadline:
                    raise PLFault(
                        "busy",
                        f"waited {ahead + self.slack:.3f} s for the PL behind other frames: "
                        "a frame ahead never let go",
                    )
        except BaseException:
            self.leave(ticket)
            raise

    def leave(self, ticket: Any) -> None:
        """Give the turn up (or the place in the queue); a ticket not queued: no-op."""
        with self._mutex: self._remove(ticket)  # noqa: E701

    def holder(self) -> Any:
        """The ticket holding the turn, or None."""
        queue = self._queue
        return queue[0][0] if queue else None

    def queued(self) -> int:
        return len(self._queue)

    def _join(self, ticket: Any) -> tuple[Any, float]:
        """Under the mutex: queue ``ticket``; (None, 0) if it holds the turn at once, else
        its gate (taken: opened when it may hold the turn) and the bound of those ahead."""
        queue = self._queue
        if not queue:
            queue.append((ticket, None))
            return None, 0.0
        # each frame ahead may first wait for a submitted frame still in the IP: 2 bounds
        ahead = 2 * sum(getattr(entry[0], "bound", 0.0) for entry in queue)
        gate = threading.Lock()
        gate.acquire()
        queue.append((ticket, gate))
        return gate, ahead

    def _remove(self, ticket: Any) -> None:
        """Under the mutex: drop ``ticket`` (if queued), then wake the head. Waking is
        repeated by every ``leave``, so one cut short by an interrupt is finished by the
        handler's ``leave``; an extra wake is harmless (the woken ticket checks the queue)."""
        queue = self._queue
        for index, entry in enumerate(queue):
            if entry[0] is ticket:
                del queue[index]
                break
        if queue:
            gate = queue[0][1]
            if gate is not None and gate.locked():
                gate.release()
