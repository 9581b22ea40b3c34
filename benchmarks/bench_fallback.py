"""What the dispatch costs a frame the PL does not take, next to a direct cv2.resize call.

    python benchmarks/bench_fallback.py [--short]

Same run, same frames, interleaved: ``cv2.resize`` (the original) against each way in --
``Resizer.resize``, ``pynq_cv.resize`` and the patched ``cv2.resize`` -- for each reason a
frame falls back (grayscale, not uint8, not INTER_LINEAR given positionally and by keyword)
with the PL path open on the emulator, and every frame on the ``cpu`` backend. Reported:
added microseconds per call: the median over samples of the difference of the per-call
means, the two timed in alternation so a loaded machine disturbs both alike
(``added_us``), and the difference of the fastest samples (``added_min_us``).
Target: under 0.5 us. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import cv2
import numpy as np

import pynq_cv
from pynq_cv.cv2compat import CV2_RESIZE

# (case, source shape, dtype, dsize, interpolation, given as a keyword)
CASES = [
    ("32x32 gray", (32, 32), np.uint8, (16, 16), cv2.INTER_LINEAR, False),
    ("640x480 gray", (480, 640), np.uint8, (320, 240), cv2.INTER_LINEAR, False),
    ("32x32x3 float32", (32, 32, 3), np.float32, (16, 16), cv2.INTER_LINEAR, False),
    ("32x32 BGR NEAREST", (32, 32, 3), np.uint8, (16, 16), cv2.INTER_NEAREST, False),
    ("32x32 BGR NEAREST kw", (32, 32, 3), np.uint8, (16, 16), cv2.INTER_NEAREST, True),
    ("640x480 BGR NEAREST kw", (480, 640, 3), np.uint8, (320, 240), cv2.INTER_NEAREST, True),
]
CPU_CASES = [  # the cpu backend: every frame, the eligible kind included
    ("32x32 BGR LINEAR", (32, 32, 3), np.uint8, (16, 16), cv2.INTER_LINEAR, False),
    ("32x32 gray", (32, 32), np.uint8, (16, 16), cv2.INTER_LINEAR, False),
]


def _per_call(fn: Any, src: np.ndarray, dsize: Any, interp: int, kw: bool, calls: int) -> float:
    if kw:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(src, dsize, interpolation=interp)
        return (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(src, dsize, None, 0, 0, interp)
    return (time.perf_counter() - t0) / calls


def _row(way: str, fn: Any, case: tuple, backend: str, short: bool) -> dict:
    name, shape, dtype, dsize, interp, kw = case
    src = np.random.default_rng(0).integers(0, 256, shape).astype(dtype)
    calls = 200 if src.size < 10_000 else 20
    samples = 15 if short else 151
    direct, ours = [], []
    _per_call(fn, src, dsize, interp, kw, 10)  # warm
    for _ in range(samples):  # alternating: a loaded machine disturbs both alike
        direct.append(_per_call(CV2_RESIZE, src, dsize, interp, kw, calls))
        ours.append(_per_call(fn, src, dsize, interp, kw, calls))
    added = statistics.median(b - a for a, b in zip(direct, ours, strict=True))
    return {"case": name, "backend": backend, "way": way,
            "cv2_us": statistics.median(direct) * 1e6,
            "pynq_cv_us": statistics.median(ours) * 1e6,
            "added_us": added * 1e6,  # the median of the paired differences
            "added_min_us": (min(ours) - min(direct)) * 1e6}  # the least disturbed of each


def _ways(resizer: pynq_cv.Resizer) -> list[tuple[str, Any]]:
    return [("Resizer.resize", resizer.resize), ("pynq_cv.resize", pynq_cv.resize),
            ("patched cv2.resize", None)]


def run(short: bool = False) -> list[dict]:
    rows = []
    for backend, cases in (("emulator", CASES), ("cpu", CPU_CASES)):
        resizer = pynq_cv.use_backend(backend)
        if backend != "cpu":
            resizer.open()
        for case in cases:
            for way, fn in _ways(resizer):
                if fn is None:
                    with pynq_cv.patched():
                        rows.append(_row(way, cv2.resize, case, backend, short))
                else:
                    rows.append(_row(way, fn, case, backend, short))
    pynq_cv.close()
    # an eligible frame that the routing plan sends to cv2 (policy latency: cv2 is faster)
    with pynq_cv.Resizer("emulator", policy="latency") as resizer:
        resizer.open()
        case = ("32x32 BGR LINEAR, planned", (32, 32, 3), np.uint8, (16, 16),
                cv2.INTER_LINEAR, False)
        rows.append(_row("Resizer.resize", resizer.resize, case, "emulator cpu_faster", short))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few iterations (CI)")
    args = parser.parse_args(argv)
    print(f"{'case':26} {'backend':20} {'way':19} {'cv2 us':>8} {'pynq_cv us':>10} "
          f"{'added us':>8} {'(of min)':>8}")
    for r in run(args.short):
        print(f"{r['case']:26} {r['backend']:20} {r['way']:19} {r['cv2_us']:8.2f} "
              f"{r['pynq_cv_us']:10.2f} {r['added_us']:8.2f} {r['added_min_us']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
