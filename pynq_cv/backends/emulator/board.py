"""``EmulatedBoard``: a PYNQ board with the resizer overlay loaded, in software.

It offers the bottom-layer surface of ARCHITECTURE.md -- ``name``, ``descriptor``,
``overlay``, ``allocate``, ``reset_pl``, ``close`` -- through the same ``pynq`` API a
real board offers, register level, so one driver code path serves both. Extras for tests
and tools: ``memory`` (CMA accounting), ``faults`` (fault injection), ``frames`` /
``last_frame_seconds`` / ``busy_seconds`` (the modelled board time of completed frames),
``hang_limit`` (how long an emulated pynq busy-wait spins before saying that a board would
hang there forever). ``device_id`` makes boards of that id "the same PL" for the
inter-process lock (``pl_lock``): a second opener gets ``PLInUse`` (or waits up to
``wait_for_pl`` seconds); without it every emulated board is its own hardware.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ...descriptors import OverlayDescriptor, descriptor_for
from ...pl_lock import PLLock
from .faults import Faults
from .memory import DEFAULT_SIZE, ContiguousMemory, EmulatedBuffer
from .overlay import EmulatedOverlay

DEFAULT_HANG_LIMIT = 10.0


class EmulatedBoard:
    """A board running the resizer overlay of ``descriptor`` (default: Pynq-Z2's)."""

    name = "emulator"
    emulated = True  # frames it computes are the IP's arithmetic on the host, not a PL

    def __init__(
        self,
        board: str | None = None,
        *,
        descriptor: OverlayDescriptor | None = None,
        cma_bytes: int = DEFAULT_SIZE,
        pace: bool = False,
        faults: Faults | None = None,
        hang_limit: float = DEFAULT_HANG_LIMIT,
        clock: Callable[[], float] = time.perf_counter,
        bitstream: Any = None,
        overlay_missing: bool = False,
        device_id: str | None = None,
        wait_for_pl: float = 0.0,
    ) -> None:
        self.device_id = device_id
        self.descriptor = descriptor or descriptor_for(board)
        self.bitstream = str(bitstream) if bitstream else "emulated"
        self.bitstream_origin = "emulator"
        self.faults = faults if faults is not None else Faults()
        if overlay_missing:
            self.faults.overlay_missing(True)
        self.hang_limit = float(hang_limit)
        self.pace = pace
        self.memory = ContiguousMemory(cma_bytes, fail=self.faults.allocation_fails)
        self.overlay = EmulatedOverlay(
            self.descriptor,
            self.memory,
            faults=self.faults,
            pace=pace,
            clock=clock,
            hang_limit=lambda: self.hang_limit,
        )
        self.closed = False
        self._lock = PLLock(f"emulated-{device_id}").acquire(wait_for_pl) if device_id else None

    @property
    def bus_accesses(self) -> int:
        """Register accesses so far (a real board cannot count them: ``PynqBoard`` says None)."""
        return self.overlay.bus_accesses

    def allocate(
        self, shape: Any, dtype: Any = "u4", target: Any = None, cacheable: int = 0, **_: Any
    ) -> EmulatedBuffer:
        """``pynq.allocate``: a contiguous buffer, coherent (pynq's default ``cacheable=0``,
        write-combined on a board) or cached and non-coherent (``cacheable=1``:
        flush/invalidate needed)."""
        return self.memory.allocate(shape, dtype, cacheable=bool(cacheable))

    def reset_pl(self) -> bool:
        """The heaviest recovery: reload the bitstream (resets IP, converters and DMA)."""
        self.overlay.download()
        return True

    @property
    def frames(self) -> int:
        """Frames the IP completed (delivered in full and reported done)."""
        return self.overlay.path.ip.frames

    @property
    def last_frame_seconds(self) -> float:
        """Modelled board time of the last completed frame (``timing.frame_seconds``)."""
        return self.overlay.path.ip.last_frame_seconds

    @property
    def busy_seconds(self) -> float:
        """Modelled board time of all completed frames."""
        return self.overlay.path.ip.busy_seconds

    def close(self) -> None:
        """Free every buffer; the board is unusable afterwards."""
        if self.closed:
            return
        self.closed = True
        self.overlay.unload()
        self.memory.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> EmulatedBoard:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EmulatedBoard({self.descriptor.board!r}, build {self.descriptor.build}, "
            f"pace={self.pace}, {self.memory.live_buffers} buffers live)"
        )
