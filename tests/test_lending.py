"""Lent buffers are tracked by identity: each is given back once, by the engine that lent
it; after close() a given-back buffer is freed."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact


def test_a_second_give_back_raises_and_never_takes_a_frames_buffer(emulated):
    lent = emulated.lend((40, 60, 3))
    emulated.give_back(lent)
    src = frame(40, 60, seed=3)
    handle = emulated.submit(src, (30, 20))  # its input buffer may be the one given back
    with pytest.raises(ValueError, match="not lent"):
        emulated.give_back(lent)
    np.testing.assert_array_equal(handle.result(), resize_exact(src, 20, 30))
    assert emulated.engine.pool.stats()["in_use"] == 0


def test_give_back_of_a_foreign_array_or_a_view_names_the_problem(emulated):
    lent = emulated.lend((40, 60, 3))
    with pytest.raises(ValueError, match="did not lend"):
        emulated.give_back(np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="view"):
        emulated.give_back(lent[1:])
    other = pynq_cv.Resizer("emulator")
    with pytest.raises(ValueError, match="did not lend"):
        other.give_back(lent)
    emulated.give_back(lent)
    assert emulated.engine.pool.stats()["lent"] == 0


def test_give_back_after_close_from_another_thread_frees_the_buffer():
    rz = pynq_cv.Resizer("emulator")
    lent = rz.lend((40, 60, 3))
    memory = rz.engine.board.memory
    lent[:] = 7
    closer = threading.Thread(target=rz.close)
    closer.start()
    closer.join(10)
    rz.give_back(lent)  # documented: freed, no error
    assert memory.live_buffers == 0
    with pytest.raises(ValueError, match="give_back of"):
        rz.give_back(lent)


def test_give_back_while_close_lets_go_of_the_engine_frees_the_buffer(monkeypatch):
    """close() on another thread sets ``engine`` to None between give_back's check and its
    use: the buffer is still freed (by the closed pool), never an AttributeError."""
    rz = pynq_cv.Resizer("emulator")
    lent = rz.lend((40, 60, 3))
    memory = rz.engine.board.memory
    rz.close()
    # the first read of ``engine`` sees it, later ones that it is gone
    reads = iter([SimpleNamespace(pool=rz._closed_pool)])

    class Closing(pynq_cv.Resizer):
        engine = property(lambda self: next(reads, None), lambda self, value: None)

    monkeypatch.setattr(rz, "__class__", Closing)
    rz.give_back(lent)
    assert memory.live_buffers == 0


def test_a_lent_buffer_goes_to_the_pl_without_copies_and_back_once(emulated):
    src, dst = emulated.lend((48, 64, 3)), emulated.lend((24, 32, 3), role="output")
    src[:] = frame(48, 64, seed=9)
    out = emulated.resize(src, (32, 24), dst)
    assert out is dst
    np.testing.assert_array_equal(dst, resize_exact(np.asarray(src), 24, 32))
    emulated.give_back(src)
    emulated.give_back(dst)
    assert emulated.engine.pool.stats()["lent"] == 0


def test_a_lend_settles_the_frame_this_thread_submitted_when_it_holds_the_budget():
    """Only a call into the engine settles a submitted frame: a lend that waited for it
    would wait in vain. Its result stays its owner's."""
    img = frame(120, 160, seed=3)
    budget = 120 * 160 * 3 + 60 * 80 * 3  # the submitted frame's two buffers fill it
    with pynq_cv.Resizer("emulator", policy="pl", budget_bytes=budget) as rz:
        pending = rz.submit(img, (80, 60))
        started = time.monotonic()
        lent = rz.lend((120, 160, 3))
        assert time.monotonic() - started < 0.9  # not the lend's 1 s wait (a bound)
        np.testing.assert_array_equal(pending.result(), resize_exact(img, 60, 80))
        rz.give_back(lent)
        assert rz.stats.snapshot()["pl"] == 1 and rz.engine.pool.stats()["in_use"] == 0
