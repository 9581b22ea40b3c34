"""How fast the emulated resizer IP computes a frame, next to cv2.resize on the same frame.

    python benchmarks/bench_emulated_ip.py [--short]

The emulated IP here is its pixel path, ``resize_exact`` (bit-exact with the hardware); cv2
is ``cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)``. Both run in the same loop,
alternating frame by frame, so a busy machine slows both alike; the figures are medians.
``--short`` does a few iterations (CI). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from pynq_cv.backends.emulator.arith import plan_for, resize_exact

# (name, (H, W) in, (h, w) out)
CASES = [
    ("1080p -> 960x540", (1080, 1920), (540, 960)),
    ("4K -> 1080p", (2160, 3840), (1080, 1920)),
    ("640x480 -> 320x240", (480, 640), (240, 320)),
]

_FULL_SECONDS = 1.0  # per case, both sides together
_FULL_MAX_ITERATIONS = 300
_SHORT_ITERATIONS = 5


def _measure(in_hw, out_hw, short: bool) -> dict:
    rows, cols = out_hw
    frame = np.random.default_rng(0).integers(0, 256, size=(*in_hw, 3), dtype=np.uint8)
    out = np.empty((rows, cols, 3), dtype=np.uint8)
    plan = plan_for(in_hw[0], in_hw[1], rows, cols)
    resize_exact(frame, rows, cols, out=out)  # plan, weights, thread pool: once per shape
    cv2.resize(frame, (cols, rows), interpolation=cv2.INTER_LINEAR)

    ip_times: list[float] = []
    cv2_times: list[float] = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        resize_exact(frame, rows, cols, out=out)
        t1 = time.perf_counter()
        cv2.resize(frame, (cols, rows), interpolation=cv2.INTER_LINEAR)
        t2 = time.perf_counter()
        ip_times.append(t1 - t0)
        cv2_times.append(t2 - t1)
        done = len(ip_times)
        if short and done >= _SHORT_ITERATIONS:
            break
        if not short and (
            done >= _FULL_MAX_ITERATIONS or time.perf_counter() - started >= _FULL_SECONDS
        ):
            break
    ip_ms = statistics.median(ip_times) * 1e3
    cv2_ms = statistics.median(cv2_times) * 1e3
    return {
        "in_shape": tuple(in_hw),
        "out_shape": tuple(out_hw),
        "path": "pixel-sum" if plan.simple else "general",
        "iterations": len(ip_times),
        "ip_ms": ip_ms,
        "ip_fps": 1e3 / ip_ms,
        "cv2_ms": cv2_ms,
        "cv2_fps": 1e3 / cv2_ms,
        "ratio": ip_ms / cv2_ms,
    }


def run(short: bool) -> list[dict]:
    """One row per case: shapes, median ms/frame and fps of the emulated IP and of cv2,
    and their ratio (IP time / cv2 time), measured in this run."""
    rows = []
    for name, in_hw, out_hw in CASES:
        row = _measure(in_hw, out_hw, short)
        row["case"] = name
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    header = (
        f"{'case':<20} {'path':<9} {'IP ms':>8} {'IP fps':>8} "
        f"{'cv2 ms':>8} {'cv2 fps':>8} {'IP/cv2':>7} {'n':>4}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['case']:<20} {r['path']:<9} {r['ip_ms']:8.2f} {r['ip_fps']:8.1f} "
            f"{r['cv2_ms']:8.2f} {r['cv2_fps']:8.1f} {r['ratio']:6.1f}x {r['iterations']:4d}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a few iterations (CI)")
    args = parser.parse_args(argv)
    print(f"numpy {np.__version__}, OpenCV {cv2.__version__}, {cv2.getNumThreads()} cv2 threads")
    print(format_rows(run(args.short)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
