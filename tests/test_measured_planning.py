"""Measured planning (the board's default): never re-enters pynq_cv, measures the emulated
board as the board it emulates, and keeps every decision for the engine's life."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import bounded, frame

import pynq_cv
from pynq_cv import costs, planner
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.cv2compat import CV2_RESIZE


def test_the_patched_cv2_resize_with_measured_planning_returns(monkeypatch):
    """The first patched frame on a board measured cv2 through the patched cv2.resize,
    which re-entered the dispatcher and waited on itself forever."""
    monkeypatch.setenv("PYNQ_CV_POLICY", "latency")
    pynq_cv.use_backend("emulator", planning="measure")
    pynq_cv.patch()
    src = frame(1080, 1920, seed=4)
    out = bounded(cv2.resize, src, (1280, 720))
    plan = pynq_cv.info()["plans"][0]
    assert plan["basis"] == "measured (emulated)"
    assert plan["path"] == "pl"  # the Pynq-Z2 model's decision for this shape
    assert np.array_equal(out, resize_exact(src, 720, 1280))
    half = bounded(cv2.resize, src, (960, 540))
    assert np.array_equal(half, CV2_RESIZE(src, (960, 540)))
    assert pynq_cv.stats()["fallback"].get("cpu_faster") == 1


def test_measuring_the_emulated_board_gives_the_board_models_decisions():
    """Under the emulator, a measurement is the board's IP cycles and modelled PS costs,
    never this host's timings: every decision equals the model's."""
    shapes = [
        (1080, 1920, 720, 1280), (1080, 1920, 540, 960), (720, 1280, 900, 1600),
        (480, 640, 240, 320), (1080, 1920, 416, 416), (2160, 3840, 1080, 1920),
    ]
    for board in ("Pynq-Z2", "KV260"):
        with pynq_cv.Resizer("emulator", board=board, policy="latency",
                             planning="measure") as measured, \
                pynq_cv.Resizer("emulator", board=board, policy="latency",
                                planning="estimate") as modelled:
            for rows, cols, out_rows, out_cols in shapes:
                src = frame(rows, cols)
                for r in (measured, modelled):
                    r.resize(src, (out_cols, out_rows))
            got = {p["shape"]: (p["path"], p["basis"]) for p in measured.info()["plans"]}
            want = {p["shape"]: p["path"] for p in modelled.info()["plans"]}
        assert {s: path for s, (path, _) in got.items()} == want, board
        assert {basis for _, basis in got.values()} == {"measured (emulated)"}


def test_a_shapes_path_never_changes_however_many_other_shapes_come():
    """A board's measurement can differ run to run; the first decision is kept for the
    engine's life, past MAX_PLANS other shapes (only cost breakdowns are dropped)."""
    calls = []

    def flipping(key, pl, cv2):  # a noisy board: every other measurement favours the CPU
        calls.append(key)
        slow = len(calls) % 2 == 0
        pl = costs.PathCost(10.0 if slow else 0.001, 0.001, {"ip": 0.0005})
        return pl, costs.PathCost(0.002, 0.002), "measured"

    p = planner.Planner(costs.for_board("Pynq-Z2"), 100_000_000, "latency", measure=flipping)
    first = (1080, 1920, 720, 1280)
    key = lambda sizes: (sizes, True, True, False, True, True)  # noqa: E731
    assert p.plan(key(first)).path == "pl"
    for i in range(planner.MAX_PLANS + 10):
        p.plan(key((100 + i, 64, 50, 32)))
    again = p.plan(key(first))
    assert again.path == "pl" and again.reason is None
    assert calls.count(key(first)) == 1  # never measured again
    assert again.pl.parts == {"ip": 0.0005}  # the breakdown went, the IP's share stayed
    assert len(p.recent()) == 16


def test_a_boards_measurement_uses_the_buffer_kinds_the_plan_is_for(monkeypatch):
    """On a real board (here: the emulator taken for one), the PL is timed on buffers of
    the plan's kinds and cv2 reads the frame where the caller keeps it: a lent
    write-combined input is timed as such, never as an ordinary cached array."""
    from pynq_cv.backends.emulator import EmulatedBoard
    from pynq_cv.pool import BufferPool

    monkeypatch.setattr(EmulatedBoard, "emulated", False)
    kinds: list[object] = []
    real_lease = BufferPool.lease

    def spying(self, shape, dtype=np.uint8, cacheable=None):
        kinds.append((tuple(shape), cacheable))
        return real_lease(self, shape, dtype, cacheable)

    monkeypatch.setattr(BufferPool, "lease", spying)
    with pynq_cv.Resizer("emulator", policy="latency", planning="measure") as r:
        lent = r.lend((120, 160, 3))  # role input: write-combined
        lent[:] = frame(120, 160)
        r.resize(lent, (80, 60))
        plan = r.info()["plans"][-1]
        r.give_back(lent)
    assert plan["basis"] == "measured" and plan["copies"] == "out"
    assert kinds[0] == ((120, 160, 3), getattr(lent, "cacheable", False)) == ((120, 160, 3), False)
