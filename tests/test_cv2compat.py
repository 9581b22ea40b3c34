"""cv2compat answers what cv2.resize would do, checked against cv2.resize itself.

``output_size`` must give cv2's size, or None; None whenever cv2 raises; and a size whenever
cv2 succeeds on the argument types it claims to cover. ``dst_target`` must say "in place"
only when cv2 writes into ``dst`` and returns it, "fresh" only when cv2 returns a new array and
leaves ``dst`` alone, and ``Cv2Raises`` otherwise (where cv2 raises, or decides by version).
More examples with PYNQ_CV_HYPOTHESIS_EXAMPLES=N.
"""

from __future__ import annotations

import platform

import cv2
import numpy as np
import pytest
from conftest import EXAMPLES
from hypothesis import given
from hypothesis import strategies as st

from pynq_cv.cv2compat import (
    MAX_OUTPUT_PIXELS,
    Cv2Raises,
    dst_target,
    output_size,
    result_shape,
)

CV2_RESIZE = cv2.resize  # conftest checks that no test leaves cv2.resize patched


RAISED = "raised"
INPLACE, FRESH, DEFER = "in place", "fresh", "Cv2Raises"


def cv2_shape(src_shape, dsize, fx, fy):
    """The shape of cv2's result on a zero array of ``src_shape``, or RAISED."""
    try:
        return CV2_RESIZE(np.zeros(src_shape, np.uint8), dsize, fx=fx, fy=fy).shape
    except cv2.error:
        return RAISED


def assert_matches_cv2(src_shape, dsize, fx, fy, covered):
    """output_size agrees with cv2; on ``covered`` arguments it never says "not sure"."""
    got = output_size(src_shape, dsize, fx, fy)
    want = cv2_shape(src_shape, dsize, fx, fy)
    if want is RAISED:
        assert got is None, (src_shape, dsize, fx, fy, got)
    elif got is not None:
        assert want == result_shape(src_shape, got), (src_shape, dsize, fx, fy, got, want)
    else:
        assert not covered, f"cv2 gives {want} for {(src_shape, dsize, fx, fy)}, we say unsure"


# ---------------------------------------------------------------- output size: strategies

src_shapes = st.tuples(st.integers(1, 64), st.integers(1, 64)).flatmap(
    lambda rc: st.sampled_from([rc, rc + (1,), rc + (2,), rc + (3,), rc + (4,)])
)
side = st.integers(-3, 100)
np_int = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64])
dsizes_covered = st.one_of(
    st.none(),
    st.just((0, 0)),
    st.tuples(side, side),
    st.lists(side, min_size=2, max_size=2),
    st.tuples(st.integers(0, 100), st.integers(0, 100), np_int, np_int).map(
        lambda t: (t[2](t[0]), t[3](t[1]))
    ),
)
exact_factors = st.one_of(
    st.tuples(st.integers(1, 63), st.integers(0, 6)).map(lambda t: t[0] / 2 ** t[1]),
    st.integers(1, 30).map(lambda k: k / 3),
    st.integers(1, 100).map(lambda k: k / 10),
)
factors_covered = st.one_of(
    st.floats(1e-3, 8.0),
    exact_factors,
    exact_factors.map(np.float32),
    st.floats(1e-3, 8.0).map(np.float32),
    st.floats(1e-3, 8.0).map(np.float16),
    st.floats(1e-3, 8.0).map(np.float64),
    st.integers(0, 4),
    st.integers(0, 4).map(np.int64),
    st.none(),
    st.sampled_from(
        [0.0, -0.0, -1.0, -0.5, float("nan"), float("inf"), -float("inf"), 5e-324, 1e-300,
         1e300, 2.0**40, 2**40, np.uint64(2**64 - 1)]
    ),
)


@EXAMPLES
@given(src_shapes, dsizes_covered, factors_covered, factors_covered)
def test_output_size_is_cv2s_on_covered_arguments(src_shape, dsize, fx, fy):
    assert_matches_cv2(src_shape, dsize, fx, fy, covered=True)


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70),
    st.sampled_from([2**31, -(2**31) - 1, 2**70, 2**1100]),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: abs(f) < 8 or f != f),
    st.text(max_size=3),
    st.sampled_from(
        [np.bool_(True), np.int64(2**31), np.uint32(2**31), np.longdouble(2.0), 2 + 0j,
         np.array(2.0), np.array([2.0]), np.float64(1.5), object()]
    ),
)
dsizes_any = st.one_of(
    dsizes_covered,
    anything,
    st.lists(anything, max_size=3),
    st.lists(anything, max_size=3).map(tuple),
    st.tuples(st.integers(1, 50), st.integers(1, 50)).map(np.array),
    st.tuples(st.integers(1, 50), st.integers(1, 50)).map(lambda t: range(t[0], t[0] + 2)),
    st.tuples(st.floats(1, 50), st.floats(1, 50)).map(np.array),
)
src_shapes_any = st.one_of(
    src_shapes,
    st.lists(st.integers(0, 6), max_size=4).map(tuple),
    st.tuples(st.integers(1, 4), st.integers(1, 4), st.sampled_from([5, 127, 128, 129, 512, 513])),
)


# Debian's OpenCV 4.6 on ARM (the CI environments under qemu) segfaults inside cv2.resize on
# some of these malformed argument sets (a crash of cv2 itself, in the suite's full run:
# the process dies, no exception to compare). The covered arguments above and every fixed
# case below still run there; this property runs on every other OpenCV.
CV2_CRASHES_ON_GARBAGE = (
    platform.machine() in ("armv7l", "aarch64")
    and tuple(int(x) for x in cv2.__version__.split(".")[:2]) < (4, 7)
)


@pytest.mark.skipif(CV2_CRASHES_ON_GARBAGE, reason="OpenCV 4.6 on ARM segfaults on some "
                    "malformed cv2.resize arguments (a cv2 crash, not a pynq_cv rule)")
@EXAMPLES
@given(src_shapes_any, dsizes_any, st.one_of(factors_covered, anything),
       st.one_of(factors_covered, anything))
def test_output_size_never_claims_what_cv2_does_not_do(src_shape, dsize, fx, fy):
    assert_matches_cv2(src_shape, dsize, fx, fy, covered=False)


# ---------------------------------------------------------------- output size: fixed cases

SCALES = (
    [k / 2 for k in range(1, 12)]
    + [k / 2**j for k in (1, 3, 5, 7, 9, 11, 13, 15) for j in (2, 3, 4, 5)]
    + [1 / 3, 2 / 3, 4 / 3, 5 / 3, 1 / 7, 1 / 9, 0.1, 0.2, 0.3, 0.7, 0.9, 1.1, 1.9, 0.45, 0.55]
    + [0.999999, 1.000001, 0.4999999999, 0.5000000001, 1e-3, 0.01, 0.015, 0.025, 7.5, 12.5]
)
SCALES += [float(np.float32(s)) for s in SCALES]


def test_half_way_products_round_to_even_like_cv2():
    """saturate_cast<int>(side * f) is cvRound: 0.5 * 7 -> 4, 0.5 * 9 -> 4, 0.5 * 11 -> 6."""
    assert output_size((7, 9), None, 0.5, 0.5) == (4, 4)
    assert output_size((11, 5), None, 0.5, 0.5) == (6, 2)
    assert output_size((5, 3), None, 2.5, 0.5) == (2, 8)  # 7.5 -> 8, 2.5 -> 2


@pytest.mark.parametrize("scale", SCALES)
def test_output_size_is_cv2s_over_every_side_up_to_80(scale):
    for cols in range(1, 81):
        rows = 1 + cols % 7
        assert_matches_cv2((rows, cols), None, scale, scale, covered=True)
        assert_matches_cv2((cols, rows, 3), None, scale, np.float32(scale), covered=True)


@pytest.mark.parametrize("cols", [999, 1001, 1919, 1920, 1921, 2047, 3839, 4095])
def test_output_size_is_cv2s_on_wide_rows(cols):
    for scale in SCALES:
        assert_matches_cv2((1, cols), None, scale, 1.0, covered=True)


@pytest.mark.parametrize(
    "src_shape, dsize, fx, fy, want",
    [
        ((7, 9, 3), (4, 5), 0, 0, (5, 4)),
        ((7, 9, 3), [4, 5], 0, 0, (5, 4)),
        ((7, 9, 3), (np.int64(4), np.uint8(5)), 0, 0, (5, 4)),
        ((7, 9, 3), (4, 5), float("nan"), -1, (5, 4)),  # dsize wins; fx, fy only parsed
        ((7, 9, 3), (4, 5), None, None, (5, 4)),
        ((7, 9, 3), None, 0.5, 0.5, (4, 4)),
        ((7, 9, 3), (0, 0), 0.5, 0.5, (4, 4)),
        ((7, 9, 3), (0, 5), 0.5, 0.5, (4, 4)),  # one side <= 0: dsize is "empty"
        ((7, 9, 3), (-1, -5), 0.5, 0.5, (4, 4)),
        ((7, 9, 3), (2**31 - 1, 0), 0.5, 0.5, (4, 4)),
        ((7, 9, 3), None, np.float32(0.5), 1, (7, 4)),
        ((7, 9, 3), None, np.int64(2), np.uint8(1), (7, 18)),
        ((7, 9, 3), None, 1, 1, (7, 9)),
        ((7, 9, 1), (4, 5), 0, 0, (5, 4)),
        ((7, 9, 128), (4, 5), 0, 0, (5, 4)),
        ((7, 9), None, np.float16(1.5), 2, (14, 14)),
        # cv2 raises
        ((7, 9, 3), None, 0, 0, None),
        ((7, 9, 3), (-1, 5), 0, 0, None),
        ((7, 9, 3), (4, 5, 6), 0, 0, None),
        ((7, 9, 3), (4,), 0, 0, None),
        ((7, 9, 3), (), 0, 0, None),
        ((7, 9, 3), (4.0, 5), 0, 0, None),
        ((7, 9, 3), (np.float64(4), 5), 0, 0, None),
        ((7, 9, 3), (True, 5), 0, 0, None),
        ((7, 9, 3), (2**31, 5), 0, 0, None),
        ((7, 9, 3), (np.int64(2**31), 5), 0, 0, None),
        ((7, 9, 3), (-(2**31) - 1, 5), 0.5, 0.5, None),
        ((7, 9, 3), "45", 0, 0, None),
        ((7, 9, 3), 5, 0, 0, None),
        ((7, 9, 3), None, float("nan"), 1, None),
        ((7, 9, 3), None, float("inf"), 1, None),
        ((7, 9, 3), None, 1e-9, 1, None),  # rounds to 0 columns
        ((7, 9, 3), None, -0.5, 1, None),
        ((7, 9, 3), None, -0.0, 1, None),
        ((7, 9, 3), None, 1e300, 1, None),
        ((7, 9, 3), None, 2**70, 1, None),
        ((7, 9, 3), None, 2**1100, 1, None),  # too large for a double
        ((7, 9, 3), None, True, 1, None),
        ((7, 9, 3), (4, 5), True, 1, None),  # a bool fx raises even when dsize wins
        ((7, 9, 3), (4, 5), "2", 1, None),
        ((7, 9, 3), (4, 5), np.longdouble(2), 1, None),
        ((7, 9, 3), None, 2 + 0j, 1, None),
        ((7, 9, 3), None, np.array([2.0]), 1, None),
        ((0, 5, 3), (4, 5), 0, 0, None),
        ((5, 0, 3), (4, 5), 0, 0, None),
        ((5, 5, 0), (4, 5), 0, 0, None),
        ((5, 4, 129), (4, 5), 0, 0, None),  # 5.0 raises; 4.x: 129 channels (not covered)
        ((5, 4, 3, 2), (4, 5), 0, 0, None),  # 5.0 raises; 4.x: something (not covered)
        ((5,), (4, 5), 0, 0, None),  # 1-D: Nx1 on 4.x, 1xN on 5.0 (not covered)
        ((), (4, 5), 0, 0, None),
    ],
)
def test_output_size_fixed_cases(src_shape, dsize, fx, fy, want):
    assert output_size(src_shape, dsize, fx, fy) == want
    assert_matches_cv2(src_shape, dsize, fx, fy, covered=want is not None)


def test_huge_outputs_are_not_sure():
    """cv2 raises (x86: cvRound gives INT_MIN) or tries to allocate (ARM saturates)."""
    assert output_size((1, 1), None, 2.0**31, 1) is None
    assert output_size((1, 1), None, 2.0**31 - 0.75, 1) is None
    assert output_size((10, 10), (2**31 - 1, 5), 0, 0) is None
    assert output_size((1, 1), (8192, 8192), 0, 0) == (8192, 8192)
    assert output_size((1, 1), (8193, 8192), 0, 0) is None
    assert 8192 * 8192 == MAX_OUTPUT_PIXELS


def test_argument_types_not_covered_are_not_sure_even_where_cv2_accepts_them():
    """cv2 takes these; output_size does not vouch for them, so the call goes to cv2."""
    for dsize in (range(4, 6), np.array([4, 5]), type("T", (tuple,), {})((4, 5))):
        assert cv2_shape((7, 9, 3), dsize, 0, 0) == (5, 4, 3)
        assert output_size((7, 9, 3), dsize, 0, 0) is None
    assert output_size((7, 9, 3), (4, None), 0, 0) is None  # cv2 reads None as 0


def test_result_shape_drops_a_single_channel_like_cv2():
    assert result_shape((7, 9), (5, 4)) == (5, 4)
    assert result_shape((7, 9, 1), (5, 4)) == (5, 4) == cv2_shape((7, 9, 1), (4, 5), 0, 0)
    assert result_shape((7, 9, 3), (5, 4)) == (5, 4, 3)


# ---------------------------------------------------------------- dst


def answer_of(dst, out_shape, dtype):
    try:
        target = dst_target(dst, out_shape, dtype)
    except Cv2Raises:
        return DEFER
    if target is None:
        return FRESH
    assert target is dst
    return INPLACE


def check_dst(src, dsize, dst):
    """dst_target's answer for this call, after checking it against what cv2 does."""
    out = output_size(src.shape, dsize, 0, 0)
    assert out is not None
    want = CV2_RESIZE(src.copy(), dsize)
    answer = answer_of(dst, result_shape(src.shape, out), src.dtype)
    before = dst.copy() if isinstance(dst, np.ndarray) else None
    try:
        got = CV2_RESIZE(src, dsize, dst)
    except cv2.error:
        got = RAISED
    if answer == INPLACE:
        assert got is dst
        assert np.array_equal(np.asarray(dst), want) and dst.dtype == want.dtype
    elif answer == FRESH:
        assert got is not RAISED and got is not dst and type(got) is np.ndarray
        assert np.array_equal(got, want) and got.dtype == want.dtype
        assert np.array_equal(dst, before)
    return answer, got


def read_only(a):
    a.flags.writeable = False
    return a


class Sub(np.ndarray):
    pass


SRC3 = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
SRC1 = np.random.default_rng(1).integers(0, 256, (7, 9), dtype=np.uint8)

# kind: (src, dsize, dst factory, dst_target's answer, cv2 on every verified version or None)
DST_KINDS = {
    "none": (SRC3, (4, 5), lambda: None, FRESH, "fresh"),
    "C-contiguous, right shape and dtype": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8), INPLACE, "in place"),
    "ndarray subclass": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8).view(Sub), INPLACE, "in place"),
    "ndarray subclass, 1-channel": (
        SRC1, (4, 5), lambda: np.zeros((5, 4), np.uint8).view(Sub), INPLACE, "in place"),
    "row-strided view": (
        SRC3, (4, 5), lambda: np.zeros((10, 4, 3), np.uint8)[::2], INPLACE, "in place"),
    "unaligned": (
        SRC3, (4, 5), lambda: np.frombuffer(bytearray(61), np.uint8)[1:].reshape(5, 4, 3),
        INPLACE, "in place"),
    "2-D, 1-channel": (SRC1, (4, 5), lambda: np.zeros((5, 4), np.uint8), INPLACE, "in place"),
    "wrong shape": (SRC3, (4, 5), lambda: np.zeros((6, 4, 3), np.uint8), FRESH, "fresh"),
    "transposed shape": (SRC3, (4, 5), lambda: np.zeros((4, 5, 3), np.uint8), FRESH, "fresh"),
    "wrong dtype float32": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.float32), FRESH, "fresh"),
    "wrong dtype int8": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.int8), FRESH, "fresh"),
    "wrong dtype uint16": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint16), FRESH, "fresh"),
    "wrong shape subclass": (
        SRC3, (4, 5), lambda: np.zeros((6, 4, 3), np.uint8).view(Sub), FRESH, "fresh"),
    "wrong shape row-strided": (
        SRC3, (4, 5), lambda: np.zeros((12, 4, 3), np.uint8)[::2], FRESH, "fresh"),
    "2-D for a 3-channel output": (
        SRC3, (4, 5), lambda: np.zeros((5, 12), np.uint8), FRESH, "fresh"),
    "3-channel for a 1-channel output": (
        SRC1, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8), FRESH, "fresh"),
    # cv2 raises on every verified version
    "Fortran order": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8, order="F"), DEFER, "raises"),
    "Fortran order, wrong shape": (
        SRC3, (4, 5), lambda: np.zeros((6, 4, 3), np.uint8, order="F"), DEFER, "raises"),
    "transposed view": (
        SRC3, (4, 5), lambda: np.zeros((4, 5, 3), np.uint8).transpose(1, 0, 2), DEFER, "raises"),
    "column-strided view": (
        SRC3, (4, 5), lambda: np.zeros((5, 8, 3), np.uint8)[:, ::2], DEFER, "raises"),
    "channel view": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 4), np.uint8)[..., :3], DEFER, "raises"),
    "negative row stride": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8)[::-1], DEFER, "raises"),
    "negative column stride": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8)[:, ::-1], DEFER, "raises"),
    "negative channel stride": (
        SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint8)[..., ::-1], DEFER, "raises"),
    "one column, odd stride": (
        SRC3, (1, 5), lambda: np.zeros((5, 4, 3), np.uint8)[:, ::4], DEFER, "raises"),
    # OpenCV 5 / 4.11 raise; 4.5.5 returns a fresh array: either way cv2 decides (DEFER)
    "0-size": (SRC3, (4, 5), lambda: np.zeros((0, 4, 3), np.uint8), DEFER, "raises or fresh"),
    "int64": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.int64), DEFER, "raises"),
    "object": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), object), DEFER, "raises"),
    "complex": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.complex64), DEFER, "raises"),
    "list": (SRC3, (4, 5), lambda: [[0]], DEFER, "raises"),
    "str": (SRC3, (4, 5), lambda: "abc", DEFER, "raises"),
    # cv2 differs by version, or it is not worth covering
    "read-only": (
        SRC3, (4, 5), lambda: read_only(np.zeros((5, 4, 3), np.uint8)), DEFER, None),
    "read-only, wrong shape": (
        SRC3, (4, 5), lambda: read_only(np.zeros((6, 4, 3), np.uint8)), DEFER, None),
    "bool": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), bool), DEFER, None),
    "uint32": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.uint32), DEFER, None),
    "float16": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), np.float16), DEFER, None),
    "big-endian int16": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3), ">i2"), DEFER, None),
    "int": (SRC3, (4, 5), lambda: 5, DEFER, "fresh"),
    "tuple": (SRC3, (4, 5), lambda: (1, 2), DEFER, "fresh"),
    "flat": (SRC3, (4, 5), lambda: np.zeros(60, np.uint8), DEFER, "fresh"),
    "4-D": (SRC3, (4, 5), lambda: np.zeros((5, 4, 3, 1), np.uint8), DEFER, "fresh"),
    "(rows, cols, 1) for a 1-channel output": (
        SRC1, (4, 5), lambda: np.zeros((5, 4, 1), np.uint8), DEFER, "in place, returned 3-D"),
}


@pytest.mark.parametrize("kind", list(DST_KINDS))
def test_dst_rule_matches_cv2(kind):
    src, dsize, make, answer, cv2_does = DST_KINDS[kind]
    dst = make()
    got_answer, got = check_dst(src, dsize, dst)
    assert got_answer == answer
    if cv2_does == "raises or fresh":
        assert got is RAISED or (got is not dst and got.shape == (5, 4, 3))
    elif cv2_does == "raises":
        assert got is RAISED
    elif cv2_does in ("in place", "in place, returned 3-D"):
        assert got is dst
    elif cv2_does == "fresh":
        assert got is not RAISED and got is not dst


def test_dst_is_src_follows_the_same_rule():
    """Same size: cv2 copies src onto itself and returns it; new size: a fresh array."""
    src = SRC3.copy()
    assert check_dst(src, (9, 7), src) == (INPLACE, src)
    assert np.array_equal(src, SRC3)
    src = SRC3.copy()
    answer, got = check_dst(src, (4, 5), src)
    assert answer == FRESH and got.shape == (5, 4, 3)
    assert np.array_equal(src, SRC3)


@pytest.mark.parametrize("dtype", ["u1", "u2", "i2", "f4", "f8"])  # cv2's INTER_LINEAR dtypes
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_dst_of_cv2s_result_dtype_is_written_in_place(dtype, channels):
    shape = (7, 9) if channels == 0 else (7, 9, channels)
    src = (np.random.default_rng(2).random(shape) * 100).astype(dtype)
    dst = np.zeros(result_shape(shape, (5, 4)), dtype)
    assert check_dst(src, (4, 5), dst) == (INPLACE, dst)


# random dst arrays: shape near the output's, any dtype, any layout, any writeability
dst_dtypes = st.sampled_from(["u1", "i1", "u2", "i2", "i4", "u4", "i8", "f2", "f4", "f8", "?",
                              ">i2", ">f4", "c8"])
layouts = st.sampled_from(["C", "F", "rows::2", "cols::2", "rows::-1", "cols::-1", "T", "pad"])


def make_dst(shape, dtype, layout, writeable, subclass):
    if layout == "F":
        a = np.zeros(shape, dtype, order="F")
    elif layout == "rows::2":
        a = np.zeros((2 * shape[0],) + shape[1:], dtype)[::2]
    elif layout == "cols::2":
        a = np.zeros((shape[0], 2 * shape[1]) + shape[2:], dtype)[:, ::2]
    elif layout == "rows::-1":
        a = np.zeros(shape, dtype)[::-1]
    elif layout == "cols::-1":
        a = np.zeros(shape, dtype)[:, ::-1]
    elif layout == "T":
        a = np.zeros(shape[::-1], dtype).T
    elif layout == "pad":  # rows padded by a few bytes: a plain cv::Mat step
        a = np.zeros((shape[0], shape[1] + 1) + shape[2:], dtype)[:, : shape[1]]
    else:
        a = np.zeros(shape, dtype)
    if subclass:
        a = a.view(Sub)
    a.flags.writeable = writeable
    return a


@EXAMPLES
@given(
    src_dtype=st.sampled_from(["u1", "u2", "i2", "f4", "f8"]),
    channels=st.sampled_from([0, 1, 2, 3, 4]),
    out=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    shape_change=st.sampled_from([None, None, None, (1, 0), (0, 1), "swap", "drop", "add"]),
    dst_dtype=st.one_of(st.none(), dst_dtypes),
    layout=layouts,
    writeable=st.booleans(),
    subclass=st.booleans(),
)
def test_dst_rule_never_contradicts_cv2(
    src_dtype, channels, out, shape_change, dst_dtype, layout, writeable, subclass
):
    src_shape = (5, 7) if channels == 0 else (5, 7, channels)
    src = (np.random.default_rng(3).random(src_shape) * 100).astype(src_dtype)
    shape = result_shape(src_shape, out)
    if shape_change == "swap":
        shape = (shape[1], shape[0]) + shape[2:]
    elif shape_change == "drop":
        shape = shape[:2] if len(shape) == 3 else shape[:1]
    elif shape_change == "add":
        shape = shape + (1,)
    elif shape_change is not None:
        shape = (shape[0] + shape_change[0], shape[1] + shape_change[1]) + shape[2:]
    if layout in ("cols::2", "cols::-1", "T", "pad") and len(shape) < 2:
        layout = "C"
    dst = make_dst(shape, dst_dtype or src_dtype, layout, writeable, subclass)
    check_dst(src, (out[1], out[0]), dst)
