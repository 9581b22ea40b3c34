"""Logging: one DEBUG line per routing decision, INFO for backend and faults, silent by default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import pynq_cv
from pynq_cv import Resizer

LOGGER = "pynq_cv"


def messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_debug_names_shape_path_and_reason_of_each_frame(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    frame = np.zeros((48, 64, 3), np.uint8)
    with Resizer("emulator") as rz:
        rz.resize(frame, (32, 24))
        rz.resize(frame, (32, 24), interpolation=cv2.INTER_AREA)
        rz.resize(frame[:, :, 0], (32, 24))
        rz.resize(np.zeros((48, 64, 3), np.float32), (32, 24))
    debug = [m for m in messages(caplog, logging.DEBUG) if m.startswith("resize ")]
    assert len(debug) == 4, debug
    assert debug[0].startswith("resize 48x64x3 uint8 -> 24x32: PL, modelled board time ")
    assert debug[1] == ("resize 48x64x3 uint8 -> 24x32: CPU, interpolation (the interpolation "
                        "is not INTER_LINEAR, the only one the PL computes)")
    assert debug[2].startswith("resize 48x64 uint8 -> 24x32: CPU, channels (")
    assert debug[3].startswith("resize 48x64x3 float32 -> 24x32: CPU, dtype (")


def test_debug_covers_the_patched_cv2_resize_fast_path(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    pynq_cv.use_backend("emulator")
    with pynq_cv.patched():
        cv2.resize(np.zeros((8, 8), np.uint8), (4, 4))  # rejected before the engine is asked
    assert [m for m in messages(caplog, logging.DEBUG) if m.startswith("resize ")] == [
        "resize 8x8 uint8 -> 4x4: CPU, channels (the source is not a 3-channel (BGR) image)"
    ]


def test_info_names_each_fault_with_its_recovery(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.warns(RuntimeWarning), Resizer("emulator") as rz:
        rz.open()
        rz.engine.board.faults.dma_error("send", count=1)
        rz.resize(np.zeros((48, 64, 3), np.uint8), (32, 24))
    [info] = messages(caplog, logging.INFO)
    assert info.startswith("PL fault dma_error: ") and "recovery: dma_reset" in info
    assert messages(caplog, logging.DEBUG) == []  # INFO level: no per-frame lines


def test_a_fault_warning_turned_error_is_logged_with_the_name_once(caplog):
    """Under -W error the fault's warning goes to the log instead; the record, like every
    pynq_cv record, does not repeat the logger's name (``pynq_cv WARNING: pynq_cv: ...``)."""
    import warnings

    caplog.set_level(logging.WARNING, logger=LOGGER)
    src = np.zeros((48, 64, 3), np.uint8)
    with warnings.catch_warnings(), Resizer("emulator") as rz:
        warnings.simplefilter("error")
        rz.open()
        rz.engine.board.faults.dma_error("send", count=1)
        rz.resize(src, (32, 24))
    [warning] = messages(caplog, logging.WARNING)
    assert warning.startswith("dma_error: "), warning


def test_debug_names_the_backend_an_engine_opens(caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    with Resizer("emulator") as rz:
        rz.open()
    assert [m for m in messages(caplog, logging.DEBUG) if m.startswith("backend emulator: ")]


def test_without_debug_frames_never_take_the_watched_path(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    for name in ("PYNQ_CV_STRICT", "PYNQ_CV_COMPARE"):
        monkeypatch.delenv(name, raising=False)

    def watched(*args):
        raise AssertionError("the watched path ran while nothing was watching")

    monkeypatch.setattr(Resizer, "_resize_watched", watched)
    rz = pynq_cv.use_backend("emulator")
    frame = np.zeros((48, 64, 3), np.uint8)
    rz.resize(frame, (32, 24))
    pynq_cv.resize(frame[:, :, 0], (32, 24))
    pynq_cv.resize(frame, (32, 24), interpolation=cv2.INTER_AREA)
    assert pynq_cv.stats()["pl"] == 1 and pynq_cv.stats()["cpu"] == 2


SCRIPT = (
    "import numpy as np, pynq_cv\n"
    "pynq_cv.resize(np.zeros((48, 64, 3), np.uint8), (32, 24))\n"
    "pynq_cv.resize(np.zeros((48, 64), np.uint8), (32, 24))\n"
)


@pytest.mark.parametrize("level, lines", [(None, 1), ("info", 1), ("debug", 4)])
def test_nothing_is_printed_unless_pynq_cv_log_asks(level, lines):
    """Only the emulator's one-line notice (a WARNING), unless PYNQ_CV_LOG asks for more."""
    env = dict(os.environ, PYNQ_CV_BACKEND="emulator")
    env.pop("PYNQ_CV_LOG", None)
    if level:
        env["PYNQ_CV_LOG"] = level
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0 and done.stdout == ""
    err = done.stderr.splitlines()
    assert len(err) == lines, done.stderr
    notice = [line for line in err if "board emulator" in line]
    assert len(notice) == 1 and "PYNQ_CV_BACKEND=cpu" in notice[0]
    start = "pynq_cv: " if level is None else "pynq_cv WARNING: frames for the PL"
    assert notice[0].startswith(start)
    assert all(line.startswith("pynq_cv") for line in err)
    if level == "debug":  # (INFO: no fault, no recovery, the backend asked for: nothing)
        assert err[0].startswith("pynq_cv DEBUG: backend emulator: ")
        assert err[1].startswith("pynq_cv WARNING: frames for the PL run on pynq_cv's board")
        assert err[2].startswith("pynq_cv DEBUG: resize 48x64x3 uint8 -> 24x32: PL")
        assert err[3].startswith("pynq_cv DEBUG: resize 48x64 uint8 -> 24x32: CPU, channels")


def test_an_engine_notices_debug_switched_on_and_off_after_it_was_made(caplog, monkeypatch):
    for name in ("PYNQ_CV_STRICT", "PYNQ_CV_COMPARE"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.INFO, logger=LOGGER)
    caplog.handler.setLevel(logging.DEBUG)  # the logger's level decides, not the handler's
    root, root_level = logging.getLogger(), logging.getLogger().level
    frame = np.zeros((48, 64), np.uint8)
    try:
        with Resizer("emulator") as rz:
            assert rz.watching is None  # the plain path: no logging call per frame
            rz.resize(frame, (32, 24))
            root.setLevel(logging.DEBUG)
            logging.getLogger(LOGGER).setLevel(logging.NOTSET)  # ours follows the root's
            assert rz.watching is not None
            rz.resize(frame, (32, 24))
            logging.disable(logging.DEBUG)
            assert rz.watching is None
            rz.resize(frame, (32, 24))
            logging.disable(logging.NOTSET)
            assert rz.watching is not None
    finally:
        logging.disable(logging.NOTSET)
        root.setLevel(root_level)
    resized = [m for m in messages(caplog, logging.DEBUG) if m.startswith("resize ")]
    assert resized == ["resize 48x64 uint8 -> 24x32: CPU, channels (the source is not a "
                       "3-channel (BGR) image)"]


def test_level_changes_while_engines_are_made_never_break_logging():
    import threading

    import pynq_cv

    stop = threading.Event()
    errors = []

    def make():
        while not stop.is_set():
            try:
                pynq_cv.Resizer("emulator")
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    t = threading.Thread(target=make)
    t.start()
    try:
        other = logging.getLogger("pynq_cv.test_toggle")
        for i in range(300):
            other.setLevel(logging.DEBUG if i % 2 else logging.INFO)
    finally:
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive() and not errors


def test_a_bad_calibration_file_in_the_environment_is_logged_not_raised_under_w_error(
    monkeypatch, tmp_path, caplog
):
    """PYNQ_CV_CALIBRATION set outside the program to a file that is not a calibration:
    the published costs are used and the news goes to the log; under -W error the frame
    is still computed (on the PL), never a RuntimeWarning out of cv2.resize."""
    import warnings

    bad = tmp_path / "bad.json"
    bad.write_text('{"bad": 1}')
    monkeypatch.setenv("PYNQ_CV_CALIBRATION", str(bad))
    caplog.set_level(logging.WARNING, logger=LOGGER)
    src = np.zeros((48, 64, 3), np.uint8)
    with warnings.catch_warnings(), Resizer("emulator", policy="pl") as rz:
        warnings.simplefilter("error")
        assert rz.resize(src, (32, 24)).shape == (24, 32, 3)
        assert rz.stats.snapshot()["pl"] == 1
        assert "published defaults (PYNQ_CV_CALIBRATION" in rz.info()["costs_from"]
    [warning] = messages(caplog, logging.WARNING)
    assert warning.startswith("PYNQ_CV_CALIBRATION: ") and str(bad) in warning, warning
