"""cv2.resize's argument rules, and nothing else: the output size, and what happens to ``dst``.

The dispatcher must know, before it calls anything, the size cv2 would produce and whether
cv2 would write into the caller's ``dst``. These functions answer from the arguments alone,
in pure Python, and answer "not sure" whenever they are. Then the caller hands the call to
cv2 itself, which raises its own error or computes the result. A wrong answer here is a wrong
frame; "not sure" costs only the PL.

Each rule was found by running ``cv2.resize`` (tests/test_cv2compat.py pins them) on OpenCV
5.0.0 (numpy 2.4), 4.11.0 and 4.5.5 (numpy 1.26), on x86-64. The rules agree on all three
except where noted; where they differ, the answer here is "not sure", which is right on each.

Output size (``cv::resize``, imgproc/src/resize.cpp)::

    dsize given, both sides > 0       -> out = (dsize[1], dsize[0]); fx, fy only type-checked
    else (None, (0, 0), or any side <= 0: "empty")
        fx > 0 and fy > 0 (NaN fails)  -> out = (cvRound(rows * fy), cvRound(cols * fx))
        and both sides >= 1            else cv2 raises (-215 "inv_scale_x > 0" / "!dsize.empty()")

``rows * f`` is one IEEE double multiply (the int side converted exactly, float32 and float16
widened exactly, numpy ints converted to double), and ``cvRound`` rounds half to even: 0.5 * 7
-> 4, 0.5 * 9 -> 4. Python's ``round(float)`` is the same function. On x86-64 a product at or
beyond 2**31 becomes INT_MIN and cv2 raises; on ARM (``vcvtr``/``lrint``, also half to even)
it saturates and cv2 tries to allocate instead, so huge outputs are "not sure" here.

Accepted argument types (anything else: "not sure", although cv2 takes some of it):
  * dsize: None, or a tuple or list of exactly two Python ints (not bool) or numpy integers,
    each in [-2**31, 2**31 - 1]. cv2 rejects floats, numpy floats, bools, strings and values
    outside int32 ("Can't parse 'dsize'"), and other lengths ("Expected sequence length 2").
    It also takes ranges, numpy int arrays and sequence subclasses; not accepted here.
  * fx, fy: None (cv2 reads it as 0), Python int (not bool) or float, numpy integers, numpy
    float16/32/64. cv2 rejects bools, strings, complex, arrays, np.longdouble and ints too
    large for a double.
  * src shape: 2-D, or 3-D with 1..128 channels, both sides >= 1. A side of 0 raises
    ("!ssize.empty()"). 5.0 takes at most 128 channels (more raises "m->dims <= 2"), 4.x up to
    512 (more: a 3-D Mat and a different size). 0-D and 1-D arrays are treated as 1x1 and
    Nx1 (4.x) or 1xN (5.0); 4-D arrays raise on 5.0 but not on 4.x. None of those here.

Same size: when out == (rows, cols) cv2 copies src verbatim (``src.copyTo(dst)``) for every
interpolation, so such a frame is bit-exact only if the PL's scale-1 path is an exact copy.

``dst`` (the Python binding's conversion of an output array, then ``_dst.create``)::

    dst                                             cv2 does                    dst_target
    None                                            fresh array                 None
    ndarray (or subclass), writeable, plain layout:
        same shape and dtype as the output          writes in place,            dst
                                                    returns dst itself
                                                    (same object, subclass kept)
        other shape or dtype                        fresh array, dst untouched  None
    read-only ndarray (any shape)                   raises (4.11, 5.0); 4.5.5   Cv2Raises
                                                    writes into it anyway,
                                                    even into a bytes object
    layout not plain: Fortran order, transposed,    raises ("Layout of the
      column/channel-strided view, negative         output array ... is
      strides, 0-size, overlapping rows             incompatible with cv::Mat")  Cv2Raises
    dtype int64/uint64/complex/void/datetime/object raises                      Cv2Raises
    dtype bool, uint32                              fresh on 5.0, raises on 4.x Cv2Raises
    dtype float16, other shape                      fresh; raises on 4.5.5      Cv2Raises
    non-ndarray: list, str                          raises                      Cv2Raises
    non-ndarray: int, tuple                         fresh array                 Cv2Raises

"Plain layout": each row contiguous (channel stride = itemsize, pixel stride = itemsize *
channels) and rows at any positive stride no smaller than a row, so a row-strided view
``big[::2]`` of the right shape is written in place and returned (not C-contiguous). A 2-D
output with a (rows, cols, 1) ``dst`` is also written in place but returned 3-D; not handled
here. ``dst`` being ``src`` itself follows the same table: in place when the size is unchanged
(a copy of itself), a fresh array otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

import cv2
import numpy as np


def _unpatched_resize() -> Any:
    """cv2's own ``resize``: the object cv2 had before any patch (``pynq_cv.patch()``
    replaces the module attribute; a reloaded copy of this module must not take the patch
    for cv2's function)."""
    current = cv2.resize
    if (getattr(current, "__module__", None) or "").startswith(__package__ + "."):
        patching = sys.modules.get(__package__ + ".patching")
        original = getattr(patching, "_original", None)
        if original is not None:
            return original
        return getattr(sys.modules.get(__name__), "CV2_RESIZE", current)  # reloaded
    return current


# The original ``cv2.resize``: every fallback, measurement and comparison of pynq_cv calls
# this, never the module attribute a patch may have replaced (that would re-enter pynq_cv).
CV2_RESIZE = _unpatched_resize()


CN_MAX = 128
"""Most channels a 3-D array may have to be an image on every verified OpenCV (5.0: 128)."""

MAX_OUTPUT_PIXELS = 1 << 26
"""Above this (8192 x 8192) the output size is "not sure": cv2 may fail to allocate."""

_INT32_MIN = -(1 << 31)
_INT32_END = 1 << 31
_FLOAT_TYPES = (float, np.float64, np.float32, np.float16)

# dtypes every verified cv2 takes for ``dst`` (native byte order); others raise somewhere.
_DST_DTYPES = frozenset(np.dtype(c) for c in ("u1", "i1", "u2", "i2", "i4", "f4", "f8"))


class Cv2Raises(Exception):
    """cv2 would raise for this ``dst`` (or it is not sure that it would not): call cv2."""


def _int32(value: Any) -> int | None:
    if type(value) is int:
        pass
    elif isinstance(value, np.integer):
        value = int(value)
    else:
        return None
    return value if _INT32_MIN <= value < _INT32_END else None


def int_argument(value: Any) -> int | None:
    """The int cv2 reads from an integer argument such as ``interpolation`` (an int, an
    ``IntEnum``, a numpy integer; never a bool, which cv2 refuses), else None."""
    if type(value) is int:
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None


def _double(value: Any) -> float | None:
    if value is None:
        return 0.0
    if type(value) in _FLOAT_TYPES:
        return float(value)
    if type(value) is int or isinstance(value, np.integer):
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def _scaled(side: int, factor: float) -> int:
    """cvRound(side * factor), or 0 when out of int range (cv2 raises or allocates)."""
    product = side * factor
    if not product < 2147483648.0:  # also inf
        return 0
    return round(product)


def output_size(src_shape: tuple, dsize: Any, fx: Any = 0, fy: Any = 0) -> tuple[int, int] | None:
    """(out_rows, out_cols) as ``cv2.resize(src, dsize, fx=fx, fy=fy)`` computes them, or None
    when cv2 would raise or the rules here do not cover the arguments (then ask cv2)."""
    ndim = len(src_shape)
    if ndim == 3:
        if not 1 <= src_shape[2] <= CN_MAX:
            return None
    elif ndim != 2:
        return None
    rows, cols = src_shape[0], src_shape[1]
    if rows < 1 or cols < 1:
        return None
    fx = _double(fx)
    fy = _double(fy)
    if fx is None or fy is None:
        return None
    if dsize is None:
        width = height = 0
    elif type(dsize) is tuple or type(dsize) is list:
        if len(dsize) != 2:
            return None
        width = _int32(dsize[0])
        height = _int32(dsize[1])
        if width is None or height is None:
            return None
    else:
        return None
    if width <= 0 or height <= 0:
        if not (fx > 0 and fy > 0):
            return None
        width = _scaled(cols, fx)
        height = _scaled(rows, fy)
        if width <= 0 or height <= 0:
            return None
    if width * height > MAX_OUTPUT_PIXELS:
        return None
    return height, width


def result_shape(src_shape: tuple, size: tuple[int, int]) -> tuple[int, ...]:
    """The shape of cv2's result for a ``src_shape`` that ``output_size`` accepted: one channel
    gives a 2-D array, also for a (rows, cols, 1) source."""
    if len(src_shape) == 3 and src_shape[2] > 1:
        return (size[0], size[1], src_shape[2])
    return (size[0], size[1])


def _plain_layout(arr: np.ndarray) -> bool:
    """Every row contiguous, rows at a positive stride of at least a row: what the binding
    wraps as a cv::Mat without a copy (an output array needing a copy makes cv2 raise)."""
    shape = arr.shape
    strides = arr.strides
    item = arr.itemsize
    if len(shape) == 3:
        if not 1 <= shape[2] <= CN_MAX or strides[2] != item or strides[1] != item * shape[2]:
            return False
    elif len(shape) != 2 or strides[1] != item:
        return False
    return strides[0] >= shape[1] * strides[1] and arr.size > 0


def _geometry(shape: tuple) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)


def dst_target(dst: Any, out_shape: tuple, dtype: Any) -> np.ndarray | None:
    """The array ``cv2.resize(..., dst)`` writes into and returns (``dst`` itself), or None
    when cv2 returns a fresh array and leaves ``dst`` untouched.

    ``out_shape`` and ``dtype`` are those of cv2's result (see ``result_shape``). Raises
    ``Cv2Raises`` when cv2 would raise because of ``dst``, or when the rules here do not cover
    it; then call cv2, which raises or decides.
    """
    if dst is None:
        return None
    if not isinstance(dst, np.ndarray):
        raise Cv2Raises("dst is not an ndarray")
    if not dst.flags.writeable:
        raise Cv2Raises("dst is read-only")
    if dst.dtype not in _DST_DTYPES:
        raise Cv2Raises(f"dst dtype {dst.dtype} is not one cv2 takes on every version")
    if not _plain_layout(dst):
        raise Cv2Raises("dst layout is not one cv2 wraps without a copy")
    if dst.shape == out_shape:
        if dst.dtype == dtype:
            return dst
    elif _geometry(dst.shape) == _geometry(out_shape):
        raise Cv2Raises("dst is the same image with another shape: not covered")
    return None
