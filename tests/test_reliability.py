"""Faults, deadlines, threads and memory: the PL path never hangs, never returns a wrong frame,
never leaks. Faults are injected into the emulated board."""

from __future__ import annotations

import threading
import time
import warnings

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact

FAST = pynq_cv.Deadlines(factor=2.0, margin=0.02)


@pytest.fixture
def rz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pynq_cv.Resizer("emulator", deadlines=FAST) as resizer:
            resizer.open()
            yield resizer


def faults(resizer):
    return resizer.engine.board.faults


def assert_pl_works_again(resizer, seed=99):
    src = frame(40, 60, seed=seed)
    before = resizer.stats.snapshot()["pl"]
    np.testing.assert_array_equal(resizer.resize(src, (30, 20)), resize_exact(src, 20, 30))
    assert resizer.stats.snapshot()["pl"] == before + 1


@pytest.mark.parametrize("channel", ["send", "recv"])
@pytest.mark.parametrize("kind", ["internal", "slave", "decode"])
def test_dma_error_bits_fall_back_exactly_and_the_dma_is_usable_again(rz, channel, kind):
    faults(rz).dma_error(channel=channel, kind=kind)
    src = frame(40, 60)
    out = rz.resize(src, (30, 20))
    np.testing.assert_array_equal(out, resize_exact(src, 20, 30))  # fallback='exact'
    s = rz.stats.snapshot()
    assert s["faults"] == {"dma_error": 1} and s["cpu"] == 1 and s["pl"] == 0
    assert s["fallback"] == {"fault_dma_error": 1}
    assert_pl_works_again(rz)


def test_an_ip_that_never_finishes_costs_one_deadline_then_the_pl_recovers(rz):
    faults(rz).ip_hang()
    src = frame(480, 640)
    t0 = time.perf_counter()
    out = rz.resize(src, (320, 240))
    took = time.perf_counter() - t0
    np.testing.assert_array_equal(out, resize_exact(src, 240, 320))
    assert rz.stats.snapshot()["faults"] == {"timeout": 1}
    assert rz.stats.snapshot()["recoveries"] == {"pl_reset": 1}
    # deadline: 2 x modelled time (~3 ms) + 20 ms margin, plus recovery attempts
    assert took < 1.0
    assert_pl_works_again(rz)


def test_a_short_packet_is_never_returned_as_a_frame(rz):
    faults(rz).short_packet()
    src = frame(40, 60)
    np.testing.assert_array_equal(rz.resize(src, (30, 20)), resize_exact(src, 20, 30))
    assert rz.stats.snapshot()["faults"] == {"short_transfer": 1}
    assert_pl_works_again(rz)


def test_contiguous_memory_exhausted_degrades_to_cpu_and_recovers(rz):
    faults(rz).cma_exhausted(True)
    src = frame(40, 60)
    np.testing.assert_array_equal(rz.resize(src, (30, 20)), resize_exact(src, 20, 30))
    assert rz.stats.snapshot()["faults"] == {"cma_exhausted": 1}
    faults(rz).cma_exhausted(False)
    assert_pl_works_again(rz)


def test_missing_overlay_disables_the_pl_and_says_why():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pynq_cv.Resizer("emulator", overlay_missing=True) as resizer:
            src = frame(40, 60)
            np.testing.assert_array_equal(resizer.resize(src, (30, 20)), cv2.resize(src, (30, 20)))
            resizer.resize(src, (30, 20))
            s = resizer.stats.snapshot()
            assert s["cpu"] == 2 and s["fallback"] == {"no_backend": 2}
            assert s["faults"] == {"overlay": 1}
            assert "PL unavailable" in resizer.why
    assert sum("overlay" in str(w.message) for w in caught) == 1  # warned once


def test_breaker_opens_after_consecutive_failures_and_retries_after_cooldown():
    breaker = pynq_cv.CircuitBreaker(threshold=2, cooldown=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pynq_cv.Resizer("emulator", deadlines=FAST, breaker=breaker) as resizer:
            resizer.open()
            resizer.engine.board.faults.dma_error(channel="send", kind="slave", count=2)
            src = frame(40, 60)
            for _ in range(4):
                resizer.resize(src, (30, 20))
            s = resizer.stats.snapshot()
            assert s["faults"] == {"dma_error": 2}
            assert s["fallback"] == {"fault_dma_error": 2, "breaker_open": 2}
            time.sleep(0.25)
            assert_pl_works_again(resizer)


def test_threads_share_one_ip_with_correct_frames_and_bounded_pools():
    budget = 2 * 2**20
    errors: list[str] = []
    with pynq_cv.Resizer("emulator", budget_bytes=budget) as resizer:
        resizer.open()
        pynq_cv.dispatch._default = resizer
        pynq_cv.patch()
        shapes = [(48, 64), (64, 64), (40, 60), (30, 40)]

        def worker(tid: int) -> None:
            for i in range(40):
                rows, cols = shapes[(tid + i) % len(shapes)]
                src = frame(rows, cols, seed=tid * 1000 + i)
                gray = i % 5 == 0
                if gray:
                    src = np.ascontiguousarray(src[..., 0])
                out = cv2.resize(src, (cols // 2, rows // 2))
                want = cv2.resize if gray else None
                expect = (
                    pynq_cv.dispatch.CV2_RESIZE(src, (cols // 2, rows // 2))
                    if want else resize_exact(src, rows // 2, cols // 2)
                )
                if not np.array_equal(out, expect):
                    errors.append(f"thread {tid} frame {i} {rows}x{cols} wrong")
                if resizer.engine.pool.stats()["live_bytes"] > budget:
                    errors.append("pool over budget")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "deadlock"
        pynq_cv.unpatch()
        s = resizer.stats.snapshot()
        assert not errors, errors[:5]
        assert s["pl"] + s["cpu"] == 8 * 40 and s["pl"] == 8 * 32
        pynq_cv.dispatch._default = None
        memory = resizer.engine.board.memory
    assert memory.live_buffers == 0


def test_frames_after_a_fault_contain_no_pixels_of_an_earlier_frame(rz):
    a, b, c = frame(40, 60, seed=1), frame(40, 60, seed=2), frame(40, 60, seed=3)
    rz.resize(a, (30, 20))
    faults(rz).ip_hang()
    rz.resize(b, (30, 20))
    np.testing.assert_array_equal(rz.resize(c, (30, 20)), resize_exact(c, 20, 30))


def test_half_open_breaker_reopens_on_one_failure_and_closes_on_success():
    breaker = pynq_cv.CircuitBreaker(threshold=3, cooldown=0.05)
    for _ in range(3):
        breaker.failure()
    assert not breaker.allow()
    time.sleep(0.06)
    assert breaker.allow()  # half-open
    breaker.failure()
    assert not breaker.allow()  # one failure re-opened it
    time.sleep(0.06)
    assert breaker.allow()
    breaker.success()
    breaker.failure()
    assert breaker.allow()  # closed again: one failure is not enough


def test_close_from_another_thread_mid_stream_never_raises_to_the_caller():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        resizer = pynq_cv.Resizer("emulator")
        src = frame(120, 160)
        stop = threading.Event()
        errors = []

        def loop():
            while not stop.is_set():
                try:
                    out = resizer.resize(src, (80, 60))
                    if out.shape != (60, 80, 3):
                        errors.append("shape")
                except Exception as exc:  # noqa: BLE001 -- the test reports it
                    errors.append(repr(exc))

        worker = threading.Thread(target=loop)
        worker.start()
        time.sleep(0.05)
        resizer.close()
        time.sleep(0.02)
        stop.set()
        worker.join(timeout=10)
        assert not worker.is_alive() and errors == []


def test_an_interrupt_while_posting_leaves_no_lock_no_buffer_and_a_working_pl(rz):
    send = rz.engine.driver.dma.sendchannel
    posted = send.transfer

    def interrupted(array, *args, **kwargs):
        array.flush()
        raise KeyboardInterrupt  # lands after the receive was posted

    send.transfer = interrupted
    with pytest.raises(KeyboardInterrupt):
        rz.resize(frame(40, 60), (30, 20))
    send.transfer = posted
    assert not rz.engine.driver.shared.lock.locked()
    assert rz.engine.pool.stats()["in_use"] == 0
    assert_pl_works_again(rz)
    assert rz.stats.snapshot()["faults"] == {}  # the next frame recovered first, then ran


def test_a_transfer_pynq_refuses_never_leaves_a_started_ip(rz):
    faults(rz).dma_error(channel="send", kind="decode")
    rz.resize(frame(40, 60), (30, 20))
    assert rz.stats.snapshot()["recoveries"] == {"dma_reset": 1}  # no PL reset needed
