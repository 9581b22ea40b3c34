"""pynq's own drivers, unmodified, on the emulated board -- as on a board image.

Runs where the ``pynq`` package imports (the second CI environment: pynq 4.0.0 on numpy
1.x); skipped elsewhere, except under ``PYNQ_CV_REQUIRE_PYNQ=1`` (set by CI there), which
turns a missing pynq into a failure. ``pynq.lib.dma.DMA``, ``pynq.DefaultIP``, ``MMIO``
and ``pynq.allocate`` run on an ``EmulatedPynqDevice``: what they see of the emulated
registers and memory is what they would see of a board, so these tests pin that the
emulator and pynq_cv's driver agree with the driver every PYNQ user runs.

pynq's ``wait()`` and ``start()`` spin with no timeout. The tests never call them unless
the channel has already finished or failed (``settled``), so a regression fails a test
instead of hanging the suite.
"""

from __future__ import annotations

import dataclasses
import time
import types
import warnings

import numpy as np
import pytest
from conftest import frame, real_pynq

pynq = real_pynq()
from pynq.buffer import PynqBuffer  # noqa: E402
from pynq.lib.dma import DMA  # noqa: E402

import pynq_cv  # noqa: E402
from pynq_cv import resizer as engine_module  # noqa: E402
from pynq_cv.backends import board as board_backend  # noqa: E402
from pynq_cv.backends.emulator import EmulatedBoard  # noqa: E402
from pynq_cv.backends.emulator.arith import resize_exact  # noqa: E402
from pynq_cv.backends.emulator.pynq_device import (  # noqa: E402
    PynqStackBoard,
    emulated_pynq_device,
    make_pynq_device,
)
from pynq_cv.backends.select import open_board  # noqa: E402
from pynq_cv.descriptors import descriptor_for  # noqa: E402
from pynq_cv.driver import Deadlines, ResizeDriver  # noqa: E402
from pynq_cv.timing import frame_seconds  # noqa: E402

# Registers, as the notebook and PG021 name them
SRC_ROWS, SRC_COLS, DST_ROWS, DST_COLS, CTRL = 0x10, 0x18, 0x20, 0x28, 0x00
AP_IDLE = 0x04
MM2S_DMACR, MM2S_DMASR, S2MM_DMASR = 0x00, 0x04, 0x34
HALTED, IDLE, INT_ERR, SLV_ERR, DEC_ERR = 0x01, 0x02, 0x10, 0x20, 0x40
RESET = 0x04

NOT_STARTED = "DMA channel not started"


# -- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def board():
    with EmulatedBoard() as emulated:
        yield emulated


@pytest.fixture
def device(board):
    with emulated_pynq_device(board) as dev:
        yield dev


@pytest.fixture
def dma(device, board):
    return DMA(device.description(board.descriptor.dma.name))


@pytest.fixture
def resizer(device, board):
    return pynq.DefaultIP(device.description(board.descriptor.resizer.name))


def settled(channel, timeout: float = 5.0) -> bool:
    """True once ``channel`` is idle or halted (so pynq's ``wait()`` will not spin)."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if channel.idle or not channel.running:
            return True
        time.sleep(0.0005)
    return False


def wait(channel) -> None:
    """pynq's ``wait()``, called only once it cannot spin forever."""
    assert settled(channel), "the transfer never completes: pynq's wait() would hang here"
    channel.wait()


def write_sizes(ip, sizes) -> None:
    for offset, value in zip((SRC_ROWS, SRC_COLS, DST_ROWS, DST_COLS), sizes, strict=True):
        ip.write(offset, value)


def await_ip_idle(ip, timeout: float = 2.0) -> None:
    end = time.perf_counter() + timeout
    while not ip.read(CTRL) & AP_IDLE:
        assert time.perf_counter() < end, "the resizer IP never becomes idle"


def notebook_frame(dma, ip, src, dst, ctrl: int) -> None:
    """One frame exactly as the HelloWorld resizer notebook runs it."""
    write_sizes(ip, (*src.shape[:2], *dst.shape[:2]))
    dma.sendchannel.transfer(src)
    dma.recvchannel.transfer(dst)
    ip.write(CTRL, ctrl)
    wait(dma.sendchannel)
    wait(dma.recvchannel)


def buffer_with(image: np.ndarray):
    buf = pynq.allocate(image.shape, dtype=np.uint8)
    buf[:] = image
    return buf


# -- the adapter: pynq's Device, MMIO and allocate on the emulator ---------------------------


def test_pynq_allocate_returns_pynq_buffers_in_emulated_cma(device, board):
    before = board.memory.live_buffers
    buf = pynq.allocate((6, 8, 3), dtype=np.uint8)
    assert type(buf) is PynqBuffer and buf.device is device
    assert board.memory.live_buffers == before + 1
    assert board.memory.window(buf.physical_address, buf.nbytes) is not None
    assert buf[1:].physical_address == buf.physical_address + 8 * 3
    assert buf.cacheable and not buf.coherent
    buf.freebuffer()
    assert board.memory.live_buffers == before
    buf.freebuffer()  # twice is harmless, as in pynq
    with pynq.allocate(16, dtype="u4") as scoped:
        assert board.memory.live_buffers == before + 1
        assert scoped.physical_address % 4 == 0
    assert board.memory.live_buffers == before


def test_cacheable_pynq_buffers_are_non_coherent_until_flush_and_invalidate(device, board):
    buf = pynq.allocate((64,), dtype=np.uint8, cacheable=1)
    store = board.memory.window(buf.physical_address, 64)
    buf[:] = 7
    assert not store.any(), "CPU writes reach the device only at flush()"
    buf.flush()
    assert (store == 7).all()
    store[:] = 9  # what a DMA write does
    assert (buf == 7).all(), "device writes reach the CPU only at invalidate()"
    buf.invalidate()
    assert (buf == 9).all()


def test_invalidating_a_view_drops_what_the_installed_pynq_drops(device, board):
    """pynq 3.1+ syncs the whole allocation whatever view asks (pyxrt ``bo.sync()``);
    2.7 and 3.0 sync just the view's bytes. A view's invalidate on 3.1+ therefore drops
    CPU writes not yet flushed anywhere else in the same buffer."""
    buf = pynq.allocate((64,), dtype=np.uint8, cacheable=1)
    board.memory.window(buf.physical_address, 64)[:] = 9  # the device's copy
    buf[:] = 7  # the CPU's, not flushed
    buf[8:16].invalidate()
    whole = tuple(int(n) for n in pynq.__version__.split(".")[:2]) >= (3, 1)
    assert device.invalidates_whole_buffer == whole
    assert (buf[8:16] == 9).all()
    assert (buf[:8] == (9 if whole else 7)).all() and (buf[16:] == (9 if whole else 7)).all()


def test_buffers_garbage_collected_give_their_cma_back(device, board):
    before = board.memory.live_buffers
    buf = pynq.allocate((1024,), dtype=np.uint8)
    assert board.memory.live_buffers == before + 1
    del buf
    assert board.memory.live_buffers == before


def test_mmio_reads_and_writes_the_emulated_register_files(device, board):
    desc = board.descriptor
    mmio = pynq.MMIO(desc.dma.base, desc.dma.range)
    assert mmio.read(MM2S_DMASR) == board.overlay.axi_dma_0.read(MM2S_DMASR)
    mmio.write(MM2S_DMACR, 0)  # RS = 0
    assert board.overlay.axi_dma_0.read(MM2S_DMASR) & HALTED
    mmio.write(MM2S_DMACR, 1)  # RS = 1
    assert not board.overlay.axi_dma_0.read(MM2S_DMASR) & HALTED
    with pytest.raises(MemoryError, match="Unaligned"):
        mmio.read(2)
    with pytest.raises(MemoryError, match="no emulated IP"):
        pynq.MMIO(0x1000_0000 - 0x100, 0x100)  # no IP there: a bus error on a board


def test_the_active_device_is_restored_after_the_block(board):
    assert "_active_device" not in pynq.Device.__dict__
    with emulated_pynq_device(board) as dev:
        assert pynq.Device.active_device is dev
        with EmulatedBoard() as other, emulated_pynq_device(other) as inner:
            assert pynq.Device.active_device is inner
        assert pynq.Device.active_device is dev
        kept = pynq.allocate((8,), dtype=np.uint8)
    assert "_active_device" not in pynq.Device.__dict__
    assert board.memory.live_buffers == 0, "buffers left allocated are freed on exit"
    del kept
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match="No Devices Found"):
            pynq.allocate((8,), dtype=np.uint8)


def test_descriptions_suit_every_pynq_version(device, board):
    desc = device.description(board.descriptor.dma.name)
    assert type(desc) is dict, "pynq 2.7's DMA accepts only a plain dict"
    assert desc["device"] is device, "pynq 3.1+ DMA requires description['device']"
    assert desc["interrupts"] == {}, "the resizer overlay's DMA has no interrupt: polling only"


def test_the_descriptor_ip_dict_gives_pynqs_dma_both_channels(device, board):
    """pynq builds a DMA channel only when ``c_include_mm2s``/``c_include_s2mm`` is 1 (a
    missing key means no channel). The ``.hwh`` of every HelloWorld build has both, so the
    descriptors must too: pynq's DMA from the descriptor's ``ip_dict`` has both channels."""
    raw = dict(board.descriptor.ip_dict()[board.descriptor.dma.name], device=device)
    dma = DMA(raw)
    assert dma.sendchannel is not None and dma.recvchannel is not None
    without = {k: v for k, v in raw["parameters"].items() if "include_mm2s" not in k.lower()}
    assert DMA(dict(raw, parameters=without)).sendchannel is None


# -- pynq's DMA and DefaultIP drive the emulated overlay as the notebook does -----------------


@pytest.mark.parametrize("ctrl", [0x01, 0x81])
@pytest.mark.parametrize(
    ("in_hw", "out_hw"), [((48, 64), (24, 32)), ((36, 48), (100, 120)), ((64, 64), (64, 64))]
)
def test_notebook_sequence_on_pynq_drivers_equals_ip_arithmetic(dma, resizer, in_hw, out_hw, ctrl):
    image = frame(*in_hw, seed=sum(in_hw))
    src, dst = buffer_with(image), pynq.allocate((*out_hw, 3), dtype=np.uint8)
    notebook_frame(dma, resizer, src, dst, ctrl)
    np.testing.assert_array_equal(dst, resize_exact(image, *out_hw))
    assert dma.recvchannel.transferred == dst.nbytes
    assert dma.sendchannel.idle and dma.recvchannel.idle


def test_notebook_run_of_same_size_frames_under_auto_restart(dma, resizer):
    dst = pynq.allocate((30, 40, 3), dtype=np.uint8)
    for seed in range(4):
        image = frame(60, 80, seed=seed)
        notebook_frame(dma, resizer, buffer_with(image), dst, 0x81)
        np.testing.assert_array_equal(dst, resize_exact(image, 30, 40))
    assert not resizer.read(CTRL) & AP_IDLE, "auto_restart: the next run already started"


def test_new_sizes_under_auto_restart_hang_the_receive_as_on_a_board(dma, resizer):
    """The classic "recvchannel.wait() never returns": sizes written after a frame's done
    apply one frame late when auto_restart is on."""
    notebook_frame(dma, resizer, buffer_with(frame(40, 40)), pynq.allocate((20, 20, 3), np.uint8),
                   0x81)
    write_sizes(resizer, (20, 20, 10, 10))
    dma.sendchannel.transfer(buffer_with(frame(20, 20)))
    dma.recvchannel.transfer(pynq.allocate((10, 10, 3), dtype=np.uint8))
    resizer.write(CTRL, 0x81)
    assert not settled(dma.recvchannel, timeout=0.2)
    assert dma.recvchannel.running and not dma.recvchannel.error


def test_frames_run_per_frame_with_ap_start_and_idle_between(dma, resizer):
    """The spec's safe sequence for changing sizes: ap_idle, sizes, 0x01, transfers."""
    for seed, (in_hw, out_hw) in enumerate([((40, 60), (20, 30)), ((20, 20), (64, 48)),
                                            ((90, 30), (45, 15))]):
        image = frame(*in_hw, seed=seed)
        await_ip_idle(resizer)
        src, dst = buffer_with(image), pynq.allocate((*out_hw, 3), dtype=np.uint8)
        notebook_frame(dma, resizer, src, dst, 0x01)
        np.testing.assert_array_equal(dst, resize_exact(image, *out_hw))


def test_paced_board_completes_a_frame_only_when_its_modelled_time_has_passed():
    with EmulatedBoard(pace=True) as emulated, emulated_pynq_device(emulated) as dev:
        dma = DMA(dev.description(emulated.descriptor.dma.name))
        ip = pynq.DefaultIP(dev.description(emulated.descriptor.resizer.name))
        image = frame(480, 640, seed=9)
        src, dst = buffer_with(image), pynq.allocate((240, 320, 3), dtype=np.uint8)
        began = time.perf_counter()
        notebook_frame(dma, ip, src, dst, 0x01)
        elapsed = time.perf_counter() - began
    assert elapsed >= frame_seconds(480, 640, 240, 320, emulated.descriptor.clock_hz)
    np.testing.assert_array_equal(dst, resize_exact(image, 240, 320))


# -- pynq's driver sees the emulated DMA's errors as on a board -------------------------------


@pytest.mark.parametrize(("board_name", "width"), [("Pynq-Z2", 23), ("KV260", 26)])
def test_transfer_over_the_length_register_raises_pynqs_value_error(board_name, width):
    desc = descriptor_for(board_name)
    params = {**desc.dma.parameters, "c_sg_length_width": width}  # 23: the 2019.1 .hwh
    desc = dataclasses.replace(desc, dma=dataclasses.replace(desc.dma, parameters=params))
    with EmulatedBoard(descriptor=desc) as emulated, emulated_pynq_device(emulated) as dev:
        dma = DMA(dev.description(emulated.descriptor.dma.name))
        buf = pynq.allocate((64,), dtype=np.uint8)
        limit = (1 << width) - 1
        assert dma.buffer_max_size == limit
        message = (
            f"Transfer size is {limit + 1} bytes, which exceeds the maximum DMA buffer size "
            f"{limit}."
        )
        with pytest.raises(ValueError, match=message):
            dma.sendchannel.transfer(buf, nbytes=limit + 1)
        assert dma.read(MM2S_DMASR) & (IDLE | HALTED | 0x70) == 0, "nothing reached the DMA"


def test_unaligned_start_raises_pynqs_runtime_error(dma):
    buf = pynq.allocate((64,), dtype=np.uint8)
    message = "DMA does not support unaligned transfers; Starting address must be aligned to 4"
    with pytest.raises(RuntimeError, match=message):
        dma.sendchannel.transfer(buf, start=2)
    with pytest.raises(RuntimeError, match=message):
        dma.recvchannel.transfer(buf[1:])  # a view starts at its own address
    assert dma.sendchannel.running and not dma.sendchannel.error


def test_zero_length_transfer_is_an_internal_error_that_reads_as_not_started(dma):
    """LENGTH = 0 (``start`` at the end of the array: pynq's ``nbytes=0`` means "to the
    end") sets DMAIntErr and halts the channel. The halt is visible before pynq's ``wait()``
    looks at the error bits, so pynq says "not started", not "DMA Internal Error"."""
    buf = pynq.allocate((64,), dtype=np.uint8)
    dma.sendchannel.transfer(buf, start=64)
    status = dma.read(MM2S_DMASR)
    assert status & INT_ERR and status & HALTED
    assert dma.sendchannel.error and not dma.sendchannel.running
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.sendchannel.wait()
    assert dma.recvchannel.running, "the other channel is untouched"


def test_halted_channel_refuses_transfer_and_wait_until_a_reset(dma, resizer):
    buf = pynq.allocate((64,), dtype=np.uint8)
    dma.sendchannel.transfer(buf, start=64)  # DMAIntErr: halted
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.sendchannel.transfer(buf)
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.sendchannel.wait()
    # pynq's start() writes RS and spins until Halted clears: on an errored channel it
    # never does (pynq never resets the DMA), so start() -- and DMA() itself -- would hang.
    dma.write(MM2S_DMACR, 0x1)
    assert dma.read(MM2S_DMASR) & HALTED
    # Recovery is a Reset written by hand (it resets both channels), then start().
    dma.write(MM2S_DMACR, RESET)
    assert dma.read(MM2S_DMASR) & (HALTED | 0x70) == HALTED
    assert dma.read(S2MM_DMASR) & (HALTED | 0x70) == HALTED
    dma.sendchannel.start()
    dma.recvchannel.start()
    image = frame(32, 32)
    dst = pynq.allocate((16, 16, 3), dtype=np.uint8)
    await_ip_idle(resizer)
    notebook_frame(dma, resizer, buffer_with(image), dst, 0x01)
    np.testing.assert_array_equal(dst, resize_exact(image, 16, 16))


def test_stop_halts_a_channel_and_wait_says_not_started(dma):
    dma.recvchannel.stop()
    assert not dma.recvchannel.running
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.recvchannel.wait()
    dma.recvchannel.start()
    assert dma.recvchannel.running


def test_address_outside_contiguous_memory_is_a_decode_error(dma, board):
    outside = types.SimpleNamespace(
        physical_address=board.memory.base - 0x1000, nbytes=64, flush=lambda: None
    )
    dma.sendchannel.transfer(outside)
    status = dma.read(MM2S_DMASR)
    assert status & DEC_ERR and status & HALTED
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.sendchannel.wait()


def test_injected_slave_error_shows_in_pynqs_status(dma, resizer, board):
    board.faults.dma_error(channel="send", kind="slave")
    write_sizes(resizer, (16, 16, 8, 8))
    dma.sendchannel.transfer(buffer_with(frame(16, 16)))
    assert dma.sendchannel.error and dma.read(MM2S_DMASR) & SLV_ERR
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.sendchannel.wait()


def test_receive_buffer_shorter_than_the_frame_is_an_internal_error(dma, resizer):
    write_sizes(resizer, (32, 32, 16, 16))
    dma.sendchannel.transfer(buffer_with(frame(32, 32)))
    short = pynq.allocate((8, 16, 3), dtype=np.uint8)  # half the output
    dma.recvchannel.transfer(short)
    resizer.write(CTRL, 0x01)
    assert settled(dma.recvchannel)
    status = dma.read(S2MM_DMASR)
    assert status & INT_ERR and status & HALTED
    with pytest.raises(RuntimeError, match=NOT_STARTED):
        dma.recvchannel.wait()


def test_wait_before_any_transfer_would_spin_forever(dma):
    """Idle is 0 after reset until a first transfer completes: pynq's ``wait()`` (no
    timeout) would spin. pynq_cv never calls it; it polls with a deadline instead."""
    for channel in (dma.sendchannel, dma.recvchannel):
        assert channel.running and not channel.idle and not channel.error


# -- pynq_cv's driver on pynq's DMA and DefaultIP ---------------------------------------------

FAST = Deadlines(factor=2.0, margin=0.02)


def driver_on(stack: PynqStackBoard) -> ResizeDriver:
    desc = stack.descriptor
    return ResizeDriver(
        stack.overlay,
        desc.dma.name,
        desc.resizer.name,
        clock_hz=desc.clock_hz,
        deadlines=FAST,
        reset_pl=stack.reset_pl,
        scratch=lambda nbytes: stack.allocate((nbytes,), np.uint8),
    )


@pytest.fixture
def stack():
    board_ = PynqStackBoard()
    yield board_
    board_.close()


def test_pynq_stack_board_uses_pynqs_own_classes(stack):
    assert type(stack.overlay.axi_dma_0) is DMA
    assert type(stack.overlay.resize_accel_0) is pynq.DefaultIP
    assert type(stack.allocate((4,), np.uint8)) is PynqBuffer
    assert "_active_device" not in pynq.Device.__dict__, "no global device needed"
    with pytest.raises(AttributeError, match="Could not find IP or hierarchy nope"):
        stack.overlay.nope  # noqa: B018


def test_resize_driver_on_pynqs_dma_equals_ip_arithmetic(stack):
    driver = driver_on(stack)
    shapes = [((48, 64), (24, 32)), ((36, 48), (100, 120)), ((480, 640), (240, 320)),
              ((48, 64), (24, 32))]
    for seed, (in_hw, out_hw) in enumerate(shapes):
        image = frame(*in_hw, seed=seed)
        src = stack.allocate((*in_hw, 3), np.uint8)
        src[:] = image
        dst = stack.allocate((*out_hw, 3), np.uint8)
        driver.run(src, dst, (*in_hw, *out_hw))
        np.testing.assert_array_equal(dst, resize_exact(image, *out_hw))
    assert list(driver.recoveries) == []


def run_with_fault(bottom, arm) -> tuple[str, list[str]]:
    """One frame with a fault armed, then one clean frame: (fault kind, recoveries)."""
    driver = driver_on(bottom)
    image = frame(40, 40, seed=5)
    src = bottom.allocate((40, 40, 3), np.uint8)
    src[:] = image
    dst = bottom.allocate((20, 20, 3), np.uint8)
    arm(bottom.faults if hasattr(bottom, "faults") else bottom.emulator.faults)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(pynq_cv.PLFault) as fault:
            driver.run(src, dst, (40, 40, 20, 20))
    driver.run(src, dst, (40, 40, 20, 20))  # the PL is usable again
    np.testing.assert_array_equal(dst, resize_exact(image, 20, 20))
    return fault.value.kind, list(driver.recoveries)


@pytest.mark.parametrize(
    ("arm", "kind"),
    [
        (lambda f: f.dma_error(channel="recv", kind="slave"), "dma_error"),
        (lambda f: f.dma_error(channel="send", kind="decode"), "dma_error"),
        (lambda f: f.dma_error(channel="send", kind="internal"), "dma_error"),
        (lambda f: f.short_packet(), "short_transfer"),
        (lambda f: f.ip_hang(), "timeout"),
    ],
    ids=["recv-slave", "send-decode", "send-internal", "short-packet", "ip-hang"],
)
def test_resize_driver_recovers_the_same_on_pynqs_dma_as_on_the_emulated_one(stack, arm, kind):
    on_pynq = run_with_fault(stack, arm)
    with EmulatedBoard() as emulated:
        on_emulator = run_with_fault(emulated, arm)
    assert on_pynq[0] == kind
    assert on_pynq[1] and "failed" not in on_pynq[1]
    assert on_pynq == on_emulator


def test_resizer_end_to_end_on_pynqs_stack(monkeypatch):
    """The whole PL path -- pool of PynqBuffers, driver on pynq's DMA -- as on a board."""
    stack = PynqStackBoard()
    monkeypatch.setattr(
        engine_module, "open_board",
        lambda *a, **k: (stack, stack.name, "pynq's stack on the emulator"),
    )
    with pynq_cv.Resizer() as rz:
        frames = [frame(120, 160, seed=s) for s in range(3)]
        for image in frames:
            np.testing.assert_array_equal(rz.resize(image, (80, 60)), resize_exact(image, 60, 80))
        out = np.empty((30, 40, 3), np.uint8)
        rz.resize(frames[0], (40, 30), dst=out)
        np.testing.assert_array_equal(out, resize_exact(frames[0], 30, 40))
        snap = rz.stats.snapshot()
        assert snap["pl"] == 4 and snap["cpu"] == 0
        assert stack.device.allocations, "the pool holds PynqBuffers"
    assert stack.emulator.memory.live_buffers == 0, "closing frees every pool buffer"


def test_writing_a_lent_buffer_while_a_frame_with_its_dst_there_is_in_flight(monkeypatch):
    """Zero copy with one lent allocation holding inputs and the output: frame B is written
    into it while frame A (dst a view of it) is in flight. On pynq 3.1+ the driver's
    invalidate of a dst view would act on the whole allocation and discard B's bytes, so B
    would come out of the PL wrong, silently; pynq_cv therefore only receives zero-copy into
    a whole lent allocation (pynq 2.7/3.0 invalidate only the view)."""
    stack = PynqStackBoard()
    monkeypatch.setattr(engine_module, "open_board", lambda *a, **k: (stack, stack.name, "test"))
    a, b = frame(120, 160, seed=1), frame(120, 160, seed=2)
    with pynq_cv.Resizer() as rz:
        ring = rz.lend((3, 120, 160, 3))
        out = ring[2].reshape(-1)[: 60 * 80 * 3].reshape(60, 80, 3)  # C-contiguous view
        ring[0] = a
        pending = rz.submit(ring[0], (80, 60), dst=out)
        ring[1] = b  # the next frame, written while frame A is in flight
        pending.result()
        a_ok = np.array_equal(out, resize_exact(a, 60, 80))
        b_ok = np.array_equal(rz.resize(ring[1], (80, 60)), resize_exact(b, 60, 80))
        assert rz.stats.snapshot()["pl"] == 2
        rz.give_back(ring)
    assert a_ok
    assert b_ok  # a dst view is not used zero-copy, so nothing invalidates B's bytes


# -- the board backend with real pynq and no board ---------------------------------------------


@pytest.fixture
def no_board(monkeypatch):
    """Real pynq, no device, no bitstream configured; pynq probes (and warns) afresh."""
    for var in ("PYNQ_CV_BITSTREAM", "PYNQ_CV_BACKEND", "PYNQ_CV_BOARD", "BOARD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delattr(pynq.Device, "_devices", raising=False)
    assert "_active_device" not in pynq.Device.__dict__
    downloads = []
    monkeypatch.setattr(pynq.Bitstream, "download", lambda self, *a, **k: downloads.append(self))
    yield downloads
    assert downloads == [], "nothing may be programmed"
    assert "_active_device" not in pynq.Device.__dict__


@pytest.fixture
def dummy_bitstream(tmp_path, monkeypatch):
    path = tmp_path / "resizer.bit"
    path.write_bytes(b"")
    monkeypatch.setenv("PYNQ_CV_BITSTREAM", str(path))
    return path


def quietly(call):
    """Run ``call``; return (result or exception, warnings that escaped)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 -- the test inspects it
            result = exc
    return result, [str(w.message) for w in caught]


def test_board_backend_without_a_bitstream_is_unavailable(no_board, capfd):
    result, caught = quietly(board_backend.PynqBoard)
    assert isinstance(result, pynq_cv.BackendUnavailable)
    assert "no bitstream" in str(result)
    assert caught == [] and capfd.readouterr().err == ""


def test_board_backend_with_a_bitstream_but_no_device_says_no_devices_found(
    no_board, dummy_bitstream, capfd
):
    result, caught = quietly(board_backend.PynqBoard)
    assert isinstance(result, pynq_cv.BackendUnavailable)
    assert "No Devices Found" in str(result) and str(dummy_bitstream) in str(result)
    assert caught == [], "pynq's 'No devices found' UserWarning is kept inside"
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("with_bitstream", [False, True])
def test_auto_selection_falls_back_to_the_emulator_saying_why(
    no_board, tmp_path, monkeypatch, capfd, with_bitstream
):
    if with_bitstream:
        path = tmp_path / "resizer.bit"
        path.write_bytes(b"")
        monkeypatch.setenv("PYNQ_CV_BITSTREAM", str(path))
    (board_, name, why), caught = quietly(lambda: open_board(None))
    try:
        assert name == "emulator" and isinstance(board_, EmulatedBoard)
        assert why.startswith("no board (") and why.endswith("using the emulator")
        assert ("No Devices Found" if with_bitstream else "no bitstream") in why
    finally:
        board_.close()
    if with_bitstream:  # a configured bitstream that will not load: said once, not hidden
        assert len(caught) == 1 and caught[0].startswith("pynq_cv: no board (")
        assert "No Devices Found" in caught[0]
    else:
        assert caught == []
    assert capfd.readouterr().err == ""


def test_resizer_on_auto_uses_the_emulator_without_a_board(no_board, capfd):
    with pynq_cv.Resizer() as rz:
        image = frame(40, 40)
        np.testing.assert_array_equal(rz.resize(image, (20, 20)), resize_exact(image, 20, 20))
        assert rz.backend == "emulator" and "no bitstream" in rz.why
    assert capfd.readouterr().err == ""


def test_cpu_backend_opens_no_board(no_board):
    board_, name, why = open_board("cpu")
    assert board_ is None and name == "cpu" and "cpu" in why


def test_explicit_board_backend_raises_the_reason(no_board, dummy_bitstream):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may warn on the way
        with pytest.raises(pynq_cv.BackendUnavailable, match="No Devices Found"):
            open_board("board")


def test_make_pynq_device_does_not_become_the_default(board):
    make_pynq_device(board)
    assert "_active_device" not in pynq.Device.__dict__
