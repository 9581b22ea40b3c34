"""The PL resizer's register sequence: one frame at a time, every wait with a deadline.

Speaks only the ``pynq`` API (``Overlay`` IPs by attribute, ``DefaultIP.read/write`` with
Python ints, DMA channel ``transfer``/``idle``/``error``/``start``), so the same code drives
a real board and the emulator. pynq's own ``wait()`` spins forever when a frame never
completes, so the driver polls the channels itself against a deadline derived from the
frame's modelled time, and recovers the hardware before giving a frame up.

Per frame (the spec's safe sequence, no auto-restart, so sizes are latched at each start):
wait for ap_idle, write the four sizes, write ap_start, post the receive, post the send,
poll both channels, check the byte count received, invalidate the output.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import PLFault
from .timing import frame_seconds

# Resizer IP (HLS s_axilite, ap_ctrl_hs)
IP_CTRL = 0x00
AP_START = 0x01
AP_IDLE = 0x04
AUTO_RESTART = 0x80
IP_SRC_ROWS = 0x10
IP_SRC_COLS = 0x18
IP_DST_ROWS = 0x20
IP_DST_COLS = 0x28

# AXI DMA, simple mode (PG021)
MM2S_DMACR = 0x00
MM2S_DMASR = 0x04
S2MM_DMACR = 0x30
S2MM_DMASR = 0x34
S2MM_LENGTH = 0x58
DMACR_RS = 1 << 0
DMACR_RESET = 1 << 2
DMASR_HALTED = 1 << 0

IDLE_TIMEOUT = 0.005  # ap_idle follows ap_done within ~25 cycles; 5 ms is generous
RESET_TIMEOUT = 0.010
BUSY_TIMEOUT = 0.5  # beyond the frame's own deadline, waiting for another frame's IP
DRAIN_MARGIN = 0.005  # beyond the owed output's own streaming time
RECOVERY_MARGIN = 0.010  # kept from a frame's wait for the DMA resets and bookkeeping
MAX_FRAME = (2160, 3840, 2160, 3840)  # the largest frame of either build, in and out
MAX_FRAME_BYTES = 2160 * 3840 * 3
PROBE_BYTES = 12  # a 2x2 frame: three 4-byte beats

_log = logging.getLogger("pynq_cv")


@dataclass
class Deadlines:
    """How long a frame may take: ``factor`` x the IP's modelled time for it + ``margin`` seconds.

    The bound holds for the PL part of a call: from the frame's turn at the IP (its copy in
    included) until it is delivered or given up, recovery included (a PL reset aside: the
    board's bitstream download takes what it takes; the emulator's is immediate)."""

    factor: float = 2.0
    margin: float = 0.05
    poll: float = 0.0005  # sleep between status polls once the frame is nearly due

    def __post_init__(self) -> None:
        for name, low, strict in (("factor", 0.0, True), ("margin", 0.0, False),
                                  ("poll", 0.0, True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Deadlines.{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < low or (strict and value <= low):
                need = f"> {low}" if strict else f">= {low}"
                raise ValueError(f"Deadlines.{name} must be finite and {need}, got {value!r}")

    def for_frame(self, modelled: float) -> float:
        return modelled * self.factor + self.margin


def drain_seconds(nbytes: int, clock_hz: int) -> float:
    """The most a drain of ``nbytes`` owed output may take: its streaming time (3 bytes per
    clock) with a quarter more, plus ``DRAIN_MARGIN``."""
    return DRAIN_MARGIN + 1.25 * nbytes / 3 / clock_hz


class SharedIP:
    """What every driver of one physical IP must share: the lock held from ``begin`` to
    ``finish`` (one frame in the IP at a time), whether the hardware state is unknown, the
    output bytes the last started frame owes (the size registers are write-only), and the
    frame in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dirty = False
        self.owed_bytes = 0
        self.current: InFlight | None = None
        self.owner: InFlight | None = None  # who holds the lock (set just after taking it)
        self.attached = False  # a frame of ours has found the IP idle (after any take-over)


@dataclass
class InFlight:
    """A frame whose transfers are posted; ``ResizeDriver.finish`` collects it."""

    src: Any
    dst: Any
    sizes: tuple[int, int, int, int]
    out_bytes: int
    started: float
    modelled: float
    deadline: float
    finished: bool = False  # finish() was called
    done: bool = False  # the frame came through: nothing of it is left in the hardware
    claims_ip: bool = False  # set before taking SharedIP.lock, cleared after letting go
    released: bool = False  # let go of the IP (or never got it)


class ResizeDriver:
    """Drives one DMA + resizer pair. One frame is in the IP at a time (``begin``..``finish``)."""

    def __init__(
        self,
        overlay: Any,
        dma_name: str,
        ip_name: str,
        *,
        clock_hz: int = 100_000_000,
        deadlines: Deadlines | None = None,
        reset_pl: Callable[[], bool] | None = None,
        scratch: Callable[[int], Any] | None = None,
        shared: SharedIP | None = None,
    ) -> None:
        self.dma = getattr(overlay, dma_name)
        self.ip = getattr(overlay, ip_name)
        self.clock_hz = clock_hz
        self.deadlines = deadlines or Deadlines()
        self._reset_pl = reset_pl
        self._scratch = scratch  # nbytes -> buffer, used to drain output an IP still owes
        self.shared = shared or SharedIP()  # one per physical IP: engines on a board share it
        self.closed = False
        self.wait_cpu_seconds = 0.0
        self.recoveries: deque[str] = deque(maxlen=64)  # the latest recovery outcomes
        self.last_recovery = ""

    # -- one frame -------------------------------------------------------------------------

    def run(self, src: Any, dst: Any, sizes: tuple[int, int, int, int]) -> float:
        """Resize ``src`` into ``dst`` on the PL; returns the modelled board seconds."""
        return self.finish(self.begin(src, dst, sizes))

    def frame(self, src: Any, dst: Any, sizes: tuple[int, int, int, int]) -> InFlight:
        """A frame's record, before it takes anything: the caller keeps it, so that
        ``abandon(record)`` undoes whatever ``begin`` got to, even if an interrupt escapes it.

        Its deadline counts from the posts and leaves room for a recovery (a drain of the
        output it owes), so the frame is delivered or given up, recovered, within
        ``Deadlines.for_frame`` of its modelled time."""
        modelled = frame_seconds(*sizes, self.clock_hz)
        now = time.perf_counter()
        return InFlight(src, dst, sizes, int(dst.nbytes), now, modelled, now)

    def begin(
        self, src: Any, dst: Any, sizes: tuple[int, int, int, int], clean_dst: bool = False,
        job: InFlight | None = None,
    ) -> InFlight:
        """Post one frame. Waits (boundedly) while another frame holds the IP.

        ``clean_dst``: the CPU may have written ``dst`` (a caller's buffer), so its cache
        lines are cleaned first -- a dirty line evicted during the DMA would overwrite output.
        ``job``: the record ``frame`` made beforehand (default: made here).
        """
        in_rows, in_cols, out_rows, out_cols = sizes
        if job is None:
            job = self.frame(src, dst, sizes)
        bound = self.deadlines.for_frame(job.modelled)
        shared = self.shared
        posted = False
        try:
            job.claims_ip = True
            if not shared.lock.acquire(timeout=bound + BUSY_TIMEOUT):
                job.claims_ip = False
                raise PLFault("busy", "the PL stayed busy with another frame past its deadline")
            shared.owner = job
            job.started = time.perf_counter()  # the frame's PL clock starts with the posts
            reserve = drain_seconds(job.out_bytes, self.clock_hz) + IDLE_TIMEOUT + RECOVERY_MARGIN
            job.deadline = job.started + max(bound - reserve, job.modelled)
            if self.closed:
                raise PLFault("closed", "the engine was closed while this frame was prepared")
            if shared.dirty:  # a wait was interrupted: the hardware state is unknown
                shared.dirty = False
                self._recover(send_done=False)
            self._await_ip_idle()
            ip = self.ip
            ip.write(IP_SRC_ROWS, int(in_rows))
            ip.write(IP_SRC_COLS, int(in_cols))
            ip.write(IP_DST_ROWS, int(out_rows))
            ip.write(IP_DST_COLS, int(out_cols))
            shared.owed_bytes = int(dst.nbytes)
            # the notebook's order: both transfers (pynq checks them first), then ap_start,
            # so a transfer pynq refuses never leaves a started IP waiting for input
            posted = True
            try:
                if clean_dst:
                    dst.flush()
                self.dma.recvchannel.transfer(dst)
                self.dma.sendchannel.transfer(src)
            except (RuntimeError, ValueError) as exc:
                raise self._fault("dma_error", f"DMA refused the transfer: {exc}", False) from exc
            if self.dma.sendchannel.error or self.dma.recvchannel.error:
                # an error at post time (a bad address, say): the IP is not started yet, so
                # a DMA reset is all it takes -- not a PL reset
                status = (self.dma.read(MM2S_DMASR), self.dma.read(S2MM_DMASR))
                message = f"DMA error at post: MM2S_DMASR={status[0]:#x} S2MM_DMASR={status[1]:#x}"
                raise self._fault("dma_error", message, False)
            shared.dirty = True  # until finish() has seen the frame through
            ip.write(IP_CTRL, AP_START)
            shared.current = job
            return job
        except PLFault:
            job.done = True  # _fault has recovered the hardware already
            self._let_go(job)
            raise
        except BaseException:  # an interrupt part-way: a transfer may be posted
            if posted:
                self._stop_dma()
            job.done = True
            self._let_go(job)
            raise

    def _let_go(self, job: InFlight) -> None:
        """Release the IP if ``job`` holds it; idempotent, and correct wherever an interrupt
        cut an earlier attempt (or ``begin``) short: ``claims_ip`` is set before the lock is
        taken and cleared after it is released, ``shared.owner`` set just after taking it and
        cleared just before releasing it. A claimed, locked IP whose owner is ``job``, or
        nobody (an interrupt between acquire and the owner's record), or a frame that let go
        already, is ``job``'s: within an engine frames take the IP in turn."""
        shared = self.shared
        if shared.current is job:
            shared.current = None
        if not job.claims_ip:
            return
        owner = shared.owner
        if shared.lock.locked() and (owner is job or owner is None or owner.released):
            shared.owner = None
            shared.lock.release()
        job.released = True
        job.claims_ip = False

    def finish(self, job: InFlight) -> float:
        """Wait for ``job`` (never past its deadline), check it, and release the IP.

        Single use: a frame is finished once. If the wait is interrupted by anything but a
        ``PLFault`` (e.g. KeyboardInterrupt) the DMA is reset before the IP is released, so
        no transfer can still write the frame's buffers after they go back to the pool."""
        if job.finished:
            raise RuntimeError("this frame was already finished")
        job.finished = True
        shared = self.shared
        try:
            send_done = self._await_channels(job)
            received = self.dma.read(S2MM_LENGTH)
            if received != job.out_bytes:
                message = f"received {received} of {job.out_bytes} bytes"
                raise self._fault("short_transfer", message, send_done)
            job.dst.invalidate()
            shared.dirty = False
            job.done = True
            self._let_go(job)
            return job.modelled
        except PLFault:
            shared.dirty = False  # recovered (or reported as failed) by _fault
            job.done = True
            self._let_go(job)
            raise
        except BaseException:
            self.abandon(job)
            raise

    def close(self, timeout: float = 2.0) -> None:
        """Refuse new frames; wait (boundedly) for the one in the IP to be finished."""
        self.closed = True
        end = time.perf_counter() + timeout
        while self.shared.lock.locked() and time.perf_counter() < end:
            time.sleep(self.deadlines.poll)

    def abandon(self, job: InFlight | None = None) -> None:
        """Give up ``job`` (default: the frame in flight) if it still holds the IP (an
        interrupt between begin and finish): stop the DMA so nothing writes its buffers any
        more, leave recovery to the next begin. Idempotent; never touches another frame."""
        if job is None:
            job = self.shared.current
        if job is None or not job.claims_ip:
            return
        if not job.done:
            self._stop_dma()
            job.done = True
        self._let_go(job)

    def _stop_dma(self) -> None:
        self.shared.dirty = True  # the next begin() recovers fully
        try:
            self.reset_dma()
        except Exception:  # noqa: BLE001 -- best effort; begin() recovers
            pass

    # -- waiting ---------------------------------------------------------------------------

    def _await_channels(self, job: InFlight) -> bool:
        """Poll both channels until idle; sleep through most of the modelled time first."""
        send, recv = self.dma.sendchannel, self.dma.recvchannel
        if recv.idle and send.idle and not (send.error or recv.error):
            return True  # done already (a fast frame, or the unpaced emulator)
        cpu0 = time.process_time()
        try:
            nap = job.started + 0.9 * job.modelled - time.perf_counter()
            if nap > 0.001 and not recv.idle:
                time.sleep(nap)
            poll = min(self.deadlines.poll, job.modelled / 50)
            while True:
                if send.error or recv.error:
                    status = (self.dma.read(MM2S_DMASR), self.dma.read(S2MM_DMASR))
                    message = f"DMA error bits: MM2S_DMASR={status[0]:#x} S2MM_DMASR={status[1]:#x}"
                    raise self._fault("dma_error", message, bool(send.idle))
                if recv.idle and send.idle:
                    return True
                if time.perf_counter() > job.deadline:
                    send_done = bool(send.idle)
                    message = (
                        f"frame {job.sizes} not done after {job.deadline - job.started:.3f} s "
                        f"(modelled {job.modelled * 1e3:.2f} ms; send idle={send_done})"
                    )
                    raise self._fault("timeout", message, send_done)
                time.sleep(poll)
        finally:
            self.wait_cpu_seconds += time.process_time() - cpu0

    def _await_ip_idle(self, timeout: float = IDLE_TIMEOUT) -> None:
        """Wait (boundedly) for ap_idle; an IP left running -- AUTO_RESTART on, or a started
        frame that nobody feeds -- is taken over (``_take_over``), anything else recovered."""
        end = time.perf_counter() + timeout
        ctrl = self.ip.read(IP_CTRL)
        while not ctrl & AP_IDLE:
            if ctrl & AUTO_RESTART or time.perf_counter() > end:
                cause = ""
                # our frames never set AUTO_RESTART; a started frame before our first is not ours
                foreign = ctrl & AUTO_RESTART or (ctrl & AP_START and not self.shared.attached)
                if ctrl == 0:  # an IP holding output nobody takes, or nothing answering
                    cause = ("its control register reads 0: output nobody takes, or a PL "
                             "that does not answer (not programmed with the overlay?)")
                if foreign:
                    cause, done = self._take_over(ctrl)
                    if done:
                        self.shared.attached = True
                        return
                if self._recover(send_done=True) == "failed":
                    fault = PLFault("ip_stuck", "the resizer IP stays busy after recovery"
                                    + (f" ({cause})" if cause else ""))
                    fault.recovery = "failed"
                    raise fault
                self.shared.attached = True
                return
            time.sleep(0)
            ctrl = self.ip.read(IP_CTRL)
        self.shared.attached = True

    def _take_over(self, ctrl: int) -> tuple[str, bool]:
        """An IP someone else left running: stop it, complete the frame it waits for.

        The HelloWorld notebook's ``run_kernel()`` writes 0x81 and leaves AUTO_RESTART on: the
        IP restarts as each frame's input ends and waits for another frame of the notebook's
        size, so ap_idle never returns. Writing 0x00 lets that run be its last. It is then
        fed the input it expects (scratch bytes: src_rows x src_cols x 3 where the size
        registers read back, else as much as the IP can ever take, the rest dropped by a DMA
        reset) while its output goes to scratch -- the spec's lightest recovery, no bitstream
        reload. Feeding more than the run takes can leave part of a beat in the 4->3 width
        converter, which a DMA reset keeps: ``_realign`` finds and takes it. Returns (the
        cause in words, whether the IP is idle and aligned again)."""
        cause = ("AUTO_RESTART left on by another program" if ctrl & AUTO_RESTART
                 else "a frame started by another program and never fed")
        self.ip.write(IP_CTRL, 0)  # no restart after the run in progress
        sizes = tuple(
            int(self.ip.read(reg)) for reg in (IP_SRC_ROWS, IP_SRC_COLS, IP_DST_ROWS, IP_DST_COLS)
        )
        done = False
        if self._scratch is None:
            what = "had no scratch memory to complete the frame it waits for"
        else:
            known = all(sizes) and self._complete_frame(sizes[0] * sizes[1] * 3,
                                                        sizes[2] * sizes[3] * 3, sizes)
            done = (known or self._complete_frame(MAX_FRAME_BYTES, MAX_FRAME_BYTES)) and (
                self._realign()
            )
            frame = (f" ({sizes[0]}x{sizes[1]} -> {sizes[2]}x{sizes[3]})" if known else
                     " (its size unknown: the size registers do not read back)")
            what = ("completed" if done else "could not complete") + (
                f" the frame it waited for{frame} with scratch buffers"
            )
        remedy = ("; the PL is usable again" if done else
                  "; reloading the bitstream resets it (PYNQ_CV_REPROGRAM=1 or "
                  "Resizer(reprogram=True))")
        _log.warning("the resizer IP was left running (%s): stopped it (wrote 0x00 "
                     "to its control register), %s%s", cause, what, remedy)
        return cause, done

    def _complete_frame(
        self, in_bytes: int, out_bytes: int, sizes: tuple[int, ...] | None = None
    ) -> bool:
        """Feed a started run ``in_bytes`` of scratch and receive up to ``out_bytes`` of its
        output, within the deadline of a frame of ``sizes`` (default: the largest)."""
        idle = False
        self.shared.dirty = True  # an interrupt here leaves scratch transfers posted
        try:
            self.reset_dma()
            scratch = self._scratch(max(in_bytes, out_bytes))  # contents do not matter
            self.dma.recvchannel.transfer(scratch[:out_bytes])
            self.dma.sendchannel.transfer(scratch[:in_bytes])
            end = time.perf_counter() + self.deadlines.for_frame(
                frame_seconds(*(sizes or MAX_FRAME), self.clock_hz)
            )
            while not idle and time.perf_counter() <= end:
                time.sleep(self.deadlines.poll)
                idle = self._ip_idle()
        except Exception:  # noqa: BLE001 -- e.g. a size the DMA refuses: the PL reset path
            idle = False
        try:
            self.reset_dma()  # whatever input the run did not take leaves the DMA
        except PLFault:
            return False
        self.shared.dirty = False
        return idle and self._ip_idle()

    def _realign(self) -> bool:
        """Empty the 4->3 width converter: a 2x2 frame of known pixels, resized to 2x2 (the
        IP copies it exactly), comes out shifted by the k stale bytes the converter held
        (then it holds the probe's last k); a second probe sent k bytes short takes those,
        leaving the converter empty. True when the stream is aligned again."""
        pattern = np.arange(1, PROBE_BYTES + 1, dtype=np.uint8)
        out = self._probe(pattern, PROBE_BYTES)
        if out is None:
            return False
        stale = next((k for k in range(4) if np.array_equal(out[k:], pattern[:PROBE_BYTES - k])),
                     None)
        if stale is None:
            return False
        if stale == 0:
            return True
        out = self._probe(pattern, PROBE_BYTES - stale)
        return out is not None and np.array_equal(
            out, np.concatenate([pattern[PROBE_BYTES - stale:], pattern[:PROBE_BYTES - stale]])
        )

    def _probe(self, pattern: np.ndarray, send: int) -> np.ndarray | None:
        """One 2x2 -> 2x2 frame from scratch, the first ``send`` bytes of ``pattern`` posted;
        its output bytes, or None if it does not complete within a short deadline."""
        scratch = self._scratch(2 * PROBE_BYTES)
        src, dst = scratch[:PROBE_BYTES], scratch[PROBE_BYTES:2 * PROBE_BYTES]
        src[:] = pattern
        src.flush()
        for reg in (IP_SRC_ROWS, IP_SRC_COLS, IP_DST_ROWS, IP_DST_COLS):
            self.ip.write(reg, 2)
        self.shared.dirty = True
        try:
            self.dma.recvchannel.transfer(dst)
            self.dma.sendchannel.transfer(src[:send])
            self.ip.write(IP_CTRL, AP_START)
            end = time.perf_counter() + self.deadlines.for_frame(
                frame_seconds(2, 2, 2, 2, self.clock_hz)
            )
            while not (self.dma.recvchannel.idle and self._ip_idle()):
                if time.perf_counter() > end:
                    return None
                time.sleep(self.deadlines.poll)
        except Exception:  # noqa: BLE001 -- reported as "could not complete"
            return None
        finally:
            self.reset_dma()
        self.shared.dirty = False
        dst.invalidate()
        return np.array(dst, dtype=np.uint8).reshape(-1)

    # -- recovery --------------------------------------------------------------------------

    def reset_dma(self) -> None:
        """DMACR.Reset (resets the whole core, both channels), then run both channels again.

        pynq's ``start()`` spins forever on a channel that stays halted, so RS is set and
        Halted polled here against a deadline first; ``start()`` then returns at once (and
        re-arms pynq's first-transfer flag)."""
        dma = self.dma
        dma.write(MM2S_DMACR, DMACR_RESET)
        self._poll(lambda: not dma.read(MM2S_DMACR) & DMACR_RESET, "DMA reset does not complete")
        dma.write(MM2S_DMACR, DMACR_RS)
        dma.write(S2MM_DMACR, DMACR_RS)
        self._poll(
            lambda: not (dma.read(MM2S_DMASR) | dma.read(S2MM_DMASR)) & DMASR_HALTED,
            "DMA channels stay halted after reset",
        )
        dma.sendchannel.start()
        dma.recvchannel.start()

    @staticmethod
    def _poll(ready: Callable[[], bool], failure: str, timeout: float = RESET_TIMEOUT) -> None:
        end = time.perf_counter() + timeout
        while not ready():
            if time.perf_counter() > end:
                raise PLFault("dma_error", failure)
            time.sleep(0)

    def _ip_idle(self) -> bool:
        return bool(self.ip.read(IP_CTRL) & AP_IDLE)

    def _fault(self, kind: str, message: str, send_done: bool) -> PLFault:
        """Recover the hardware, then describe the fault (with the recovery it took)."""
        fault = PLFault(kind, message)
        fault.recovery = self._recover(send_done)
        return fault

    def _recover(self, send_done: bool) -> str:
        """Bring DMA and IP back to idle, lightest step first; returns the step that worked
        ("dma_reset", "finish_frame", "pl_reset") or "failed".

        A DMA reset clears the channels but not the IP; an IP that got all its input and
        still owes output is finished by receiving that output into scratch; anything else
        (an IP part-way through its input, or hung), or a lighter step that itself fails,
        needs a PL reset from the board layer.
        """
        outcome = "failed"
        try:
            self.reset_dma()
            if self._ip_idle():
                outcome = "dma_reset"
            elif send_done and self._scratch is not None and self._drain_owed_output():
                outcome = "finish_frame"
        except Exception:  # noqa: BLE001 -- a failed light step falls through to the PL reset
            pass
        if outcome == "failed" and self._reset_pl is not None:
            try:
                if self._reset_pl():
                    self.reset_dma()
                    if self._ip_idle():
                        outcome = "pl_reset"
            except Exception:  # noqa: BLE001 -- reported as "failed"
                pass
        self.recoveries.append(outcome)
        self.last_recovery = outcome
        return outcome

    def _drain_owed_output(self) -> bool:
        """Receive whatever output the IP still owes into scratch memory, then reset the DMA."""
        nbytes = self.shared.owed_bytes
        if nbytes <= 0:
            return False
        try:
            self.dma.recvchannel.transfer(self._scratch(nbytes))
            # an IP that only owes output streams it at once: a short wait, not a whole
            # frame deadline, so a hung IP costs about one deadline in all
            end = time.perf_counter() + drain_seconds(nbytes, self.clock_hz)
            while not self._ip_idle():
                if time.perf_counter() > end:
                    return False
                time.sleep(self.deadlines.poll)
            return True
        finally:
            self.reset_dma()
