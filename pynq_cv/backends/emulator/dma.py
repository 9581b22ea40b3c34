"""AXI DMA (PG021) in simple (direct register) mode, and pynq's driver for it.

Two layers, both register level:

- :class:`AxiDmaRegisters` is the core as the bus sees it: two channel register blocks
  (MM2S "send" at 0x00, S2MM "recv" at 0x30), each a :class:`MM2SChannel` /
  :class:`S2MMChannel` holding DMACR, DMASR, address and LENGTH and the transfer in flight.
  It knows when a transfer starts, completes or fails; moving the bytes between memory and
  the streams is the block design's job (``overlay.StreamPath``), which calls the channel
  methods below ``# -- stream side``.
- :class:`EmulatedDMA` is ``pynq.lib.dma.DMA`` over that register file: the same checks in
  the same order with the same messages, so a driver written against pynq behaves the same
  here. Its ``wait()`` spins like pynq's (which has no timeout) but gives up after the
  board's ``hang_limit`` with a RuntimeError saying a board would hang there forever.

Behaviour beyond PG021's text, chosen here (see also ``overlay.StreamPath``):
- An address range that is not inside one live ``allocate``'d block is a decode error
  (DMADecErr), also for a buffer freed after the transfer was posted; a board would read or
  overwrite whatever memory is there.
- MM2S touches memory (and so may fail) as soon as LENGTH is written; S2MM only when the
  first data of a packet arrives.
- Writing LENGTH while the channel's previous transfer is still in flight is ignored.
- The LENGTH register holds ``c_sg_length_width`` bits: larger values are truncated, like
  the hardware's reserved upper bits (so 1 << width reads as a 0 length: DMAIntErr).
- After an error or ``RS = 0`` the halt is immediate (PG021 allows a lag; at Python speed a
  board shows the halt by the next read anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .memory import ContiguousMemory

# Channel register blocks
MM2S = 0x00
S2MM = 0x30
# Registers, offsets within a channel block
DMACR = 0x00
DMASR = 0x04
ADDR = 0x18  # MM2S_SA / S2MM_DA, low 32 bits
ADDR_MSB = 0x1C
LENGTH = 0x28
# Absolute offsets, for drivers
MM2S_DMACR, MM2S_DMASR, MM2S_SA, MM2S_SA_MSB, MM2S_LENGTH = 0x00, 0x04, 0x18, 0x1C, 0x28
S2MM_DMACR, S2MM_DMASR, S2MM_DA, S2MM_DA_MSB, S2MM_LENGTH = 0x30, 0x34, 0x48, 0x4C, 0x58

# DMACR bits
DMACR_RS = 1 << 0
DMACR_ALWAYS_ONE = 1 << 1  # reserved, reads as 1
DMACR_RESET = 1 << 2
DMACR_RESET_VALUE = 0x0001_0002  # IRQThreshold = 1
# DMASR bits
DMASR_HALTED = 1 << 0
DMASR_IDLE = 1 << 1
DMASR_INT_ERR = 1 << 4
DMASR_SLV_ERR = 1 << 5
DMASR_DEC_ERR = 1 << 6
DMASR_ERRORS = DMASR_INT_ERR | DMASR_SLV_ERR | DMASR_DEC_ERR
DMASR_IOC_IRQ = 1 << 12
DMASR_DLY_IRQ = 1 << 13
DMASR_ERR_IRQ = 1 << 14
DMASR_IRQS = DMASR_IOC_IRQ | DMASR_DLY_IRQ | DMASR_ERR_IRQ

ERROR_BITS = {"internal": DMASR_INT_ERR, "slave": DMASR_SLV_ERR, "decode": DMASR_DEC_ERR}

REGISTER_SPACE = 0x10000


class Transfer:
    """One simple-mode transfer: ``length`` bytes at ``address``; ``done`` moved so far."""

    __slots__ = ("address", "length", "done", "bytes", "posted_at", "owner", "due", "fault")

    def __init__(self, address: int, length: int, posted_at: float, owner: Any) -> None:
        self.address = address
        self.length = length
        self.done = 0
        self.bytes: Any = None  # the device's bytes of the range, once it is decoded
        self.posted_at = posted_at
        self.owner = owner  # the buffer behind it, when pynq's driver posted it
        self.due = posted_at  # not complete before this time (pacing)
        self.fault: str | None = None  # injected error kind, surfaces on first memory access

    @property
    def remaining(self) -> int:
        return self.length - self.done


class _Channel:
    """One channel's registers (DMACR, DMASR, address, LENGTH) and its transfer in flight."""

    base = 0
    name = ""

    def __init__(self, core: AxiDmaRegisters) -> None:
        self.core = core
        self.reset()

    def reset(self) -> None:
        self.dmacr = DMACR_RESET_VALUE
        self.halted = True
        self.idle = False  # 0 after reset until the first transfer completes
        self.errors = 0
        self.irqs = 0
        self.address = 0
        self.address_msb = 0
        self.length = 0
        self.transfer: Transfer | None = None
        self._owner: Any = None

    @property
    def running(self) -> bool:
        return not self.halted

    # -- bus side --------------------------------------------------------------------------

    def read(self, offset: int) -> int:
        if offset == DMACR:
            return self.dmacr | DMACR_ALWAYS_ONE
        if offset == DMASR:
            threshold = self.dmacr & 0x00FF_0000
            return int(self.halted) | int(self.idle) << 1 | self.errors | self.irqs | threshold
        if offset == ADDR:
            return self.address
        if offset == ADDR_MSB:
            return self.address_msb
        if offset == LENGTH:
            return self.length
        return 0

    def write(self, offset: int, value: int) -> None:
        if offset == DMACR:
            self._write_control(value)
        elif offset == DMASR:
            self.irqs &= ~(value & DMASR_IRQS)  # write 1 to clear
        elif offset == ADDR:
            self.address = value
        elif offset == ADDR_MSB:
            self.address_msb = value
        elif offset == LENGTH:
            self._write_length(value)

    def _write_control(self, value: int) -> None:
        if value & DMACR_RESET:
            self.core.soft_reset()  # either channel's Reset resets the whole core
            return
        self.dmacr = value & ~(DMACR_RESET | DMACR_ALWAYS_ONE)
        if value & DMACR_RS:
            if self.errors:  # an error halts the channel until a Reset
                self.dmacr &= ~DMACR_RS
            else:
                self.halted = False
        else:
            self.stop()

    def stop(self) -> None:
        """RS = 0: the channel halts; a transfer in flight is abandoned."""
        self.dmacr &= ~DMACR_RS
        self.halted = True
        if self.transfer is not None:
            self.transfer = None
            self.idle = False

    def _write_length(self, value: int) -> None:
        owner, self._owner = self._owner, None
        if self.transfer is not None:
            return  # still busy with the previous transfer: ignored (undefined in PG021)
        self.length = value & self.core.length_mask
        if self.halted:
            return  # PG021: writing LENGTH while halted has no effect on DMA operations
        if self.length == 0:
            self.fail(DMASR_INT_ERR)
            return
        address = self.address_msb << 32 | self.address
        self.idle = False
        self.transfer = Transfer(address, self.length, self.core.clock(), owner)
        self.transfer.fault = self.core.take_fault(self.name)
        self._started(self.transfer)

    def _started(self, transfer: Transfer) -> None:
        """Hook: the channel has a new transfer (MM2S reads memory at once)."""

    def fail(self, bit: int) -> None:
        """An error: set its DMASR bit and Err_Irq, halt until Reset, drop the transfer."""
        self.errors |= bit
        self.irqs |= DMASR_ERR_IRQ
        self.dmacr &= ~DMACR_RS
        self.halted = True
        self.transfer = None

    def complete(self) -> None:
        self.transfer = None
        self.idle = True
        self.irqs |= DMASR_IOC_IRQ

    def tag_owner(self, owner: Any) -> None:
        """The buffer behind the next LENGTH write (only pynq's driver layer knows it)."""
        self._owner = owner

    # -- stream side (called by the block design) -------------------------------------------

    def _decode(self, transfer: Transfer) -> bool:
        """Map the transfer's range to live memory; a decode error if it is not mapped."""
        if transfer.fault is not None:
            kind, transfer.fault = transfer.fault, None
            self.core.note_fault(self.name, kind)
            self.fail(ERROR_BITS[kind])
            return False
        owner = transfer.owner
        if owner is not None and getattr(owner, "freed", False):
            self.fail(DMASR_DEC_ERR)
            return False
        transfer.bytes = self.core.memory.window(transfer.address, transfer.length)
        if transfer.bytes is None:
            self.fail(DMASR_DEC_ERR)
            return False
        return True


class MM2SChannel(_Channel):
    """Memory -> stream ("send")."""

    base = MM2S
    name = "send"

    def _started(self, transfer: Transfer) -> None:
        self._decode(transfer)

    def source(self) -> tuple[Transfer, Any] | None:
        """The transfer in flight and the bytes it still has to send, if any."""
        transfer = self.transfer
        if transfer is None or self.halted or transfer.remaining == 0:
            return None
        if not self._decode(transfer):
            return None
        return transfer, transfer.bytes[transfer.done :]

    def consumed(self, nbytes: int, due: float | None = None) -> None:
        transfer = self.transfer
        transfer.done += nbytes
        if due is not None:
            transfer.due = max(transfer.due, due)

    def settle(self, now: float) -> bool:
        """Complete the transfer once all its bytes left and its time has come."""
        transfer = self.transfer
        if transfer is not None and transfer.remaining == 0 and now >= transfer.due:
            self.complete()
            return True
        return False


class S2MMChannel(_Channel):
    """Stream -> memory ("recv"); LENGTH reads back the bytes received."""

    base = S2MM
    name = "recv"

    def sink(self) -> Transfer | None:
        """The transfer in flight if it can take data now."""
        transfer = self.transfer
        if transfer is None or self.halted:
            return None
        return transfer

    def receive(self, data: Any, last: bool) -> int:
        """Write ``data`` (ending a packet if ``last``); returns the bytes taken.

        A packet longer than the buffer fills it and then fails with DMAIntErr; the rest of
        the packet stays upstream.
        """
        transfer = self.transfer
        if not self._decode(transfer):
            return 0
        n = min(len(data), transfer.remaining)
        transfer.bytes[transfer.done : transfer.done + n] = data[:n]
        transfer.done += n
        if last and n == len(data):
            self.length = transfer.done
            self.complete()
        elif transfer.remaining == 0:
            self.length = transfer.done
            self.fail(DMASR_INT_ERR)
        return n


class AxiDmaRegisters:
    """The AXI DMA core's register file: ``read(offset)`` / ``write(offset, value)``."""

    def __init__(
        self,
        memory: ContiguousMemory,
        length_width: int = 26,
        faults: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.memory = memory
        self.length_mask = (1 << int(length_width)) - 1
        self.faults = faults
        self.clock = clock
        self.mm2s = MM2SChannel(self)
        self.s2mm = S2MMChannel(self)

    def channel(self, offset: int) -> _Channel:
        return self.s2mm if offset >= S2MM else self.mm2s

    def read(self, offset: int) -> int:
        channel = self.channel(offset)
        return channel.read(offset - channel.base)

    def write(self, offset: int, value: int) -> None:
        channel = self.channel(offset)
        channel.write(offset - channel.base, value & 0xFFFF_FFFF)

    def soft_reset(self) -> None:
        """DMACR.Reset: the whole core (both channels) returns to its reset state."""
        self.mm2s.reset()
        self.s2mm.reset()

    def take_fault(self, channel: str) -> str | None:
        return self.faults.take_dma_error(channel) if self.faults is not None else None

    def note_fault(self, channel: str, kind: str) -> None:
        if self.faults is not None:
            self.faults.surfaced("dma_error", f"{channel}:{kind}")


# -- pynq's surface ------------------------------------------------------------------------


class EmulatedMMIO:
    """``pynq.MMIO`` over a register file: pynq's argument checks, Python ints only."""

    def __init__(self, registers: Any, length: int = REGISTER_SPACE) -> None:
        self.registers = registers
        self.length = length

    def read(self, offset: int = 0, length: int = 4) -> int:
        if length not in (1, 2, 4, 8):
            raise ValueError("MMIO currently only supports 1, 2, 4 and 8-byte reads.")
        if offset < 0:
            raise ValueError("Offset cannot be negative.")
        if offset % 4:
            raise MemoryError("Unaligned read: offset must be multiple of 4.")
        self._check_range(offset)
        value = int(self.registers.read(offset))
        if length == 8:
            return int(self.registers.read(offset + 4)) << 32 | value
        return value & ((1 << (8 * length)) - 1)

    def write(self, offset: int, data: Any) -> None:
        if offset < 0:
            raise ValueError("Offset cannot be negative.")
        if offset % 4:
            raise MemoryError("Unaligned write: offset must be multiple of 4.")
        if type(data) is int:
            self._check_range(offset)
            if not 0 <= data <= 0xFFFF_FFFF:
                # numpy 2 refuses np.uint32(data) for these; numpy 1 wrapped them silently
                raise OverflowError(f"Python integer {data} out of bounds for uint32")
            self.registers.write(offset, data)
        elif type(data) is bytes:
            if len(data) % 4:
                raise MemoryError("Unaligned write: data length must be multiple of 4.")
            for i in range(0, len(data), 4):
                self._check_range(offset + i)
                self.registers.write(offset + i, int.from_bytes(data[i : i + 4], "little"))
        else:
            raise ValueError("Data type must be int or bytes.")

    def _check_range(self, offset: int) -> None:
        if offset >= self.length:
            raise IndexError(
                f"index {offset >> 2} is out of bounds for axis 0 with size {self.length >> 2}"
            )


class EmulatedIP:
    """``pynq.DefaultIP``: ``read(offset)`` / ``write(offset, value)`` through its MMIO."""

    def __init__(self, description: dict[str, Any], registers: Any) -> None:
        self.description = description
        self.mmio = EmulatedMMIO(registers, int(description.get("addr_range", REGISTER_SPACE)))

    def read(self, offset: int = 0) -> int:
        return self.mmio.read(offset)

    def write(self, offset: int, value: Any) -> None:
        self.mmio.write(offset, value)


def _root(array: Any) -> Any:
    """The allocated buffer behind ``array`` (itself, or the buffer it views)."""
    getter = getattr(array, "_root_buffer", None)
    return getter() if getter is not None else None


class EmulatedDMAChannel:
    """``pynq.lib.dma._SDMAChannel``: one channel, driven through the DMA's registers."""

    def __init__(
        self,
        mmio: EmulatedMMIO,
        port: Any,
        max_size: int,
        width: int,
        tx_rx: int,
        dre: bool,
        hang_limit: Callable[[], float],
    ) -> None:
        self._mmio = mmio
        self._port = port
        self._max_size = max_size
        self._align = width
        self._dre = dre
        self._hang_limit = hang_limit
        self._active_buffer: Any = None
        self._first_transfer = True
        if tx_rx == DMA_TYPE_RX:
            self._offset = S2MM
            self._flush_before = False
        else:
            self._offset = MM2S
            self._flush_before = True
        self.transferred = 0
        self.start()

    @property
    def _name(self) -> str:
        return "recvchannel" if self._offset == S2MM else "sendchannel"

    def release(self) -> None:
        """Forget the last buffer transferred: an unloaded overlay keeps no memory alive."""
        self._active_buffer = None

    def _status(self) -> int:
        return self._mmio.read(self._offset + DMASR)

    @property
    def running(self) -> bool:
        return self._status() & DMASR_HALTED == 0

    @property
    def idle(self) -> bool:
        return self._status() & DMASR_IDLE == DMASR_IDLE

    @property
    def error(self) -> bool:
        return self._status() & DMASR_ERRORS != 0

    def start(self) -> None:
        """Set RS and spin until the channel runs (pynq spins forever on an errored one)."""
        self._mmio.write(self._offset + DMACR, DMACR_RS)
        self._spin(lambda: self.running, "start()")
        self._first_transfer = True

    def stop(self) -> None:
        self._mmio.write(self._offset + DMACR, 0)
        self._spin(lambda: not self.running, "stop()")

    def transfer(self, array: Any, start: int = 0, nbytes: int = 0) -> None:
        """Post a transfer of ``array`` from byte ``start`` (``nbytes=0``: to its end)."""
        if not self.running:
            raise RuntimeError("DMA channel not started")
        if not self.idle and not self._first_transfer:
            raise RuntimeError("DMA channel not idle")
        if nbytes == 0:
            nbytes = array.nbytes - start
        if nbytes > self._max_size:
            raise ValueError(
                f"Transfer size is {nbytes} bytes, which exceeds "
                f"the maximum DMA buffer size {self._max_size}."
            )
        if not self._dre and (array.physical_address + start) % self._align != 0:
            raise RuntimeError(
                "DMA does not support unaligned transfers; "
                f"Starting address must be aligned to {self._align} bytes."
            )
        if self._flush_before:
            array.flush()
        self.transferred = 0
        address = array.physical_address + start
        self._port.tag_owner(self._offset, _root(array))
        self._mmio.write(self._offset + ADDR, address & 0xFFFF_FFFF)
        self._mmio.write(self._offset + ADDR_MSB, (address >> 32) & 0xFFFF_FFFF)
        self._mmio.write(self._offset + LENGTH, nbytes)
        self._active_buffer = array
        self._first_transfer = False

    def wait(self) -> None:
        """Spin until the transfer completes; raise on an error (as pynq does)."""
        if not self.running:
            raise RuntimeError("DMA channel not started")
        self._spin(self._done, "wait()")
        if not self._flush_before and self._active_buffer is not None:  # None: unloaded
            self._active_buffer.invalidate()
        self.transferred = self._mmio.read(self._offset + LENGTH)
        self._active_buffer = None

    def _done(self) -> bool:
        status = self._status()
        if status & DMASR_ERRORS:
            if status & DMASR_INT_ERR:
                raise RuntimeError("DMA Internal Error (transfer length 0?)")
            if status & DMASR_SLV_ERR:
                raise RuntimeError("DMA Slave Error (cannot access memory map interface)")
            if status & DMASR_DEC_ERR:
                raise RuntimeError("DMA Decode Error (invalid address)")
        return status & DMASR_IDLE != 0

    def _spin(self, done: Callable[[], bool], what: str) -> None:
        """pynq's busy loop, bounded: past the board's hang limit a board would spin forever."""
        if done():
            return
        began = time.perf_counter()
        limit = self._hang_limit()
        spins = 0
        while not done():
            spins += 1
            elapsed = time.perf_counter() - began
            if elapsed > limit:
                status = self._status()
                raise RuntimeError(
                    f"emulated DMA {self._name}.{what} would hang forever on a board "
                    f"(pynq spins with no timeout): no progress after {limit:g} s "
                    f"(DMASR={status:#010x})"
                )
            if spins > 1000:
                time.sleep(min(0.0002, limit / 100))  # same outcome, less CPU


DMA_TYPE_TX = 1
DMA_TYPE_RX = 0


class EmulatedDMA(EmulatedIP):
    """``pynq.lib.dma.DMA`` (simple mode) on the emulated AXI DMA.

    ``sendchannel`` / ``recvchannel`` as in pynq; ``read``/``write`` reach the registers.
    Like pynq's, the constructor starts both channels (and would hang on a DMA left in
    error: here it raises after the hang limit).
    """

    def __init__(
        self,
        description: dict[str, Any],
        port: Any,
        hang_limit: Callable[[], float] = lambda: 10.0,
    ) -> None:
        super().__init__(description, port)
        params = description.get("parameters", {})
        width = int(params.get("c_sg_length_width", 26))
        self.buffer_max_size = (1 << width) - 1

        def channel(direction: str, tx_rx: int) -> EmulatedDMAChannel | None:
            if not int(params.get(f"c_include_{direction}", 0)):
                return None  # as pynq: no c_include_* parameter, no channel
            return EmulatedDMAChannel(
                self.mmio,
                port,
                self.buffer_max_size,
                int(params.get(f"c_m_axi_{direction}_data_width", 32)) >> 3,
                tx_rx,
                bool(int(params.get(f"c_include_{direction}_dre", 0))),
                hang_limit,
            )

        self.sendchannel = channel("mm2s", DMA_TYPE_TX)
        self.recvchannel = channel("s2mm", DMA_TYPE_RX)

    def release(self) -> None:
        """Both channels forget their last buffers (the overlay is unloaded)."""
        for channel in (self.sendchannel, self.recvchannel):
            if channel is not None:
                channel.release()
