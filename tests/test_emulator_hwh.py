"""The emulator's side of running pynq code, without pynq: the generated ``.hwh``, the
loaded overlay's DMA width, hang diagnostics and the watchdog, coherent buffers."""

from __future__ import annotations

import dataclasses
import sys
from xml.etree import ElementTree

import numpy as np
import pytest
from conftest import frame

from pynq_cv.backends.emulator import EmulatedBoard
from pynq_cv.backends.emulator.hwh import generate_hwh, write_overlay
from pynq_cv.backends.emulator.memory import ContiguousMemory
from pynq_cv.backends.emulator.watchdog import EmulatedHang, Watchdog
from pynq_cv.descriptors import available_descriptors, descriptor_for
from pynq_cv.emulate import emulate, notebook_code

MiB = 1 << 20


def modules(text: str) -> dict[str, ElementTree.Element]:
    root = ElementTree.fromstring(text)
    return {m.get("INSTANCE"): m for m in root.iter("MODULE")}


def registers(module: ElementTree.Element) -> dict[str, dict[str, str]]:
    out = {}
    for reg in module.iter("REGISTER"):
        out[reg.get("NAME")] = {p.get("NAME"): p.get("VALUE") for p in reg.findall("PROPERTY")}
    return out


# -- the generated .hwh ------------------------------------------------------------------------


@pytest.mark.parametrize("board", sorted(available_descriptors()))
def test_the_generated_hwh_describes_the_descriptors_overlay(board):
    desc = descriptor_for(board)
    text = generate_hwh(desc)
    found = modules(text)
    ps = found["ps"]
    zynq7 = desc.dma.base < 0x8000_0000
    assert ps.get("MODTYPE") == ("processing_system7" if zynq7 else "zynq_ultra_ps_e")
    ranges = {r.get("INSTANCE"): r for r in ps.iter("MEMRANGE")}
    for ip in (desc.dma, desc.resizer):
        assert found[ip.name].get("VLNV") == ip.type
        assert int(ranges[ip.name].get("BASEVALUE"), 16) == ip.base
        assert int(ranges[ip.name].get("HIGHVALUE"), 16) == ip.base + ip.range - 1
    params = {p.get("NAME"): p.get("VALUE") for p in found[desc.dma.name].iter("PARAMETER")}
    width = str(desc.dma_length_width)
    assert params["c_sg_length_width"] == params["C_SG_LENGTH_WIDTH"] == width
    dma_regs = found[desc.dma.name].iter("REGISTER")
    length = next(r for r in dma_regs if r.get("NAME") == "MM2S_LENGTH")
    bits = {p.get("NAME"): p.get("VALUE") for p in length.iter("PROPERTY")}["BIT_WIDTH"]
    assert bits == width


def test_the_resizers_size_registers_are_write_only_as_hls_marks_them():
    regs = registers(modules(generate_hwh(descriptor_for("Pynq-Z2")))["resize_accel_0"])
    offsets = {name: int(r["ADDRESS_OFFSET"]) for name, r in regs.items()}
    assert offsets == {
        "CTRL": 0x00, "GIER": 0x04, "IP_IER": 0x08, "IP_ISR": 0x0C,
        "src_rows": 0x10, "src_cols": 0x18, "dst_rows": 0x20, "dst_cols": 0x28,
    }
    assert {n for n, r in regs.items() if r["ACCESS"] == "write-only"} == {
        "src_rows", "src_cols", "dst_rows", "dst_cols"
    }


def test_the_pl_clock_divisors_give_the_descriptors_clock():
    for board, pll, prefix in (("Pynq-Z2", 1000, "PCW_FCLK0_PERIPHERAL_DIVISOR"),
                               ("KV260", 1500, "PSU__CRL_APB__PL0_REF_CTRL__DIVISOR")):
        params = {p.get("NAME"): p.get("VALUE")
                  for p in modules(generate_hwh(descriptor_for(board)))["ps"].iter("PARAMETER")}
        assert pll / int(params[prefix + "0"]) / int(params[prefix + "1"]) == 100


def test_write_overlay_leaves_a_real_hwh_beside_the_bit_alone(tmp_path):
    (tmp_path / "resizer.hwh").write_text("<EDKSYSTEM/>")
    bit = write_overlay(descriptor_for("Pynq-Z2"), tmp_path)
    assert bit == tmp_path / "resizer.bit" and bit.is_file()
    assert (tmp_path / "resizer.hwh").read_text() == "<EDKSYSTEM/>"
    other = write_overlay(descriptor_for("KV260"), tmp_path / "kv")
    assert "zynq_ultra_ps_e" in other.with_suffix(".hwh").read_text()


# -- the loaded overlay decides the DMA ---------------------------------------------------------


def old_z2_ip_dict():
    desc = descriptor_for("Pynq-Z2")
    params = {**desc.dma.parameters, "c_sg_length_width": 23}
    return dataclasses.replace(desc, dma=dataclasses.replace(desc.dma, parameters=params)).ip_dict()


def test_a_download_makes_the_dma_length_register_the_loaded_overlays():
    with EmulatedBoard("Pynq-Z2") as board:
        assert board.overlay.length_width == 26
        board.overlay.download(old_z2_ip_dict())
        assert board.overlay.length_width == 23
        board.overlay.axi_dma_0.write(0x28, (1 << 23) + 64)  # LENGTH keeps 23 bits: 64
        assert board.overlay.axi_dma_0.read(0x28) == 64
        board.overlay.download(descriptor_for("Pynq-Z2").ip_dict())
        assert board.overlay.length_width == 26


# -- hang diagnostics ---------------------------------------------------------------------------


def start(board, sizes, ctrl=0x01):
    ip = board.overlay.resize_accel_0
    for offset, value in zip((0x10, 0x18, 0x20, 0x28), sizes, strict=True):
        ip.write(offset, value)
    ip.write(0x00, ctrl)


def test_stall_reasons_name_what_the_hardware_waits_for():
    with EmulatedBoard(cma_bytes=4 * MiB) as board:
        dma = board.overlay.axi_dma_0
        assert "no DMA transfer is in flight" in board.overlay.stall_reason()
        src = board.allocate((4, 8, 3), np.uint8)
        dma.sendchannel.transfer(src)
        assert "IP is not running" in board.overlay.stall_reason()
        start(board, (8, 8, 4, 4))  # wants 8 rows, gets 4
        assert "waits for 96 more input bytes" in board.overlay.stall_reason()
    with EmulatedBoard(cma_bytes=4 * MiB) as board:
        start(board, (1, 8, 1, 4))
        src = board.allocate((1, 8, 3), np.uint8)
        board.overlay.axi_dma_0.sendchannel.transfer(src)
        assert "one input row: waits for a second" in board.overlay.stall_reason()
    with EmulatedBoard(cma_bytes=4 * MiB) as board:
        start(board, (4, 8, 2, 4))
        src = board.allocate((4, 8, 3), np.uint8)
        src[:] = frame(4, 8)
        board.overlay.axi_dma_0.sendchannel.transfer(src)
        assert "no receive transfer takes" in board.overlay.stall_reason()


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_watchdog_fires_on_an_unchanging_busy_poll_only():
    clock = Ticks()
    dog = Watchdog(1.0, lambda: "the IP waits", name_of=lambda a: f"R{a:x}", clock=clock)
    with pytest.raises(EmulatedHang, match="polled R34 = 0x00000000 for 1 s") as hang:
        while clock.now < 2.0:  # 0.1 s apart: a busy-wait
            clock.now += 0.1
            dog.read(0x34, 0)
    assert "the IP waits" in str(hang.value)
    assert 1.0 < clock.now < 1.35
    for _ in range(30):  # a value that changes is progress
        clock.now += 0.1
        dog.read(0x34, int(clock.now * 10))
    for _ in range(30):  # a write in between is progress
        clock.now += 0.1
        dog.read(0x34, 0)
        dog.wrote(0x00)
    for _ in range(5):  # reads seconds apart are not a busy-wait
        clock.now += 2.0
        dog.read(0x34, 0)
    with pytest.raises(ValueError):
        Watchdog(0, lambda: "")


# -- coherent and cached buffers ----------------------------------------------------------------


def test_non_cacheable_buffers_are_the_devices_bytes():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((4, 16), np.uint8)  # pynq's default: cacheable=0
    device = memory.window(buf.physical_address, 64)
    buf[1] = 5  # no flush
    assert (device[16:32] == 5).all()
    device[:16] = 9  # a DMA write, no invalidate
    assert (buf[0] == 9).all()
    buf.flush()
    buf[2:].invalidate()  # nothing to do, nothing lost
    assert (buf[1] == 5).all() and (buf[0] == 9).all()
    assert buf[1:].coherent and not buf[1:].cacheable


def test_the_pl_path_is_exact_on_cached_and_coherent_buffers(monkeypatch):
    import pynq_cv
    from pynq_cv import resizer as engine_module

    for cacheable in (False, True):
        board = EmulatedBoard(cma_bytes=32 * MiB)
        plain = board.allocate

        def allocate(shape, dtype="u4", *args, _plain=plain, _c=cacheable, **kwargs):
            return _plain(shape, dtype, cacheable=_c)

        board.allocate = allocate
        monkeypatch.setattr(
            engine_module, "open_board", lambda *a, _b=board, **k: (_b, "emulator", "")
        )
        with pynq_cv.Resizer() as rz:
            for seed in range(3):
                image = frame(120, 160, seed=seed)
                out = rz.resize(image, (80, 60))
                from pynq_cv.backends.emulator.arith import resize_exact

                np.testing.assert_array_equal(out, resize_exact(image, 60, 80))
            assert rz.stats.snapshot()["pl"] == 3
        board.close()


# -- emulate() without pynq, and notebooks -------------------------------------------------------


def test_emulate_without_pynq_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(ImportError, match="pip install pynq"):
        with emulate():
            pass


def test_notebook_code_drops_magics_and_keeps_timeit_bodies(tmp_path):
    import json

    cells = [
        {"cell_type": "markdown", "source": "# title"},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "x = 1\n", "!ls\n"]},
        {"cell_type": "code", "source": "%%timeit\nx += 1"},
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert notebook_code(path) == ["\nx = 1\n", "x += 1"]
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "%%bash\nls"}]}))
    with pytest.raises(ValueError, match="%%bash"):
        notebook_code(path)
