"""Zero copy from a buffer the pool did not make: a ``pynq.allocate``'d frame of the user's
own goes to the PL without a copy (on the emulated board, with the real pynq), exact to
the IP; a view at a 4-byte-aligned offset too; an unaligned one is copied, still exact.
Runs where ``pynq`` imports (CI environment 2); skipped elsewhere, except under
``PYNQ_CV_REQUIRE_PYNQ=1``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import frame, real_pynq

pynq = real_pynq()

import pynq_cv  # noqa: E402
from pynq_cv.arith import resize_exact  # noqa: E402
from pynq_cv.backends import board as board_backend  # noqa: E402


@pytest.fixture(autouse=True)
def as_on_a_board(monkeypatch, tmp_path):
    monkeypatch.setattr(board_backend, "_shared", {})
    for var in ("PYNQ_CV_BITSTREAM", "PYNQ_CV_BACKEND", "PYNQ_CV_BOARD", "BOARD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYNQ_CV_LOCK_DIR", str(tmp_path / "locks"))


@pytest.mark.parametrize("cacheable", [True, False])
def test_a_pynq_allocated_frame_of_the_users_own_goes_to_the_pl_without_a_copy(cacheable):
    image = frame(120, 160, seed=4)
    with pynq_cv.emulate(), pynq_cv.Resizer(policy="pl") as rz:
        assert rz.open().backend == "board"
        buf = pynq.allocate((120, 160, 3), np.uint8, cacheable=cacheable)
        try:
            buf[:] = image
            assert not rz.engine.pool.owns(buf)
            out = rz.resize(buf, (80, 60))
            np.testing.assert_array_equal(out, resize_exact(image, 60, 80))
            snap = rz.stats.snapshot()
            assert snap["pl"] == 1 and snap["copies_in"] == 0, snap
        finally:
            buf.freebuffer()


def test_a_view_at_an_aligned_offset_is_taken_and_an_unaligned_one_copied():
    image = frame(60, 80, seed=5)
    nbytes = image.nbytes
    with pynq_cv.emulate(), pynq_cv.Resizer(policy="pl") as rz:
        rz.open()
        big = pynq.allocate((nbytes + 8,), np.uint8, cacheable=True)
        try:
            for offset, copies in ((4, 0), (1, 1)):
                view = big[offset:offset + nbytes].reshape(60, 80, 3)
                view[:] = image
                rz.stats.reset()
                out = rz.resize(view, (40, 30))
                np.testing.assert_array_equal(out, resize_exact(image, 30, 40))
                snap = rz.stats.snapshot()
                assert snap["pl"] == 1 and snap["copies_in"] == copies, (offset, snap)
        finally:
            big.freebuffer()


def test_lent_buffers_are_planned_as_the_kind_the_pool_asked_for_on_pynq():
    """pynq 4.0 says ``cacheable`` is True of every buffer (it hard-codes coherent=False):
    the plan takes the kind from the pool, which knows what it allocated."""
    img = np.zeros((120, 160, 3), np.uint8)
    with pynq_cv.emulate(), pynq_cv.Resizer(policy="pl") as rz:
        src = rz.lend((120, 160, 3))
        dst = rz.lend((60, 80, 3), role="output", cacheable=False)
        try:
            src[:] = img
            rz.resize(src, (80, 60), dst)
            (plan,) = rz.info()["plans"]
        finally:
            rz.give_back(src)
            rz.give_back(dst)
    assert plan["copies"] == "none"
    assert (plan["input_buffer"], plan["output_buffer"]) == ("non-cacheable", "non-cacheable")
