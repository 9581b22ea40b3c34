"""Backend selection and the real board's sharing rules (with fakes: no board here)."""

from __future__ import annotations

import pytest

from pynq_cv.backends import board as board_backend
from pynq_cv.backends.select import open_board, requested_backend


def test_one_real_board_per_bitstream_is_shared_by_every_engine(monkeypatch, tmp_path):
    bit = tmp_path / "resizer.bit"
    bit.write_bytes(b"")
    opened = []

    class FakeBoard:
        name = "board"

        def __init__(self, **options):
            opened.append(options)

    monkeypatch.setattr(board_backend, "PynqBoard", FakeBoard)
    monkeypatch.setattr(board_backend, "_shared", {})
    a, name_a, _ = open_board("board", bitstream=str(bit))
    b, name_b, _ = open_board("board", bitstream=str(bit))
    assert a is b and name_a == name_b == "board"
    assert len(opened) == 1  # the bitstream is loaded once


def test_unknown_backend_names_the_choices(monkeypatch):
    monkeypatch.delenv("PYNQ_CV_BACKEND", raising=False)
    with pytest.raises(Exception, match="known:"):
        requested_backend("fpga")
    assert requested_backend(None) == "auto"
    monkeypatch.setenv("PYNQ_CV_BACKEND", "CPU")
    assert requested_backend(None) == "cpu"


class _EntryPoint:
    """What importlib.metadata gives for an installed package's entry point."""

    def __init__(self, name, target):
        self.name = name
        self._target = target

    def load(self):
        return self._target


def test_a_package_adds_a_backend_through_an_entry_point(monkeypatch):
    from pynq_cv.backends import select

    made = []

    def factory(**options):
        made.append(options)
        return "a board"

    def entry_points(group):
        return [_EntryPoint("mine", factory)] if group == select.BACKENDS_GROUP else []

    monkeypatch.setattr(select.metadata, "entry_points", entry_points)
    assert "mine" in select.available_backends()
    board, name, why = open_board("mine", option=1)
    assert (board, name, made) == ("a board", "mine", [{"option": 1}])


def test_a_package_adds_an_overlay_descriptor_through_an_entry_point(monkeypatch):
    from pynq_cv import descriptors

    shipped = descriptors.descriptor_for("KV260")
    mine = {
        "name": "my-resizer", "board": "MyBoard", "build": "2021",
        "ips": {
            "dma": {"name": "axi_dma_0", "base": "0xA0000000",
                    "parameters": shipped.dma.parameters},
            "resizer": {"name": "resize_accel_0", "base": "0xA0010000"},
        },
        "envelope": shipped.envelope,
    }

    def entry_points(group):
        return [_EntryPoint("mine", mine)] if group == descriptors.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(descriptors.metadata, "entry_points", entry_points)
    desc = descriptors.descriptor_for("myboard")
    assert desc.name == "my-resizer" and desc.dma_length_width == 26


def test_board_images_do_not_pull_opencv_from_the_registry():
    """PYNQ images (armv7l and aarch64) ship cv2; pip must not pull opencv-python there (a
    build on armv7l, a wheel on aarch64 that shadows the image's cv2 and brings numpy 2)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    line = next(x for x in text.splitlines() if x.strip().startswith('"opencv-python'))
    assert "platform_machine != 'armv7l'" in line
    assert "platform_machine != 'aarch64'" in line


def test_a_second_bitstream_is_refused_rather_than_reprogramming_the_pl(monkeypatch, tmp_path):
    first, second = tmp_path / "a.bit", tmp_path / "b.bit"
    first.write_bytes(b"")
    second.write_bytes(b"")

    class FakeBoard:
        name = "board"

        def __init__(self, **options):
            pass

    monkeypatch.setattr(board_backend, "PynqBoard", FakeBoard)
    monkeypatch.setattr(board_backend, "_shared", {})
    open_board("board", bitstream=str(first))
    with pytest.raises(Exception, match="already loaded"):
        open_board("board", bitstream=str(second))


def test_entry_point_backend_names_are_case_insensitive(monkeypatch):
    from pynq_cv.backends import select

    def entry_points(group):
        mine = _EntryPoint("Mine", lambda **options: "a board")
        return [mine] if group == select.BACKENDS_GROUP else []

    monkeypatch.setattr(select.metadata, "entry_points", entry_points)
    assert open_board("MINE")[:2] == ("a board", "mine")
    monkeypatch.setenv("PYNQ_CV_BACKEND", "mInE")
    assert requested_backend(None) == "mine"


def test_board_only_options_never_reach_the_emulator_and_overlays_need_the_board():
    board, name, _ = open_board("emulator", reprogram=True, dma_name="x", resizer_name="y")
    board.close()
    assert name == "emulator"
    with pytest.raises(Exception, match="board backend"):
        open_board("emulator", overlay=object())


def test_a_pl_without_pynq_means_the_cpu_with_one_logged_warning(monkeypatch, tmp_path, caplog):
    """A board's Linux (fpga_manager) and a Python outside the PYNQ venv: never the emulator."""
    import logging

    import numpy as np

    import pynq_cv
    from pynq_cv.backends import select
    from pynq_cv.errors import BackendUnavailable

    manager = tmp_path / "fpga0"
    manager.mkdir()
    monkeypatch.setattr(board_backend, "FPGA_MANAGER", manager)

    def no_pynq():
        raise BackendUnavailable("pynq is not importable (No module named 'pynq')")

    monkeypatch.setattr(board_backend, "_import_pynq", no_pynq)
    monkeypatch.setattr(select, "_pynq_missing_warned", False)
    monkeypatch.delenv("PYNQ_CV_BACKEND", raising=False)
    with caplog.at_level(logging.WARNING, "pynq_cv"):
        for _ in range(2):
            board, name, why = open_board()
            assert board is None and name == "cpu" and "pynq" in why
        image = np.zeros((180, 320, 3), np.uint8)
        with pynq_cv.Resizer(policy="pl") as rz:
            rz.resize(image, (160, 90))
            assert rz.backend == "cpu" and rz.stats.snapshot()["pl"] == 0
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "has a PL" in warned[0].getMessage()
    monkeypatch.setattr(board_backend, "FPGA_MANAGER", tmp_path / "absent")
    assert open_board()[1] == "emulator", "no PL, no pynq: the emulator, as before"


def test_a_board_whose_engine_cannot_be_built_is_closed(monkeypatch):
    """The board (on a real one: the PL lock, the overlay) is let go when the engine built
    on it fails: the PL stays free for other processes, frames run cv2 with the reason."""
    import numpy as np

    import pynq_cv
    from pynq_cv import resizer as resizer_mod
    from pynq_cv.backends.emulator import EmulatedBoard

    closed = []
    real_close = EmulatedBoard.close

    def counted_close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(EmulatedBoard, "close", counted_close)

    def broken(*args, **kwargs):
        raise ValueError("descriptor and loaded overlay disagree")

    monkeypatch.setattr(resizer_mod, "Engine", broken)
    rz = pynq_cv.Resizer("emulator")
    src = np.zeros((48, 64, 3), np.uint8)
    with pytest.warns(RuntimeWarning, match="PL unavailable: descriptor and loaded"):
        assert rz.resize(src, (32, 24)).shape == (24, 32, 3)
    assert rz.off_reason == "no_backend" and rz.engine is None
    assert len(closed) == 1
    rz.close()
    assert len(closed) == 1


def test_a_bad_descriptor_entry_point_under_w_error_is_logged_once_with_the_name_once(
    monkeypatch, caplog
):
    import logging
    import warnings

    from pynq_cv import descriptors

    def entry_points(group):
        broken = [_EntryPoint("broken", {"name": "x"})]
        return broken if group == descriptors.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(descriptors.metadata, "entry_points", entry_points)
    monkeypatch.setattr(descriptors, "_skipped", set())
    caplog.set_level(logging.WARNING, logger="pynq_cv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert descriptors.descriptor_for("KV260").board == "KV260"
    said = [r.getMessage() for r in caplog.records if r.name == "pynq_cv"]
    assert len(said) == 1 and said[0].startswith("overlay descriptor entry point 'broken'"), said
