"""The resizer IP (HLS ``resize_accel``, ap_ctrl_hs) as its registers and streams show it.

Register side (HLS ``s_axilite``): control at 0x00 (ap_start, ap_done clear-on-read,
ap_idle, ap_ready, auto_restart), GIE/IER/ISR, and the four size registers. Stream side,
used by the block design (``overlay.StreamPath``): :meth:`ResizeIP.input_needed` and
:meth:`ResizeIP.take_input` for the input stream, :attr:`ResizeIP.output` and
:meth:`ResizeIP.drained` for the output packet. The pixels themselves come from
``arith.resize_exact``, computed once per frame when its last input byte arrives.

One *run* is one ap_start .. ap_done. What the RTL simulation of the 2020 build shows, and
this model follows:

- A run latches the four size registers when it starts. It reads exactly rows x cols x 3
  input bytes (input TLAST is ignored; the bytes may come in several DMA transfers) and
  then raises ap_ready; at that moment ``ap_start`` becomes the auto_restart bit, and if it
  is set the next run starts *at once* and latches the sizes then -- so sizes written after
  a frame's done apply one frame late, and ap_idle stays 0 between frames.
- Without auto_restart, ap_start stays 1 from the 0x01 write until ap_ready, and ap_idle
  returns when the output has been delivered.
- The output (rows' x cols' x 3 bytes, TLAST on the last) is delivered when someone takes
  it; until then the IP holds it, is not done, and takes no input for its next run.
  (Simplification of backpressure: on hardware the IP would stall part-way through the
  frame; here it takes all of the frame's input first, and its output appears only once the
  whole input is in.)

Frames that never complete, by design (undefined on hardware):
- rows == 1: the IP takes the first row and blocks forever waiting for a second; no output,
  never ready or done, ap_start stays 1 (a PL reset recovers);
- input rows/cols of 0 or above 2160 x 3840, an output size of 0 as written, or (2021
  build) above 2160 x 3840: the run starts, takes no input and never finishes.

The 2020 build holds the output sizes in 11 bits: with rows' or cols' >= 2048 it produces
(rows' mod 2048) x (cols' mod 2048) pixels (the resize to that size), raises TLAST early
and reports done; with a zero there it produces nothing and reports done. Output sizes
between the documented 1080 x 1920 and 2047 are computed normally (unconfirmed on boards).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import arith
from ...timing import DEFAULT_CLOCK_HZ, frame_seconds

# Registers
CTRL = 0x00
GIE = 0x04
IER = 0x08
ISR = 0x0C
SRC_ROWS = 0x10
SRC_COLS = 0x18
DST_ROWS = 0x20
DST_COLS = 0x28
# CTRL bits
AP_START = 0x01
AP_DONE = 0x02
AP_IDLE = 0x04
AP_READY = 0x08
AUTO_RESTART = 0x80
# IER / ISR bits
IRQ_DONE = 0x1
IRQ_READY = 0x2

PIXEL_BYTES = 3
MAX_IN = (2160, 3840)
EMPTY = np.zeros(0, dtype=np.uint8)


@dataclass(frozen=True)
class Build:
    """What differs between the bitstreams in the field."""

    name: str
    max_out: tuple[int, int]
    out_size_bits: int | None  # 11 on the 2020 build: output sizes wrap at 2048
    ready_latched: bool  # Vitis HLS latches ap_ready (clear on read); Vivado HLS does not
    sizes_read_back: bool  # the size registers read what was written (.hwh: write-only)


# The 2020 build's generated AXI-Lite RTL (resize_accel_AXILiteS_s_axi.v, PYNQ-HelloWorld
# d3005c5) returns the four size registers on reads; the 2021 build's is unconfirmed: 0.
BUILDS = {
    "2020": Build("2020", (1080, 1920), 11, False, True),
    "2021": Build("2021", (2160, 3840), None, True, False),
}


class Run:
    """One ap_start .. ap_done: latched sizes and the input gathered so far."""

    __slots__ = ("sizes", "need", "got", "src", "posted_at", "blocked")

    def __init__(self, sizes: tuple[int, int, int, int], need: int, now: float) -> None:
        self.sizes = sizes
        self.need = need  # input bytes the run takes (then it is ready, or blocked)
        self.got = 0
        self.src: np.ndarray | None = None
        self.posted_at = now  # latest of its start and the posting of its input
        self.blocked = ""  # why it will never finish ("" if it will)


class OutputPacket:
    """A frame's output stream: bytes, TLAST after the last; ``pos`` delivered so far."""

    __slots__ = ("data", "pos", "posted_at", "seconds", "sizes", "hung")

    def __init__(
        self,
        data: np.ndarray,
        posted_at: float,
        seconds: float,
        sizes: tuple[int, int, int, int],
        hung: bool = False,
    ) -> None:
        self.data = data
        self.pos = 0
        self.posted_at = posted_at
        self.seconds = seconds
        self.sizes = sizes
        self.hung = hung  # an injected hang: never delivers, never done

    @property
    def remaining(self) -> int:
        return self.data.size - self.pos


class ResizeIP:
    """The resizer IP core: registers, the run state machine and its two streams."""

    def __init__(
        self,
        build: str = "2020",
        clock_hz: int = DEFAULT_CLOCK_HZ,
        faults: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if build not in BUILDS:
            raise ValueError(f"unknown resizer build {build!r}; known: {sorted(BUILDS)}")
        self.build = BUILDS[build]
        self.clock_hz = clock_hz
        self.faults = faults
        self.clock = clock
        self._in_scratch = EMPTY
        self._out_buffers: dict[tuple[int, int], np.ndarray] = {}
        self.frames = 0
        self.last_frame_seconds = 0.0
        self.busy_seconds = 0.0
        self.reset()

    def reset(self) -> None:
        """ap_rst_n: every register and run state back to power-on (a PL reset)."""
        self.sizes = [0, 0, 0, 0]  # src_rows, src_cols, dst_rows, dst_cols registers
        self.ap_start = False
        self.auto_restart = False
        self.done_latch = False
        self.ready_latch = False
        self.gie = 0
        self.ier = 0
        self.isr = 0
        self.run: Run | None = None
        self.output: OutputPacket | None = None

    # -- register side ---------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self.run is None and self.output is None

    def read(self, offset: int) -> int:
        if offset == CTRL:
            value = (
                int(self.ap_start)
                | int(self.done_latch) << 1
                | int(self.idle) << 2
                | int(self.ready_latch) << 3
                | int(self.auto_restart) << 7
            )
            self.done_latch = False  # clear on read
            self.ready_latch = False
            return value
        if offset == GIE:
            return self.gie
        if offset == IER:
            return self.ier
        if offset == ISR:
            return self.isr
        if offset in (SRC_ROWS, SRC_COLS, DST_ROWS, DST_COLS) and self.build.sizes_read_back:
            return self.sizes[(offset - SRC_ROWS) // 8]
        return 0  # unmapped, or sizes not readable on this build

    def write(self, offset: int, value: int) -> None:
        if offset == CTRL:
            self.auto_restart = bool(value & AUTO_RESTART)
            if value & AP_START:
                self.ap_start = True
                self._start_if_asked()
        elif offset == GIE:
            self.gie = value & 1
        elif offset == IER:
            self.ier = value & (IRQ_DONE | IRQ_READY)
        elif offset == ISR:
            self.isr ^= value & (IRQ_DONE | IRQ_READY)  # toggle on write
        elif offset in (SRC_ROWS, SRC_COLS, DST_ROWS, DST_COLS):
            self.sizes[(offset - SRC_ROWS) // 8] = value & 0xFFFF_FFFF

    def _start_if_asked(self) -> None:
        """ap_start with the input side free: a run starts and latches the sizes now."""
        if not self.ap_start or self.run is not None:
            return
        sizes = (self.sizes[0], self.sizes[1], self.sizes[2], self.sizes[3])
        rows, cols, out_rows, out_cols = sizes
        run = Run(sizes, rows * cols * PIXEL_BYTES, self.clock())
        if not (0 < rows <= MAX_IN[0] and 0 < cols <= MAX_IN[1]) or not (out_rows and out_cols):
            run.need, run.blocked = 0, "sizes outside what the IP handles"
        elif self.build.out_size_bits is None and not (
            out_rows <= self.build.max_out[0] and out_cols <= self.build.max_out[1]
        ):
            run.need, run.blocked = 0, "output larger than the build handles"
        elif rows == 1:
            run.need, run.blocked = cols * PIXEL_BYTES, "one input row: waits for a second"
        self.run = run

    # -- stream side -----------------------------------------------------------------------

    def input_needed(self) -> int:
        """Input bytes the IP takes now (0: not accepting)."""
        run = self.run
        if run is None or self.output is not None:
            return 0
        return run.need - run.got

    def take_input(self, data: np.ndarray, posted_at: float) -> float | None:
        """Accept ``data`` (at most ``input_needed()`` bytes, 1-D uint8).

        Returns the time the frame's work is done when this completed its input (for
        pacing), else None.
        """
        run = self.run
        n = data.size
        run.posted_at = max(run.posted_at, posted_at)
        if run.got == 0 and n == run.need:
            run.src = data  # the whole frame in one piece: use it where it lies
        else:
            if run.got == 0:
                if self._in_scratch.size < run.need:
                    self._in_scratch = np.empty(run.need, dtype=np.uint8)
                run.src = self._in_scratch[: run.need]
            run.src[run.got : run.got + n] = data
        run.got += n
        if run.got < run.need or run.blocked:
            return None
        return self._input_complete(run)

    def _input_complete(self, run: Run) -> float:
        """The last input byte is in: compute the frame, then ap_ready (maybe a restart)."""
        rows, cols, out_rows, out_cols = run.sizes
        bits = self.build.out_size_bits
        if bits is not None:
            out_rows &= (1 << bits) - 1
            out_cols &= (1 << bits) - 1
        sizes = (rows, cols, out_rows, out_cols)
        seconds = frame_seconds(rows, cols, out_rows, out_cols, self.clock_hz)
        if self._take_fault("ip_hang"):
            packet = OutputPacket(EMPTY, run.posted_at, seconds, sizes, hung=True)
        else:
            data = EMPTY
            if out_rows and out_cols:
                out = self._out_buffer(out_rows, out_cols)
                src = run.src.reshape(rows, cols, PIXEL_BYTES)
                arith.resize_exact(src, out_rows, out_cols, out=out)
                data = out.reshape(-1)
            if data.size > PIXEL_BYTES and self._take_fault("short_packet"):
                data = data[: (data.size // PIXEL_BYTES // 2) * PIXEL_BYTES]
            packet = OutputPacket(data, run.posted_at, seconds, sizes)
        run.src = None
        self.output = packet
        # ap_ready: ap_start takes the auto_restart bit; a restart latches the sizes now
        if self.build.ready_latched:
            self.ready_latch = True
        if self.ier & IRQ_READY:
            self.isr |= IRQ_READY
        self.ap_start = self.auto_restart
        self.run = None
        self._start_if_asked()
        return run.posted_at + seconds

    def drained(self) -> None:
        """The output packet's last byte has left: ap_done."""
        packet = self.output
        self.output = None
        self.done_latch = True
        if self.ier & IRQ_DONE:
            self.isr |= IRQ_DONE
        self.frames += 1
        self.last_frame_seconds = packet.seconds
        self.busy_seconds += packet.seconds

    def _out_buffer(self, rows: int, cols: int) -> np.ndarray:
        buf = self._out_buffers.get((rows, cols))
        if buf is None:
            if len(self._out_buffers) >= 4:
                self._out_buffers.clear()
            buf = self._out_buffers[(rows, cols)] = np.empty(
                (rows, cols, PIXEL_BYTES), dtype=np.uint8
            )
        return buf

    def _take_fault(self, name: str) -> bool:
        if self.faults is None or not self.faults.take(name):
            return False
        self.faults.surfaced(name)
        return True
