"""A soak: 12 threads x (resize, submit, stream, lend/give_back) on one engine while faults
are injected -- frames over the pool budget, DMA errors at post, the turn saying ``busy``.
Every frame is exact to its promise (the PL and its exact fallback: the IP's arithmetic;
a frame the PL never takes: cv2), the counters equal the calls, no ``PLFault`` leaves a
public call, and nothing is held at the end. ``PYNQ_CV_SOAK_SECONDS=60`` for the long run."""

from __future__ import annotations

import os
import random
import threading
import time
import warnings
from collections import Counter

import cv2
import numpy as np
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.errors import PLFault
from pynq_cv.turn import Turn

SECONDS = float(os.environ.get("PYNQ_CV_SOAK_SECONDS", "3"))
THREADS = 12
BUDGET = 150_000  # bytes: the 'big' frame alone exceeds it (a pool_budget fault each time)
SHAPES = {"small": ((24, 32), (16, 12)), "mid": ((48, 64), (40, 30)),
          "big": ((160, 200), (100, 80))}
SOURCES = {name: [frame(*hw, seed=s) for s in range(3)] for name, (hw, _) in SHAPES.items()}
WANT = {name: [resize_exact(s, SHAPES[name][1][1], SHAPES[name][1][0]) for s in srcs]
        for name, srcs in SOURCES.items()}
GRAY = frame(24, 32, seed=9)[:, :, 0].copy()  # the PL never takes it: cv2 computes it
GRAY_WANT = cv2.resize(GRAY, (16, 12))


class BusyTurn(Turn):
    """The engine's turn, which now and then says ``busy`` as a stuck frame ahead would."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate
        self.said_busy = 0

    def enter(self, ticket):
        if random.random() < self.rate:
            self.said_busy += 1
            raise PLFault("busy", "injected by the soak")
        return super().enter(ticket)


def test_soak_with_faults_from_12_threads_keeps_every_frame_exact_and_nothing_held():
    rz = pynq_cv.Resizer("emulator", budget_bytes=BUDGET, policy="pl").open()
    rz._turn = BusyTurn(rate=0.02)
    engine = rz.engine
    faults = engine.board.faults
    errors: list[str] = []
    frames = Counter()  # by operation
    stop = threading.Event()

    def check(out, name, i) -> None:
        if not np.array_equal(out, WANT[name][i]):
            errors.append(f"wrong {name} frame")

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        done = Counter()
        while not stop.is_set():
            name = rng.choice(("small", "small", "mid", "mid", "big"))
            dsize, i = SHAPES[name][1], rng.randrange(3)
            op = rng.choice(("resize", "submit", "stream", "lend", "gray"))
            try:
                if op == "resize":
                    check(rz.resize(SOURCES[name][i], dsize), name, i)
                    done[op] += 1
                elif op == "submit":
                    handles = [(rz.submit(SOURCES[name][j], dsize), j) for j in (i, (i + 1) % 3)]
                    for handle, j in handles:
                        check(handle.result(), name, j)
                        done[op] += 1
                elif op == "stream":
                    order = [i, (i + 1) % 3, (i + 2) % 3]
                    for out, j in zip(rz.stream([SOURCES[name][j] for j in order], dsize),
                                      order, strict=True):
                        check(out, name, j)
                        done[op] += 1
                elif op == "lend":
                    buf = rz.lend(SOURCES["small"][i].shape)
                    try:
                        buf[:] = SOURCES["small"][i]
                        check(rz.resize(buf, SHAPES["small"][1]), "small", i)
                        done[op] += 1
                    finally:
                        rz.give_back(buf)
                else:
                    if not np.array_equal(rz.resize(GRAY, (16, 12)), GRAY_WANT):
                        errors.append("wrong cv2 frame")
                    done[op] += 1
            except PLFault as exc:
                errors.append(f"PLFault out of {op}: {exc!r}")
            except Exception as exc:  # noqa: BLE001 -- the test reports it
                errors.append(f"{op}: {exc!r}")
        frames.update(done)  # Counter.update under the GIL: one call per thread

    def chaos() -> None:  # DMA errors at post, on either channel, now and then
        rng = random.Random(7)
        while not stop.wait(rng.uniform(0.005, 0.03)):
            faults.dma_error(rng.choice(("send", "recv")),
                             rng.choice(("internal", "slave", "decode")), 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        before = rz.stats.snapshot()
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(THREADS)]
        threads.append(threading.Thread(target=chaos))
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a thread hung"
        faults.clear()
        rz._turn.rate = 0.0
        rz.resize(SOURCES["small"][0], SHAPES["small"][1])  # collects a frame left behind
        frames["final"] += 1
        after = rz.stats.snapshot()
    calls = sum(frames.values())
    counted = after["pl"] + after["cpu"] - before["pl"] - before["cpu"]
    report = (f"{calls} frames in {SECONDS:.0f} s ({dict(frames)}); pl {after['pl']}, "
              f"cpu {after['cpu']}; faults {after['faults']}; busy said {rz._turn.said_busy}; "
              f"dma errors injected {dict(faults.injected)}")
    print(report)
    assert errors == [], (errors[:5], report)
    assert counted == calls, report
    assert after["faults"].get("pool_budget", 0) > 0 and after["faults"].get("busy", 0) > 0
    assert sum(faults.injected.values()) > 0, report
    assert rz._turn.queued() == 0, "a place in the turn was never given up"
    assert not engine.driver.shared.lock.locked(), "the IP lock is held"
    assert rz._pending is None or rz._pending.done()
    pool = engine.pool.stats()
    assert pool["in_use"] == 0 and pool["in_use_bytes"] == 0, pool
    rz.close()
    assert engine.board.memory.live_buffers == 0
