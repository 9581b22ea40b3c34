"""Circuit breaker: stop sending frames to a PL that keeps failing, retry after a cool-down.

After ``threshold`` consecutive PL failures the PL is skipped for ``cooldown`` seconds
(frames go to the CPU, counted as ``breaker_open``). Then it is half-open: frames try the
PL again, and a single failure opens it for another cool-down, while a success closes it.
A permanent condition (no overlay, recovery impossible) keeps it off until ``reset()``.
"""

from __future__ import annotations

import math
import threading
import time


class CircuitBreaker:
    def __init__(self, threshold: int = 3, cooldown: float = 5.0) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ValueError(f"CircuitBreaker threshold must be an int >= 1, got {threshold!r}")
        if (
            isinstance(cooldown, bool) or not isinstance(cooldown, (int, float))
            or not math.isfinite(cooldown) or cooldown < 0
        ):
            raise ValueError(
                f"CircuitBreaker cooldown must be a finite number of seconds >= 0, got {cooldown!r}"
            )
        self.threshold = threshold
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self.reset()

    def renew_lock(self) -> None:
        """In a forked child: a fresh lock (a parent's thread may have held this one)."""
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.permanent: str | None = None
        self.trips = 0

    def allow(self) -> bool:
        """May the next frame try the PL?"""
        if self.permanent is not None:
            return False
        if not self.open_until:
            return True
        if time.monotonic() < self.open_until:
            return False
        with self._lock:  # cool-down over: half-open, one more failure re-opens
            if self.open_until:
                self.open_until = 0.0
                self.failures = self.threshold - 1
        return True

    def success(self) -> None:
        if self.failures or self.open_until:
            with self._lock:
                self.failures = 0
                self.open_until = 0.0

    def failure(self, permanent: str | None = None) -> None:
        with self._lock:
            if permanent is not None:
                self.permanent = permanent
                return
            self.failures += 1
            if self.failures >= self.threshold:
                self.open_until = time.monotonic() + self.cooldown
                self.failures = 0
                self.trips += 1

    def state(self) -> str:
        if self.permanent is not None:
            return f"off: {self.permanent}"
        if self.open_until and time.monotonic() < self.open_until:
            return f"open for {self.open_until - time.monotonic():.1f} s"
        return "closed"
