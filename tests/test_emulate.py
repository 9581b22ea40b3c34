"""``pynq_cv.emulate()``: pynq's own ``Overlay`` and the HelloWorld notebook on the emulator.

Runs where ``pynq`` imports (CI environment 2: pynq 4.0.0); skipped elsewhere, except under
``PYNQ_CV_REQUIRE_PYNQ=1``. Every overlay here is the project's generated ``.hwh``.

``NOTEBOOK`` is the documented sequence of the PYNQ-HelloWorld ``resizer_pl`` notebook's
code cells (Overlay, allocate, sizes, run_kernel, Image.fromarray), with the bitstream path
and the image as parameters; ``SIZES_BY_WRITE`` and ``SIZES_BY_REGISTER_MAP`` are its two
forms of the size cell (before and after PYNQ-HelloWorld a031e64).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings

import numpy as np
import pytest
from conftest import frame, real_pynq

pynq = real_pynq()

import pynq_cv  # noqa: E402
from pynq_cv.backends import board as board_backend  # noqa: E402
from pynq_cv.backends.emulator.arith import resize_exact  # noqa: E402
from pynq_cv.backends.emulator.hwh import generate_hwh  # noqa: E402
from pynq_cv.backends.emulator.watchdog import EmulatedHang  # noqa: E402
from pynq_cv.descriptors import descriptor_for  # noqa: E402
from pynq_cv.emulate import run_script_emulated  # noqa: E402
from pynq_cv.timing import frame_seconds  # noqa: E402

NOTEBOOK = """
from PIL import Image
import numpy as np
from pynq import allocate, Overlay

resize_design = Overlay(BITSTREAM)
dma = resize_design.axi_dma_0
resizer = resize_design.resize_accel_0

original_image = Image.fromarray(IMAGE)
old_width, old_height = original_image.size
resize_factor = 2
new_width = int(old_width/resize_factor)
new_height = int(old_height/resize_factor)

in_buffer = allocate(shape=(old_height, old_width, 3), dtype=np.uint8, cacheable=1)
out_buffer = allocate(shape=(new_height, new_width, 3), dtype=np.uint8, cacheable=1)
in_buffer[:] = np.array(original_image)

def run_kernel():
    dma.sendchannel.transfer(in_buffer)
    dma.recvchannel.transfer(out_buffer)
    resizer.write(0x00,0x81) # start
    dma.sendchannel.wait()
    dma.recvchannel.wait()
{sizes}
run_kernel()
resized_image = Image.fromarray(out_buffer)
for _ in range(3):  # the %%timeit cell
    run_kernel()
    resized_image = Image.fromarray(out_buffer)
"""

SIZES_BY_WRITE = """
resizer.write(0x10, old_height)
resizer.write(0x18, old_width)
resizer.write(0x20, new_height)
resizer.write(0x28, new_width)
"""

SIZES_BY_REGISTER_MAP = """
resizer.register_map.src_rows = old_height
resizer.register_map.src_cols = old_width
resizer.register_map.dst_rows = new_height
resizer.register_map.dst_cols = new_width
"""


@pytest.fixture(autouse=True)
def _own_pl_lock(monkeypatch, tmp_path):
    """Under emulate() PynqBoard takes the PL lock as on a board: this test's own."""
    monkeypatch.setenv("PYNQ_CV_LOCK_DIR", str(tmp_path / "locks"))


def run_notebook(bitstream: str, image: np.ndarray, sizes: str) -> dict:
    namespace = {"BITSTREAM": bitstream, "IMAGE": image}
    exec(NOTEBOOK.replace("{sizes}", sizes), namespace)  # noqa: S102
    return namespace


def assert_resized_exactly(namespace: dict, image: np.ndarray) -> None:
    rows, cols = image.shape[0] // 2, image.shape[1] // 2
    expected = resize_exact(image, rows, cols)
    np.testing.assert_array_equal(np.asarray(namespace["out_buffer"]), expected)
    np.testing.assert_array_equal(np.asarray(namespace["resized_image"]), expected)


# -- the notebook ------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [SIZES_BY_WRITE, SIZES_BY_REGISTER_MAP], ids=["write", "map"])
def test_the_resizer_notebook_runs_unmodified_and_every_output_is_exact(sizes):
    image = frame(360, 640, seed=1)
    with pynq_cv.emulate() as emu:
        namespace = run_notebook(emu.bitstream, image, sizes)
        assert_resized_exactly(namespace, image)
        assert emu.device.downloads == 1, "Overlay() downloads by default"
        assert emu.board.frames == 4


def test_the_notebooks_4k_picture_resizes_on_the_emulated_pynq_z2():
    image = frame(2160, 3840, seed=2)
    with pynq_cv.emulate(board="Pynq-Z2") as emu:
        namespace = run_notebook(emu.bitstream, image, SIZES_BY_REGISTER_MAP)
        assert_resized_exactly(namespace, image)
        assert namespace["dma"].buffer_max_size == (1 << 26) - 1
        assert emu.board.overlay.length_width == 26


def test_running_the_notebook_again_with_another_image_size_works():
    """The second Overlay() reloads the bitstream: the PL reset frees the IP that
    auto_restart left waiting with the first image's sizes."""
    first, second = frame(120, 160, seed=3), frame(90, 200, seed=4)
    with pynq_cv.emulate() as emu:
        assert_resized_exactly(run_notebook(emu.bitstream, first, SIZES_BY_WRITE), first)
        assert_resized_exactly(run_notebook(emu.bitstream, second, SIZES_BY_WRITE), second)
        assert emu.device.downloads == 2


def test_without_a_download_new_sizes_under_auto_restart_hang_and_the_watchdog_says_why():
    first, second = frame(120, 160, seed=3), frame(90, 200, seed=4)
    with pynq_cv.emulate(watchdog=0.3) as emu:
        run_notebook(emu.bitstream, first, SIZES_BY_WRITE)
        program = NOTEBOOK.replace("Overlay(BITSTREAM)", "Overlay(BITSTREAM, download=False)")
        with pytest.raises(EmulatedHang, match="would never return") as hang:
            exec(  # noqa: S102
                program.replace("{sizes}", SIZES_BY_WRITE),
                {"BITSTREAM": emu.bitstream, "IMAGE": second},
            )
        assert "axi_dma_0" in str(hang.value)
        assert "waits for 3600 more input bytes" in str(hang.value)
        assert "latched at its start (src 120x160" in str(hang.value)
        assert "restarted as the previous frame's input ended" in str(hang.value)


def test_the_watchdog_explains_a_one_row_input():
    with pynq_cv.emulate(watchdog=0.2) as emu:
        overlay = pynq.Overlay(emu.bitstream)
        dma, resizer = overlay.axi_dma_0, overlay.resize_accel_0
        src = pynq.allocate((1, 64, 3), np.uint8)
        dst = pynq.allocate((1, 32, 3), np.uint8)
        for offset, value in ((0x10, 1), (0x18, 64), (0x20, 1), (0x28, 32)):
            resizer.write(offset, value)
        dma.sendchannel.transfer(src)
        dma.recvchannel.transfer(dst)
        resizer.write(0x00, 0x01)
        dma.sendchannel.wait()  # the IP takes the one row
        with pytest.raises(EmulatedHang, match="one input row: waits for a second"):
            dma.recvchannel.wait()


# -- Overlay on the emulated device ------------------------------------------------------------


def test_overlay_attaches_without_download_to_the_loaded_emulated_pl():
    with pynq_cv.emulate() as emu:
        assert pynq.PL.bitfile_name == emu.bitstream
        overlay = pynq.Overlay(emu.bitstream, download=False)
        assert overlay.is_loaded() and emu.device.downloads == 0
        assert set(overlay.ip_dict) >= {"axi_dma_0", "resize_accel_0"}
        overlay.download()
        assert emu.device.downloads == 1 and overlay.is_loaded()
        assert pynq.PL.bitfile_name == emu.bitstream


def test_register_map_binds_prints_and_size_registers_read_back():
    with pynq_cv.emulate() as emu:
        resizer = pynq.Overlay(emu.bitstream).resize_accel_0
        resizer.register_map.src_rows = 1080
        resizer.register_map.dst_cols = 960
        assert resizer.read(0x10) == 1080 and resizer.read(0x28) == 960
        text = repr(resizer.register_map)
        assert "src_rows = Register(src_rows=write-only)" in text
        assert "AP_IDLE=1" in text
        assert resizer.register_map.CTRL.AP_IDLE == 1


def test_download_resets_the_emulated_ip_and_dma():
    with pynq_cv.emulate() as emu:
        overlay = pynq.Overlay(emu.bitstream)
        resizer, dma = overlay.resize_accel_0, overlay.axi_dma_0
        resizer.write(0x10, 4)
        resizer.write(0x00, 0x81)
        assert not resizer.read(0x00) & 0x4, "running: not idle"
        overlay.download()
        assert resizer.read(0x00) == 0x4 and resizer.read(0x10) == 0
        assert dma.read(0x04) & 0x1, "the DMA is back in reset: halted"


def test_pl_clock_setting_does_nothing_off_board():
    from pynq.ps import Clocks

    with pynq_cv.emulate(board="KV260") as emu:
        pynq.Overlay(emu.bitstream)  # download sets the PL clocks from the .hwh
        assert Clocks.fclk0_mhz == 100.0
        Clocks.fclk0_mhz = 50
        assert emu.board.descriptor.clock_hz == 100_000_000
    assert "_real_instance" not in vars(Clocks)


def test_the_dma_length_width_follows_the_loaded_hwh(tmp_path):
    desc = descriptor_for("Pynq-Z2")
    params = {**desc.dma.parameters, "c_sg_length_width": 23}  # the 2019.1 .hwh's width
    old = dataclasses.replace(desc, dma=dataclasses.replace(desc.dma, parameters=params))
    hwh = tmp_path / "old.hwh"
    hwh.write_text(generate_hwh(old))
    with pynq_cv.emulate(hwh=hwh) as emu:
        assert emu.board.overlay.length_width == 23
        dma = pynq.Overlay(emu.bitstream).axi_dma_0
        big = pynq.allocate((2160, 3840, 3), np.uint8)
        with pytest.raises(ValueError, match="exceeds the maximum DMA buffer size 8388607"):
            dma.sendchannel.transfer(big)
        newer = tmp_path / "newer" / "resizer.bit"
        newer.parent.mkdir()
        newer.write_bytes(b"")
        newer.with_suffix(".hwh").write_text(generate_hwh(desc))
        pynq.Overlay(str(newer))  # a download of the 26-bit design
        assert emu.board.overlay.length_width == 26


def test_emulate_never_replaces_a_hwh_already_in_the_directory(tmp_path):
    (tmp_path / "resizer.hwh").write_text("<EDKSYSTEM/>")
    other = tmp_path / "other.hwh"
    other.write_text(generate_hwh(descriptor_for("Pynq-Z2")))
    with pytest.raises(ValueError, match="exists: not replacing"):
        with pynq_cv.emulate(hwh=other, directory=tmp_path):
            pass
    assert (tmp_path / "resizer.hwh").read_text() == "<EDKSYSTEM/>"


def test_a_real_hwh_beside_the_bit_is_what_pynq_parses(tmp_path):
    desc = descriptor_for("Pynq-Z2")
    (tmp_path / "resizer.hwh").write_text(generate_hwh(desc).replace("resize_accel", "resize_x"))
    with pynq_cv.emulate(directory=tmp_path) as emu:
        assert emu.bitstream == str(tmp_path / "resizer.bit")
        assert "xilinx.com:hls:resize_x:1.0" in {
            entry["type"] for entry in pynq.Overlay(emu.bitstream).ip_dict.values()
        }


def test_the_notebooks_relative_bitstream_name_resolves_in_the_chosen_directory(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pynq_cv.emulate(directory="."):
        overlay = pynq.Overlay("resizer.bit")  # the notebook's own line
        assert overlay.bitfile_name == str(tmp_path / "resizer.bit")
        assert overlay.resize_accel_0.read(0x00) == 0x4
    assert (tmp_path / "resizer.hwh").is_file(), "files in a chosen directory are kept"


# -- buffers -----------------------------------------------------------------------------------


def test_non_cacheable_buffers_are_coherent_cacheable_ones_are_not():
    with pynq_cv.emulate() as emu:
        for cacheable, coherent in ((0, True), (1, False)):
            buf = pynq.allocate((64,), np.uint8, cacheable=cacheable)
            device = emu.board.memory.window(buf.physical_address, 64)
            buf[:] = 7  # a CPU write, no flush
            assert (device == 7).all() == coherent
            device[:] = 9  # a DMA write, no invalidate
            assert (buf == 9).all() == coherent
            buf.freebuffer()


def test_the_notebook_with_default_non_cacheable_buffers_is_exact():
    image = frame(120, 160, seed=6)
    with pynq_cv.emulate() as emu:
        program = NOTEBOOK.replace(", cacheable=1", "")
        namespace = {"BITSTREAM": emu.bitstream, "IMAGE": image}
        exec(program.replace("{sizes}", SIZES_BY_WRITE), namespace)  # noqa: S102
        assert_resized_exactly(namespace, image)


# -- pacing ------------------------------------------------------------------------------------


def test_paced_waits_take_the_modelled_board_time():
    """pynq's own wait() returns no earlier than the IP's modelled time (a lower bound
    the pacing guarantees, not a speed measurement)."""
    image = frame(540, 960, seed=7)
    with pynq_cv.emulate(pace=True) as emu:
        began = time.perf_counter()
        namespace = run_notebook(emu.bitstream, image, SIZES_BY_WRITE)
        elapsed = time.perf_counter() - began
        assert_resized_exactly(namespace, image)
        modelled = frame_seconds(540, 960, 270, 480, emu.board.descriptor.clock_hz)
        assert emu.board.last_frame_seconds == modelled
        assert elapsed >= 4 * modelled


# -- pynq_cv's board backend on the emulated device ----------------------------------------------


@pytest.fixture
def fresh_board_backend(monkeypatch):
    monkeypatch.setattr(board_backend, "_shared", {})
    for var in ("PYNQ_CV_BITSTREAM", "PYNQ_CV_BACKEND", "PYNQ_CV_BOARD", "BOARD"):
        monkeypatch.delenv(var, raising=False)


def test_the_board_backend_attaches_to_the_resizer_the_emulated_pl_holds(fresh_board_backend):
    with pynq_cv.emulate() as emu:
        with pynq_cv.Resizer("board", bitstream=emu.bitstream) as rz:
            image = frame(180, 320, seed=1)
            np.testing.assert_array_equal(rz.resize(image, (160, 90)), resize_exact(image, 90, 160))
            assert rz.backend == "board" and emu.device.downloads == 0
            assert "attached without downloading" in rz.info()["bitstream_origin"]


def test_the_board_backend_runs_end_to_end_on_the_emulated_device(fresh_board_backend):
    """An empty emulated PL: PynqBoard downloads the resizer, so its recovery may too."""
    with pynq_cv.emulate(loaded=False) as emu:
        assert pynq.PL.bitfile_name is None
        with pynq_cv.Resizer("board", bitstream=emu.bitstream) as rz:
            rz.open()
            assert rz.backend == "board"
            board = board_backend._shared[str(os.path.realpath(emu.bitstream))]
            assert type(board.overlay) is pynq.Overlay
            for seed in range(3):
                image = frame(180, 320, seed=seed)
                np.testing.assert_array_equal(
                    rz.resize(image, (160, 90)), resize_exact(image, 90, 160)
                )
            assert rz.stats.snapshot()["pl"] == 3
            downloads = emu.device.downloads
            assert downloads == 1 and pynq.PL.bitfile_name == emu.bitstream
            emu.board.faults.ip_hang()  # only a PL reset recovers a hung IP
            image = frame(180, 320, seed=9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = rz.resize(image, (160, 90))
            # fell back, computed with the IP's arithmetic (fallback="exact", the default)
            np.testing.assert_array_equal(out, resize_exact(image, 90, 160))
            assert rz.stats.snapshot()["faults"]
            assert emu.device.downloads == downloads + 1, "recovered by a download"
            np.testing.assert_array_equal(
                rz.resize(image, (160, 90)), resize_exact(image, 90, 160)
            )
            assert rz.stats.snapshot()["pl"] == 4


# -- scripts and notebooks -----------------------------------------------------------------------


def test_run_script_emulated_runs_a_script_as_main(tmp_path):
    script = tmp_path / "resize.py"
    (tmp_path / "helper_of_the_script.py").write_text("VALUE = 42\n")
    script.write_text(
        "import sys, pynq\n"
        "import helper_of_the_script\n"
        "seen = (sys.argv[1:], type(pynq.Device.active_device).__name__, __name__)\n"
        "value = helper_of_the_script.VALUE\n"
    )
    path_before = list(sys.path)
    namespace = run_script_emulated(script, ["--size", "2"])
    assert namespace["seen"] == (["--size", "2"], "EmulatedPynqDevice", "__main__")
    assert namespace["value"] == 42 and sys.path == path_before
    assert "_active_device" not in vars(pynq.Device), "the default device is restored"


def test_run_script_emulated_runs_a_notebooks_code_cells(tmp_path):
    import json

    image_file = tmp_path / "image.npy"
    np.save(image_file, frame(60, 80, seed=8))
    cells = [
        "%matplotlib inline\nimport numpy as np\nfrom pynq import allocate, Overlay",
        "import pynq\n"
        "resize_design = Overlay(pynq.PL.bitfile_name)\n"
        "dma = resize_design.axi_dma_0\nresizer = resize_design.resize_accel_0",
        f"image = np.load({str(image_file)!r})\n"
        "in_buffer = allocate(shape=image.shape, dtype=np.uint8)\n"
        "out_buffer = allocate(shape=(30, 40, 3), dtype=np.uint8)\nin_buffer[:] = image",
        "for offset, value in ((0x10, 60), (0x18, 80), (0x20, 30), (0x28, 40)):\n"
        "    resizer.write(offset, value)",
        "%%timeit\ndma.sendchannel.transfer(in_buffer)\ndma.recvchannel.transfer(out_buffer)\n"
        "resizer.write(0x00, 0x81)\ndma.sendchannel.wait()\ndma.recvchannel.wait()",
    ]
    notebook = {"cells": [{"cell_type": "code", "source": c} for c in cells], "nbformat": 4}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    cwd = os.getcwd()
    namespace = run_script_emulated(path)
    assert os.getcwd() == cwd
    expected = resize_exact(frame(60, 80, seed=8), 30, 40)
    np.testing.assert_array_equal(np.asarray(namespace["out_buffer"]), expected)


def test_the_emulate_command_runs_pynq_code_and_passes_its_exit_code(tmp_path, capsys):
    from pynq_cv.cli import main

    script = tmp_path / "notebook_like.py"
    script.write_text(
        "import sys\nimport numpy as np\nimport pynq\n"
        "from pynq import allocate, Overlay\n"
        "ol = Overlay(pynq.PL.bitfile_name)\n"
        "src = allocate(shape=(64, 96, 3), dtype=np.uint8)\n"
        "dst = allocate(shape=(32, 48, 3), dtype=np.uint8)\n"
        "src[:] = np.arange(src.size, dtype=np.uint32).reshape(src.shape) % 251\n"
        "for off, v in ((0x10, 64), (0x18, 96), (0x20, 32), (0x28, 48)):\n"
        "    ol.resize_accel_0.write(off, v)\n"
        "ol.axi_dma_0.sendchannel.transfer(src)\n"
        "ol.axi_dma_0.recvchannel.transfer(dst)\n"
        "ol.resize_accel_0.write(0x00, 0x81)\n"
        "ol.axi_dma_0.sendchannel.wait()\n"
        "ol.axi_dma_0.recvchannel.wait()\n"
        "np.save(sys.argv[1], np.array(dst))\n"
        "sys.exit(3)\n"
    )
    out = tmp_path / "out.npy"
    assert main(["emulate", "--board", "Pynq-Z2", str(script), str(out)]) == 3
    src = (np.arange(64 * 96 * 3, dtype=np.uint32).reshape(64, 96, 3) % 251).astype(np.uint8)
    assert np.array_equal(np.load(out), resize_exact(src, 32, 48))
