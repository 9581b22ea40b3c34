"""The emulated IP's arithmetic: golden hashes, the loop-level reference, an independent
int64 restatement of the spec on large frames, and the exactness of each building block."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynq_cv.backends.emulator import arith
from pynq_cv.backends.emulator.arith import (
    axis_plan,
    coefficients,
    resize_exact,
    resize_reference,
    scale_q32,
    source_coordinate,
)

GOLDEN = json.loads((Path(__file__).parent / "data" / "ip-golden.json").read_text())["cases"]
COMPLETING = [case for case in GOLDEN if case["completes"]]


def golden_input(case: dict) -> np.ndarray:
    rng = np.random.default_rng(case["seed"])
    return rng.integers(0, 256, size=(case["H"], case["W"], 3), dtype=np.uint8)


def random_frame(rows: int, cols: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(rows, cols, channels), dtype=np.uint8)


def spec_resize_int64(src: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The spec's sections 1-4 restated with numpy int64, sharing no code with ``arith``."""

    def axis(n_src: int, n_dst: int):
        scale = (n_src << 32) // n_dst
        k = np.arange(n_dst, dtype=np.int64)
        t = ((2 * k + 1) * scale - (1 << 32)) >> 11  # Q22, floored
        t = np.clip(t, 0, (n_src - 1) << 22)
        i0 = t >> 22
        i1 = np.where(i0 == n_src - 1, i0, i0 + 1)
        weight = ((t - (i0 << 22)) * 1024) >> 22
        return i0, i1, weight

    y0, y1, b = axis(src.shape[0], rows)
    x0, x1, a = axis(src.shape[1], cols)
    top, bottom = src[y0], src[y1]
    a0 = top[:, x0].astype(np.int64)
    a1 = top[:, x1].astype(np.int64)
    b0 = bottom[:, x0].astype(np.int64)
    b1 = bottom[:, x1].astype(np.int64)
    a = a[None, :, None]
    b = b[:, None, None]
    c = (a * b) // 1024
    acc = a0 * (1024 - a - b + c) + a1 * (a - c) + b0 * (b - c) + b1 * c
    return (acc // 1024).astype(np.uint8)


# -- golden outputs of the real HLS source -----------------------------------------------


@pytest.mark.parametrize(
    "case", COMPLETING, ids=[f"{c['H']}x{c['W']}-{c['h']}x{c['w']}" for c in COMPLETING]
)
def test_golden_case_hash_is_reproduced(case):
    out = resize_exact(golden_input(case), case["h"], case["w"])
    assert out.shape == (case["h"], case["w"], 3) and out.dtype == np.uint8
    assert hashlib.sha256(out.tobytes()).hexdigest() == case["sha256"]


def test_golden_cases_that_never_complete_are_exactly_the_one_row_inputs():
    stalled = [(c["H"], c["W"], c["h"], c["w"]) for c in GOLDEN if not c["completes"]]
    one_row = [(c["H"], c["W"], c["h"], c["w"]) for c in GOLDEN if c["H"] == 1]
    assert stalled and stalled == one_row
    assert not any(c.get("sha256") for c in GOLDEN if not c["completes"])


# -- the fast path against the loop-level reference --------------------------------------

FIXED_SHAPES = [
    # (H, W, h, w): downscales, identity, upscales beyond 3x, odd sizes, 1-pixel edges
    (2, 2, 1, 1),
    (40, 40, 20, 20),
    (40, 40, 10, 10),
    (39, 27, 13, 9),
    (33, 40, 11, 8),
    (17, 23, 17, 23),
    (2, 3, 9, 13),
    (3, 5, 14, 19),
    (2, 2, 40, 40),
    (7, 11, 31, 37),
    (40, 3, 5, 17),
    (5, 40, 23, 6),
    (31, 29, 30, 28),
    (12, 18, 18, 12),
    (30, 20, 20, 30),
    (9, 40, 9, 13),
    (40, 9, 13, 9),
    (1, 8, 3, 5),
    (6, 1, 4, 7),
]


@pytest.mark.parametrize("shape", FIXED_SHAPES, ids=lambda s: "{}x{}-{}x{}".format(*s))
def test_fast_path_equals_reference_on_fixed_small_shapes(shape):
    height, width, rows, cols = shape
    src = random_frame(height, width, seed=sum(shape))
    np.testing.assert_array_equal(resize_exact(src, rows, cols), resize_reference(src, rows, cols))


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    height=st.integers(2, 40),
    width=st.integers(2, 40),
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    channels=st.sampled_from([1, 3, 4]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fast_path_equals_reference_on_random_small_shapes(
    height, width, rows, cols, channels, seed
):
    src = random_frame(height, width, channels, seed)
    np.testing.assert_array_equal(resize_exact(src, rows, cols), resize_reference(src, rows, cols))


@pytest.mark.parametrize("channels", [1, 2, 4, 5])
@pytest.mark.parametrize("shape", [(24, 32, 12, 16), (24, 32, 17, 45), (10, 12, 10, 12)])
def test_any_channel_count_blends_like_the_reference(channels, shape):
    height, width, rows, cols = shape
    src = random_frame(height, width, channels, seed=channels)
    np.testing.assert_array_equal(resize_exact(src, rows, cols), resize_reference(src, rows, cols))


def test_grayscale_frame_gives_a_grayscale_frame():
    src = random_frame(30, 40, 1, seed=3)
    out = resize_exact(src[:, :, 0], 17, 23)
    assert out.shape == (17, 23)
    np.testing.assert_array_equal(out, resize_reference(src, 17, 23)[:, :, 0])


# -- large frames against an independent int64 restatement of the spec -------------------


@pytest.mark.parametrize(
    "in_hw, out_hw",
    [
        ((1080, 1920), (540, 960)),  # exact 2:1, the pixel-sum path
        ((2160, 3840), (1080, 1920)),
        ((1080, 1920), (720, 1280)),  # 3:2, the general path
        ((720, 1280), (1080, 1920)),  # upscale, the general path
        ((1080, 1920), (360, 1920)),  # 3:1 rows, identity columns
        ((1081, 1919), (541, 959)),  # odd: nearly but not 2:1
    ],
    ids=lambda hw: "x".join(map(str, hw)),
)
def test_fast_path_equals_int64_spec_on_large_frames(in_hw, out_hw):
    src = random_frame(*in_hw, seed=in_hw[0] + out_hw[1])
    np.testing.assert_array_equal(resize_exact(src, *out_hw), spec_resize_int64(src, *out_hw))


def test_bands_on_the_thread_pool_give_the_frame_one_thread_gives():
    src = random_frame(720, 1280, seed=5)
    before = arith._WORKERS
    try:
        arith.set_workers(2)
        pooled = resize_exact(src, 900, 1600)  # 1.44 Mpx: several bands
        arith.set_workers(1)
        single = resize_exact(src, 900, 1600)
    finally:
        arith.set_workers(before)
    np.testing.assert_array_equal(pooled, single)


def test_alternating_shapes_do_not_leak_scratch_between_frames():
    small, large = random_frame(40, 60, seed=1), random_frame(300, 500, seed=2)
    first = [resize_exact(small, 29, 41), resize_exact(large, 301, 333)]
    second = [resize_exact(small, 29, 41), resize_exact(large, 301, 333)]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first[0], resize_reference(small, 29, 41))


# -- out= ----------------------------------------------------------------------------------


@pytest.mark.parametrize("out_hw", [(540, 960), (301, 517)])
def test_out_view_is_written_in_place_and_nothing_around_it(out_hw):
    src = random_frame(1080, 1920, seed=7)
    rows, cols = out_hw
    canvas = np.full((rows + 20, cols + 30, 3), 77, dtype=np.uint8)
    view = canvas[5 : 5 + rows, 11 : 11 + cols]
    result = resize_exact(src, rows, cols, out=view)
    assert result is view
    np.testing.assert_array_equal(view, spec_resize_int64(src, rows, cols))
    mask = np.ones(canvas.shape[:2], dtype=bool)
    mask[5 : 5 + rows, 11 : 11 + cols] = False
    assert (canvas[mask] == 77).all()


def test_out_with_a_layout_opencv_cannot_write_is_still_filled():
    src = random_frame(64, 80, seed=8)
    canvas = np.zeros((32, 80, 3), dtype=np.uint8)
    view = canvas[:, ::2]  # column-strided
    flipped = np.zeros((32, 40, 3), dtype=np.uint8)[::-1]  # negative row stride
    expected = resize_reference(src, 32, 40)
    for out in (view, flipped):
        assert resize_exact(src, 32, 40, out=out) is out
        np.testing.assert_array_equal(out, expected)
    assert not canvas[:, 1::2].any()


def test_out_may_be_an_ndarray_subclass():
    class Frame(np.ndarray):
        pass

    src = random_frame(48, 64, seed=9)
    out = np.zeros((24, 32, 3), dtype=np.uint8).view(Frame)
    assert resize_exact(src, 24, 32, out=out) is out
    np.testing.assert_array_equal(np.asarray(out), resize_reference(src, 24, 32))


def test_out_of_the_wrong_shape_or_type_is_refused():
    src = random_frame(20, 20)
    with pytest.raises(ValueError):
        resize_exact(src, 10, 10, out=np.zeros((10, 11, 3), np.uint8))
    with pytest.raises(ValueError):
        resize_exact(src, 10, 10, out=np.zeros((10, 10, 3), np.uint16))
    with pytest.raises(TypeError):
        resize_exact(src.astype(np.float32), 10, 10)


def test_non_contiguous_input_is_read_correctly():
    base = random_frame(60, 90, seed=10)
    src = base[::2, ::3]  # 30 x 30, strided both ways
    np.testing.assert_array_equal(
        resize_exact(src, 17, 41), resize_reference(np.ascontiguousarray(src), 17, 41)
    )


# -- the building blocks -----------------------------------------------------------------

AXES = [(n_src, n_dst) for n_src in (1, 2, 3, 7, 40, 641, 1080) for n_dst in (1, 2, 5, 40, 959)]
AXES += [(1920, 960), (3840, 1920), (720, 1080), (1080, 2160), (2, 2160), (2160, 2)]


@pytest.mark.parametrize("n_src, n_dst", AXES)
def test_weights_lie_in_0_1023_and_indices_in_the_frame(n_src, n_dst):
    i0, i1, weight = axis_plan(n_src, n_dst)
    assert weight.min() >= 0 and weight.max() <= 1023
    assert i0.min() >= 0 and i1.max() <= n_src - 1
    assert ((i1 == i0 + 1) | ((i1 == i0) & (i0 == n_src - 1))).all()
    assert (weight[i1 == i0] == 0).all()  # an edge-replicated pixel carries no weight


@pytest.mark.parametrize("n_src, n_dst", [(1, 5), (7, 40), (40, 7), (641, 959), (2, 2160)])
def test_axis_plan_is_source_coordinate_for_every_index(n_src, n_dst):
    i0, i1, weight = axis_plan(n_src, n_dst)
    expected = [source_coordinate(k, n_src, n_dst) for k in range(n_dst)]
    assert list(zip(i0.tolist(), i1.tolist(), weight.tolist(), strict=True)) == expected


def test_coefficients_are_non_negative_and_sum_to_1024():
    a = np.arange(1024)
    planes = coefficients(a, a)  # every (a, b) pair
    for plane in planes:
        assert plane.min() >= 0 and plane.max() <= 1024
    assert (sum(planes) == 1024).all()
    c = planes[3]
    assert (c == (a[None, :] * a[:, None]) >> 10).all()


def test_scale_is_q32_truncated():
    assert scale_q32(1920, 960) == 2 << 32
    assert scale_q32(2, 3) == (2 << 32) // 3
    assert scale_q32(1080, 2160) == 1 << 31


def test_truncating_shift_is_exact_for_every_accumulator_value():
    """floor(N / 2^m) through OpenCV's rounding conversion, for every N the blend can make."""
    for shift, top in ((10, 255 * 1024), (5, 255 * 32), (2, 4 * 255), (1, 2 * 255)):
        n = np.arange(top + 1)
        for dtype in (np.float32, np.uint16) if top < 65536 else (np.float32,):
            got = arith._floor_shift(n.astype(dtype)[None, :], shift)
            np.testing.assert_array_equal(got[0], (n >> shift).astype(np.uint8))
