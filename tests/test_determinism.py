"""A frame's path and values depend on the frame, its arguments and the engine -- never on
timing, load or other threads; faults do not change an eligible frame's values either."""

from __future__ import annotations

import threading
import warnings

import cv2
import numpy as np
import pytest
from conftest import frame, host_deadlines

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact


def run_threads(resizer, threads, per_thread, in_hw, out_hw):
    """Each thread resizes its own frames; returns the wrong frames (a list of names)."""
    rows, cols = in_hw
    out_rows, out_cols = out_hw
    base = frame(rows, cols, seed=7)
    wrong: list[str] = []
    start = threading.Barrier(threads)

    def worker(tid: int) -> None:
        start.wait()
        for i in range(per_thread):
            src = base.copy()
            src[tid, i] = (tid, i, 255)  # each frame its own
            out = resizer.resize(src, (out_cols, out_rows))
            if not np.array_equal(out, resize_exact(src, out_rows, out_cols)):
                wrong.append(f"thread {tid} frame {i}")

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "a thread never finished"
    return wrong


@pytest.mark.parametrize(
    "board, pace, threads, per_thread, in_hw, out_hw",
    [
        ("Pynq-Z2", True, 8, 6, (1080, 1920), (540, 960)),  # paced: all 8 queue at the IP
        ("KV260", False, 4, 3, (2160, 3840), (1080, 1920)),
    ],
)
def test_every_concurrent_frame_runs_on_the_pl_under_the_default_budget(
    board, pace, threads, per_thread, in_hw, out_hw
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn
        deadlines, _ = host_deadlines(in_hw, out_hw)  # a slow host (qemu): longer bounds
        with pynq_cv.Resizer("emulator", board=board, pace=pace, deadlines=deadlines) as rz:
            wrong = run_threads(rz, threads, per_thread, in_hw, out_hw)
            s = rz.stats.snapshot()
            pool = rz.engine.pool.stats()
            waits = rz.info()["turn_waits"]
    assert wrong == []
    assert waits > 0  # frames did queue for the IP (counted as waits, not faults)
    assert s["pl"] == threads * per_thread and s["cpu"] == 0
    assert s["faults"] == {} and s["fallback"] == {}
    assert pool["in_use"] == 0 and pool["peak_bytes"] <= pool["budget_bytes"]


def test_a_frame_waiting_for_the_ip_holds_no_pool_memory():
    """Buffers are taken in the frame's turn: 6 queued 1080p frames need one frame's worth."""
    one_frame = 1080 * 1920 * 3 + 540 * 960 * 3
    with pynq_cv.Resizer("emulator", budget_bytes=one_frame) as rz:
        wrong = run_threads(rz, 6, 2, (1080, 1920), (540, 960))
        s = rz.stats.snapshot()
    assert wrong == [] and s["pl"] == 12 and s["faults"] == {}


@pytest.fixture
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def test_fallback_exact_is_the_default_and_gives_the_ips_values_on_a_fault(quiet):
    with pynq_cv.Resizer("emulator") as rz:
        assert rz.fallback == "exact"
        rz.open().engine.board.faults.dma_error()
        src = frame(48, 64)
        np.testing.assert_array_equal(rz.resize(src, (32, 24)), resize_exact(src, 24, 32))
        assert rz.stats.snapshot()["fallback"] == {"fault_dma_error": 1}


def test_fallback_exact_writes_a_dst_that_fits_in_place(quiet):
    with pynq_cv.Resizer("emulator") as rz:
        rz.open().engine.board.faults.dma_error()
        src, dst = frame(48, 64), np.zeros((24, 32, 3), np.uint8)
        out = rz.resize(src, (32, 24), dst)
        assert out is dst
        np.testing.assert_array_equal(dst, resize_exact(src, 24, 32))


def test_fallback_cv2_gives_cv2s_values_on_a_fault(quiet):
    with pynq_cv.Resizer("emulator", fallback="cv2") as rz:
        rz.open().engine.board.faults.dma_error()
        src = frame(48, 64)
        np.testing.assert_array_equal(rz.resize(src, (32, 24)), cv2.resize(src, (32, 24)))


def test_an_open_breaker_still_gives_the_ips_values_with_fallback_exact(quiet):
    breaker = pynq_cv.CircuitBreaker(threshold=1, cooldown=60)
    with pynq_cv.Resizer("emulator", breaker=breaker) as rz:
        rz.open().engine.board.faults.dma_error(count=1)
        src = frame(48, 64)
        for _ in range(3):
            np.testing.assert_array_equal(rz.resize(src, (32, 24)), resize_exact(src, 24, 32))
        assert rz.stats.snapshot()["fallback"] == {"fault_dma_error": 1, "breaker_open": 2}


def test_fallback_must_be_exact_or_cv2():
    with pytest.raises(ValueError, match="fallback"):
        pynq_cv.Resizer("emulator", fallback="fast")
