"""EmulatedBoard: the bottom-layer surface, the Overlay surface, faults on construction,
closing, and the cost of the emulated PL path."""

from __future__ import annotations

import time
import weakref
from importlib import metadata

import numpy as np
import pytest

from pynq_cv.backends.emulator import EmulatedBoard, EmulatedBuffer, EmulatedOverlay, Faults
from pynq_cv.backends.emulator import resize_ip as resize_ip_module
from pynq_cv.backends.select import open_board
from pynq_cv.descriptors import descriptor_for


def test_constructor_needs_no_arguments_and_defaults_to_pynq_z2():
    board = EmulatedBoard()
    assert board.name == "emulator"
    assert board.descriptor.board == "Pynq-Z2" and board.descriptor.build == "2020"
    assert board.memory.size == 128 << 20
    board.close()


def test_board_name_or_descriptor_choose_the_overlay():
    assert EmulatedBoard("KV260", cma_bytes=1 << 20).descriptor.build == "2021"
    desc = descriptor_for("Pynq-Z1")
    assert EmulatedBoard(descriptor=desc, cma_bytes=1 << 20).descriptor is desc


def test_entry_point_and_backend_selection_reach_the_emulator():
    (ep,) = [e for e in metadata.entry_points(group="pynq_cv.backends") if e.name == "emulator"]
    assert ep.load() is EmulatedBoard
    board, name, _ = open_board("emulator")
    assert isinstance(board, EmulatedBoard) and name == "emulator"
    board.close()


def test_overlay_exposes_descriptor_ips_and_ip_dict_like_pynq():
    board = EmulatedBoard(cma_bytes=1 << 20)
    ov = board.overlay
    assert ov.ip_dict == board.descriptor.ip_dict()
    params = ov.ip_dict["axi_dma_0"]["parameters"]
    assert params["c_sg_length_width"] == params["C_SG_LENGTH_WIDTH"] == "26"
    assert ov.ip_dict["axi_dma_0"]["interrupts"] == {}
    assert ov.axi_dma_0 is ov.axi_dma_0 and ov.resize_accel_0 is ov.resize_accel_0
    assert ov.axi_dma_0.buffer_max_size == (1 << 26) - 1
    assert {"axi_dma_0", "resize_accel_0"} <= set(dir(ov))
    assert ov.is_loaded()
    with pytest.raises(AttributeError) as info:
        ov.axi_dma_1  # noqa: B018
    assert str(info.value) == "Could not find IP or hierarchy axi_dma_1 in overlay"
    assert not hasattr(ov, "resizer")


def test_download_and_reset_pl_reset_the_ip_and_the_dma():
    board = EmulatedBoard(cma_bytes=1 << 20)
    ip, dma = board.overlay.resize_accel_0, board.overlay.axi_dma_0
    ip.write(0x10, 1)
    ip.write(0x18, 4)
    ip.write(0x20, 2)
    ip.write(0x28, 2)
    ip.write(0x00, 0x81)
    assert not ip.read(0x00) & 0x4
    board.overlay.download()
    assert ip.read(0x00) == 0x4
    assert dma.read(0x04) & 0x1 and dma.read(0x34) & 0x1  # halted: start() again
    assert board.reset_pl() is True


def test_allocate_takes_pynqs_arguments():
    board = EmulatedBoard(cma_bytes=1 << 20)
    words = board.allocate((4,))
    assert isinstance(words, EmulatedBuffer) and words.dtype == np.uint32
    buf = board.allocate((2, 3), dtype=np.uint8, target=None, cacheable=0)
    assert buf.coherent and not buf.cacheable and board.memory.live_buffers == 2
    del words  # like pynq: a buffer nobody holds is freed
    assert board.memory.live_buffers == 1


def test_overlay_missing_raises_what_pynq_raises_on_a_board():
    faults = Faults()
    faults.overlay_missing(True)
    with pytest.raises(OSError, match=r"^Bitstream file resizer\.bit does not exist\.$"):
        EmulatedBoard(cma_bytes=1 << 20, faults=faults)
    board = EmulatedBoard(cma_bytes=1 << 20)
    with pytest.raises(OSError):
        EmulatedOverlay(board.descriptor, board.memory, faults=faults)
    board.faults.overlay_missing(True)
    with pytest.raises(OSError):
        board.reset_pl()
    assert faults.injected["overlay_missing"] == 2
    assert board.faults.injected["overlay_missing"] == 1
    board.faults.clear()
    assert board.reset_pl() is True


def test_faults_validate_and_report_what_is_armed():
    faults = Faults()
    with pytest.raises(ValueError):
        faults.dma_error("sideways")
    with pytest.raises(ValueError):
        faults.dma_error("send", "cosmic")
    faults.dma_error("recv", "decode", count=2)
    faults.ip_hang()
    assert faults.armed == {"dma_error:recv": 2, "ip_hang": 1}
    faults.clear()
    assert faults.armed == {}


def test_hang_limit_can_be_changed_on_a_live_board():
    board = EmulatedBoard(cma_bytes=1 << 20)
    board.hang_limit = 0.01
    began = time.perf_counter()
    with pytest.raises(RuntimeError, match="would hang forever on a board"):
        board.overlay.axi_dma_0.recvchannel.wait()  # before any transfer: Idle is 0
    assert time.perf_counter() - began < 1.0


def test_close_frees_every_buffer_and_unloads():
    board = EmulatedBoard(cma_bytes=1 << 20)
    bufs = [board.allocate((1000,), np.uint8) for _ in range(3)]
    assert board.memory.live_buffers == 3
    board.close()
    board.close()
    assert board.memory.live_buffers == 0 and all(b.freed for b in bufs)
    assert not board.overlay.is_loaded()
    with pytest.raises(RuntimeError):
        board.allocate((4,), np.uint8)


def test_a_closed_engine_gives_its_emulated_cma_back_at_once():
    """Not when the closed Resizer (which keeps its pool for give_back) is collected: a
    32-bit process opening engine after engine ran out of address space. Only live blocks
    hold bytes, and a buffer the user still holds keeps only its own."""
    import pynq_cv

    rz = pynq_cv.Resizer("emulator", policy="pl").open()
    src = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    want = rz.resize(src, (32, 24))  # the DMA's channels saw pool buffers
    kept = rz.lend((24, 32, 3), cacheable=False)  # a view of the emulated CMA
    kept[:] = 7
    memory = rz.engine.board.memory
    blocks = [weakref.ref(block) for block in memory._blocks.values()]
    assert len(blocks) >= 3 and memory.live_bytes >= sum(b().size for b in blocks)
    rz.close()
    assert memory.live_bytes == 0 and not memory._blocks
    assert sum(b() is not None for b in blocks) == 1, "only the lent buffer's block lives"
    assert int(kept.sum()) == 7 * kept.size
    rz.give_back(kept)
    del kept
    assert all(b() is None for b in blocks)
    with pynq_cv.Resizer("emulator", policy="pl") as again:  # a new engine, new memory
        np.testing.assert_array_equal(again.resize(src, (32, 24)), want)


def test_pl_path_for_a_1080p_frame_costs_a_few_frame_copies_beyond_the_arithmetic(monkeypatch):
    monkeypatch.setattr(resize_ip_module.arith, "resize_exact", lambda s, r, c, out=None: out)
    board = EmulatedBoard(cma_bytes=16 << 20)
    dma, ip = board.overlay.axi_dma_0, board.overlay.resize_accel_0
    src = board.allocate((1080, 1920, 3), np.uint8)
    dst = board.allocate((540, 960, 3), np.uint8)

    def one_frame():
        for offset, value in zip((0x10, 0x18, 0x20, 0x28), (1080, 1920, 540, 960), strict=True):
            ip.write(offset, value)
        ip.write(0x00, 0x01)
        dma.recvchannel.transfer(dst)
        dma.sendchannel.transfer(src)
        dma.sendchannel.wait()
        dma.recvchannel.wait()

    def best(fn, n=5):
        times = []
        for _ in range(n):
            began = time.perf_counter()
            fn()
            times.append(time.perf_counter() - began)
        return min(times)

    scratch = np.empty(src.nbytes, np.uint8)
    copy = best(lambda: np.copyto(scratch, src.reshape(-1)))
    assert best(one_frame) < 4 * copy + 0.002  # measured: about 1.5 copies
