"""Host overhead of the PL path per frame, against the memcpy floor of the frame's bytes.

    python benchmarks/bench_pl_path.py [--short]

On the emulator, a PL frame's wall time is the host's work (dispatch, pool, copy in, copy
out, the driver's Python) plus the emulated board's (register accesses, flushes,
invalidates and the DMA and IP models, which a real board does in hardware, on the bus or
in cache maintenance). The emulated part is timed by wrapping the emulator's entry points
(bus reads/writes, the stream model, flush, invalidate); the rest is the host overhead, set
against
the time of plain ``np.copyto`` of the same input and output bytes under the same cache
conditions (the memcpy floor). The
zero-copy path (lent pool buffers for input and output) copies nothing. Target: host
overhead at most 1.2x the floor; 0 input copies on the zero-copy path. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager

import numpy as np

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.backends.emulator.memory import EmulatedBuffer
from pynq_cv.backends.emulator.overlay import BusPort, StreamPath

CASES = [
    ("1080p -> 960x540", (1080, 1920), (540, 960)),
    ("640x480 -> 320x240", (480, 640), (240, 320)),
]


class _EmulatorClock:
    """Accumulates wall time spent inside the emulated board (not host work)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.depth = 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            if self.depth:
                return fn(*args, **kwargs)
            self.depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.depth -= 1

        return timed


@contextmanager
def _timed_emulator(clock: _EmulatorClock):
    saved = [(cls, name, getattr(cls, name)) for cls, name in (
        (StreamPath, "advance"), (BusPort, "read"), (BusPort, "write"),
        (EmulatedBuffer, "flush"), (EmulatedBuffer, "invalidate"))]
    for cls, name, fn in saved:
        setattr(cls, name, clock.wrap(fn))
    try:
        yield
    finally:
        for cls, name, fn in saved:
            setattr(cls, name, fn)


def _memcpy_floor(in_hw, out_hw, repeats: int) -> float:
    """Copy the input's and the output's bytes once each, under the cache conditions of the
    real loop (the emulated IP runs in between, evicting both, as it does per frame), into
    a preallocated input buffer and a new output array (cv2's API returns a new array)."""
    src = np.random.default_rng(1).integers(0, 256, (*in_hw, 3), dtype=np.uint8)
    staging = np.empty_like(src)
    produced = np.empty((*out_hw, 3), np.uint8)
    times = []
    for _ in range(repeats):
        resize_exact(src, *out_hw, out=produced)  # untimed: what separates two frames
        t0 = time.perf_counter()
        np.copyto(staging, src)
        np.copyto(np.empty_like(produced), produced)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _measure(resizer, src, dsize, dst, frames: int) -> tuple[float, float]:
    clock = _EmulatorClock()
    resizer.resize(src, dsize, dst)  # plans, pool buffers: once per shape
    with _timed_emulator(clock):
        t0 = time.perf_counter()
        for _ in range(frames):
            resizer.resize(src, dsize, dst)
        total = time.perf_counter() - t0
    return total / frames, (total - clock.seconds) / frames


def _row(rz, name: str, path: str, src, dst, dsize, floor: float, frames: int) -> dict:
    before = rz.stats.snapshot()["copies_in"]
    total, host = _measure(rz, src, dsize, dst, frames)
    copies = rz.stats.snapshot()["copies_in"] - before
    return {
        "case": name, "path": path, "total_ms": total * 1e3, "host_ms": host * 1e3,
        "memcpy_floor_ms": floor * 1e3, "host_vs_floor": host / floor,
        "copies_in_per_frame": copies / (frames + 1),
    }


def run(short: bool = False) -> list[dict]:
    rows = []
    frames = 5 if short else 60
    for name, in_hw, out_hw in CASES:
        dsize = (out_hw[1], out_hw[0])
        floor = _memcpy_floor(in_hw, out_hw, 5 if short else 40)
        with pynq_cv.Resizer("emulator", policy="pl") as rz:
            src = np.random.default_rng(0).integers(0, 256, (*in_hw, 3), dtype=np.uint8)
            rows.append(_row(rz, name, "numpy frame", src, None, dsize, floor, frames))
            lent_src, lent_dst = rz.lend((*in_hw, 3)), rz.lend((*out_hw, 3))
            lent_src[:] = src
            rows.append(
                _row(rz, name, "zero copy (lent)", lent_src, lent_dst, dsize, floor, frames)
            )
            rz.give_back(lent_src)
            rz.give_back(lent_dst)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few iterations (CI)")
    args = parser.parse_args(argv)
    print(f"{'case':20} {'path':18} {'total ms':>9} {'host ms':>8} {'memcpy ms':>10} "
          f"{'host/floor':>10} {'copies in':>9}")
    for r in run(args.short):
        print(f"{r['case']:20} {r['path']:18} {r['total_ms']:9.3f} {r['host_ms']:8.3f} "
              f"{r['memcpy_floor_ms']:10.3f} {r['host_vs_floor']:10.2f} "
              f"{r['copies_in_per_frame']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
