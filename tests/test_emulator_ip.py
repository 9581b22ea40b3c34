"""Emulated resizer IP: frames through DMA + IP, the ap_ctrl_hs handshake, auto_restart,
the builds' limits, stalls that only a PL reset clears, IP faults and timing."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import StepClock

from pynq_cv.backends.emulator import EmulatedBoard
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.descriptors import available_descriptors
from pynq_cv.timing import frame_seconds

CTRL, GIE, IER, ISR = 0x00, 0x04, 0x08, 0x0C
SIZES = (0x10, 0x18, 0x20, 0x28)
AP_START, AP_DONE, AP_IDLE, AP_READY, AUTO_RESTART = 0x01, 0x02, 0x04, 0x08, 0x80
MM2S_DMACR = 0x00
RESET = 0x4


def make_board(board: str = "Pynq-Z2", **options) -> EmulatedBoard:
    options.setdefault("hang_limit", 0.05)
    return EmulatedBoard(board, cma_bytes=16 << 20, **options)


def frame(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, cols, 3), dtype=np.uint8)


def buffer(board, array):
    buf = board.allocate(array.shape, np.uint8)
    buf[:] = array
    return buf


def write_sizes(board, sizes):
    ip = board.overlay.resize_accel_0
    for offset, value in zip(SIZES, sizes, strict=True):
        ip.write(offset, value)


def notebook_frame(board, src, out_hw, ctrl=0x81, recv_bytes=None):
    """The HelloWorld notebook's sequence; returns the bytes received."""
    dma, ip = board.overlay.axi_dma_0, board.overlay.resize_accel_0
    src_buf = buffer(board, src)
    dst = board.allocate((recv_bytes or out_hw[0] * out_hw[1] * 3,), np.uint8)
    write_sizes(board, (*src.shape[:2], *out_hw))
    dma.sendchannel.transfer(src_buf)
    dma.recvchannel.transfer(dst)
    ip.write(CTRL, ctrl)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    return np.array(dst[: dma.recvchannel.transferred])


def post(board, src_buf, dst, sizes, ctrl=0x01):
    """The driver's order: sizes, start, receive, send (no waiting)."""
    dma = board.overlay.axi_dma_0
    write_sizes(board, sizes)
    board.overlay.resize_accel_0.write(CTRL, ctrl)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src_buf)


def ctrl(board) -> int:
    return board.overlay.resize_accel_0.read(CTRL)


def restart_dma(board):
    dma = board.overlay.axi_dma_0
    dma.write(MM2S_DMACR, RESET)
    dma.sendchannel.start()
    dma.recvchannel.start()


# -- frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("board_name", ["Pynq-Z2", "KV260"])
@pytest.mark.parametrize("control", [0x81, 0x01])
@pytest.mark.parametrize(
    ("in_hw", "out_hw"),
    [
        ((8, 8), (4, 4)),
        ((20, 30), (45, 17)),
        ((36, 48), (100, 120)),
        ((2, 2), (7, 5)),
        ((33, 40), (33, 40)),
        ((64, 48), (3, 2)),
    ],
)
def test_notebook_sequence_frame_equals_ip_arithmetic(board_name, control, in_hw, out_hw):
    board = make_board(board_name)
    src = frame(*in_hw, seed=sum(in_hw))
    out = notebook_frame(board, src, out_hw, ctrl=control)
    assert np.array_equal(out.reshape(*out_hw, 3), resize_exact(src, *out_hw))
    assert board.frames == 1


def test_every_shipped_descriptor_builds_a_board_that_resizes():
    descriptors = available_descriptors()
    assert {"Pynq-Z1", "Pynq-Z2", "KV260"} <= set(descriptors)
    for desc in descriptors.values():
        board = EmulatedBoard(descriptor=desc, cma_bytes=1 << 20)
        assert board.descriptor is desc
        assert set(board.overlay.ip_dict) == {desc.dma.name, desc.resizer.name}
        src = frame(6, 8, seed=1)
        out = notebook_frame(board, src, (3, 4))
        assert np.array_equal(out.reshape(3, 4, 3), resize_exact(src, 3, 4)), desc.board
        board.close()


def test_auto_restart_runs_same_size_frames_back_to_back():
    board = make_board()
    for seed in range(4):
        src = frame(12, 16, seed)
        out = notebook_frame(board, src, (6, 8), ctrl=0x81)
        assert np.array_equal(out.reshape(6, 8, 3), resize_exact(src, 6, 8))
    assert board.frames == 4
    assert ctrl(board) & (AP_IDLE | AP_START) == AP_START  # running on, never idle


def test_multi_transfer_input_accumulates_into_one_frame():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src_arr = frame(12, 16, seed=7)
    src = buffer(board, src_arr)
    dst = board.allocate((6, 8, 3), np.uint8)
    write_sizes(board, (12, 16, 6, 8))
    board.overlay.resize_accel_0.write(CTRL, AP_START)
    dma.recvchannel.transfer(dst)
    for start in (0, 192, 384):  # three chunks of 192 bytes (multiples of 12)
        dma.sendchannel.transfer(src, start=start, nbytes=192)
        dma.sendchannel.wait()
        assert dma.recvchannel.idle == (start == 384)
    dma.recvchannel.wait()
    assert np.array_equal(dst, resize_exact(src_arr, 6, 8))


# -- the control register -----------------------------------------------------------------


def test_handshake_without_auto_restart_start_held_until_ready_done_clear_on_read():
    board = make_board()
    src, dst = buffer(board, frame(8, 8)), board.allocate((4, 4, 3), np.uint8)
    assert ctrl(board) == AP_IDLE
    write_sizes(board, (8, 8, 4, 4))
    board.overlay.resize_accel_0.write(CTRL, AP_START)
    assert ctrl(board) == AP_START  # started, waiting for data: not idle, not done
    board.overlay.axi_dma_0.recvchannel.transfer(dst)
    board.overlay.axi_dma_0.sendchannel.transfer(src)
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert ctrl(board) == AP_IDLE  # ap_done cleared by the read


@pytest.mark.parametrize(("board_name", "latched"), [("Pynq-Z2", False), ("KV260", True)])
def test_ap_ready_is_latched_on_the_2021_build_only(board_name, latched):
    board = make_board(board_name)
    write_sizes(board, (8, 8, 4, 4))
    board.overlay.resize_accel_0.write(CTRL, AP_START)
    board.overlay.axi_dma_0.sendchannel.transfer(buffer(board, frame(8, 8)))  # output held
    assert bool(ctrl(board) & AP_READY) == latched
    assert not ctrl(board) & AP_READY  # clear on read


def test_interrupt_registers_latch_done_and_ready_and_toggle_on_write():
    board = make_board()
    ip = board.overlay.resize_accel_0
    ip.write(GIE, 1)
    ip.write(IER, 0x3)
    assert (ip.read(GIE), ip.read(IER), ip.read(ISR)) == (1, 3, 0)
    notebook_frame(board, frame(8, 8), (4, 4), ctrl=0x01)
    assert ip.read(ISR) == 0x3
    ip.write(ISR, 0x1)  # toggle: clears done
    assert ip.read(ISR) == 0x2
    ip.write(ISR, 0x1)  # toggle again: sets it
    assert ip.read(ISR) == 0x3


def test_size_registers_read_back_what_was_written_on_the_2020_build():
    """The 2020 build's AXI-Lite RTL returns them (the .hwh still says write-only)."""
    board = make_board()
    write_sizes(board, (8, 9, 10, 11))
    assert [board.overlay.resize_accel_0.read(o) for o in SIZES] == [8, 9, 10, 11]


def test_size_registers_read_zero_on_the_2021_build_unconfirmed():
    board = EmulatedBoard("KV260")
    write_sizes(board, (8, 9, 10, 11))
    assert [board.overlay.resize_accel_0.read(o) for o in SIZES] == [0, 0, 0, 0]


# -- auto_restart's size latching ---------------------------------------------------------


def test_auto_restart_size_change_written_after_done_applies_one_frame_late():
    board = make_board()
    dma = board.overlay.axi_dma_0
    frames = [frame(16, 16, seed) for seed in range(3)]
    out = notebook_frame(board, frames[0], (8, 8), ctrl=0x81)
    assert np.array_equal(out.reshape(8, 8, 3), resize_exact(frames[0], 8, 8))
    # done; now the user writes new output sizes for the next frame, auto_restart still on
    write_sizes(board, (16, 16, 4, 4))
    src = buffer(board, frames[1])
    dst = board.allocate((8 * 8 * 3,), np.uint8)  # room for what the IP really sends
    dma.sendchannel.transfer(src)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == 8 * 8 * 3  # the old size: latched before the write
    assert np.array_equal(dst.reshape(8, 8, 3), resize_exact(frames[1], 8, 8))
    src = buffer(board, frames[2])
    dst = board.allocate((4, 4, 3), np.uint8)
    dma.sendchannel.transfer(src)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
    assert np.array_equal(dst, resize_exact(frames[2], 4, 4))  # one frame late


def test_auto_restart_receive_sized_for_the_new_size_overflows_as_on_the_board():
    board = make_board()
    dma = board.overlay.axi_dma_0
    notebook_frame(board, frame(16, 16), (8, 8), ctrl=0x81)
    write_sizes(board, (16, 16, 4, 4))
    dma.sendchannel.transfer(buffer(board, frame(16, 16, 1)))
    dma.recvchannel.transfer(board.allocate((4, 4, 3), np.uint8))
    with pytest.raises(RuntimeError, match="DMA channel not started"):
        dma.recvchannel.wait()  # DMAIntErr halted the channel at once
    assert dma.read(0x34) & 0x10


def test_auto_restart_size_writes_straddling_the_latch_are_read_half_old_half_new():
    board = make_board()
    dma = board.overlay.axi_dma_0
    notebook_frame(board, frame(16, 16), (8, 8), ctrl=0x81)  # run 2 latched 16,16,8,8
    board.overlay.resize_accel_0.write(0x20, 4)  # dst_rows for the next size ...
    src = buffer(board, frame(16, 16, 1))
    dma.recvchannel.transfer(board.allocate((8, 8, 3), np.uint8))
    dma.sendchannel.transfer(src)  # run 2's last input: run 3 latches 16,16,4,8 now
    board.overlay.resize_accel_0.write(0x28, 4)  # ... dst_cols, one write too late
    dma.recvchannel.wait()
    dst = board.allocate((8 * 8 * 3,), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src)
    dma.recvchannel.wait()
    assert dma.recvchannel.transferred == 4 * 8 * 3  # a frame that matches nothing
    assert np.array_equal(dst[: 4 * 8 * 3].reshape(4, 8, 3), resize_exact(frame(16, 16, 1), 4, 8))


def test_without_auto_restart_sizes_are_read_at_each_start():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src_arr = frame(16, 16)
    src = buffer(board, src_arr)
    write_sizes(board, (16, 16, 8, 8))
    board.overlay.resize_accel_0.write(CTRL, AP_START)  # latches 8 x 8 now
    write_sizes(board, (16, 16, 4, 4))  # too late for this frame
    dst = board.allocate((8, 8, 3), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src)
    dma.recvchannel.wait()
    assert np.array_equal(dst, resize_exact(src_arr, 8, 8))
    assert ctrl(board) & AP_IDLE
    board.overlay.resize_accel_0.write(CTRL, AP_START)  # latches 4 x 4
    dst = board.allocate((4, 4, 3), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(src)
    dma.recvchannel.wait()
    assert np.array_equal(dst, resize_exact(src_arr, 4, 4))


def test_clearing_auto_restart_before_the_last_input_lets_the_ip_go_idle():
    board = make_board()
    dma = board.overlay.axi_dma_0
    notebook_frame(board, frame(8, 8), (4, 4), ctrl=0x81)
    assert not ctrl(board) & AP_IDLE  # the next run already started
    board.overlay.resize_accel_0.write(CTRL, 0x00)  # auto_restart off, ap_start stays
    assert ctrl(board) & (AP_START | AUTO_RESTART) == AP_START
    dst = board.allocate((4, 4, 3), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.sendchannel.transfer(buffer(board, frame(8, 8, 2)))
    dma.recvchannel.wait()
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert np.array_equal(dst, resize_exact(frame(8, 8, 2), 4, 4))


# -- stalls and limits --------------------------------------------------------------------


def test_one_row_input_stalls_until_a_pl_reset_and_a_dma_reset_does_not_help():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src, dst = buffer(board, frame(1, 16)), board.allocate((4, 8, 3), np.uint8)
    post(board, src, dst, (1, 16, 4, 8))
    assert dma.sendchannel.idle  # the send completes ...
    assert not any(dma.recvchannel.idle for _ in range(20))  # ... the receive never does
    assert ctrl(board) & (AP_START | AP_DONE | AP_IDLE) == AP_START
    restart_dma(board)  # the DMA is fine again; the IP is not
    assert ctrl(board) & (AP_START | AP_IDLE) == AP_START
    assert board.reset_pl() is True
    assert ctrl(board) == AP_IDLE
    assert dma.read(0x04) & 0x1  # the PL reset halted the DMA too
    restart_dma(board)
    out = notebook_frame(board, frame(8, 8), (4, 4))
    assert np.array_equal(out.reshape(4, 4, 3), resize_exact(frame(8, 8), 4, 4))


def test_one_row_input_takes_the_first_row_then_blocks_on_the_second():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src, dst = buffer(board, frame(2, 16)), board.allocate((4, 8, 3), np.uint8)
    post(board, src, dst, (1, 16, 4, 8))
    assert not any(dma.sendchannel.idle for _ in range(20))
    assert dma.read(0x04) & 0x70 == 0


def test_2020_build_keeps_11_bits_of_the_output_size():
    board = make_board("Pynq-Z2")
    src = frame(8, 8)
    out = notebook_frame(board, src, (2050, 4), recv_bytes=2050 * 4 * 3 // 4 * 4)
    assert out.size == 2 * 4 * 3  # a short packet: (2050 mod 2048) x 4 pixels
    assert np.array_equal(out.reshape(2, 4, 3), resize_exact(src, 2, 4))
    assert ctrl(board) & AP_DONE


def test_2020_build_with_a_wrapped_zero_size_sends_nothing_but_reports_done():
    board = make_board("Pynq-Z2")
    dma = board.overlay.axi_dma_0
    post(board, buffer(board, frame(8, 8)), board.allocate((48,), np.uint8), (8, 8, 2048, 4))
    assert dma.sendchannel.idle
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert not dma.recvchannel.idle


def test_2021_build_produces_outputs_beyond_2047():
    board = make_board("KV260")
    src = frame(4, 4)
    out = notebook_frame(board, src, (2050, 4))
    assert np.array_equal(out.reshape(2050, 4, 3), resize_exact(src, 2050, 4))


@pytest.mark.parametrize(
    ("board_name", "sizes"),
    [
        ("Pynq-Z2", (0, 8, 4, 4)),
        ("Pynq-Z2", (8, 0, 4, 4)),
        ("Pynq-Z2", (8, 8, 0, 4)),
        ("Pynq-Z2", (8, 8, 4, 0)),
        ("Pynq-Z2", (2161, 8, 4, 4)),
        ("KV260", (8, 3841, 4, 4)),
        ("KV260", (8, 8, 2161, 4)),
        ("KV260", (8, 8, 4, 3841)),
    ],
)
def test_sizes_outside_the_ip_never_complete(board_name, sizes):
    board = make_board(board_name)
    dma = board.overlay.axi_dma_0
    post(board, buffer(board, frame(8, 8)), board.allocate((4096,), np.uint8), sizes)
    assert not any(dma.sendchannel.idle or dma.recvchannel.idle for _ in range(20))
    assert ctrl(board) & (AP_START | AP_DONE | AP_IDLE) == AP_START
    assert board.frames == 0


def test_output_nobody_receives_is_held_and_the_ip_is_not_done_until_drained():
    board = make_board()
    dma = board.overlay.axi_dma_0
    src_arr = frame(8, 8)
    write_sizes(board, (8, 8, 4, 4))
    board.overlay.resize_accel_0.write(CTRL, AP_START)
    dma.sendchannel.transfer(buffer(board, src_arr))
    assert dma.sendchannel.idle  # the IP took its whole input
    assert not any(ctrl(board) & (AP_DONE | AP_IDLE) for _ in range(10))
    dst = board.allocate((4, 4, 3), np.uint8)
    dma.recvchannel.transfer(dst)
    dma.recvchannel.wait()
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert np.array_equal(dst, resize_exact(src_arr, 4, 4))


def test_partial_beat_prefixes_the_next_frame_through_a_dma_reset_until_a_pl_reset():
    board = make_board()
    dma = board.overlay.axi_dma_0
    frames = [frame(3, 3, seed) for seed in range(4)]  # 27 bytes: ends mid-beat
    padded = [np.concatenate([f.reshape(-1), [0xEE]]).astype(np.uint8) for f in frames]

    def send(i):
        src = buffer(board, padded[i])  # 28 bytes: one byte too many
        dst = board.allocate((2, 2, 3), np.uint8)
        post(board, src, dst, (3, 3, 2, 2))
        dma.sendchannel.wait()
        dma.recvchannel.wait()
        return np.array(dst)

    assert np.array_equal(send(0), resize_exact(frames[0], 2, 2))
    # frame 1 starts with the pad byte the converter kept, and leaves two bytes behind
    shifted = np.concatenate([[0xEE], padded[1][:26]]).astype(np.uint8).reshape(3, 3, 3)
    assert np.array_equal(send(1), resize_exact(shifted, 2, 2))
    restart_dma(board)  # does not touch the converter
    shifted = np.concatenate([padded[1][26:], padded[2][:25]]).astype(np.uint8).reshape(3, 3, 3)
    assert np.array_equal(send(2), resize_exact(shifted, 2, 2))
    board.reset_pl()
    restart_dma(board)
    assert np.array_equal(send(3), resize_exact(frames[3], 2, 2))


# -- faults -------------------------------------------------------------------------------


def test_ip_hang_takes_the_input_never_finishes_and_only_a_pl_reset_recovers():
    board = make_board()
    board.faults.ip_hang()
    dma = board.overlay.axi_dma_0
    post(board, buffer(board, frame(8, 8)), board.allocate((4, 4, 3), np.uint8), (8, 8, 4, 4))
    assert dma.sendchannel.idle
    assert not any(dma.recvchannel.idle for _ in range(10))
    assert not ctrl(board) & (AP_DONE | AP_IDLE)
    restart_dma(board)
    assert not ctrl(board) & AP_IDLE
    assert board.faults.injected["ip_hang"] == 1
    board.reset_pl()
    restart_dma(board)
    out = notebook_frame(board, frame(8, 8), (4, 4))  # one frame only: next is fine
    assert np.array_equal(out.reshape(4, 4, 3), resize_exact(frame(8, 8), 4, 4))


def test_short_packet_completes_the_receive_with_fewer_bytes_and_reports_done():
    board = make_board()
    board.faults.short_packet()
    src = frame(8, 8)
    out = notebook_frame(board, src, (4, 4), ctrl=0x01)
    assert out.size == 24
    assert np.array_equal(out, resize_exact(src, 4, 4).reshape(-1)[:24])
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert board.faults.injected["short_packet"] == 1
    assert notebook_frame(board, src, (4, 4), ctrl=0x01).size == 48


# -- timing -------------------------------------------------------------------------------


def test_completed_frames_report_their_modelled_board_seconds():
    board = make_board("KV260")
    notebook_frame(board, frame(8, 8), (4, 4), ctrl=0x01)
    first = frame_seconds(8, 8, 4, 4, board.descriptor.clock_hz)
    assert board.last_frame_seconds == first
    notebook_frame(board, frame(20, 30), (40, 10), ctrl=0x01)
    second = frame_seconds(20, 30, 40, 10, board.descriptor.clock_hz)
    assert board.frames == 2 and board.last_frame_seconds == second
    assert board.busy_seconds == pytest.approx(first + second)


def test_pace_makes_completion_visible_only_after_the_modelled_time():
    clock = StepClock()
    board = make_board(pace=True, clock=clock)
    dma = board.overlay.axi_dma_0
    dst = board.allocate((4, 4, 3), np.uint8)
    post(board, buffer(board, frame(8, 8)), dst, (8, 8, 4, 4))
    seconds = frame_seconds(8, 8, 4, 4)
    clock.t += seconds * 0.99
    assert not dma.sendchannel.idle and not dma.recvchannel.idle
    assert not ctrl(board) & (AP_DONE | AP_IDLE)
    assert dma.read(0x58) == 48 and not dst.any()
    clock.t += seconds * 0.02
    assert dma.sendchannel.idle and dma.recvchannel.idle
    assert ctrl(board) == AP_DONE | AP_IDLE
    assert board.frames == 1


def test_pace_counts_from_the_last_of_the_posts():
    clock = StepClock()
    board = make_board(pace=True, clock=clock)
    dma = board.overlay.axi_dma_0
    seconds = frame_seconds(8, 8, 4, 4)
    write_sizes(board, (8, 8, 4, 4))
    board.overlay.resize_accel_0.write(CTRL, AP_START)
    dma.sendchannel.transfer(buffer(board, frame(8, 8)))
    clock.t += 10 * seconds  # nobody receives meanwhile
    dma.recvchannel.transfer(board.allocate((4, 4, 3), np.uint8))
    clock.t += seconds * 0.5
    assert not dma.recvchannel.idle
    clock.t += seconds * 0.6
    assert dma.recvchannel.idle


def test_pace_in_wall_time_lets_the_cpu_work_while_the_frame_runs():
    board = make_board(pace=True, hang_limit=5.0)
    dma = board.overlay.axi_dma_0
    src, dst = buffer(board, frame(1080, 1920)), board.allocate((540, 960, 3), np.uint8)
    seconds = frame_seconds(1080, 1920, 540, 960)  # 20.9 ms, well above the emulator's cost
    posting = time.perf_counter()
    post(board, src, dst, (1080, 1920, 540, 960))
    if time.perf_counter() - posting < 0.8 * seconds:  # a loaded machine may post slowly
        assert not dma.recvchannel.idle  # the CPU is free while the frame runs
    dma.recvchannel.wait()
    assert time.perf_counter() - posting >= seconds
    assert np.array_equal(dst, resize_exact(np.asarray(src), 540, 960))
