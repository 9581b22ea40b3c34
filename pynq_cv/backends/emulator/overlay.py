"""The resizer overlay: its block design's data path, and ``pynq.Overlay``'s surface.

Block design (PYNQ-HelloWorld ``resizer``, the same on every board)::

    memory -> DMA MM2S -> width converter 4->3 bytes -> resize_accel
           -> width converter 3->4 bytes (TKEEP) -> DMA S2MM -> memory

:class:`StreamPath` moves bytes along it. Nothing happens between bus accesses: every
register read or write (through a :class:`BusPort`) first lets the path catch up with
whatever the hardware would have done by then, frame-sized chunks at a time (numpy slices,
never a loop over pixels or beats). With ``pace=True`` a frame's completion (send Idle,
receive Idle and LENGTH, ap_done) becomes visible only once the IP's modelled time has
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

from ...descriptors import OverlayDescriptor, loaded_length_width
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
        self.accesses = 0  # register reads and writes seen on the bus (doctor counts a frame's)
        self.held: np.ndarray = EMPTY  # bytes in the 4->3 converter
        self.held_posted_at = 0.0
        # an unprogrammed PL: nothing answers on the bus (reads 0, writes are lost)
        self.programmed = True

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

    def stall_reason(self) -> str:
        """What the data path waits for that will never come (for hang diagnostics)."""
        if not self.programmed:
            return ("the PL is not programmed: nothing answers on its bus (every register "
                    "reads 0, writes are lost); download the overlay first")
        ip, mm2s, s2mm = self.ip, self.dma.mm2s, self.dma.s2mm
        run, packet = ip.run, ip.output
        reasons = []
        if packet is not None and packet.hung:
            reasons.append("the IP hung part-way through a frame (injected fault)")
        if run is not None and run.blocked:
            reasons.append(
                f"the IP cannot finish its frame: {run.blocked} "
                f"(src {run.sizes[0]}x{run.sizes[1]}, dst {run.sizes[2]}x{run.sizes[3]})"
            )
        elif run is not None and packet is None and run.got < run.need:
            if mm2s.transfer is None or mm2s.halted:
                reasons.append(
                    f"the IP waits for {run.need - run.got} more input bytes "
                    f"(its run's src_rows x src_cols x 3 = {run.need}) and no send "
                    "transfer is in flight to bring them"
                )
        if run is None and packet is None and not ip.ap_start:
            if mm2s.transfer is not None or s2mm.transfer is not None:
                reasons.append(
                    "the IP is not running (never started with 0x01/0x81 at its control "
                    "register 0x00, or it finished): nothing takes the send transfer's "
                    "data or produces the receive transfer's"
                )
        sent = mm2s.transfer
        if sent is not None and sent.remaining and not ip.input_needed() and run is not None:
            reasons.append(
                f"the send transfer has {sent.remaining} bytes the IP does not take: "
                "the input buffer is larger than src_rows x src_cols x 3, or the sizes "
                "changed under auto_restart"
            )
        if run is not None and tuple(ip.sizes) != run.sizes:
            reasons.append(
                f"the IP runs with the sizes it latched at its start (src {run.sizes[0]}x"
                f"{run.sizes[1]}, dst {run.sizes[2]}x{run.sizes[3]}), not those written since "
                f"(src {ip.sizes[0]}x{ip.sizes[1]}, dst {ip.sizes[2]}x{ip.sizes[3]}): under "
                "auto_restart (0x81) it restarted as the previous frame's input ended"
            )
        if packet is not None and packet.remaining and (s2mm.transfer is None or s2mm.halted):
            reasons.append(
                f"the IP holds {packet.remaining} bytes of output that no receive "
                "transfer takes (dma.recvchannel.transfer(...) was not posted)"
            )
        if not reasons:
            if mm2s.transfer is None and s2mm.transfer is None:
                reasons.append(
                    "no DMA transfer is in flight: wait() before any transfer never ends "
                    "(a channel's Idle bit is 0 from reset until its first transfer)"
                )
            else:
                reasons.append("the IP and the DMA wait for each other")
        return "; ".join(reasons)

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
            self.path.accesses += 1
            if not self.path.programmed:
                return 0
            self.path.advance()
            return self.registers.read(offset)

    def write(self, offset: int, value: int) -> None:
        with self.path.lock:
            self.path.accesses += 1
            if not self.path.programmed:
                return
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
        self.loaded_ip_dict = self.ip_dict  # the overlay's own, once pynq loaded one
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

    @property
    def bus_accesses(self) -> int:
        """Register accesses so far on this overlay's AXI-Lite bus, every IP's."""
        return self.path.accesses

    def download(self, ip_dict: dict[str, Any] | None = None) -> None:
        """Reload the bitstream: a PL reset of the IP, the width converters and the DMA.

        ``ip_dict`` is the new overlay's (pynq's, from its ``.hwh``): the hardware built
        from it is what the emulated registers then are (see :meth:`load`).
        """
        self._check_bitstream()
        with self.path.lock:
            self.path.reset_pl()
            self.path.programmed = True
            if ip_dict is not None:
                self.load(ip_dict)
        self._loaded = True

    def erase(self) -> None:
        """The PL as after a boot into nothing: no design answers until a download.

        On a board, reads of an unprogrammed PL region hang the bus or return garbage;
        here every register reads 0 and writes are lost, so a DMA never completes and a
        caller's deadline (the driver's, pynq_cv's watchdog) says so instead of a hang."""
        with self.path.lock:
            self.path.reset_pl()
            self.path.programmed = False

    def load(self, ip_dict: dict[str, Any]) -> None:
        """Make the emulated DMA the one ``ip_dict`` describes: its LENGTH register holds
        the ``c_sg_length_width`` bits of the overlay actually loaded, whatever the
        descriptor says, as a rebuilt bitstream would on the board."""
        width = loaded_length_width(self.descriptor, ip_dict)
        with self.path.lock:
            self.path.programmed = True
            self.path.dma.length_mask = (1 << width) - 1
        self.loaded_ip_dict = ip_dict

    @property
    def length_width(self) -> int:
        """Bits of the emulated DMA's LENGTH register."""
        return self.path.dma.length_mask.bit_length()

    def stall_reason(self) -> str:
        """Why nothing will move any more, as a board would stay (see ``StreamPath``)."""
        with self.path.lock:
            self.path.advance()
            return self.path.stall_reason()

    def unload(self) -> None:
        self._loaded = False
        self._ips[self.descriptor.dma.name].release()
