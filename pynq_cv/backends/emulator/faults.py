"""Fault injection: make the emulated board fail the way a board does.

Each fault is armed here and surfaces where the hardware would show it:

- ``dma_error(channel, kind, count)``: the next ``count`` transfers on that channel fail
  with DMAIntErr / DMASlvErr / DMADecErr when they first touch memory (MM2S at once, S2MM
  when data arrives); the channel halts until a DMA Reset, as after a real error.
- ``ip_hang(count)``: the next ``count`` frames are taken in whole by the IP, which then
  never delivers output nor reports done, until a PL reset.
- ``short_packet(count)``: the next ``count`` frames end early (TLAST after half of the
  pixels): the receive completes with fewer bytes than asked, and the IP reports done.
- ``cma_exhausted(on)``: while on, every ``allocate`` raises pynq's out-of-memory error.
- ``overlay_missing(on)``: while on, building the overlay (``EmulatedBoard``,
  ``EmulatedOverlay``, ``download``/``reset_pl``) raises what pynq raises on a board whose
  bitstream file is missing: ``OSError("Bitstream file NAME does not exist.")``. (Off a
  board pynq says ``RuntimeError('No Devices Found')`` first; an emulator *is* a board.)

``injected`` counts the faults that surfaced, by name; ``log`` says where.
"""

from __future__ import annotations

import threading
from collections import Counter

from .dma import ERROR_BITS

CHANNELS = ("send", "recv")


class Faults:
    """Armed faults of one emulated board, and the count of those that surfaced."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.log: list[str] = []
        self.clear()

    def clear(self) -> None:
        """Disarm everything (the counts of faults already surfaced stay)."""
        with self._lock:
            self._dma: dict[str, list[str]] = {channel: [] for channel in CHANNELS}
            self._armed: Counter[str] = Counter()
            self.cma_is_exhausted = False
            self.overlay_is_missing = False

    # -- arming ----------------------------------------------------------------------------

    def dma_error(self, channel: str = "send", kind: str = "internal", count: int = 1) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        if kind not in ERROR_BITS:
            raise ValueError(f"kind must be one of {tuple(ERROR_BITS)}, got {kind!r}")
        with self._lock:
            self._dma[channel].extend([kind] * int(count))

    def ip_hang(self, count: int = 1) -> None:
        with self._lock:
            self._armed["ip_hang"] += int(count)

    def short_packet(self, count: int = 1) -> None:
        with self._lock:
            self._armed["short_packet"] += int(count)

    def cma_exhausted(self, on: bool = True) -> None:
        self.cma_is_exhausted = bool(on)

    def overlay_missing(self, on: bool = True) -> None:
        self.overlay_is_missing = bool(on)

    @property
    def armed(self) -> dict[str, int]:
        """What is still waiting to surface."""
        with self._lock:
            out = {f"dma_error:{ch}": len(kinds) for ch, kinds in self._dma.items() if kinds}
            out.update({name: n for name, n in self._armed.items() if n})
            return out

    # -- consumed by the emulated hardware --------------------------------------------------

    def take_dma_error(self, channel: str) -> str | None:
        """The error kind the next transfer on ``channel`` carries, if one is armed."""
        with self._lock:
            kinds = self._dma[channel]
            return kinds.pop(0) if kinds else None

    def take(self, name: str) -> bool:
        """Consume one armed ``ip_hang`` / ``short_packet``."""
        with self._lock:
            if self._armed[name] > 0:
                self._armed[name] -= 1
                return True
            return False

    def surfaced(self, name: str, detail: str = "") -> None:
        with self._lock:
            self.injected[name] += 1
            self.log.append(f"{name}:{detail}" if detail else name)
            del self.log[:-100]

    def allocation_fails(self) -> bool:
        if self.cma_is_exhausted:
            self.surfaced("cma_exhausted")
            return True
        return False

    def check_overlay(self, bitstream: str) -> None:
        if self.overlay_is_missing:
            self.surfaced("overlay_missing")
            raise OSError(f"Bitstream file {bitstream} does not exist.")
