"""Eligible frames run on the (emulated) PL and equal the IP's exact arithmetic."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from conftest import frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact


@pytest.mark.parametrize(
    ("in_hw", "out_hw"),
    [
        ((480, 640), (240, 320)),
        ((36, 48), (100, 120)),
        ((1080, 1920), (540, 960)),
        ((4, 4), (4, 4)),
    ],
)
def test_eligible_frame_equals_ip_arithmetic_and_counts_as_pl(emulated, in_hw, out_hw):
    src = frame(*in_hw)
    out = emulated.resize(src, (out_hw[1], out_hw[0]))
    assert out.shape == (*out_hw, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, resize_exact(src, *out_hw))
    assert emulated.stats.snapshot()["pl"] == 1
    assert emulated.stats.snapshot()["cpu"] == 0


def test_fx_fy_output_size_follows_cv2_on_pl(emulated):
    src = frame(120, 160)
    out = emulated.resize(src, None, fx=0.5, fy=0.5)
    assert out.shape == cv2.resize(src, None, fx=0.5, fy=0.5).shape
    np.testing.assert_array_equal(out, resize_exact(src, 60, 80))


def test_views_negative_strides_and_fortran_order_are_copied_in_correctly(emulated):
    big = frame(100, 120, seed=3)
    for src in (big[10:90, 8:112], big[::-1], np.asfortranarray(big), big[:, ::-1]):
        out = emulated.resize(src, (60, 40))
        np.testing.assert_array_equal(out, resize_exact(np.ascontiguousarray(src), 40, 60))
    assert emulated.stats.snapshot()["pl"] == 4


def test_ineligible_frames_fall_back_with_reasons(emulated):
    emulated.resize(frame(20, 20)[..., 0].copy(), (10, 10))  # grayscale
    emulated.resize(frame(20, 20, channels=4), (10, 10))
    emulated.resize(frame(20, 20).astype(np.float32), (10, 10))
    emulated.resize(frame(20, 20), (10, 10), interpolation=cv2.INTER_AREA)
    emulated.resize(frame(1, 20), (10, 10))  # one row: the IP would stall
    emulated.resize(frame(21, 21), (10, 10))  # 21*21*3 bytes: not a multiple of 4
    emulated.resize(frame(20, 20), (2000, 20))  # over the 2020 build's 1080 output rows
    s = emulated.stats.snapshot()
    assert s["pl"] == 0 and s["cpu"] == 7
    assert s["fallback"] == {
        "channels": 2, "dtype": 1, "interpolation": 1, "input_too_few_rows": 1,
        "byte_count_not_multiple": 1, "output_too_large": 1,
    }


def test_returned_frames_never_alias_pool_memory(emulated):
    a, b = frame(64, 64, seed=1), frame(64, 64, seed=2)
    out_a = emulated.resize(a, (32, 32))
    keep = out_a.copy()
    out_b = emulated.resize(b, (32, 32))
    np.testing.assert_array_equal(out_a, keep)
    assert not np.shares_memory(out_a, out_b)
    assert not emulated.engine.pool.owns(out_a)


def test_dst_that_fits_is_written_in_place(emulated):
    src = frame(64, 64)
    dst = np.zeros((32, 32, 3), np.uint8)
    out = emulated.resize(src, (32, 32), dst)
    assert out is dst
    np.testing.assert_array_equal(dst, resize_exact(src, 32, 32))


def test_zero_copy_lent_buffers_skip_both_copies(emulated):
    src_buf = emulated.lend((64, 64, 3))
    dst_buf = emulated.lend((32, 32, 3))
    src_buf[:] = frame(64, 64, seed=5)
    out = emulated.resize(src_buf, (32, 32), dst_buf)
    assert out is dst_buf
    np.testing.assert_array_equal(out, resize_exact(np.asarray(src_buf), 32, 32))
    s = emulated.stats.snapshot()
    assert s["pl"] == 1 and s["copies_in"] == 0 and s["copies_out"] == 0
    emulated.give_back(src_buf)
    emulated.give_back(dst_buf)


def test_steady_loop_of_1000_frames_allocates_only_on_the_first(emulated):
    src = frame(48, 64)
    emulated.resize(src, (32, 24))
    allocations = emulated.engine.pool.stats()["allocations"]
    for _ in range(1000):
        emulated.resize(src, (32, 24))
    assert emulated.engine.pool.stats()["allocations"] == allocations
    assert emulated.stats.snapshot()["pl"] == 1001


def test_many_shapes_stay_within_budget_and_close_frees_everything():
    budget = 256 * 1024
    with pynq_cv.Resizer("emulator", budget_bytes=budget) as resizer:
        rng = np.random.default_rng(0)
        for _ in range(200):
            rows, cols = (int(v) * 4 for v in rng.integers(1, 40, 2))
            resizer.resize(frame(rows, cols), (cols // 2 or 4, rows // 2 or 2))
            assert resizer.engine.pool.stats()["live_bytes"] <= budget
        memory = resizer.engine.board.memory
        assert resizer.stats.snapshot()["pl"] > 100
    assert memory.live_buffers == 0 and memory.live_bytes == 0


def test_patch_routes_cv2_resize_and_unpatch_restores_the_exact_original():
    original = cv2.resize
    pynq_cv.use_backend("emulator")
    pynq_cv.patch()
    pynq_cv.patch()  # idempotent
    assert cv2.resize is not original
    src = frame(40, 40)
    np.testing.assert_array_equal(cv2.resize(src, (20, 20)), resize_exact(src, 20, 20))
    assert pynq_cv.stats()["pl"] == 1
    pynq_cv.unpatch()
    pynq_cv.unpatch()
    assert cv2.resize is original
    with pynq_cv.patched():
        assert pynq_cv.is_patched()
        with pynq_cv.patched():
            pass
        assert pynq_cv.is_patched()
    assert cv2.resize is original


def test_cpu_backend_is_exactly_cv2():
    pynq_cv.use_backend("cpu")
    src = frame(40, 40)
    np.testing.assert_array_equal(pynq_cv.resize(src, (20, 20)), cv2.resize(src, (20, 20)))
    assert pynq_cv.stats()["cpu"] == 1 and pynq_cv.stats()["fallback"] == {"backend_cpu": 1}


def test_environment_variable_chooses_the_backend(monkeypatch):
    monkeypatch.setenv("PYNQ_CV_BACKEND", "cpu")
    with pynq_cv.Resizer() as resizer:
        resizer.resize(frame(8, 8), (4, 4))
        assert resizer.backend == "cpu"
    monkeypatch.setenv("PYNQ_CV_BACKEND", "nonsense")
    with pytest.raises(pynq_cv.BackendUnavailable, match="nonsense"):
        pynq_cv.Resizer()  # at construction, not at the first frame


def test_nothing_is_opened_before_the_first_frame():
    resizer = pynq_cv.Resizer("emulator")
    assert resizer.engine is None
    resizer.resize(frame(8, 8)[..., 0].copy(), (4, 4))  # grayscale: decided before opening
    assert resizer.engine is None
    resizer.resize(frame(8, 8), (4, 4))
    assert resizer.engine is not None
    resizer.close()


def test_stats_are_resettable():
    pynq_cv.use_backend("emulator")
    pynq_cv.resize(frame(8, 8), (4, 4))
    assert pynq_cv.stats()["pl"] == 1
    pynq_cv.reset_stats()
    s = pynq_cv.stats()
    assert s["pl"] == 0 and s["cpu"] == 0 and s["bytes_moved"] == 0


@settings(
    max_examples=int(os.environ.get("PYNQ_CV_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.integers(1, 40), cols=st.integers(1, 40), out_rows=st.integers(1, 60),
    out_cols=st.integers(1, 60), layout=st.sampled_from(["c", "f", "flip", "roi"]),
    with_dst=st.booleans(), seed=st.integers(0, 2**16),
)
def test_any_uint8_bgr_frame_is_the_ips_exact_output_on_pl_or_cv2s_elsewhere(
    emulated, rows, cols, out_rows, out_cols, layout, with_dst, seed
):
    base = frame(rows + 4, cols + 4, seed=seed)
    src = {
        "c": np.ascontiguousarray(base[:rows, :cols]),
        "f": np.asfortranarray(base[:rows, :cols]),
        "flip": base[:rows, :cols][::-1, ::-1],
        "roi": base[2 : rows + 2, 1 : cols + 1],
    }[layout]
    dst = np.full((out_rows, out_cols, 3), 7, np.uint8) if with_dst else None
    before = emulated.stats.snapshot()["pl"]
    out = emulated.resize(src, (out_cols, out_rows), dst)
    on_pl = emulated.stats.snapshot()["pl"] == before + 1
    want = (
        resize_exact(np.ascontiguousarray(src), out_rows, out_cols)
        if on_pl
        else cv2.resize(src, (out_cols, out_rows))
    )
    np.testing.assert_array_equal(out, want)
    if with_dst:
        assert out is dst
    # the PL takes exactly what the envelope says
    eligible = rows >= 2 and (rows * cols * 3) % 4 == 0 and (out_rows * out_cols * 3) % 4 == 0
    assert on_pl == eligible
    assert emulated.engine.pool.stats()["in_use"] == 0
