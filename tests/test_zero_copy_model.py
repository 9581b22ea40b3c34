"""Zero copy is the cheap path: lent buffers by role (an input write-combined, an output
cacheable), and in the model a frame in lent buffers never costs more than the same frame
copied through the pool -- over bench_policy's whole sweep on every shipped board."""

from __future__ import annotations

import numpy as np
import pytest
from test_policies import BENCH, BOARDS  # bench_policy's sweep, every shipped board

import pynq_cv
from pynq_cv.costs import LENT_CACHEABLE


def test_lent_buffers_are_of_their_roles_kind_unless_asked():
    with pynq_cv.Resizer("emulator") as rz:
        src, dst = rz.lend((60, 80, 3)), rz.lend((30, 40, 3), role="output")
        other = rz.lend((60, 80, 3), cacheable=True)
        try:
            assert src.cacheable is LENT_CACHEABLE["input"] is False
            assert dst.cacheable is LENT_CACHEABLE["output"] is True
            assert other.cacheable is True
            src[:] = np.arange(src.size, dtype=np.uint8).reshape(src.shape)
            rz.resize(src, (40, 30), dst)
            snap = rz.stats.snapshot()
            assert snap["copies_in"] == 0 and snap["copies_out"] == 0, snap
        finally:
            for buf in (src, dst, other):
                rz.give_back(buf)


@pytest.mark.parametrize("board", BOARDS)
def test_zero_copy_is_never_modelled_slower_than_copying(board):
    with pynq_cv.Resizer("emulator", board=board, policy="pl") as rz:
        engine = rz.open().engine
        planner = engine.planner
        checked = 0
        for sizes in BENCH.pairs():
            if engine.envelope.size_reason(*sizes) is not None:
                continue
            for pipelined in (False, True):
                copied = planner.plan((sizes, True, True, pipelined, True, True))
                lent = planner.plan((sizes, False, False, pipelined, LENT_CACHEABLE["input"],
                                     LENT_CACHEABLE["output"]))
                assert lent.pl.latency <= copied.pl.latency, (board, sizes, lent.describe())
                assert lent.pl.cpu <= copied.pl.cpu, (board, sizes, lent.describe())
                checked += 1
        assert checked >= 20


def test_a_dst_used_in_place_is_planned_as_the_kind_it_is():
    """Zero copy out: the plan models the caller's buffer (cached: an invalidate after the
    DMA; write-combined: none), each kind its own plan, both exact."""
    with pynq_cv.Resizer("emulator", policy="pl") as rz:
        src = np.random.default_rng(1).integers(0, 256, (480, 640, 3), np.uint8)
        outs = {}
        for cacheable in (True, False):
            dst = rz.lend((240, 320, 3), role="output", cacheable=cacheable)
            try:
                rz.resize(src, (320, 240), dst)
                outs[cacheable] = dst.copy()
            finally:
                rz.give_back(dst)
        plans = {p["output_buffer"]: p for p in rz.info()["plans"] if p["copies"] == "in "}
    assert set(plans) == {"cacheable", "non-cacheable"}
    assert plans["cacheable"]["pl_cpu_ms"] > plans["non-cacheable"]["pl_cpu_ms"]  # invalidate
    np.testing.assert_array_equal(outs[True], outs[False])


def test_a_view_of_a_lent_output_is_copied_out_through_the_pools_own_kind():
    """The plan decides in place or copied as the frame's walk does: a view of a lent
    buffer is not written in place, so the frame is planned copied out, through a staging
    buffer of the pool's output kind -- not the view's write-combined kind."""
    src = np.random.default_rng(2).integers(0, 256, (120, 160, 3), np.uint8)
    with pynq_cv.Resizer("emulator", policy="pl") as rz:
        lent = rz.lend((60, 80, 3), role="output", cacheable=False)
        try:
            out = rz.resize(src, (80, 60), dst=lent[:])
            (plan,) = rz.info()["plans"]
            kinds = {(b.shape, b.cacheable) for b in (rz.engine.pool.root_of(lent),)}
            assert plan["copies"] == "in out" and plan["output_buffer"] == "cacheable", plan
            assert rz.stats.snapshot()["copies_out"] == 1
            np.testing.assert_array_equal(out, lent)
            assert kinds == {((60, 80, 3), False)}
        finally:
            rz.give_back(lent)
