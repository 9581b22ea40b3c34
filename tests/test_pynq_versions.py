"""What differs between pynq 2.7, 3.0, 3.1 and 4.0, where pynq_cv depends on it.

Runs everywhere: the pynq versions not installed are stood in for by small fakes that
reproduce just the behaviour in question, as read in each version's sources:

- ``Device.__init__`` starts a PL server thread on 2.7: the emulated device never calls it;
- ``pynq.lib.dma.DMA`` accepts only a plain ``dict`` on 2.7 and requires
  ``description['device']`` from 3.1 on: the emulated device's descriptions are both;
- ``PynqBuffer.freebuffer()`` hands a buffer's ``pointer`` back to its ``return_to`` on
  every version, but on 3.x/4.0 a buffer with ``memory`` and no pointer goes to a
  board-only ``munmap``: the emulated buffers take the first path and never the second;
- ``ip_dict`` parameters come in the ``.hwh``'s spelling (2.7) or lower- and upper-case
  (3.x, 4.0), as strings;
- off a board, ``Overlay`` warns once, then raises ``RuntimeError('No Devices Found')``.
"""

from __future__ import annotations

import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from pynq_cv import BackendUnavailable
from pynq_cv.backends import board as board_backend
from pynq_cv.backends.emulator import EmulatedBoard, pynq_device
from pynq_cv.descriptors import descriptor_for, loaded_length_width

VERSIONS = ("2.7", "3.0", "3.1", "4.0")


def test_importing_pynq_cv_and_the_adapter_does_not_import_pynq():
    code = (
        "import sys, pynq_cv, pynq_cv.backends.board, pynq_cv.backends.emulator.pynq_device;"
        "sys.exit('pynq' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- fakes of each version's Device, PynqBuffer and DMA ---------------------------------------


def fake_pynq(version: str) -> types.ModuleType:
    """A ``pynq`` package reduced to what the adapter touches, as ``version`` behaves."""
    board_only = []  # calls that only work on a board (munmap, xclFreeBO)

    class DeviceMeta(type):
        @property
        def active_device(cls):
            if "_active_device" not in Device.__dict__:
                raise RuntimeError("No Devices Found")
            return Device.__dict__["_active_device"]

        @active_device.setter
        def active_device(cls, value):
            type.__setattr__(Device, "_active_device", value)

    class Device(metaclass=DeviceMeta):
        def __init__(self, tag, *args, **kwargs):
            if version == "2.7":
                raise AssertionError("Device.__init__ starts a PL server thread on pynq 2.7")
            self.tag = tag

    class PynqBuffer(np.ndarray):
        def __new__(cls, *args, device=None, device_address=0, bo=0, coherent=False, **kw):
            self = super().__new__(cls, *args, **kw)
            self.device_address, self.coherent, self.bo = device_address, coherent, bo
            # pynq says ``self.device``: numpy 2 made that read-only, so no real PynqBuffer
            # can exist on numpy 2 -- the fake keeps it under another name to run anywhere.
            self.owner_device, self.offset, self.freed = device, 0, False
            return self

        def __array_finalize__(self, obj):
            if isinstance(obj, PynqBuffer) and obj.coherent is not None:
                offset = self.__array_interface__["data"][0] - obj.__array_interface__["data"][0]
                self.device_address = obj.device_address + offset
                self.offset, self.coherent = obj.offset + offset, obj.coherent
                self.owner_device, self.bo = obj.owner_device, obj.bo
            else:
                self.device_address = self.coherent = None

        def __del__(self):
            self.freebuffer()

        def freebuffer(self):
            if version == "2.7" or hasattr(self, "memory"):
                if getattr(self, "pointer", None):
                    if self.return_to:
                        self.return_to.return_pointer(self.pointer)
                    self.pointer = 0
                elif version != "2.7" and not self.freed:
                    self.freed = True
                    board_only.append("munmap")

        @property
        def physical_address(self):
            return self.device_address

        def flush(self):
            self.owner_device.flush(self.bo, self.offset, 0, self.nbytes)

        def invalidate(self):
            self.owner_device.invalidate(self.bo, self.offset, 0, self.nbytes)

    class DMA:
        def __init__(self, description):
            if version == "2.7" and type(description) is not dict:
                raise RuntimeError("You appear to want the old DMA driver")
            if version in ("3.1", "4.0") and "device" not in description:
                raise RuntimeError("Device not specified in description")
            params = description["parameters"]
            self.channels = [d for d in ("mm2s", "s2mm") if int(params.get(f"c_include_{d}", 0))]

    pynq = types.ModuleType("pynq")
    pynq.__version__ = {"2.7": "2.7.0", "3.0": "3.0.1", "3.1": "3.1.2", "4.0": "4.0.0"}[version]
    pynq.Device = Device
    pynq.buffer = types.ModuleType("pynq.buffer")
    pynq.buffer.PynqBuffer = PynqBuffer
    pynq.lib = types.ModuleType("pynq.lib")
    pynq.lib.dma = types.ModuleType("pynq.lib.dma")
    pynq.lib.dma.DMA = DMA
    pynq.board_only = board_only
    return pynq


@pytest.fixture(params=VERSIONS)
def old_pynq(request, monkeypatch):
    pynq = fake_pynq(request.param)
    for name, module in (
        ("pynq", pynq), ("pynq.buffer", pynq.buffer), ("pynq.lib", pynq.lib),
        ("pynq.lib.dma", pynq.lib.dma),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(pynq_device, "_device_class", None)  # rebuilt on this "pynq"
    yield pynq
    assert pynq.board_only == [], "an emulated buffer reached a board-only code path"


@pytest.fixture
def board():
    with EmulatedBoard() as emulated:
        yield emulated


def test_the_emulated_device_is_made_without_device_init(old_pynq, board):
    device = pynq_device.make_pynq_device(board)
    assert isinstance(device, old_pynq.Device)
    assert device.capabilities == {"MEMORY_MAPPED": True}


def test_descriptions_are_plain_dicts_with_the_device_for_every_version(old_pynq, board):
    device = pynq_device.make_pynq_device(board)
    for name in (board.descriptor.dma.name, board.descriptor.resizer.name):
        assert type(device.description(name)) is dict
        assert device.description(name)["device"] is device
    dma = old_pynq.lib.dma.DMA(device.description(board.descriptor.dma.name))
    assert dma.channels == ["mm2s", "s2mm"]


def test_freebuffer_gives_the_emulated_memory_back_on_every_version(old_pynq, board):
    device = pynq_device.make_pynq_device(board)
    before = board.memory.live_buffers
    buf = device.allocate((4, 4, 3), np.uint8)
    assert type(buf) is old_pynq.buffer.PynqBuffer
    assert board.memory.live_buffers == before + 1
    buf[1:].freebuffer()  # a view frees nothing
    assert board.memory.live_buffers == before + 1
    buf.freebuffer()
    assert board.memory.live_buffers == before
    buf.freebuffer()
    del buf  # __del__ frees again: must stay harmless
    kept = device.allocate((8,), np.uint8)
    del kept  # garbage collection alone frees too
    assert board.memory.live_buffers == before


def test_a_views_sync_covers_what_each_version_syncs(old_pynq, board):
    """xclSyncBO(offset, size) on 2.7/3.0; pyxrt's whole-buffer bo.sync() on 3.1+."""
    device = pynq_device.make_pynq_device(board)
    buf = device.allocate((64,), np.uint8, cacheable=1)
    board.memory.window(buf.physical_address, 64)[:] = 9
    buf[:] = 7
    buf[8:16].invalidate()
    whole = old_pynq.__version__ >= "3.1"
    assert device.invalidates_whole_buffer == whole
    assert (buf[8:16] == 9).all() and (buf[:8] == (9 if whole else 7)).all()


def test_the_context_sets_and_restores_the_default_device(old_pynq, board):
    with pynq_device.emulated_pynq_device(board) as device:
        assert old_pynq.Device.active_device is device
    with pytest.raises(RuntimeError, match="No Devices Found"):
        old_pynq.Device.active_device  # noqa: B018


# -- pynq_cv's own code across versions -------------------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        {"C_SG_LENGTH_WIDTH": "23"},  # the .hwh's own spelling (2.7)
        {"c_sg_length_width": "23", "C_SG_LENGTH_WIDTH": "23"},  # 3.x, 4.0
        {"c_sg_length_width": 23},
    ],
)
def test_dma_length_width_is_read_in_each_versions_spelling(parameters):
    desc = descriptor_for("Pynq-Z2")  # its descriptor says 26
    ip_dict = {desc.dma.name: {"parameters": parameters}}
    assert loaded_length_width(desc, ip_dict) == 23
    assert loaded_length_width(desc, {desc.dma.name: {"parameters": {}}}) == 26


@pytest.fixture
def bitstream(tmp_path, monkeypatch):
    path = tmp_path / "resizer.bit"
    path.write_bytes(b"")
    monkeypatch.setenv("PYNQ_CV_BITSTREAM", str(path))
    return path


@pytest.mark.parametrize("version", VERSIONS)
def test_board_backend_off_board_is_unavailable_quietly_on_every_version(
    version, bitstream, monkeypatch, capfd
):
    pynq = fake_pynq(version)
    calls = []

    def overlay(path, *args, **kwargs):
        calls.append(path)
        warnings.warn("No devices found, is the XRT environment sourced?", UserWarning, 2)
        raise RuntimeError("No Devices Found")

    pynq.Overlay = overlay
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(BackendUnavailable, match="No Devices Found"):
            board_backend.PynqBoard()
    assert calls == [str(bitstream)]
    assert caught == [] and capfd.readouterr().err == ""


def test_board_backend_without_pynq_says_so(monkeypatch, bitstream):
    monkeypatch.setitem(sys.modules, "pynq", None)  # import pynq -> ImportError
    with pytest.raises(BackendUnavailable, match="pynq is not importable"):
        board_backend.PynqBoard()
