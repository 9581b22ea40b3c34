"""Modelled board times per routing policy: pynq_cv's choice against cv2, on each board.

    python benchmarks/bench_policy.py [--short]

MODELLED, not measured: every number is the cost model (``pynq_cv/costs.py``) with the
published constants of ``overlays/costs/*.json`` (sources there and in
overlays/costs/README.md), on the plans the engine itself makes (``Resizer`` on the
emulated board, ``engine.planner``). For each eligible size pair, copied (a numpy frame in,
a fresh array out) and zero copy (lent buffers), it prints the worst ratio, per policy, of
the chosen path's modelled time to cv2's: latency for synchronous calls, CPU time for
pipelined ones. Then the pipelined throughput against the board's true floor,
max(IP time, PS time per frame). A board owner's ``pynq-cv calibrate`` replaces the
constants. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys

import pynq_cv
from pynq_cv import timing

BOARDS = ("Pynq-Z2", "KV260")
INPUTS = [(480, 640), (720, 1280), (1080, 1920), (2160, 3840)]
SCALES = [0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.5, 2.0]
POLICIES = ("latency", "offload", "pl", "cpu")


def _pairs(short: bool) -> list[tuple[int, int, int, int]]:
    inputs = INPUTS[1:3] if short else INPUTS
    scales = SCALES[1:4] if short else SCALES
    return [(r, c, round(r * s), round(c * s)) for r, c in inputs for s in scales]


def _chosen(plan, metric: str) -> tuple[float, float]:
    """(pynq_cv's modelled time on its chosen path, cv2's), by latency or CPU time."""
    pl = getattr(plan.pl, metric)
    cv2 = getattr(plan.cv2, metric)
    return (pl if plan.path == "pl" else cv2), cv2


def sweep(short: bool = False) -> list[dict]:
    rows = []
    for board in BOARDS:
        for policy in POLICIES:
            with pynq_cv.Resizer("emulator", board=board, policy=policy) as rz:
                engine = rz.open().engine
                env = engine.envelope
                worst = {"sync": (0.0, ""), "pipelined": (0.0, "")}
                to_pl = total = 0
                for sizes in _pairs(short):
                    if env.size_reason(*sizes) is not None:
                        continue
                    for copies in (True, False):
                        for pipelined in (False, True):
                            plan = engine.planner.plan((sizes, copies, copies, pipelined, True))
                            metric = "cpu" if pipelined else "latency"
                            ours, cv2 = _chosen(plan, metric)
                            mode = "pipelined" if pipelined else "sync"
                            ratio = ours / cv2
                            if ratio > worst[mode][0]:
                                shape = f"{sizes[1]}x{sizes[0]}->{sizes[3]}x{sizes[2]}"
                                worst[mode] = (ratio, shape + (" copy" if copies else " zero"))
                            to_pl += plan.path == "pl"
                            total += 1
                rows.append({
                    "board": board, "policy": policy, "plans": total, "to_pl": to_pl,
                    "worst_sync_latency_ratio": worst["sync"][0], "worst_sync": worst["sync"][1],
                    "worst_pipelined_cpu_ratio": worst["pipelined"][0],
                    "worst_pipelined": worst["pipelined"][1],
                })
    return rows


def table(board: str, sizes: tuple[int, int, int, int]) -> list[dict]:
    """The README's modelled table: both paths, copy and zero copy, and pipelined rates."""
    out = []
    with pynq_cv.Resizer("emulator", board=board, policy="auto") as rz:
        planner = rz.open().engine.planner
        for copies in (True, False):
            sync = planner.plan((sizes, copies, copies, False, True))
            piped = planner.plan((sizes, copies, copies, True, True))
            ip = timing.frame_seconds(*sizes, clock_hz=planner.clock_hz)
            period = max(ip, piped.pl.cpu)  # the true floor: IP or the PS work per frame
            out.append({
                "board": board, "copies": "copy" if copies else "zero copy",
                "pl_ms": sync.pl.latency * 1e3, "pl_cpu_ms": sync.pl.cpu * 1e3,
                "cv2_ms": sync.cv2.latency * 1e3, "cv2_cpu_ms": sync.cv2.cpu * 1e3,
                "latency_choice": sync.path, "offload_choice": piped.path,
                "pipelined_fps": 1 / period, "bound": "IP" if period == ip else "PS",
            })
    return out


def run(short: bool = False) -> list[dict]:
    return sweep(short)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="fewer size pairs (CI)")
    args = parser.parse_args(argv)
    print("MODELLED board times (cost model + published constants; see the docstring)")
    print(f"{'board':8} {'policy':8} {'plans':>5} {'to PL':>5} {'worst sync latency/cv2':>24} "
          f"{'worst piped CPU/cv2':>22}")
    for r in sweep(args.short):
        print(f"{r['board']:8} {r['policy']:8} {r['plans']:5} {r['to_pl']:5} "
              f"{r['worst_sync_latency_ratio']:8.2f} {r['worst_sync']:>15} "
              f"{r['worst_pipelined_cpu_ratio']:7.2f} {r['worst_pipelined']:>14}")
    for sizes in ((1080, 1920, 540, 960), (1080, 1920, 720, 1280)):
        print(f"\n1080p -> {sizes[3]}x{sizes[2]}, MODELLED ms per frame")
        print(f"{'board':8} {'copies':9} {'PL':>6} {'PL CPU':>7} {'cv2':>6} {'cv2 CPU':>8} "
              f"{'latency':>8} {'offload':>8} {'piped fps':>10}")
        for board in BOARDS:
            for r in table(board, sizes):
                print(f"{r['board']:8} {r['copies']:9} {r['pl_ms']:6.1f} {r['pl_cpu_ms']:7.1f} "
                      f"{r['cv2_ms']:6.1f} {r['cv2_cpu_ms']:8.1f} {r['latency_choice']:>8} "
                      f"{r['offload_choice']:>8} {r['pipelined_fps']:6.1f} {r['bound']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
