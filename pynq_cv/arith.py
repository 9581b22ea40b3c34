"""The resizer IP's exact arithmetic (Vitis Vision bilinear, 8UC3, NPPC1).

Restated from ``shared/spec/resize-algorithm.md`` as integer math: Q32 scale, source
coordinates with 22 fractional bits, 10-bit weights, truncating blend. It is *not*
cv2's INTER_LINEAR (cv2 rounds; the IP truncates).

Two implementations of one formula:
- :func:`resize_reference` walks pixels with Python ints -- slow, obviously right, for tests;
- :class:`ResizePlan` plans coordinates and weights once per shape and blends whole frames
  with OpenCV's vectorised kernels -- what the emulated IP runs, bit-exact with the first.

How the fast path stays exact
-----------------------------
Every intermediate is an integer below 2^24, so float32 holds it exactly:

- gathers (``cv2.remap`` with ``INTER_NEAREST`` and integral maps) copy pixels, they do not
  interpolate;
- a coefficient ``k`` in [0, 1024] is split as ``k = 32*hi + lo`` (both fit a uint8 plane),
  so ``N = sum(k*P)`` is ``32 * sum(hi*P) + sum(lo*P)``, each product a ``uint8 x uint8``
  ``cv2.accumulateProduct`` into a float32 accumulator (exact: sums below 2^18);
- the final truncating ``N >> m`` is ``cv2.convertScaleAbs(N, alpha=2^-m, beta=-(2^m-1)/2^(m+1))``:
  ``N * 2^-m`` is exact, and subtracting just under a half moves every value strictly inside
  the rounding interval of ``floor(N / 2^m)``, so round-to-nearest returns the floor (no ties).

Frames whose weights are constant along both axes and each 0 or 512 (identity, and integer
downscales: 2x, 3x, 4x, ...) skip the weight planes: the blend is then a sum of 1, 2 or 4
gathered pixels and a shift, done in uint16.

Other frames pay for per-shape weight planes: eight uint8 planes of the output's size
(8 bytes per output pixel and channel), built on the first frame of a shape.

Frames above a quarter megapixel are cut into row bands run on a pool of (at most) two
daemon threads; OpenCV and numpy release the GIL. Work buffers are per thread and reused: fresh
multi-megabyte arrays cost more in page faults than the arithmetic does.
"""

from __future__ import annotations

import os
import queue
import threading
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

WEIGHT_BITS = 10
ONE = 1 << WEIGHT_BITS  # 1024: the weight of a whole pixel
FRAC_BITS = 22  # fractional bits the IP keeps of a source coordinate
HALF = ONE // 2  # the weight of an exact 2:1 (or 2k:1) downscale

_SPLIT_BITS = 5  # k = 32*hi + lo: hi in [0, 32], lo in [0, 31], both uint8
_BAND_PIXELS = 1 << 18  # output pixels per band: two bands for 960x540, eight for 1080p
_REMAP_MAX = 32767  # cv2.remap holds nearest source coordinates in int16


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


def coefficients(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """The blend's four coefficient planes (A0, A1, B0, B1) for column weights ``a``, row
    weights ``b``: each h x w, in [0, 1024], summing to 1024."""
    c = np.multiply.outer(np.asarray(b, dtype=np.int32), np.asarray(a, dtype=np.int32))
    c = (c >> WEIGHT_BITS).astype(np.int16)  # all four fit int16: half the memory traffic
    a = np.asarray(a, dtype=np.int16)[None, :]
    b = np.asarray(b, dtype=np.int16)[:, None]
    a1 = a - c
    b0 = b - c
    a0 = (ONE - c) - a1 - b0  # = 1024 - a - b + c
    return a0, a1, b0, c


# -- small helpers over OpenCV ------------------------------------------------------------


def _floor_shift(acc: np.ndarray, shift: int, dst: np.ndarray | None = None) -> np.ndarray:
    """uint8 ``floor(acc / 2^shift)`` of a non-negative integral array (exact, see module doc)."""
    alpha = 1.0 / (1 << shift)
    beta = -((1 << shift) - 1) / float(2 << shift)
    return cv2.convertScaleAbs(acc, dst=dst, alpha=alpha, beta=beta)


def _progression(idx: np.ndarray) -> tuple[int, int] | None:
    """(start, step) if ``idx`` is an increasing arithmetic progression, else None."""
    if len(idx) == 1:
        return int(idx[0]), 1
    step = int(idx[1] - idx[0])
    if step >= 1 and np.array_equal(np.diff(idx), np.full(len(idx) - 1, step)):
        return int(idx[0]), step
    return None


class _Axis:
    """One axis of a plan: indices, weights and what is special about them."""

    def __init__(self, n_src: int, n_dst: int) -> None:
        self.i0, self.i1, self.w = axis_plan(n_src, n_dst)
        self.n_src, self.n_dst = n_src, n_dst
        self.zero = not self.w.any()  # only i0 matters
        self.half = bool((self.w == HALF).all())  # (P[i0] + P[i1]) / 2 exactly
        self.identity = self.zero and n_src == n_dst and _progression(self.i0) == (0, 1)
        self.run0 = _progression(self.i0)
        self.run1 = _progression(self.i1)


_scratch_store = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread work buffer, reused from call to call.

    Fresh multi-megabyte arrays come from mmap and cost a page fault per 4 KiB on first
    touch, which took longer than the arithmetic; a band's buffers are small and kept."""
    buffers = getattr(_scratch_store, "buffers", None)
    if buffers is None:
        buffers = _scratch_store.buffers = {}
    size = int(np.prod(shape))
    key = (name, np.dtype(dtype).str)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _rows(
    src: np.ndarray, idx: np.ndarray, run: tuple[int, int] | None, r0: int, r1: int, name: str
) -> np.ndarray:
    """src rows idx[r0:r1]: a strided view when they progress evenly, else a copy."""
    if run is not None:
        start, step = run
        first = start + step * r0
        return src[first : first + step * (r1 - r0) : step]
    buf = _scratch(name, (r1 - r0,) + src.shape[1:], src.dtype)
    return np.take(src, idx[r0:r1], axis=0, out=buf)


# -- the thread pool ---------------------------------------------------------------------

_WORKERS = max(1, min(2, os.cpu_count() or 1))
_pool_lock = threading.Lock()
_pool: tuple[int, _BandPool] | None = None


class _Band:
    """One band's work and its completion. ``done`` is a plain lock held until the band has
    run: a C-level lock that an interrupt cannot leave half taken (a Future's Condition is
    Python code, and a Ctrl-C landing inside it would leave its lock held and a worker stuck
    forever)."""

    __slots__ = ("fn", "args", "done", "error", "finished")

    def __init__(self, fn: Any, args: tuple[Any, ...]) -> None:
        self.fn: Any = fn
        self.args: tuple[Any, ...] = args
        self.error: BaseException | None = None
        self.finished = False  # set before ``done`` is released (read by an interrupted wait)
        self.done = threading.Lock()
        self.done.acquire()

    def run(self) -> None:
        try:
            self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 -- the caller raises it
            self.error = exc
        finally:
            self.fn, self.args = None, ()  # no frame kept alive between bands
            self.finished = True
            self.done.release()


def _wait_all(bands: list[_Band]) -> None:
    """Wait until every band has stopped writing, even when interrupted (the frame's
    buffers may be given back right after), then raise the first band's error."""
    pending = list(bands)
    try:
        while pending:
            pending[0].done.acquire()
            pending.pop(0)
    finally:
        for band in pending:  # interrupted: the bands still finish (each is bounded work);
            # the interrupt may land after an acquire that succeeded: ``finished`` ends it
            while not band.finished and not band.done.acquire(timeout=0.05):
                pass
    for band in bands:
        if band.error is not None:
            raise band.error


class _BandPool:
    """A few daemon threads running a frame's bands: the caller waits for its own bands,
    so nothing is lost when the process ends, and these threads never keep a process
    alive (a ThreadPoolExecutor's do, until interpreter exit, and a runner that joins
    threads would wait on them forever)."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[_Band | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"pynq_cv-ip_{i}", daemon=True)
            for i in range(workers)
        ]
        self._started = False

    def submit(self, fn: Any, *args: Any) -> _Band:
        if not self._started:  # under _pool_lock (see _submit)
            self._started = True
            for thread in self._threads:
                thread.start()
        band = _Band(fn, args)
        self._jobs.put(band)
        return band

    def shutdown(self) -> None:
        """Each worker ends after the bands already queued."""
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            band = self._jobs.get()
            if band is None:
                return
            band.run()
            del band


def _submit(fn: Any, *args: Any) -> _Band:
    """Run ``fn(*args)`` on the band pool, created lazily and anew in a forked child (its
    threads do not fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), _BandPool(_WORKERS))
        return _pool[1].submit(fn, *args)


def set_workers(n: int) -> None:
    """Threads a frame's bands run on (1: everything on the calling thread)."""
    global _WORKERS, _pool
    if n < 1:
        raise ValueError("need at least one worker")
    with _pool_lock:
        _WORKERS = int(n)
        if _pool is not None:
            _pool[1].shutdown()
            _pool = None


# -- the plan ----------------------------------------------------------------------------


class ResizePlan:
    """Per-shape coordinates and weights, planned once; ``plan(src)`` blends a frame."""

    def __init__(self, in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> None:
        if min(in_rows, in_cols, out_rows, out_cols) < 1:
            raise ValueError(
                f"sizes must be positive: {in_rows}x{in_cols} -> {out_rows}x{out_cols}"
            )
        self.in_shape = (in_rows, in_cols)
        self.out_shape = (out_rows, out_cols)
        self._ry = _Axis(in_rows, out_rows)
        self._rx = _Axis(in_cols, out_cols)
        self.y0, self.y1, self.b = self._ry.i0, self._ry.i1, self._ry.w
        self.x0, self.x1, self.a = self._rx.i0, self._rx.i1, self._rx.w
        ry, rx = self._ry, self._rx
        # Constant weights of 0 or 1/2 on both axes: a sum of gathered pixels and a shift.
        self.simple = (ry.zero or ry.half) and (rx.zero or rx.half)
        self.shift = int(ry.half) + int(rx.half)
        self._gather_cols = not rx.identity
        self._remap = max(in_rows, in_cols) < _REMAP_MAX
        band = max(1, min(out_rows, _BAND_PIXELS // out_cols))
        self._band = band
        self._bands = [(r, min(out_rows, r + band)) for r in range(0, out_rows, band)]
        # Band-local nearest maps: column x0 / x1, row = the band's own row.
        self._map_y = np.repeat(np.arange(band, dtype=np.float32)[:, None], out_cols, axis=1)
        self._map_x0 = np.repeat(rx.i0.astype(np.float32)[None, :], band, axis=0)
        self._map_x1 = np.repeat(rx.i1.astype(np.float32)[None, :], band, axis=0)
        self._planes: dict[int, list[tuple[np.ndarray | None, np.ndarray | None]]] = {}
        self._planes_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def __call__(self, src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        src = np.asarray(src)
        if src.dtype != np.uint8:
            raise TypeError(f"the IP takes 8-bit pixels, not {src.dtype}")
        if src.ndim not in (2, 3) or src.shape[:2] != self.in_shape:
            raise ValueError(f"expected a {self.in_shape} frame, got shape {src.shape}")
        flat = src.ndim == 2
        frame = src[:, :, None] if flat else src
        if not frame.flags.c_contiguous:
            frame = np.ascontiguousarray(frame)
        channels = frame.shape[2]
        rows, cols = self.out_shape
        shape = (rows, cols) if flat else (rows, cols, channels)
        if out is None:
            result = np.empty(shape, dtype=np.uint8)
            self._run(frame, result.reshape(rows, cols * channels))
            return result
        if out.shape != shape or out.dtype != np.uint8:
            raise ValueError(f"out must be uint8 {shape}, got {out.dtype} {out.shape}")
        target = _row_view(out, rows, cols * channels)
        if target is None:  # a layout OpenCV cannot write (column-strided, flipped...)
            target = np.empty((rows, cols * channels), dtype=np.uint8)
            self._run(frame, target)
            np.copyto(out, target.reshape(shape))
        else:
            self._run(frame, target)
        return out

    # -- bands -----------------------------------------------------------------------------

    def _run(self, frame: np.ndarray, dst: np.ndarray) -> None:
        if self.simple and self.shift == 0 and self._ry.identity and self._rx.identity:
            np.copyto(dst, frame.reshape(dst.shape))
            return
        job = self._band_simple if self.simple else self._band_general
        planes = None if self.simple else self._planes_for(frame.shape[2])
        if len(self._bands) == 1 or _WORKERS == 1:
            for r0, r1 in self._bands:
                job(frame, dst, planes, r0, r1)
            return
        _wait_all([_submit(job, frame, dst, planes, r0, r1) for r0, r1 in self._bands])

    def _cols(self, rows_img: np.ndarray, which: int, n: int, name: str) -> np.ndarray:
        """Columns x0 (which=0) or x1 of a band's gathered rows, as (n, cols*channels)."""
        if not self._gather_cols:
            return rows_img.reshape(n, -1)
        idx = self._rx.i0 if which == 0 else self._rx.i1
        cols = self.out_shape[1]
        buf = _scratch(name, (n, cols) + rows_img.shape[2:], rows_img.dtype)
        if not self._remap:
            np.take(rows_img, idx, axis=1, out=buf)
            return buf.reshape(n, -1)
        map_x = self._map_x0 if which == 0 else self._map_x1
        picked = cv2.remap(rows_img, map_x[:n], self._map_y[:n], cv2.INTER_NEAREST, dst=buf)
        return picked.reshape(n, -1)

    def _band_simple(self, frame, dst, _planes, r0: int, r1: int) -> None:
        """Weights constant and each 0 or 1/2: sum 1, 2 or 4 pixels, then shift."""
        ry, rx, n = self._ry, self._rx, r1 - r0
        top = _rows(frame, ry.i0, ry.run0, r0, r1, "top")
        if ry.half:
            bottom = _rows(frame, ry.i1, ry.run1, r0, r1, "bottom")
            rows_img = _scratch("rowsum", top.shape, np.uint16)
            np.add(top, bottom, out=rows_img, dtype=np.uint16)
        else:
            rows_img = top
        total = self._cols(rows_img, 0, n, "left")
        if rx.half:
            right = self._cols(rows_img, 1, n, "right")
            if total.dtype == np.uint8:
                pair = _scratch("pairsum", total.shape, np.uint16)
                total = np.add(total, right, out=pair, dtype=np.uint16)
            else:
                total = cv2.add(total, right, dst=total)
        if self.shift == 0:
            np.copyto(dst[r0:r1], total)
        else:
            band = dst[r0:r1]
            _store(_floor_shift(total, self.shift, band), band)

    def _band_general(self, frame, dst, planes, r0: int, r1: int) -> None:
        """Any weights: four gathers, uint8 x uint8 products into a float32 accumulator."""
        ry, n = self._ry, r1 - r0
        top = _rows(frame, ry.i0, ry.run0, r0, r1, "top")
        if planes[2] is None and planes[3] is None:  # no row weight anywhere
            bottom = None
        else:
            bottom = _rows(frame, ry.i1, ry.run1, r0, r1, "bottom")
        acc = _scratch("acc", (n, dst.shape[1]), np.float32)
        acc.fill(0)
        gathered: list[np.ndarray | None] = [None] * 4
        terms = ((top, 0), (top, 1), (bottom, 0), (bottom, 1))
        for t, (rows_img, which) in enumerate(terms):
            if planes[t] is not None:
                gathered[t] = self._cols(rows_img, which, n, f"term{t}")
        lo_any = False
        for t in range(4):
            if planes[t] is None:
                continue
            hi, lo = planes[t]
            if hi is not None:
                cv2.accumulateProduct(gathered[t], hi[r0:r1], acc)
            lo_any = lo_any or lo is not None
        shift = WEIGHT_BITS - _SPLIT_BITS
        if lo_any:
            np.multiply(acc, float(1 << _SPLIT_BITS), out=acc)
            for t in range(4):
                if planes[t] is not None and planes[t][1] is not None:
                    cv2.accumulateProduct(gathered[t], planes[t][1][r0:r1], acc)
            shift = WEIGHT_BITS
        band = dst[r0:r1]
        _store(_floor_shift(acc, shift, band), band)

    # -- weights ---------------------------------------------------------------------------

    def _planes_for(self, channels: int) -> list:
        """Per channel count: for each term (A0, A1, B0, B1) None if its coefficient is zero
        everywhere, else (hi, lo) uint8 planes (rows, cols*channels), each None if all zero."""
        with self._planes_lock:
            planes = self._planes.get(channels)
            if planes is None:
                planes = []
                for k in coefficients(self.a, self.b):
                    if not k.any():
                        planes.append(None)
                        continue
                    pair = []
                    for part in (k >> _SPLIT_BITS, k & ((1 << _SPLIT_BITS) - 1)):
                        if part.any():
                            plane = np.empty(part.shape + (channels,), dtype=np.uint8)
                            plane[...] = part[:, :, None]
                            pair.append(plane.reshape(part.shape[0], -1))
                        else:
                            pair.append(None)
                    planes.append(tuple(pair))
                self._planes[channels] = planes
            return planes


def _row_view(out: np.ndarray, rows: int, width: int) -> np.ndarray | None:
    """``out`` as a (rows, width) uint8 ndarray sharing its memory, if OpenCV can write it:
    contiguous pixels within a row, rows at a non-negative stride."""
    base = out.view(np.ndarray)
    if base.ndim == 3:
        _, cols, channels = base.shape
        if channels > 1 and base.strides[2] != 1:
            return None
        if cols > 1 and base.strides[1] != channels:
            return None
    elif base.shape[1] > 1 and base.strides[1] != 1:
        return None
    step = base.strides[0]
    if rows > 1 and step < width:
        return None
    return np.lib.stride_tricks.as_strided(base, shape=(rows, width), strides=(step, 1))


def _store(result: np.ndarray, dst: np.ndarray) -> None:
    """OpenCV wrote into ``dst`` unless it had to allocate; then copy."""
    if result is not dst:
        np.copyto(dst, result.reshape(dst.shape))


@lru_cache(maxsize=16)
def plan_for(in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> ResizePlan:
    return ResizePlan(in_rows, in_cols, out_rows, out_cols)


def resize_exact(
    src: np.ndarray, rows: int, cols: int, out: np.ndarray | None = None
) -> np.ndarray:
    """The IP's output for ``src`` (H x W x C uint8) at ``rows`` x ``cols``."""
    return plan_for(src.shape[0], src.shape[1], rows, cols)(src, out)


def _after_fork_in_child() -> None:
    """A forked child gets fresh locks and plans: a parent thread may have held one."""
    global _pool_lock, _pool
    _pool_lock = threading.Lock()
    _pool = None
    plan_for.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
