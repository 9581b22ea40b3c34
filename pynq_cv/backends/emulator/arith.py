"""The resizer IP's exact arithmetic (Vitis Vision bilinear, 8UC3, NPPC1).

Restated from ``shared/spec/resize-algorithm.md`` as integer math: Q32 scale, source
coordinates with 22 fractional bits, 10-bit weights, truncating blend. It is *not*
cv2's INTER_LINEAR (cv2 rounds; the IP truncates).

Two implementations of one formula:
- :func:`resize_reference` walks pixels with Python ints -- slow, obviously right, for tests;
- :class:`ResizePlan` plans coordinates and weights once per shape and blends whole frames
  with numpy -- what the emulated IP runs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WEIGHT_BITS = 10
ONE = 1 << WEIGHT_BITS  # 1024: the weight of a whole pixel
FRAC_BITS = 22  # fractional bits the IP keeps of a source coordinate


def scale_q32(n_src: int, n_dst: int) -> int:
    """Q32 scale factor, truncated: floor(n_src * 2^32 / n_dst)."""
    return (n_src << 32) // n_dst


def source_coordinate(k: int, n_src: int, n_dst: int) -> tuple[int, int, int]:
    """(i0, i1, weight) of output index ``k`` along one axis, with Python ints."""
    n = (2 * k + 1) * scale_q32(n_src, n_dst) - (1 << 32)
    t = n >> (33 - FRAC_BITS)  # (k + 0.5) * S - 0.5 in Q22, floored
    t = min(max(t, 0), (n_src - 1) << FRAC_BITS)
    i0 = t >> FRAC_BITS
    weight = (t - (i0 << FRAC_BITS)) >> (FRAC_BITS - WEIGHT_BITS)
    i1 = i0 if i0 == n_src - 1 else i0 + 1
    return i0, i1, weight


def resize_reference(src: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Loop-level integer implementation of the IP; for small frames in tests."""
    height, width = src.shape[:2]
    out = np.empty((rows, cols, src.shape[2]), dtype=np.uint8)
    xs = [source_coordinate(j, width, cols) for j in range(cols)]
    for i in range(rows):
        y0, y1, b = source_coordinate(i, height, rows)
        for j, (x0, x1, a) in enumerate(xs):
            c = (a * b) >> WEIGHT_BITS
            for ch in range(src.shape[2]):
                a0, a1 = int(src[y0, x0, ch]), int(src[y0, x1, ch])
                b0, b1 = int(src[y1, x0, ch]), int(src[y1, x1, ch])
                acc = a0 * (ONE - a - b + c) + a1 * (a - c) + b0 * (b - c) + b1 * c
                out[i, j, ch] = acc >> WEIGHT_BITS
    return out


def axis_plan(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`source_coordinate` for a whole axis: (i0, i1, weight) arrays."""
    k = np.arange(n_dst, dtype=np.int64)
    t = (2 * k + 1) * scale_q32(n_src, n_dst) - (1 << 32)
    t = np.clip(t >> (33 - FRAC_BITS), 0, (n_src - 1) << FRAC_BITS)
    i0 = t >> FRAC_BITS
    weight = (t - (i0 << FRAC_BITS)) >> (FRAC_BITS - WEIGHT_BITS)
    i1 = np.minimum(i0 + 1, n_src - 1)
    return i0.astype(np.intp), i1.astype(np.intp), weight.astype(np.int32)


class ResizePlan:
    """Per-shape coordinates and weights, planned once; ``plan(src)`` blends a frame."""

    def __init__(self, in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> None:
        self.in_shape = (in_rows, in_cols)
        self.out_shape = (out_rows, out_cols)
        self.y0, self.y1, b = axis_plan(in_rows, out_rows)
        self.x0, self.x1, a = axis_plan(in_cols, out_cols)
        b = b[:, None, None]
        a = a[None, :, None]
        c = (a * b) >> WEIGHT_BITS
        # N = (1024-b)*A0 + b*B0 + (a-c)*(A1-A0) + c*(B1-B0)
        self.w_a0 = (ONE - b).astype(np.int32)
        self.w_b0 = b.astype(np.int32)
        self.w_ha = (a - c).astype(np.int32)
        self.w_hb = c.astype(np.int32)

    def __call__(self, src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        r0 = src[self.y0]
        r1 = src[self.y1]
        a0 = r0[:, self.x0].astype(np.int32)
        a1 = r0[:, self.x1].astype(np.int32)
        b0 = r1[:, self.x0].astype(np.int32)
        b1 = r1[:, self.x1].astype(np.int32)
        acc = a0 * self.w_a0
        acc += b0 * self.w_b0
        acc += (a1 - a0) * self.w_ha
        acc += (b1 - b0) * self.w_hb
        acc >>= WEIGHT_BITS
        if out is None:
            return acc.astype(np.uint8)
        np.copyto(out, acc, casting="unsafe")
        return out


@lru_cache(maxsize=32)
def plan_for(in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> ResizePlan:
    return ResizePlan(in_rows, in_cols, out_rows, out_cols)


def resize_exact(src: np.ndarray, rows: int, cols: int, out: np.ndarray | None = None) -> np.ndarray:
    """The IP's output for ``src`` (H x W x C uint8) at ``rows`` x ``cols``."""
    return plan_for(src.shape[0], src.shape[1], rows, cols)(src, out)
