"""The shared engine (``pynq_cv.resize``, the patched ``cv2.resize``): replaced and closed
without holding its lock while a Resizer is built, and never left open by a failure."""

from __future__ import annotations

import pytest
from conftest import frame

import pynq_cv
from pynq_cv import dispatch


def test_close_default_closes_the_old_engine_even_when_a_new_one_cannot_be_built(monkeypatch):
    pynq_cv.use_backend("emulator")
    pynq_cv.resize(frame(48, 64), (32, 24))
    old = dispatch.peek_default()
    assert old is not None and old.engine is not None

    def refuse(*args, **kwargs):
        raise pynq_cv.SettingError("no new engine today")

    monkeypatch.setattr(dispatch, "Resizer", refuse)
    with pytest.raises(pynq_cv.SettingError, match="no new engine today"):
        dispatch.close_default()
    assert old.engine is None and old.off_reason == "closed"
    assert dispatch.peek_default() is None  # the next frame makes a fresh one
    monkeypatch.undo()
    assert pynq_cv.resize(frame(48, 64), (32, 24)).shape == (24, 32, 3)


def test_a_resizer_being_built_may_ask_for_the_shared_engine(monkeypatch):
    """Building the shared Resizer runs settings and entry-point code; that code asking
    for the shared engine (here: use_backend from inside a Resizer's construction) must
    not wait on a lock its own caller holds."""
    real = dispatch.Resizer
    asked = []

    class Asking(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if not asked:
                asked.append(True)
                dispatch.close_default()  # takes the shared lock

    monkeypatch.setattr(dispatch, "Resizer", Asking)
    dispatch._default = None
    assert isinstance(dispatch.default_resizer(), real)
    assert isinstance(pynq_cv.use_backend("emulator"), real)
