"""Deadlines hold: a frame's PL part -- from posting it to the IP to its delivery or its
fallback, recovery included -- ends within ``Deadlines.for_frame`` of its modelled board
time, even when the IP hangs (the paced emulator takes the board's real time). Host copies
and the fallback's own computation come on top."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from conftest import frame, host_deadlines

import pynq_cv
from pynq_cv.dispatch import CV2_RESIZE
from pynq_cv.timing import frame_seconds


@pytest.mark.parametrize(
    "board, in_hw, out_hw",
    [("Pynq-Z2", (1080, 1920), (540, 960)), ("KV260", (2160, 3840), (1080, 1920))],
)
def test_a_hung_ip_costs_at_most_the_documented_deadline(board, in_hw, out_hw):
    deadlines = pynq_cv.Deadlines()
    dsize = (out_hw[1], out_hw[0])
    src = frame(*in_hw)
    host: list[float] = []  # the copy in, and the fallback's own computation

    def timed(step):
        def run(*args):
            t0 = time.perf_counter()
            try:
                return step(*args)
            finally:
                host.append(time.perf_counter() - t0)
        return run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pynq_cv.Resizer("emulator", board=board, pace=True, fallback="cv2") as rz:
            rz.resize(src, dsize)  # warm: the plan and the buffers exist
            rz._prepare = timed(rz._prepare)
            rz._cpu_frame = timed(rz._cpu_frame)
            clock = rz.engine.descriptor.clock_hz
            bound = deadlines.for_frame(frame_seconds(*in_hw, *out_hw, clock))
            pl_parts = []
            # A shared 2-core CI machine can oversleep by tens of ms now and then: a few
            # tries, and the best must hold (an overrun built into the code -- 20-40% before,
            # 4K: 275-304 ms against 217 ms -- fails every one).
            for _ in range(3):
                host.clear()
                rz.breaker.reset()
                rz.engine.board.faults.ip_hang()
                t0 = time.perf_counter()
                out = rz.resize(src, dsize)
                took = time.perf_counter() - t0
                np.testing.assert_array_equal(out, CV2_RESIZE(src, dsize))
                assert len(host) == 2  # the copy in, the fallback
                pl_parts.append(took - sum(host))
                if pl_parts[-1] <= bound + 0.010:
                    break
            s = rz.stats.snapshot()
    assert s["faults"]["timeout"] == len(pl_parts) and s["recoveries"], s
    best = min(pl_parts)
    assert best <= bound + 0.010, f"{[round(p * 1e3, 1) for p in pl_parts]} ms against " \
        f"{bound * 1e3:.1f} ms"


def test_frames_queued_behind_a_hung_ip_wait_no_more_than_the_frames_ahead():
    """Three threads, one hung frame among them: a call takes at most the PL parts of the
    frames ahead of it and its own (each within its bound), plus host copies."""
    import threading

    in_hw, out_hw = (1080, 1920), (540, 960)
    dsize = (out_hw[1], out_hw[0])
    src = frame(*in_hw)
    took: list[float] = []
    deadlines, host = host_deadlines(in_hw, out_hw)  # a slow host (qemu) gets longer bounds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pynq_cv.Resizer("emulator", pace=True, deadlines=deadlines) as rz:
            rz.resize(src, dsize)  # warm
            clock = rz.engine.descriptor.clock_hz
            rz.engine.board.faults.ip_hang()
            start = threading.Barrier(3)

            def call() -> None:
                start.wait()
                t0 = time.perf_counter()
                rz.resize(src, dsize)
                took.append(time.perf_counter() - t0)

            threads = [threading.Thread(target=call) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            s = rz.stats.snapshot()
    bound = deadlines.for_frame(frame_seconds(*in_hw, *out_hw, clock))
    assert s["faults"] == {"timeout": 1} and s["pl"] == 1 + 2
    # the last of three waited for two frames (one of them hung), then ran its own; host
    # copies per frame (10 ms, or this host's frame time if slower), 20 ms for scheduling
    per_frame = max(0.010, host)
    assert max(took) <= 3 * (bound + per_frame) + 0.020, [round(t * 1e3) for t in took]
