"""The resizer overlay: its block design's data path, and ``pynq.Overlay``'s surface.

Block design (PYNQ-HelloWorld ``resizer``, the same on every board)::

    memory -> DMA MM2S -> width converter 4->3 bytes -> resize_accel
           -> width converter 3->4 bytes (TKEEP) -> DMA S2MM -> memory

:class:`StreamPath` moves bytes along it. Nothing happens between bus accesses: every
register read or write (through a :class:`BusPort`) first lets the path catch up with
whatever the hardware would have done by then, frame-sized chunks at a time (numpy slices,
never a loop over pixels or beats). With ``pace=True`` a frame's completion (send Idle,
receive Idle and LENGTH, ap_done) becomes visible only once its modelled board time has
passed since its start and transfers were all posted.

The 4->3 converter is modelled as a byte queue: a frame that ends part-way through a 4-byte
beat leaves the rest of that beat in the converter, where it prefixes the next frame's
input. A DMA Reset does not clear it; a PL reset does. The 3->4 converter flushes its last
partial beat with TKEEP at TLAST, so the receive gets exactly the IP's bytes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ...descriptors import OverlayDescriptor
from .dma import AxiDmaRegisters, EmulatedDMA, EmulatedIP
from .faults import Faults
from .memory import ContiguousMemory
from .resize_ip import EMPTY, ResizeIP

BEAT = 4  # bytes per 32-bit stream beat


class StreamPath:
    """DMA <-> width converters <-> IP: the data movement between register accesses."""

    def __init__(
        self,
        dma: AxiDmaRegisters,
        ip: ResizeIP,
        pace: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.dma = dma
        self.ip = ip
        self.pace = pace
        self.clock = clock
        self.lock = threading.RLock()  # the bus: one access at a time
        self.held: np.ndarray = EMPTY  # bytes in the 4->3 converter
        self.held_posted_at = 0.0

    def advance(self) -> None:
        """Move data as far as it can go right now."""
        now = self.clock() if self.pace else math.inf
        mm2s = self.dma.mm2s
        while self._feed() | self._deliver(now) | mm2s.settle(now):
            pass

    def _feed(self) -> bool:
        """Converter bytes, then MM2S bytes, into the IP's input (as many as it takes)."""
        ip = self.ip
        need = ip.input_needed()
        if not need:
            return False
        if self.held.size:
            n = min(need, self.held.size)
            ip.take_input(self.held[:n], self.held_posted_at)
            self.held = self.held[n:]
            return True
        mm2s = self.dma.mm2s
        source = mm2s.source()
        if source is None:
            return False
        transfer, data = source
        n = min(need, data.size)
        mm2s.consumed(n, ip.take_input(data[:n], transfer.posted_at))
        partial = transfer.done % BEAT
        if partial and transfer.remaining and not ip.input_needed():
            # the IP stopped part-way through a beat: the rest of it waits in the converter
            extra = min(BEAT - partial, transfer.remaining)
            self.held = data[n : n + extra].copy()
            self.held_posted_at = transfer.posted_at
            mm2s.consumed(extra)
        return True

    def _deliver(self, now: float) -> bool:
        """The IP's output packet into the S2MM transfer (or nowhere, if it is empty)."""
        ip = self.ip
        packet = ip.output
        if packet is None or packet.hung:
            return False
        if packet.remaining == 0:  # nothing to send, no TLAST: done when its time comes
            if now < packet.posted_at + packet.seconds:
                return False
            ip.drained()
            return True
        s2mm = self.dma.s2mm
        transfer = s2mm.sink()
        if transfer is None:
            return False
        if now < max(packet.posted_at, transfer.posted_at) + packet.seconds:
            return False
        n = min(packet.remaining, transfer.remaining)
        taken = s2mm.receive(packet.data[packet.pos : packet.pos + n], n == packet.remaining)
        packet.pos += taken
        if packet.remaining == 0:
            ip.drained()
        return taken > 0

    def reset_pl(self) -> None:
        """FCLK_RESET0_N: the IP, both width converters and the DMA go back to reset."""
        self.dma.soft_reset()
        self.ip.reset()
        self.held = EMPTY


class BusPort:
    """A register file on the AXI-Lite bus: each access lets the data path catch up first."""

    def __init__(self, registers: Any, path: StreamPath) -> None:
        self.registers = registers
        self.path = path

    def read(self, offset: int) -> int:
        with self.path.lock:
            self.path.advance()
            return self.registers.read(offset)

    def write(self, offset: int, value: int) -> None:
        with self.path.lock:
            self.path.advance()
            self.registers.write(offset, value)
            self.path.advance()

    def tag_owner(self, offset: int, owner: Any) -> None:
        with self.path.lock:
            self.registers.channel(offset).tag_owner(owner)


class EmulatedOverlay:
    """``pynq.Overlay`` of the resizer: IPs by attribute under the descriptor's names."""

    def __init__(
        self,
        descriptor: OverlayDescriptor,
        memory: ContiguousMemory,
        *,
        faults: Faults | None = None,
        pace: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        hang_limit: Callable[[], float] = lambda: 10.0,
    ) -> None:
        self._faults = faults
        self.descriptor = descriptor
        self.bitfile_name = descriptor.bitstream
        self._check_bitstream()
        self.ip_dict = descriptor.ip_dict()
        dma = AxiDmaRegisters(memory, descriptor.dma_length_width, faults, clock)
        ip = ResizeIP(descriptor.build, descriptor.clock_hz, faults, clock)
        self.path = StreamPath(dma, ip, pace, clock)
        self._ips: dict[str, Any] = {
            descriptor.dma.name: EmulatedDMA(
                self.ip_dict[descriptor.dma.name], BusPort(dma, self.path), hang_limit
            ),
            descriptor.resizer.name: EmulatedIP(
                self.ip_dict[descriptor.resizer.name], BusPort(ip, self.path)
            ),
        }
        self._loaded = True

    def _check_bitstream(self) -> None:
        if self._faults is not None:
            self._faults.check_overlay(self.bitfile_name)

    def __getattr__(self, name: str) -> Any:
        ips = self.__dict__.get("_ips", {})
        if name in ips:
            return ips[name]
        raise AttributeError(f"Could not find IP or hierarchy {name} in overlay")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._ips))

    def is_loaded(self) -> bool:
        return self._loaded

    def download(self) -> None:
        """Reload the bitstream: a PL reset of the IP, the width converters and the DMA."""
        self._check_bitstream()
        with self.path.lock:
            self.path.reset_pl()
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False
