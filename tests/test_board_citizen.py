"""A good citizen on a real PYNQ board (issue 13), with a stand-in ``pynq`` and emulated IPs.

The stand-in reports what the PL holds (``PL.bitfile_name``), records every ``Overlay`` built
and every download, and its overlays' DMA and resizer are an ``EmulatedBoard``'s, so frames
that reach "the PL" are checked against the IP's exact arithmetic and frames that must not
are checked against ``cv2.resize``.
"""

from __future__ import annotations

import logging
import os
import select as io_select
import signal
import subprocess
import sys
import textwrap
import threading
import types
import uuid
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import frame, real_pynq

import pynq_cv
from pynq_cv import BackendUnavailable
from pynq_cv.backends import board as board_backend
from pynq_cv.backends import select
from pynq_cv.backends.emulator import EmulatedBoard
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.pl_lock import PLInUse, PLLock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


# -- the stand-in pynq -----------------------------------------------------------------------


def stand_in_pynq(emulated: EmulatedBoard, loaded: str | None) -> types.ModuleType:
    """``pynq`` as a board shows it, reduced to what pynq_cv touches."""
    pynq = types.ModuleType("pynq")
    pynq.__version__ = "3.1.2"
    pynq.PL = types.SimpleNamespace(bitfile_name=loaded)
    pynq.Device = types.SimpleNamespace(devices=[])
    pynq.built = []  # (path, download) per Overlay()
    pynq.downloads = []

    class Overlay:
        def __init__(self, bitfile_name, dtbo=None, download=True, ignore_version=False,
                     device=None):
            self.bitfile_name = str(Path(bitfile_name).resolve())
            pynq.built.append((str(bitfile_name), download))
            pynq.PL.bitfile_name = self.bitfile_name  # pynq >= 3 does so even without download
            self.ip_dict = emulated.overlay.ip_dict
            if download:
                self.download()

        def download(self):
            pynq.downloads.append(self.bitfile_name)
            emulated.overlay.download()  # resets the PL, as a bitstream load does
            dma = getattr(emulated.overlay, emulated.descriptor.dma.name)
            dma.sendchannel.start()  # what pynq's DMA driver does when it is (re)built
            dma.recvchannel.start()

        def __getattr__(self, name):
            return getattr(emulated.overlay, name)

    pynq.Overlay = Overlay
    pynq.allocate = lambda shape, dtype="u4", **_: emulated.allocate(shape, dtype)
    return pynq


@pytest.fixture(autouse=True)
def _clean(monkeypatch, tmp_path):
    """Locks in this test's own directory; no shared board, notice or env left over."""
    monkeypatch.setenv("PYNQ_CV_LOCK_DIR", str(tmp_path / "locks"))
    for var in ("PYNQ_CV_BACKEND", "PYNQ_CV_BITSTREAM", "PYNQ_CV_REPROGRAM", "PYNQ_CV_BOARD",
                "BOARD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(board_backend, "_shared", {})
    monkeypatch.setattr(board_backend, "_users", {})
    monkeypatch.setattr(board_backend, "_downloaded_here", set())
    monkeypatch.setattr(board_backend, "FPGA_MANAGER", tmp_path / "no-fpga-manager")
    monkeypatch.setattr(select, "_emulator_noticed", False)
    # no pynq-helloworld: the bitstream is only ever the one a test configures
    real_find_spec = board_backend.importlib.util.find_spec
    monkeypatch.setattr(
        board_backend.importlib.util, "find_spec",
        lambda name, *a: None if name == "pynq_helloworld" else real_find_spec(name, *a),
    )


@pytest.fixture
def emulated():
    with EmulatedBoard() as board:
        yield board


@pytest.fixture
def resizer_bit(tmp_path, monkeypatch):
    path = tmp_path / "overlays" / "resizer.bit"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"the resizer design")
    monkeypatch.setenv("PYNQ_CV_BITSTREAM", str(path))
    return path


@pytest.fixture
def base_bit(tmp_path):
    path = tmp_path / "overlays" / "base.bit"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"the base design")
    return path


@pytest.fixture
def on_board(tmp_path, monkeypatch):
    """The machine has a PL (Linux's fpga_manager is there)."""
    manager = tmp_path / "fpga0"
    manager.mkdir()
    monkeypatch.setattr(board_backend, "FPGA_MANAGER", manager)


def install(monkeypatch, pynq: types.ModuleType) -> types.ModuleType:
    monkeypatch.setitem(sys.modules, "pynq", pynq)
    return pynq


def caught_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught]


# -- 1. look before loading ------------------------------------------------------------------


def test_a_pl_holding_another_design_is_never_downloaded_over(
    monkeypatch, emulated, resizer_bit, base_bit, on_board
):
    pynq = install(monkeypatch, stand_in_pynq(emulated, str(base_bit)))
    image = frame(48, 64)
    with pynq_cv.Resizer() as rz:
        (first, second), caught = caught_warnings(
            lambda: (rz.resize(image, (32, 24)), rz.resize(image, (32, 24)))
        )
        info = rz.info()
        stats = rz.stats.snapshot()
    np.testing.assert_array_equal(first, cv2.resize(image, (32, 24)))
    np.testing.assert_array_equal(second, cv2.resize(image, (32, 24)))
    assert pynq.built == [] and pynq.downloads == [], "no Overlay is even built over base.bit"
    assert pynq.PL.bitfile_name == str(base_bit)
    assert stats["fallback"] == {"pl_holds_other_overlay": 2} and stats["pl"] == 0
    assert stats["faults"] == {} and stats["backend"] == "cpu"
    assert len(caught) == 1, caught
    assert str(base_bit) in caught[0] and str(resizer_bit) in caught[0]
    assert info["backend"] == "cpu" and info["pl_holds"] == str(base_bit)
    assert emulated.frames == 0


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_reprogram_replaces_the_other_design_when_asked(
    monkeypatch, emulated, resizer_bit, base_bit, on_board, how
):
    pynq = install(monkeypatch, stand_in_pynq(emulated, str(base_bit)))
    options = {"reprogram": True} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv("PYNQ_CV_REPROGRAM", "1")
    image = frame(48, 64, seed=1)
    with pynq_cv.Resizer("BOARD", **options) as rz:
        out = rz.resize(image, (32, 24))
        assert rz.stats.snapshot()["pl"] == 1
    np.testing.assert_array_equal(out, resize_exact(image, 24, 32))
    assert pynq.built == [(str(resizer_bit), True)]
    assert pynq.downloads == [str(resizer_bit.resolve())]


@pytest.mark.parametrize("copy", [False, True])
def test_the_resizer_already_on_the_pl_is_attached_without_a_download(
    monkeypatch, emulated, resizer_bit, on_board, tmp_path, copy
):
    loaded = resizer_bit
    if copy:  # a byte-identical copy elsewhere is the same design
        loaded = tmp_path / "elsewhere.bit"
        loaded.write_bytes(resizer_bit.read_bytes())
    pynq = install(monkeypatch, stand_in_pynq(emulated, str(loaded)))
    image = frame(48, 64, seed=2)
    with pynq_cv.Resizer() as rz:
        out = rz.resize(image, (32, 24))
        assert rz.backend == "board" and "attached without downloading" in rz.info()[
            "bitstream_origin"]
        assert rz.engine.board.reset_pl() is False, "recovery never downloads another's load"
    np.testing.assert_array_equal(out, resize_exact(image, 24, 32))
    assert pynq.built == [(str(resizer_bit), False)] and pynq.downloads == []


def test_nothing_known_on_the_pl_downloads_and_only_then_may_recovery_reload(
    monkeypatch, emulated, resizer_bit, on_board
):
    pynq = install(monkeypatch, stand_in_pynq(emulated, None))
    board = board_backend.PynqBoard()
    try:
        assert pynq.built == [(str(resizer_bit), True)] and board.downloaded
        assert board.reset_pl() is True
        assert pynq.downloads == [str(resizer_bit.resolve())] * 2
    finally:
        board.close()
    again = board_backend.PynqBoard()  # the PL now reports the resizer: attached
    try:
        assert pynq.built[-1] == (str(resizer_bit), False)
        assert again.reset_pl() is True, "this process loaded it, so it may reload it"
    finally:
        again.close()


def test_a_pl_pynq_cannot_read_on_a_board_is_not_programmed_blind(
    monkeypatch, emulated, resizer_bit, on_board
):
    class Unreadable:
        @property
        def bitfile_name(self):
            raise RuntimeError("global state file is corrupt")

        @bitfile_name.setter
        def bitfile_name(self, value):
            pass  # a download records itself, but reading stays broken

    pynq = stand_in_pynq(emulated, None)
    pynq.PL = Unreadable()
    install(monkeypatch, pynq)
    with pytest.raises(BackendUnavailable, match="corrupt") as refused:
        board_backend.PynqBoard()
    assert refused.value.reason == "pl_state_unknown" and pynq.built == []
    board_backend.PynqBoard(reprogram=True).close()  # asked to: it loads
    assert pynq.downloads == [str(resizer_bit.resolve())]


# -- 2. the user's own overlay ---------------------------------------------------------------


def test_a_given_overlay_is_used_and_never_downloaded(monkeypatch, emulated, resizer_bit, on_board):
    pynq = install(monkeypatch, stand_in_pynq(emulated, None))
    ol = pynq.Overlay(str(resizer_bit))  # the user's own load
    assert len(pynq.downloads) == 1
    image = frame(40, 40, seed=3)
    monkeypatch.setenv("PYNQ_CV_BACKEND", "emulator")  # overlay= means the board regardless
    for make in (lambda: pynq_cv.Resizer(overlay=ol),
                 lambda: pynq_cv.use_backend("board", overlay=ol)):
        rz = make()
        out = rz.resize(image, (20, 20))
        assert rz.engine.board.overlay is ol and rz.engine.board.reset_pl() is False
        np.testing.assert_array_equal(out, resize_exact(image, 20, 20))
        rz.close()
    assert len(pynq.downloads) == 1 and len(pynq.built) == 1


def test_a_given_overlay_with_its_own_ip_names(monkeypatch, emulated, on_board):
    pynq = install(monkeypatch, stand_in_pynq(emulated, None))
    desc = emulated.descriptor
    ip_dict = {"my_dma": emulated.overlay.ip_dict[desc.dma.name],
               "my_resizer": emulated.overlay.ip_dict[desc.resizer.name]}
    ol = types.SimpleNamespace(ip_dict=ip_dict, my_dma=getattr(emulated.overlay, desc.dma.name),
                               my_resizer=getattr(emulated.overlay, desc.resizer.name))
    image = frame(30, 40, seed=4)
    with pynq_cv.Resizer(overlay=ol, dma_name="my_dma", resizer_name="my_resizer") as rz:
        np.testing.assert_array_equal(rz.resize(image, (20, 15)), resize_exact(image, 15, 20))
    assert pynq.downloads == []
    with pytest.warns(RuntimeWarning, match="'axi_dma_0' is not in the overlay"):
        with pytest.raises(BackendUnavailable, match="not in the overlay"):
            pynq_cv.Resizer(overlay=ol).open()  # the descriptor's names are not in it


def test_a_given_overlay_needs_the_board_backend():
    with pytest.raises(BackendUnavailable, match="board backend"):
        pynq_cv.Resizer("emulator", overlay=object())


# -- 3. never emulate on a board -------------------------------------------------------------


@pytest.mark.parametrize("probe", ["fpga_manager", "pynq_devices"])
def test_on_a_board_without_a_bitstream_auto_runs_cv2_never_the_emulator(
    monkeypatch, emulated, tmp_path, probe
):
    pynq = install(monkeypatch, stand_in_pynq(emulated, None))
    if probe == "fpga_manager":
        (tmp_path / "fpga0").mkdir()
        monkeypatch.setattr(board_backend, "FPGA_MANAGER", tmp_path / "fpga0")
    else:
        pynq.Device.devices = ["a PL"]
    made = []
    monkeypatch.setattr(EmulatedBoard, "__init__", lambda self, **o: made.append(o))
    image = frame(48, 64, seed=5)
    with pynq_cv.Resizer() as rz:
        out, caught = caught_warnings(lambda: rz.resize(image, (32, 24)))
        info, stats = rz.info(), rz.stats.snapshot()
    np.testing.assert_array_equal(out, cv2.resize(image, (32, 24)))
    assert made == [], "no emulator is made on a board"
    assert stats["pl"] == 0 and stats["emulated"] == 0 and stats["backend"] == "cpu"
    assert stats["fallback"] == {"no_backend": 1}
    assert len(caught) == 1 and "no bitstream" in caught[0]
    assert info["backend"] == "cpu" and "no bitstream" in info["why"]
    assert "never used on a board" in info["why"]


def test_off_board_auto_uses_the_emulator_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "pynq", None)  # no pynq: not a board
    image = frame(48, 64, seed=6)
    with caplog.at_level(logging.INFO, logger="pynq_cv"):
        for _ in range(2):
            with pynq_cv.Resizer() as rz:
                out, caught = caught_warnings(lambda: rz.resize(image, (32, 24)))
                stats = rz.stats.snapshot()
            assert caught == []
            np.testing.assert_array_equal(out, resize_exact(image, 24, 32))
            assert stats["backend"] == "emulator" and stats["emulated"] == stats["pl"] == 1
    # (the first emulated frame of the process may add its WARNING: test_report.py's)
    notices = [r for r in caplog.records if r.name == "pynq_cv" and r.levelno < logging.WARNING]
    assert len(notices) == 1 and notices[0].levelno == logging.INFO
    assert "PYNQ_CV_BACKEND=cpu" in notices[0].getMessage()
    assert "emulator" in notices[0].getMessage()


def test_a_real_board_off_a_board_takes_no_lock(monkeypatch, emulated, resizer_bit, tmp_path):
    install(monkeypatch, stand_in_pynq(emulated, None))
    board = board_backend.PynqBoard()
    board.close()
    assert not (tmp_path / "locks").exists() or not any((tmp_path / "locks").iterdir())


# -- 4. unknown backend names are errors -----------------------------------------------------


def test_misspelled_backends_raise_at_the_callers_line(monkeypatch):
    original = cv2.resize
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an error, not a warning
        with pytest.raises(BackendUnavailable, match=r"'emulatr'.*known:.*did you mean 'emulator'"):
            pynq_cv.use_backend("emulatr")
        with pytest.raises(BackendUnavailable, match="known:"):
            pynq_cv.Resizer("emulatr")
        monkeypatch.setenv("PYNQ_CV_BACKEND", "emulatr")
        with pytest.raises(BackendUnavailable, match="PYNQ_CV_BACKEND"):
            pynq_cv.patch()
    assert cv2.resize is original, "a failed patch() leaves cv2 alone"


def test_backend_names_are_case_insensitive(monkeypatch):
    with pynq_cv.Resizer("Emulator") as rz:
        rz.resize(frame(8, 8), (4, 4))
        assert rz.backend == "emulator" and rz.stats.snapshot()["pl"] == 1
    monkeypatch.setenv("PYNQ_CV_BACKEND", " CPU ")
    pynq_cv.patch()
    cv2.resize(frame(8, 8), (4, 4))
    assert pynq_cv.stats()["fallback"] == {"backend_cpu": 1}


def test_video_loop_with_an_unknown_backend_exits_with_one_line():
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "video_loop.py"), "--backend", "foo"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "unknown pynq_cv backend 'foo'" in done.stderr
    assert "Traceback" not in done.stderr


# -- 5. one process per PL -------------------------------------------------------------------


def test_an_emulated_pl_is_opened_by_one_owner_at_a_time():
    device = uuid.uuid4().hex
    first = EmulatedBoard(device_id=device)
    with pytest.raises(PLInUse) as refused:
        EmulatedBoard(device_id=device)
    assert refused.value.holder == os.getpid() and refused.value.reason == "pl_in_use"
    with EmulatedBoard(device_id=uuid.uuid4().hex), EmulatedBoard():  # other PLs are free
        pass
    first.close()
    first.close()  # released exactly once
    EmulatedBoard(device_id=device).close()


def test_a_taken_pl_sends_frames_to_cv2_naming_the_holder():
    device = uuid.uuid4().hex
    image = frame(48, 64, seed=7)
    with EmulatedBoard(device_id=device):
        with pynq_cv.Resizer("emulator", device_id=device) as rz:
            with warnings.catch_warnings(record=True) as records:
                warnings.simplefilter("always")
                out = rz.resize(image, (32, 24))  # the warning points at this line
            caught = [str(w.message) for w in records]
            assert [w.filename for w in records] == [__file__]
            info, stats = rz.info(), rz.stats.snapshot()
            with pytest.raises(BackendUnavailable, match="in use by process"):
                rz.open()
    np.testing.assert_array_equal(out, cv2.resize(image, (32, 24)))
    assert stats["fallback"] == {"pl_in_use": 1} and stats["faults"] == {}
    assert info["pl_holder"] == os.getpid() and f"process {os.getpid()}" in info["why"]
    assert len(caught) == 1 and "pl_in_use" in caught[0]


def test_wait_for_pl_waits_for_the_holder_to_let_go():
    device = uuid.uuid4().hex
    holder = EmulatedBoard(device_id=device)
    timer = threading.Timer(0.2, holder.close)
    timer.start()
    try:
        with pynq_cv.Resizer("emulator", device_id=device, wait_for_pl=30) as rz:
            image = frame(48, 64, seed=8)
            np.testing.assert_array_equal(rz.resize(image, (32, 24)), resize_exact(image, 24, 32))
    finally:
        timer.cancel()
        holder.close()
    with pytest.raises(ValueError, match="wait_for_pl"):
        pynq_cv.Resizer("emulator", wait_for_pl=-1)
    with pytest.raises(ValueError, match="wait_for_pl"):
        PLLock("x").acquire(float("nan"))


def test_a_real_board_holds_the_pl_lock_until_its_last_engine_closes(
    monkeypatch, emulated, resizer_bit, on_board
):
    install(monkeypatch, stand_in_pynq(emulated, str(resizer_bit)))
    a, b = pynq_cv.Resizer("board"), pynq_cv.Resizer("board")
    a.open()
    b.open()
    assert a.engine.board is b.engine.board  # one board per process
    lock = PLLock(board_backend.PL_LOCK_KEY)
    with pytest.raises(PLInUse):
        lock.acquire()
    a.close()
    with pytest.raises(PLInUse):
        lock.acquire()  # b still uses it
    b.close()
    lock.acquire().release()


HOLDER = textwrap.dedent("""
    import sys
    import numpy as np
    import pynq_cv
    rz = pynq_cv.Resizer("emulator", device_id=sys.argv[1], policy="pl")
    rz.resize(np.zeros((8, 8, 3), np.uint8), (4, 4))
    print(rz.stats.snapshot()["pl"], flush=True)
    sys.stdin.read()  # hold the PL until killed
""")


def test_a_second_process_gets_cv2_and_a_killed_holder_frees_the_pl(tmp_path):
    device = uuid.uuid4().hex
    env = dict(os.environ, PYNQ_CV_LOCK_DIR=str(tmp_path / "locks"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, device], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env,
    )
    try:
        ready = []
        reader = threading.Thread(target=lambda: ready.append(holder.stdout.readline()))
        reader.start()
        reader.join(timeout=60)
        assert ready == ["1\n"], "the holder ran its frame on the PL"
        image = frame(48, 64, seed=9)
        with pynq_cv.Resizer("emulator", device_id=device) as rz:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                np.testing.assert_array_equal(rz.resize(image, (32, 24)),
                                              cv2.resize(image, (32, 24)))
            assert rz.stats.snapshot()["fallback"] == {"pl_in_use": 1}
            assert rz.info()["pl_holder"] == holder.pid
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
        holder.stdin.close()
        holder.stdout.close()
    with pynq_cv.Resizer("emulator", device_id=device) as rz:
        np.testing.assert_array_equal(rz.resize(image, (32, 24)), resize_exact(image, 24, 32))
        assert rz.stats.snapshot()["pl"] == 1


def test_a_forked_child_never_drives_its_parents_pl():
    device = uuid.uuid4().hex
    image = frame(48, 64, seed=10)
    with pynq_cv.Resizer("emulator", device_id=device) as rz:
        rz.resize(image, (32, 24))
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads alive
            pid = os.fork()
        if pid == 0:  # the child: report, then leave without running any cleanup
            verdict = b"bad"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = rz.resize(image, (32, 24))
                    with pynq_cv.Resizer("emulator", device_id=device) as fresh:
                        fresh.resize(image, (32, 24))
                        fresh_fallback = fresh.stats.snapshot()["fallback"]
                if (np.array_equal(out, cv2.resize(image, (32, 24)))
                        and rz.stats.snapshot()["fallback"] == {"pl_in_use": 1}
                        and rz.info()["pl_holder"] == os.getppid()
                        and fresh_fallback == {"pl_in_use": 1}):
                    verdict = b"ok"
            finally:
                os.write(write_end, verdict)
                os._exit(0)
        os.close(write_end)
        try:
            ready, _, _ = io_select.select([read_end], [], [], 60)
            verdict = os.read(read_end, 16) if ready else b"no answer in 60 s"
        finally:
            os.close(read_end)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert verdict == b"ok"
        np.testing.assert_array_equal(rz.resize(image, (32, 24)), resize_exact(image, 24, 32))
        assert rz.stats.snapshot()["pl"] == 2, "the parent keeps its PL"


def test_the_lock_file_names_its_holder_only_while_held():
    from pynq_cv.pl_lock import holder_of

    lock = PLLock(f"emulated/{uuid.uuid4().hex}")  # any key: made safe for a file name
    assert lock.path.name.startswith("emulated_") and lock.path.parent.is_dir()
    lock.acquire()
    assert lock.held and holder_of(lock.path) == os.getpid()
    lock.acquire()  # taking it again while held is a no-op, not a deadlock
    lock.release()
    lock.release()
    assert not lock.held and holder_of(lock.path) is None


def test_real_pynqs_record_of_the_pl_is_what_is_read(monkeypatch, base_bit, resizer_bit, on_board):
    """With the installed pynq (CI's second environment): ``pynq.PL.bitfile_name`` comes
    from the active device, and a PL it says holds base.bit gets no Overlay at all."""
    pynq = real_pynq()
    from pynq_cv.backends.emulator.pynq_device import emulated_pynq_device

    built = []
    monkeypatch.setattr(pynq, "Overlay", lambda *args, **kwargs: built.append(args))
    with EmulatedBoard() as emulated, emulated_pynq_device(emulated) as device:
        assert board_backend.loaded_bitstream(pynq) is None  # nothing known
        monkeypatch.setattr(device, "bitfile_name", str(base_bit), raising=False)
        assert board_backend.loaded_bitstream(pynq) == str(base_bit)
        with pytest.raises(BackendUnavailable) as refused:
            board_backend.PynqBoard()
    assert refused.value.reason == "pl_holds_other_overlay" and built == []
    assert str(base_bit) in str(refused.value) and str(resizer_bit) in str(refused.value)
