"""What the dispatch costs a frame the PL does not take, next to a direct cv2.resize call.

    python benchmarks/bench_fallback.py [--short]

Same run, same frames, interleaved: ``cv2.resize`` (the original), ``pynq_cv.resize`` and
the patched ``cv2.resize`` on frames that fall back (grayscale, INTER_AREA) with the PL path
open on the emulator, and on the ``cpu`` backend. Reported: added microseconds per call
(median over repeats of the per-call mean). Target: under 0.5 us. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

import pynq_cv
from pynq_cv.dispatch import CV2_RESIZE

CASES = [
    ("32x32 gray -> 16x16", (32, 32), (16, 16), cv2.INTER_LINEAR),
    ("640x480 gray -> 320x240", (480, 640), (320, 240), cv2.INTER_LINEAR),
    ("32x32 BGR INTER_AREA", (32, 32, 3), (16, 16), cv2.INTER_AREA),
    ("640x480 BGR INTER_AREA", (480, 640, 3), (320, 240), cv2.INTER_AREA),
]


def _per_call(fn, src, dsize, interp, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn(src, dsize, None, 0, 0, interp)
    return (time.perf_counter() - t0) / calls


def _measure(resizer: pynq_cv.Resizer, shape, dsize, interp, short: bool) -> dict:
    src = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    calls = 50 if short else (2000 if src.size < 10_000 else 200)
    repeats = 3 if short else 15
    direct, ours = [], []
    for _ in range(repeats):
        direct.append(_per_call(CV2_RESIZE, src, dsize, interp, calls))
        ours.append(_per_call(resizer.resize, src, dsize, interp, calls))
    d, o = statistics.median(direct), statistics.median(ours)
    return {"cv2_us": d * 1e6, "pynq_cv_us": o * 1e6, "added_us": (o - d) * 1e6}


def run(short: bool = False) -> list[dict]:
    rows = []
    for backend in ("emulator", "cpu"):
        with pynq_cv.Resizer(backend) as resizer:
            resizer.open()
            for name, shape, dsize, interp in CASES:
                row = {"case": name, "backend": backend}
                row.update(_measure(resizer, shape, dsize, interp, short))
                rows.append(row)
    # an eligible frame that the routing plan sends to cv2 (policy latency: cv2 is faster)
    with pynq_cv.Resizer("emulator", policy="latency") as resizer:
        resizer.open()
        row = {"case": "32x32 BGR LINEAR, planned", "backend": "emulator cpu_faster"}
        row.update(_measure(resizer, (32, 32, 3), (16, 16), cv2.INTER_LINEAR, short))
        rows.append(row)
    pynq_cv.use_backend("emulator")
    pynq_cv.default_resizer().open()
    with pynq_cv.patched():
        for name, shape, dsize, interp in CASES[:2]:
            row = {"case": name, "backend": "patched cv2.resize"}
            src = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
            calls = 50 if short else 1000
            d = min(_per_call(CV2_RESIZE, src, dsize, interp, calls) for _ in range(5))
            o = min(_per_call(cv2.resize, src, dsize, interp, calls) for _ in range(5))
            row.update(cv2_us=d * 1e6, pynq_cv_us=o * 1e6, added_us=(o - d) * 1e6)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few iterations (CI)")
    args = parser.parse_args(argv)
    print(f"{'case':26} {'backend':20} {'cv2 us':>9} {'pynq_cv us':>11} {'added us':>9}")
    for r in run(args.short):
        print(f"{r['case']:26} {r['backend']:20} {r['cv2_us']:9.2f} {r['pynq_cv_us']:11.2f} "
              f"{r['added_us']:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
