"""Emulated AXI DMA: PG021 register behaviour, and pynq's driver checks, order and messages."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from conftest import StepClock

from pynq_cv.backends.emulator import AxiDmaRegisters, ContiguousMemory, EmulatedBoard
from pynq_cv.backends.emulator.dma import EmulatedDMA
from pynq_cv.backends.emulator.memory import PAGE
from pynq_cv.backends.emulator.overlay import BusPort
from pynq_cv.descriptors import descriptor_for

MM2S_DMACR, MM2S_DMASR, MM2S_SA, MM2S_LENGTH = 0x00, 0x04, 0x18, 0x28
S2MM_DMACR, S2MM_DMASR, S2MM_DA, S2MM_LENGTH = 0x30, 0x34, 0x48, 0x58
HALTED, IDLE, INT_ERR, SLV_ERR, DEC_ERR = 0x1, 0x2, 0x10, 0x20, 0x40
IOC_IRQ, ERR_IRQ = 0x1000, 0x4000
RS, RESET = 0x1, 0x4
ERRORS = INT_ERR | SLV_ERR | DEC_ERR


def make_board(**options) -> EmulatedBoard:
    options.setdefault("hang_limit", 0.05)
    return EmulatedBoard(cma_bytes=16 << 20, **options)


def old_z2_descriptor():
    """The Pynq-Z2 as its committed 2019.1 .hwh describes it: a 23-bit LENGTH register."""
    desc = descriptor_for("Pynq-Z2")
    params = {**desc.dma.parameters, "c_sg_length_width": 23}
    return dataclasses.replace(desc, dma=dataclasses.replace(desc.dma, parameters=params))


def frame(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, cols, 3), dtype=np.uint8)


def start_ip(board, sizes, ctrl=0x01):
    ip = board.overlay.resize_accel_0
    for offset, value in zip((0x10, 0x18, 0x20, 0x28), sizes, strict=True):
        ip.write(offset, value)
    ip.write(0x00, ctrl)


def source(board, rows=8, cols=8, seed=0):
    buf = board.allocate((rows, cols, 3), np.uint8)
    buf[:] = frame(rows, cols, seed)
    return buf


# -- register file ------------------------------------------------------------------------


def test_registers_reset_halted_not_idle_with_threshold_and_reserved_bit():
    regs = AxiDmaRegisters(ContiguousMemory(1 << 20))
    assert regs.read(MM2S_DMACR) == regs.read(S2MM_DMACR) == 0x0001_0002
    assert regs.read(MM2S_DMASR) == regs.read(S2MM_DMASR) == 0x0001_0001


def test_dma_constructor_starts_both_channels_and_idle_stays_0_until_a_transfer_completes():
    dma = make_board().overlay.axi_dma_0
    for channel, status in ((dma.sendchannel, MM2S_DMASR), (dma.recvchannel, S2MM_DMASR)):
        assert channel.running and not channel.idle and not channel.error
        assert dma.read(status) & (HALTED | IDLE) == 0


def test_length_zero_sets_internal_error_halts_and_rs_reads_0():
    dma = make_board().overlay.axi_dma_0
    dma.write(MM2S_LENGTH, 0)
    status = dma.read(MM2S_DMASR)
    assert status & ERRORS == INT_ERR and status & HALTED and status & ERR_IRQ
    assert dma.read(MM2S_DMACR) & RS == 0
    dma.write(MM2S_DMACR, RS)  # an error halts the channel until a Reset
    assert dma.read(MM2S_DMASR) & HALTED and dma.read(MM2S_DMACR) & RS == 0
    assert dma.read(S2MM_DMASR) & (HALTED | ERRORS) == 0  # the other channel runs on


def test_address_outside_allocated_memory_is_a_decode_error():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.write(MM2S_SA, 0x0)  # below the CMA region
    dma.write(MM2S_LENGTH, 64)
    assert dma.read(MM2S_DMASR) & ERRORS == DEC_ERR


def test_transfer_running_past_the_end_of_its_block_is_a_decode_error():
    board = make_board()
    buf = board.allocate((PAGE,), np.uint8)
    board.allocate((PAGE,), np.uint8)  # a neighbour it would overwrite on a board
    start_ip(board, (2, PAGE // 3, 2, 2))
    board.overlay.axi_dma_0.sendchannel.transfer(buf, nbytes=2 * PAGE)  # pynq does not check
    assert board.overlay.axi_dma_0.read(MM2S_DMASR) & ERRORS == DEC_ERR


def test_s2mm_decode_error_surfaces_when_data_arrives():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.write(S2MM_DA, 0x0)
    dma.write(S2MM_LENGTH, 4 * 4 * 3)
    assert dma.read(S2MM_DMASR) & ERRORS == 0  # nothing written yet
    start_ip(board, (8, 8, 4, 4))
    dma.sendchannel.transfer(source(board))
    assert dma.read(S2MM_DMASR) & ERRORS == DEC_ERR
    assert dma.sendchannel.idle  # the IP took its input and holds the output
    assert not board.overlay.resize_accel_0.read(0x00) & 0x4


def test_a_freed_buffer_is_a_decode_error_not_a_write_into_its_successor():
    board = make_board()
    dma = board.overlay.axi_dma_0
    stale = board.allocate((4, 4, 3), np.uint8)
    stale.freebuffer()
    successor = board.allocate((4, 4, 3), np.uint8)
    assert successor.physical_address == stale.physical_address
    dma.recvchannel.transfer(stale)
    start_ip(board, (8, 8, 4, 4))
    dma.sendchannel.transfer(source(board))
    assert dma.read(S2MM_DMASR) & ERRORS == DEC_ERR
    successor.invalidate()
    assert not successor.any()


def test_reset_of_either_channel_resets_the_whole_core_and_clears_errors():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.write(MM2S_LENGTH, 0)  # MM2S in error
    dma.recvchannel.transfer(board.allocate((48,), np.uint8))  # S2MM busy
    dma.write(S2MM_DMACR, RESET)
    assert dma.read(S2MM_DMACR) & RESET == 0  # self-clearing
    assert dma.read(MM2S_DMASR) == dma.read(S2MM_DMASR) == 0x0001_0001
    assert dma.read(S2MM_LENGTH) == 0
    dma.sendchannel.start()
    dma.recvchannel.start()
    assert dma.sendchannel.running and dma.recvchannel.running


def test_completion_sets_ioc_irq_which_is_write_one_to_clear():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dst = board.allocate((4, 4, 3), np.uint8)
    start_ip(board, (8, 8, 4, 4))
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(source(board))
    assert dma.read(S2MM_DMASR) & (IDLE | IOC_IRQ) == IDLE | IOC_IRQ
    dma.write(S2MM_DMASR, IOC_IRQ | IDLE)  # Idle is read-only
    assert dma.read(S2MM_DMASR) & (IDLE | IOC_IRQ) == IDLE


def test_s2mm_length_reads_back_the_bytes_received():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dst = board.allocate((1000,), np.uint8)
    dma.recvchannel.transfer(dst)
    assert dma.read(S2MM_LENGTH) == 1000
    start_ip(board, (8, 8, 4, 4))
    dma.sendchannel.transfer(source(board))
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert dma.read(S2MM_LENGTH) == dma.recvchannel.transferred == 48
    assert dma.sendchannel.transferred == 8 * 8 * 3


def test_short_receive_buffer_sets_internal_error_and_the_rest_stays_in_the_ip():
    board = make_board()
    dma, ip = board.overlay.axi_dma_0, board.overlay.resize_accel_0
    src = source(board, 8, 8)
    first = board.allocate((24,), np.uint8)
    rest = board.allocate((64,), np.uint8)
    start_ip(board, (8, 8, 4, 4))
    dma.recvchannel.transfer(first)
    dma.sendchannel.transfer(src)
    status = dma.read(S2MM_DMASR)
    assert status & ERRORS == INT_ERR and status & HALTED
    assert dma.read(S2MM_LENGTH) == 24
    assert not ip.read(0x00) & 0x4  # the IP still owes 24 bytes
    dma.write(MM2S_DMACR, RESET)  # clears the DMA, not the IP
    assert not ip.read(0x00) & 0x4
    dma.recvchannel.start()
    dma.recvchannel.transfer(rest)
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == 24
    assert ip.read(0x00) & 0x6 == 0x6  # done and idle
    first.invalidate()
    from pynq_cv.backends.emulator.arith import resize_exact

    expected = resize_exact(np.asarray(src), 4, 4).reshape(-1)
    assert np.array_equal(np.concatenate([first, rest[:24]]), expected)


def test_length_register_keeps_only_c_sg_length_width_bits():
    dma = make_board(descriptor=old_z2_descriptor()).overlay.axi_dma_0  # 23 bits
    dma.write(MM2S_LENGTH, 1 << 23)
    assert dma.read(MM2S_LENGTH) == 0
    assert dma.read(MM2S_DMASR) & ERRORS == INT_ERR


def test_length_written_while_halted_starts_nothing():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.sendchannel.stop()
    dma.write(MM2S_LENGTH, 64)
    assert dma.read(MM2S_LENGTH) == 64
    assert dma.read(MM2S_DMASR) & (HALTED | IDLE | ERRORS) == HALTED


def test_send_stalls_until_the_ip_is_started():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.sendchannel.transfer(source(board))
    assert not any(dma.sendchannel.idle for _ in range(50))
    start_ip(board, (8, 8, 4, 4))
    assert dma.sendchannel.idle


# -- pynq's driver layer ------------------------------------------------------------------


def test_transfer_checks_come_in_pynqs_order_with_pynqs_messages():
    board = make_board(descriptor=old_z2_descriptor())
    dma = board.overlay.axi_dma_0
    send = dma.sendchannel
    big = board.allocate((1 << 23,), np.uint8)  # one byte over the 23-bit length
    send.stop()
    with pytest.raises(RuntimeError, match="^DMA channel not started$"):
        send.transfer(big, start=1)  # also too big and unaligned: not-started comes first
    send.start()
    send.transfer(big, nbytes=64)  # first transfer after start(): idle not required
    with pytest.raises(RuntimeError, match="^DMA channel not idle$"):
        send.transfer(big, start=1)  # the first is still in flight (the IP is not started)
    dma.write(MM2S_DMACR, RESET)
    send.start()
    with pytest.raises(ValueError) as info:
        send.transfer(big, start=0)  # too big, checked before alignment
    assert str(info.value) == (
        "Transfer size is 8388608 bytes, which exceeds the maximum DMA buffer size 8388607."
    )
    with pytest.raises(RuntimeError) as info:
        send.transfer(big, start=2, nbytes=64)
    assert str(info.value) == (
        "DMA does not support unaligned transfers; Starting address must be aligned to 4 bytes."
    )
    with pytest.raises(RuntimeError, match="unaligned"):
        send.transfer(big[1:], nbytes=64)  # a view's own address counts


def test_nbytes_zero_means_from_start_to_the_end_of_the_array():
    board = make_board()
    dma = board.overlay.axi_dma_0
    buf = board.allocate((100,), np.uint8)
    dma.sendchannel.transfer(buf, start=8)
    assert dma.read(MM2S_LENGTH) == 92
    assert dma.read(MM2S_SA) == buf.physical_address + 8


def test_send_flushes_before_and_receive_invalidates_in_wait():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src = board.allocate((8, 8, 3), np.uint8, cacheable=1)
    src[:] = frame(8, 8, 0)  # written by the CPU, never flushed by hand
    dst = board.allocate((4, 4, 3), np.uint8, cacheable=1)
    start_ip(board, (8, 8, 4, 4))
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src)
    assert dma.recvchannel.idle
    assert not dst.any()  # in memory, not yet in the CPU's view
    dma.recvchannel.wait()
    assert dst.any()


def test_wait_on_a_halted_channel_says_not_started():
    board = make_board()
    send = board.overlay.axi_dma_0.sendchannel
    buf = board.allocate((64,), np.uint8)
    send.transfer(buf, start=64)  # nbytes 0 -> LENGTH 0 -> DMAIntErr, halted at once
    assert send.error
    with pytest.raises(RuntimeError, match="^DMA channel not started$"):
        send.wait()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("internal", "DMA Internal Error (transfer length 0?)"),
        ("slave", "DMA Slave Error (cannot access memory map interface)"),
        ("decode", "DMA Decode Error (invalid address)"),
    ],
)
def test_wait_reports_an_error_that_arrives_while_it_spins(kind, message):
    board = make_board(pace=True, clock=StepClock(1e-7))
    board.faults.dma_error("recv", kind)
    dma = board.overlay.axi_dma_0
    start_ip(board, (16, 16, 8, 8))
    dma.recvchannel.transfer(board.allocate((8, 8, 3), np.uint8))
    dma.sendchannel.transfer(source(board, 16, 16))
    assert dma.recvchannel.running  # the frame's data has not reached S2MM yet
    with pytest.raises(RuntimeError) as info:
        dma.recvchannel.wait()
    assert str(info.value) == message
    assert board.faults.injected["dma_error"] == 1


def test_wait_reports_a_short_receive_buffer_as_an_internal_error():
    board = make_board(pace=True, clock=StepClock(1e-7))
    dma = board.overlay.axi_dma_0
    start_ip(board, (16, 16, 8, 8))
    dma.recvchannel.transfer(board.allocate((8, 4, 3), np.uint8))
    dma.sendchannel.transfer(source(board, 16, 16))
    with pytest.raises(RuntimeError, match=r"^DMA Internal Error \(transfer length 0\?\)$"):
        dma.recvchannel.wait()


def test_wait_gives_up_after_the_hang_limit_where_a_board_would_hang():
    board = make_board(hang_limit=0.05)
    recv = board.overlay.axi_dma_0.recvchannel
    recv.transfer(board.allocate((48,), np.uint8))
    began = time.perf_counter()
    with pytest.raises(RuntimeError, match="would hang forever on a board"):
        recv.wait()
    assert time.perf_counter() - began >= 0.05


def test_start_on_an_errored_channel_hangs_like_pynq_until_a_reset():
    board = make_board(hang_limit=0.02)
    dma = board.overlay.axi_dma_0
    dma.write(MM2S_LENGTH, 0)
    with pytest.raises(RuntimeError, match=r"sendchannel\.start\(\) would hang forever"):
        dma.sendchannel.start()
    with pytest.raises(RuntimeError, match="would hang forever"):
        port = BusPort(board.overlay.path.dma, board.overlay.path)
        EmulatedDMA(board.overlay.ip_dict["axi_dma_0"], port, lambda: 0.02)  # pynq's __init__
    dma.write(MM2S_DMACR, RESET)
    dma.sendchannel.start()
    assert dma.sendchannel.running


def test_register_access_follows_pynqs_mmio_rules():
    dma = make_board().overlay.axi_dma_0
    with pytest.raises(ValueError, match=r"^Data type must be int or bytes\.$"):
        dma.write(MM2S_DMACR, True)
    with pytest.raises(ValueError, match=r"^Data type must be int or bytes\.$"):
        dma.write(MM2S_DMACR, np.uint32(1))
    with pytest.raises(MemoryError, match=r"^Unaligned write: offset must be multiple of 4\.$"):
        dma.write(0x02, 1)
    with pytest.raises(MemoryError, match=r"^Unaligned read: offset must be multiple of 4\.$"):
        dma.read(0x02)
    with pytest.raises(ValueError):
        dma.write(-4, 1)
    dma.write(MM2S_SA, (0x1234_5678).to_bytes(4, "little"))
    value = dma.read(MM2S_SA)
    assert value == 0x1234_5678 and type(value) is int


def test_injected_send_error_halts_at_the_transfer_as_a_board_shows_it():
    board = make_board()
    board.faults.dma_error("send", "slave")
    dma = board.overlay.axi_dma_0
    start_ip(board, (8, 8, 4, 4))
    dma.sendchannel.transfer(source(board))
    status = dma.read(MM2S_DMASR)
    assert status & ERRORS == SLV_ERR and status & HALTED and status & ERR_IRQ
    assert board.faults.injected["dma_error"] == 1 and board.faults.log == ["dma_error:send:slave"]
    dma.write(MM2S_DMACR, RESET)
    dma.sendchannel.start()
    dma.recvchannel.start()
    dst = board.allocate((4, 4, 3), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(source(board))  # the next one goes through (the IP still waits)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == 48


def test_length_written_while_a_transfer_is_in_flight_is_ignored():
    board = make_board()
    dma = board.overlay.axi_dma_0
    dma.sendchannel.transfer(source(board))  # stalls: the IP is not started
    dma.write(MM2S_LENGTH, 12)
    assert dma.read(MM2S_LENGTH) == 8 * 8 * 3
    start_ip(board, (8, 8, 4, 4))
    assert dma.sendchannel.idle and dma.read(MM2S_DMASR) & ERRORS == 0
