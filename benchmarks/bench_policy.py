"""Modelled board times per routing policy: pynq_cv's choice against cv2, on each board.

    python benchmarks/bench_policy.py [--short]

MODELLED, not measured: every number is the cost model (``pynq_cv/costs.py``) with the
published constants of ``overlays/costs/*.json`` (sources there and in
overlays/costs/README.md), on the plans the engine itself makes (``Resizer`` on the
emulated board, ``engine.planner``). For each eligible size pair, copied (a numpy frame in,
a fresh array out) and zero copy (lent buffers), it prints per policy the worst ratio of
the chosen path's modelled latency to cv2's for a call, the worst ratio of its frame rate
to cv2's for a stream (max(IP time, PS time per frame) on the PL), and how many decisions
are uncertain (they flip inside the constants' ranges). ``pynq-cv plan`` draws the map of
one input size. A board owner's ``pynq-cv calibrate`` replaces the constants. Nothing is
asserted here; tests/test_policies.py pins the invariants over this same sweep.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from pynq_cv import calibration
from pynq_cv import planner as planner_mod
from pynq_cv.costs import LENT_CACHEABLE
from pynq_cv.descriptors import descriptor_for
from pynq_cv.envelope import Envelope

BOARDS = ("Pynq-Z2", "KV260")
INPUTS = [(480, 640), (720, 1280), (1080, 1920), (2160, 3840)]
SCALES = [0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.5, 2.0]
POLICIES = ("auto", "latency", "throughput", "offload", "pl", "cpu")


def pairs(short: bool = False) -> list[tuple[int, int, int, int]]:
    """(in rows, in cols, out rows, out cols) of the sweep."""
    inputs = INPUTS[1:3] if short else INPUTS
    scales = SCALES[1:4] if short else SCALES
    return [(r, c, round(r * s), round(c * s)) for r, c in inputs for s in scales]


def plans(
    board: str, policy: str, fps: float | None = None, short: bool = False,
) -> Iterator[Any]:
    """Every plan the board's engine makes over the sweep's eligible size pairs: copied and
    zero copy (a lent input of the kind ``lend`` gives), one call and pipelined. Planned as
    an engine plans (the board's descriptor, envelope and costs), without opening a board:
    planning needs none, and a 32-bit host's address space has no room for many."""
    desc = descriptor_for(board)
    costs, _ = calibration.costs_for(desc.board, "emulator", None, desc.cpu_family)
    planner = planner_mod.Planner(costs, desc.clock_hz, policy, fps=fps)
    envelope = Envelope.from_descriptor(desc)
    for sizes in pairs(short):
        if envelope.size_reason(*sizes) is not None:
            continue
        for copies in (True, False):
            src_cacheable = True if copies else LENT_CACHEABLE["input"]
            dst_cacheable = True if copies else LENT_CACHEABLE["output"]
            for pipelined in (False, True):
                yield planner.plan((sizes, copies, copies, pipelined, src_cacheable,
                                    dst_cacheable))


def chosen(plan: Any) -> tuple[float, float, float]:
    """(latency, seconds per frame, CPU seconds) of the path the plan chose."""
    if plan.path == "pl":
        return plan.pl.latency, plan.pl_period, plan.pl.cpu
    return plan.cv2.latency, plan.cv2.latency, plan.cv2.cpu


def _shape(plan: Any) -> str:
    (ir, ic, orow, ocol), copy_in, *_ = plan.key
    return f"{ic}x{ir}->{ocol}x{orow} " + ("copy" if copy_in else "zero")


def sweep(short: bool = False, fps: float | None = None) -> list[dict]:
    rows = []
    for board in BOARDS:
        for policy in POLICIES:
            worst = {"sync": (0.0, ""), "rate": (float("inf"), ""), "cpu": (0.0, "")}
            to_pl = total = uncertain = 0
            for plan in plans(board, policy, fps, short):
                latency, per_frame, cpu = chosen(plan)
                pipelined = plan.key[3]
                if not pipelined and latency / plan.cv2.latency > worst["sync"][0]:
                    worst["sync"] = (latency / plan.cv2.latency, _shape(plan))
                if pipelined:
                    rate = plan.cv2.latency / per_frame  # chosen fps / cv2 fps
                    if rate < worst["rate"][0]:
                        worst["rate"] = (rate, _shape(plan))
                    if cpu / plan.cv2.cpu > worst["cpu"][0]:
                        worst["cpu"] = (cpu / plan.cv2.cpu, _shape(plan))
                to_pl += plan.path == "pl"
                uncertain += plan.uncertain
                total += 1
            rows.append({
                "board": board, "policy": policy, "plans": total, "to_pl": to_pl,
                "uncertain": uncertain,
                "worst_sync_latency_ratio": worst["sync"][0], "worst_sync": worst["sync"][1],
                "worst_stream_rate_ratio": worst["rate"][0], "worst_stream": worst["rate"][1],
                "worst_stream_cpu_ratio": worst["cpu"][0], "worst_cpu": worst["cpu"][1],
            })
    return rows


def run(short: bool = False) -> list[dict]:
    return sweep(short)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="fewer size pairs (CI)")
    parser.add_argument("--fps", type=float, help="the source's frame rate for offload/auto")
    args = parser.parse_args(argv)
    print("MODELLED board times (cost model + published constants; see the docstring)")
    print(f"policies: {planner_mod.POLICIES}; source rate: {args.fps or 'none'}")
    print(f"{'board':8} {'policy':10} {'plans':>5} {'to PL':>5} {'unsure':>6} "
          f"{'worst call latency/cv2':>34} {'worst stream fps/cv2 fps':>34}")
    for r in sweep(args.short, args.fps):
        print(f"{r['board']:8} {r['policy']:10} {r['plans']:5} {r['to_pl']:5} "
              f"{r['uncertain']:6} {r['worst_sync_latency_ratio']:6.2f} {r['worst_sync']:>27} "
              f"{r['worst_stream_rate_ratio']:6.2f} {r['worst_stream']:>27}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
