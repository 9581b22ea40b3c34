"""Backend selection and the real board's sharing rules (with fakes: no board here)."""

from __future__ import annotations

import threading

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
            self.ip_lock = threading.Lock()

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
