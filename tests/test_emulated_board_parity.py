"""The emulated board behaves as the named board does, for pynq_cv's defaults.

Under ``emulate(board=...)`` the board says which board it is (``BOARD``, as a PYNQ image),
auto picks the board backend (``PynqBoard``) with that board's descriptor, the PL lock is
taken, a ``.hwh`` given is checked, an unprogrammed PL does not answer, and a resizer the
HelloWorld notebook left running with AUTO_RESTART is taken over. Runs where ``pynq``
imports (CI environment 2: pynq 4.0.0), or fails under ``PYNQ_CV_REQUIRE_PYNQ=1``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import subprocess
import sys
import textwrap
import warnings

import cv2
import numpy as np
import pytest
from conftest import frame, real_pynq

pynq = real_pynq()

import pynq_cv  # noqa: E402
from pynq_cv.backends import board as board_backend  # noqa: E402
from pynq_cv.backends.emulator.arith import resize_exact  # noqa: E402
from pynq_cv.backends.emulator.hwh import generate_hwh  # noqa: E402
from pynq_cv.backends.emulator.pynq_device import _version, parse_hwh  # noqa: E402
from pynq_cv.descriptors import available_descriptors, descriptor_for  # noqa: E402

BOARDS = sorted({d.board for d in available_descriptors().values()})


@pytest.fixture(autouse=True)
def as_on_a_board(monkeypatch, tmp_path):
    """pynq_cv's defaults (auto backend), a lock directory of this test's own, and no
    board the test did not name."""
    monkeypatch.setattr(board_backend, "_shared", {})
    for var in ("PYNQ_CV_BITSTREAM", "PYNQ_CV_BACKEND", "PYNQ_CV_BOARD", "BOARD",
                "PYNQ_CV_REPROGRAM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYNQ_CV_LOCK_DIR", str(tmp_path / "locks"))


def run_auto(rows: int = 90, cols: int = 160, seed: int = 1) -> pynq_cv.Resizer:
    """One frame on an auto Resizer (policy pl), checked exact; the Resizer, closed."""
    image = frame(180, 320, seed=seed)
    with pynq_cv.Resizer(policy="pl") as rz:
        np.testing.assert_array_equal(rz.resize(image, (cols, rows)),
                                      resize_exact(image, rows, cols))
        rz.last_info = rz.info()
    return rz


# -- the board's identity ----------------------------------------------------------------------


@pytest.mark.parametrize("board", BOARDS)
def test_the_emulated_board_is_the_named_board_and_auto_runs_pynqboard_on_it(board):
    before = dict(os.environ)
    with pynq_cv.emulate(board=board) as emu:
        assert os.environ["BOARD"] == board  # as the board's PYNQ image says it
        rz = run_auto()
        assert rz.backend == "board"
        assert rz.last_info["board"] == board
        assert rz.last_info["overlay"] == descriptor_for(board).name
        assert rz.stats.snapshot()["pl"] == 1
        assert emu.board.frames == 1, "the frame ran on the emulated PL"
    assert dict(os.environ) == before, "the identity is restored"


def test_outside_emulate_auto_off_board_still_picks_the_emulator():
    rz = run_auto()
    assert rz.backend == "emulator"


def test_under_emulate_the_pl_lock_is_taken_and_a_second_process_gets_pl_in_use(tmp_path):
    holder = textwrap.dedent("""
        import sys, pynq_cv
        with pynq_cv.emulate():
            with pynq_cv.Resizer(policy="pl") as rz:
                rz.open()
                print(rz.backend, flush=True)
                sys.stdin.readline()
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)  # bounded: never a hang
        assert ready and child.stdout.readline().strip() == "board"
        with pynq_cv.emulate():
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                image = frame(180, 320)
                with pynq_cv.Resizer(policy="pl") as rz:
                    out = rz.resize(image, (160, 90))
                    assert rz.stats.snapshot()["fallback"] == {"pl_in_use": 1}
                    assert rz.info()["pl_holder"] == child.pid
            np.testing.assert_array_equal(out, cv2.resize(image, (160, 90)))  # cv2's frame
    finally:
        child.stdin.write("\n")
        child.stdin.close()
        child.stdout.close()
        assert child.wait(timeout=60) == 0
    with pynq_cv.emulate():  # the holder is gone: the PL is free again
        assert run_auto().backend == "board"


# -- the .hwh -----------------------------------------------------------------------------------


def test_the_generated_hwh_lists_the_dma_registers_and_fields_of_a_distributed_one(tmp_path):
    path = tmp_path / "resizer.hwh"
    path.write_text(generate_hwh(descriptor_for("Pynq-Z2")))
    registers = parse_hwh(path).ip_dict["axi_dma_0"]["registers"]
    for name in ("MM2S_DMACR", "MM2S_DMASR", "MM2S_CURDESC", "MM2S_TAILDESC", "MM2S_SA",
                 "MM2S_LENGTH", "SG_CTL", "S2MM_DMACR", "S2MM_DMASR", "S2MM_CURDESC",
                 "S2MM_TAILDESC", "S2MM_DA", "S2MM_LENGTH"):
        assert name in registers, name
    assert registers["SG_CTL"]["address_offset"] == 0x2C
    assert registers["S2MM_CURDESC"]["address_offset"] == 0x38
    assert "Source_Address" in registers["MM2S_SA"]["fields"]
    assert "Destination_Address" in registers["S2MM_DA"]["fields"]


def test_a_truncated_hwh_is_named(tmp_path):
    path = tmp_path / "mine.hwh"
    path.write_text(generate_hwh(descriptor_for("Pynq-Z2"))[:5000])
    with pytest.raises(ValueError, match="mine.hwh"), pynq_cv.emulate(hwh=path):
        pass


def test_another_boards_hwh_is_refused_naming_the_file_and_the_mismatch(tmp_path):
    path = tmp_path / "kv260.hwh"
    path.write_text(generate_hwh(descriptor_for("KV260")))
    with pytest.raises(ValueError) as refused, pynq_cv.emulate(board="Pynq-Z2", hwh=path):
        pass
    message = str(refused.value)
    assert "kv260.hwh" in message and "Pynq-Z2" in message and "\n" not in message


def test_a_design_without_the_resizer_is_refused_naming_it(tmp_path):
    desc = descriptor_for("Pynq-Z2")
    other = dataclasses.replace(desc, resizer=dataclasses.replace(desc.resizer, name="other_0"))
    path = tmp_path / "other.hwh"
    path.write_text(generate_hwh(other))
    with pytest.raises(ValueError, match="other.hwh.*'resize_accel_0' is not in the overlay"):
        with pynq_cv.emulate(hwh=path):
            pass


def test_a_users_own_build_at_other_addresses_is_emulated_there(tmp_path):
    desc = descriptor_for("Pynq-Z2")
    mine = dataclasses.replace(
        desc, dma=dataclasses.replace(desc.dma, base=0x41E0_0000),
        resizer=dataclasses.replace(desc.resizer, base=0x43C1_0000),
    )
    path = tmp_path / "mine.hwh"
    path.write_text(generate_hwh(mine))
    with pynq_cv.emulate(hwh=path) as emu:
        assert emu.board.descriptor.dma.base == 0x41E0_0000
        assert pynq.Overlay(emu.bitstream, download=False).ip_dict["axi_dma_0"][
            "phys_addr"] == 0x41E0_0000
        rz = run_auto()
        assert rz.backend == "board" and rz.stats.snapshot()["pl"] == 1
        assert emu.board.frames == 1


# -- an unprogrammed PL, a bitstream without its .hwh --------------------------------------------


def test_an_unprogrammed_emulated_pl_runs_no_frame(caplog):
    """pynq >= 3 builds an ``Overlay(download=False)`` over an empty PL and records it as
    loaded: its registers answer nothing, so no frame runs there (the driver's deadline
    turns the silence into a fault and the frame falls back). pynq 2.7 refuses the IPs of
    an overlay not loaded, and pynq_cv downloads the resizer itself."""
    with pynq_cv.emulate(loaded=False) as emu:
        overlay = pynq.Overlay(emu.bitstream, download=False)
        modern = _version(pynq) >= (3,)
        if modern:
            assert overlay.resize_accel_0.read(0x00) == 0, "nothing answers on the bus"
        else:
            with pytest.raises(RuntimeError, match="not currently loaded"):
                overlay.resize_accel_0  # noqa: B018
        image = frame(180, 320)
        with warnings.catch_warnings(), caplog.at_level(logging.INFO, "pynq_cv"):
            warnings.simplefilter("ignore", RuntimeWarning)
            with pynq_cv.Resizer("board", policy="pl") as rz:
                out = rz.resize(image, (160, 90))
                snapshot = rz.stats.snapshot()
        np.testing.assert_array_equal(out, resize_exact(image, 90, 160))  # PL's or fallback's
        if modern:
            assert snapshot["pl"] == 0 and snapshot["faults"]
            assert emu.board.frames == 0 and emu.device.downloads == 0
        else:
            assert snapshot["pl"] == 1 and emu.device.downloads == 1


def test_a_bitstream_without_its_hwh_fails_as_pynq_does_on_a_board(tmp_path):
    base = tmp_path / "base.bit"
    base.write_bytes(b"\0" * 64)
    with pynq_cv.emulate(), pytest.raises(RuntimeError, match="Unable to find metadata"):
        pynq.Overlay(str(base))


# -- a resizer the notebook left running ---------------------------------------------------------

NOTEBOOK_RUN_KERNEL = """
from pynq import Overlay, allocate
resize_design = Overlay(BITSTREAM)
dma = resize_design.axi_dma_0
resizer = resize_design.resize_accel_0
in_buffer = allocate(shape=IMAGE.shape, dtype=np.uint8, cacheable=1)
out_buffer = allocate(shape=(IMAGE.shape[0] // 2, IMAGE.shape[1] // 2, 3), dtype=np.uint8,
                      cacheable=1)
in_buffer[:] = IMAGE
resizer.write(0x10, IMAGE.shape[0])
resizer.write(0x18, IMAGE.shape[1])
resizer.write(0x20, IMAGE.shape[0] // 2)
resizer.write(0x28, IMAGE.shape[1] // 2)
def run_kernel():
    dma.sendchannel.transfer(in_buffer)
    dma.recvchannel.transfer(out_buffer)
    resizer.write(0x00, 0x81)
    dma.sendchannel.wait()
    dma.recvchannel.wait()
for _ in range(3):
    run_kernel()
"""


@pytest.mark.parametrize("board", ["Pynq-Z2", "KV260"])  # sizes read back on 2020, not 2021
@pytest.mark.parametrize("shape", [(360, 640), (361, 641)])  # 361x641x3: not whole beats
def test_after_the_notebooks_run_kernel_pynq_cv_takes_the_ip_over_and_runs_exact(
    board, shape, caplog
):
    notebook_image = frame(*shape, seed=5)
    half = (shape[0] // 2, shape[1] // 2)
    with pynq_cv.emulate(board=board) as emu:
        namespace = {"BITSTREAM": emu.bitstream, "IMAGE": notebook_image, "np": np}
        exec(NOTEBOOK_RUN_KERNEL, namespace)  # noqa: S102
        np.testing.assert_array_equal(np.asarray(namespace["out_buffer"]),
                                      resize_exact(notebook_image, *half))
        assert namespace["resizer"].read(0x00) & 0x80, "AUTO_RESTART left on"
        with caplog.at_level(logging.WARNING, "pynq_cv"):
            with pynq_cv.Resizer("board", policy="pl") as rz:
                for seed in range(3):
                    image = frame(200, 300, seed=seed)
                    np.testing.assert_array_equal(rz.resize(image, (150, 100)),
                                                  resize_exact(image, 100, 150))
                assert rz.stats.snapshot()["pl"] == 3 and not rz.stats.snapshot()["faults"]
        assert emu.device.downloads == 1, "no bitstream reload: the notebook's only"
        said = [r.getMessage() for r in caplog.records if "left running" in r.getMessage()]
        assert len(said) == 1
        assert "AUTO_RESTART left on by another program" in said[0]
        assert "wrote 0x00" in said[0] and "usable again" in said[0]
        if emu.board.descriptor.build == "2020":
            assert f"{shape[0]}x{shape[1]} -> {half[0]}x{half[1]}" in said[0]
        else:
            assert "size unknown" in said[0]
        assert not namespace["resizer"].read(0x00) & 0x80
