"""Pipelined submission keeps order, gives exact frames, and bounds what is in flight."""

from __future__ import annotations

import time
import warnings

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact


def test_stream_yields_every_frame_in_order_and_exact(emulated):
    frames = [frame(48, 64, seed=i) for i in range(12)]
    outs = list(emulated.stream(frames, (32, 24)))
    assert len(outs) == 12
    for src, out in zip(frames, outs, strict=True):
        np.testing.assert_array_equal(out, resize_exact(src, 24, 32))
    assert emulated.stats.snapshot()["pl"] == 12


def test_stream_mixes_pl_and_cpu_frames_in_order(emulated):
    frames = [frame(48, 64, seed=i) if i % 3 else frame(48, 64, seed=i)[..., :1].copy()
              for i in range(9)]
    outs = list(emulated.stream(frames, (32, 24)))
    for src, out in zip(frames, outs, strict=True):
        want = resize_exact(src, 24, 32) if src.shape[2] == 3 else cv2.resize(src, (32, 24))
        np.testing.assert_array_equal(out, want)
    s = emulated.stats.snapshot()
    assert s["pl"] == 6 and s["cpu"] == 3


def test_handles_can_be_collected_late_and_out_of_order(emulated):
    frames = [frame(40, 40, seed=i) for i in range(5)]
    handles = [emulated.submit(f, (20, 20)) for f in frames]
    for i in (4, 0, 2, 1, 3):
        np.testing.assert_array_equal(handles[i].result(), resize_exact(frames[i], 20, 20))
    assert emulated.engine.pool.stats()["in_use"] == 0


def test_at_most_two_frames_of_buffers_are_in_flight(emulated):
    pool = emulated.engine.pool if emulated.engine else emulated.open().engine.pool
    peak = 0
    for out in emulated.stream((frame(64, 64, seed=i) for i in range(20)), (32, 32)):
        peak = max(peak, pool.stats()["in_use"])
        assert out.shape == (32, 32, 3)
    assert peak <= 4  # input + output of the frame in the PL and of the one being prepared


def test_cv2_errors_surface_from_result_in_order(emulated):
    good = emulated.submit(frame(40, 40), (20, 20))
    bad = emulated.submit(frame(40, 40), (-1, 5))
    np.testing.assert_array_equal(good.result(), resize_exact(frame(40, 40), 20, 20))
    with pytest.raises(cv2.error):
        bad.result()


def test_a_fault_mid_stream_falls_back_for_that_frame_only():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        deadlines = pynq_cv.Deadlines(margin=0.02)
        with pynq_cv.Resizer("emulator", deadlines=deadlines) as rz:
            rz.open()
            frames = [frame(48, 64, seed=i) for i in range(6)]
            outs = []
            for i, out in enumerate(rz.stream(frames, (32, 24))):
                outs.append(out)
                if i == 1:
                    rz.engine.board.faults.ip_hang()
            s = rz.stats.snapshot()
            assert s["faults"] == {"timeout": 1} and s["pl"] == 5 and s["cpu"] == 1
            for src, out in zip(frames, outs, strict=True):
                exact = resize_exact(src, 24, 32)
                assert np.array_equal(out, exact)  # the faulty frame too (fallback='exact')


def test_paced_board_pipelines_close_to_the_ip_floor():
    """With real-time pacing, a pipelined stream's wall time is bounded by the modelled
    board time plus host work; checked loosely (CI machines are noisy), measured in
    benchmarks/bench_pipeline.py."""
    from pynq_cv.timing import frame_seconds

    with pynq_cv.Resizer("emulator", pace=True) as rz:
        frames = [frame(240, 320, seed=i) for i in range(6)]
        t0 = time.perf_counter()
        outs = list(rz.stream(frames, (160, 120)))
        took = time.perf_counter() - t0
    assert len(outs) == 6
    assert took >= 6 * frame_seconds(240, 320, 120, 160)  # the board's time is really spent


def test_resize_while_a_submitted_frame_is_uncollected_does_not_hang(emulated):
    a, b = frame(40, 40, seed=1), frame(40, 40, seed=2)
    handle = emulated.submit(a, (20, 20))
    np.testing.assert_array_equal(emulated.resize(b, (20, 20)), resize_exact(b, 20, 20))
    np.testing.assert_array_equal(handle.result(), resize_exact(a, 20, 20))


def test_leaving_a_stream_early_collects_the_frame_in_flight(emulated):
    frames = [frame(40, 40, seed=i) for i in range(5)]
    for out in emulated.stream(frames, (20, 20)):
        np.testing.assert_array_equal(out, resize_exact(frames[0], 20, 20))
        break
    assert emulated.engine.pool.stats()["in_use"] == 0
    out = emulated.resize(frames[3], (20, 20))
    np.testing.assert_array_equal(out, resize_exact(frames[3], 20, 20))


def test_an_interrupted_wait_resets_the_dma_and_leaks_nothing(emulated, monkeypatch):
    emulated.open()
    driver = emulated.engine.driver

    def interrupted(job):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_await_channels", interrupted)
    handle = emulated.submit(frame(40, 40), (20, 20))
    with pytest.raises(KeyboardInterrupt):
        handle.result()
    monkeypatch.undo()
    # asked again, the frame is computed on the CPU with the IP's arithmetic: no second finish()
    np.testing.assert_array_equal(handle.result(), resize_exact(frame(40, 40), 20, 20))
    assert emulated.stats.snapshot()["fallback"] == {"fault_interrupted": 1}
    assert emulated.engine.pool.stats()["in_use"] == 0
    src = frame(40, 40, seed=7)
    np.testing.assert_array_equal(emulated.resize(src, (20, 20)), resize_exact(src, 20, 20))
