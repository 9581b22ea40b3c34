"""Does a cache flush reach the PL on this image, and an invalidate bring its output back?

On a Zynq the DMA does not snoop the CPU's caches: a cacheable input must be flushed before
the PL reads it, a cacheable output invalidated before the CPU reads it. pynq does both
through XRT, whose embedded sync did nothing until Xilinx/XRT#891 and whose CMA flush was
fixed only in Xilinx/XRT#8957 -- so on some images a flush may be a no-op, which gives
wrong pixels, not merely other timings. ``check`` runs two known patterns through the PL
with every pairing of buffer kinds and names the failure from which pairings go wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .arith import resize_exact
from .watch import difference

SIZES = (480, 640, 240, 320)  # in rows, in cols, out rows, out cols
SENTINEL = 0xA5  # what an output buffer holds before the PL writes it
FLUSH_FAILURE = "flush does not reach the PL on this image"
INVALIDATE_FAILURE = "invalidate does not bring the PL's output to the CPU on this image"


def check(engine: Any, found: dict[str, Any]) -> None:
    """Fill ``found`` as the cases run (an interrupt keeps the finished ones): ``sizes``,
    ``cases`` (one per input x output kind), ``failure`` (the named cause, or None) and at
    the end ``ok`` (every case exact; False also when a PL fault left a case unsettled)."""
    found.update(sizes=list(SIZES), cases=[], failure=None)
    failed = set()
    for in_cacheable in (True, False):
        for out_cacheable in (True, False):
            case = _case(engine, in_cacheable, out_cacheable)
            found["cases"].append(case)
            if case["exact"] is False:
                failed.add((in_cacheable, out_cacheable))
    found["ok"] = not failed and all(case["exact"] for case in found["cases"])
    if failed:
        found["failure"] = _cause(failed)


def _cause(failed: set[tuple[bool, bool]]) -> str:
    """The failure that the failing (input cacheable, output cacheable) pairings point to."""
    flush_bad = {(True, True), (True, False)} <= failed and not (
        {(False, True), (False, False)} & failed)
    invalidate_bad = {(True, True), (False, True)} <= failed and not (
        {(True, False), (False, False)} & failed)
    if flush_bad:
        return FLUSH_FAILURE
    if invalidate_bad:
        return INVALIDATE_FAILURE
    if failed == {(True, True)}:
        return f"{FLUSH_FAILURE}, or invalidate does not bring its output back"
    return "the PL's output differs from the IP's exact arithmetic with every buffer kind " \
           "(see verify)"


def _case(engine: Any, in_cacheable: bool, out_cacheable: bool) -> dict[str, Any]:
    """Two known patterns, one after the other, through buffers of the given kinds: the
    second catches a flush that reaches the PL only by a cache line's chance eviction."""
    from .cli.verify import pattern_frame  # the command line's patterns: after cli loads

    hw = engine.board
    in_rows, in_cols, out_rows, out_cols = SIZES
    src = hw.allocate((in_rows, in_cols, 3), np.uint8, cacheable=in_cacheable)
    dst = hw.allocate((out_rows, out_cols, 3), np.uint8, cacheable=out_cacheable)
    case: dict[str, Any] = {
        "input": "cacheable (flushed)" if in_cacheable else "non-cacheable",
        "output": "cacheable (invalidated)" if out_cacheable else "non-cacheable",
        "exact": True, "rounds": [],
    }
    try:
        for seed in (1, 2):
            pattern = pattern_frame("noise", in_cols, in_rows, seed)
            dst[...] = SENTINEL
            src[...] = pattern
            if out_cacheable:
                dst.flush()  # no dirty line may land over the PL's output later
            if in_cacheable:
                src.flush()
            try:
                engine.driver.run(src, dst, SIZES)  # invalidates dst when it is cacheable
            except Exception as exc:  # noqa: BLE001 -- a PL fault says nothing of caches
                case.update(exact=None, error=f"{type(exc).__name__}: {exc}")
                break
            largest, differing, pixels = difference(
                np.asarray(dst), resize_exact(pattern, out_rows, out_cols))
            case["rounds"].append({"max_difference": largest,
                                   "differing_share": differing / pixels})
            case["exact"] = case["exact"] and largest == 0
    finally:
        src.freebuffer()
        dst.freebuffer()
    return case
