"""A watchdog for pynq's busy-waits on the emulated board.

pynq's ``wait()`` (and ``start()``, ``stop()``) poll a status register with no timeout: on
a board, a frame that never completes hangs the program for good. Off-board, a hang that
says why is more use. :class:`Watchdog` sees every register access pynq makes (the
emulated device's ``RegisterWindow`` reports them); when one register has been polled
back to back for ``seconds`` with the same value and nothing written anywhere, it raises
:class:`EmulatedHang` with the emulator's account of what the hardware waits for.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class EmulatedHang(RuntimeError):
    """A wait that would never return on a board."""


class Watchdog:
    """Raise :class:`EmulatedHang` when a register is polled unchanged for ``seconds``."""

    GAP = 0.5  # reads further apart than this are not a busy-wait

    def __init__(
        self,
        seconds: float,
        explain: Callable[[], str],
        name_of: Callable[[int], str] = hex,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if seconds <= 0:
            raise ValueError(f"watchdog seconds must be positive, got {seconds}")
        self.seconds = float(seconds)
        self._explain = explain
        self._name_of = name_of
        self._clock = clock
        self._polls: dict[int, tuple[int, float, float]] = {}  # address -> value, first, last

    def wrote(self, address: int) -> None:
        """Any write is progress the program makes: every poll starts over."""
        self._polls.clear()

    def read(self, address: int, value: int) -> None:
        now = self._clock()
        seen = self._polls.get(address)
        if seen is None or seen[0] != value or now - seen[2] > self.GAP:
            self._polls[address] = (value, now, now)
            return
        self._polls[address] = (value, seen[1], now)
        if now - seen[1] > self.seconds:
            self._polls.clear()
            raise EmulatedHang(
                f"pynq has polled {self._name_of(address)} = {value:#010x} for "
                f"{self.seconds:g} s with no change; on a board this wait would never "
                f"return: {self._explain()}"
            )
