"""The routing plan: which path each frame shape takes, and why, fixed for the engine's life.

Like FFTW's planner, a plan is made once per problem (size pair, whether the frame is copied
in and out, synchronous or pipelined) from the board's costs -- the model, or a measurement
on scratch data at plan time, never on the user's frames -- and then reused unchanged until
``replan()``. So a frame's path, and with it its values (the PL and cv2 differ by up to 1),
depends only on the frame and its arguments, never on timing or load.

A call's rate is one over its latency; a pipelined loop's PL rate is one over
``max(IP time, PS time per frame)`` (``costs.pipelined_period``); cv2's is one over its
latency either way. Policies (``Resizer(policy=...)``, ``PYNQ_CV_POLICY``):

- ``latency``: the PL only when its end-to-end time for this frame is lower than cv2's
  (else ``cpu_faster``);
- ``throughput``: the PL only when its rate is higher than cv2's (else ``cpu_higher_rate``);
- ``offload``: the PL when it costs the CPU less than cv2 would (else ``cpu_cheaper``) *and*
  keeps up: its period within the source's frame period (``fps=``, ``PYNQ_CV_FPS``; else
  ``pl_too_slow_for_rate``), or without a source rate within cv2's own period (else
  ``cpu_higher_rate``) -- freed CPU is worth something only while no frame is lost;
- ``pl``: every eligible frame to the PL (verification, tests);
- ``cpu``: none;
- ``auto`` (default): ``latency`` for synchronous calls, ``offload`` for ``submit``/``stream``
  (the PL when it does not lower the frame rate and saves CPU).

Every decision is also taken at both ends of the constants' published ranges
(``BoardCosts.corner``); a decision that differs there is ``uncertain``. A measured plan
(a real board) is not: the board settled it.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import costs as cost_model
from .costs import BoardCosts, PathCost
from .errors import SettingError

POLICY_ENV = "PYNQ_CV_POLICY"
FPS_ENV = "PYNQ_CV_FPS"
POLICIES = ("auto", "latency", "throughput", "offload", "pl", "cpu")
# why a plan keeps a frame on cv2, by the test that failed
REASONS = {
    "latency": "cpu_faster", "throughput": "cpu_higher_rate", "offload": "cpu_cheaper",
    "rate": "pl_too_slow_for_rate", "cpu": "policy_cpu",
}
MAX_PLANS = 4096  # plans beyond this keep their decision, not their cost breakdown

# (in rows, in cols, out rows, out cols), copied in?, copied out?, pipelined?, and the kinds
# of the caller's source and dst (cacheable?): cv2 reads the source where it lives, and the
# DMA writes a dst used in place (zero copy out) -- a plain array is cacheable
PlanKey = tuple[tuple[int, int, int, int], bool, bool, bool, bool, bool]
# measure(key, modelled PL, modelled cv2) -> (PL, cv2, basis)
Measure = Callable[[PlanKey, PathCost, PathCost], tuple[PathCost, PathCost, str]]


def resolve_policy(policy: str | None = None) -> str:
    """The policy asked for (argument, else ``PYNQ_CV_POLICY``, else auto), validated."""
    if policy is not None and not isinstance(policy, str):
        raise SettingError(f"policy must be a name such as 'auto' (a str), got {policy!r}")
    chosen = (policy if policy is not None else os.environ.get(POLICY_ENV, "")).strip().lower()
    chosen = chosen or "auto"
    if chosen not in POLICIES:
        source = "policy=" if policy is not None else POLICY_ENV
        near = difflib.get_close_matches(chosen, POLICIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SettingError(
            f"unknown pynq_cv policy {chosen!r} (from {source}); known: {', '.join(POLICIES)}"
            f"{hint}"
        )
    return chosen


def resolve_fps(fps: float | str | None = None) -> float | None:
    """The source's frame rate (argument, else ``PYNQ_CV_FPS``, else None), validated: a
    finite number > 0 (SettingError naming where it came from)."""
    source = "fps=" if fps is not None else FPS_ENV
    if fps is None:
        fps = os.environ.get(FPS_ENV, "").strip() or None
        if fps is None:
            return None
    try:
        if isinstance(fps, bool) or not isinstance(fps, (int, float, str)):
            raise TypeError
        rate = float(fps)
    except (TypeError, ValueError):
        raise SettingError(
            f"pynq_cv frame rate {fps!r} (from {source}) is not a number of frames per second"
        ) from None
    if not (math.isfinite(rate) and rate > 0):
        raise SettingError(f"pynq_cv frame rate {fps!r} (from {source}) must be finite and > 0")
    return rate


def period(pl: PathCost, pipelined: bool) -> float:
    """Seconds per frame of the PL path: its latency for a call, the pipelined period for
    ``submit``/``stream``."""
    return cost_model.pipelined_period(pl) if pipelined else pl.latency


def decide(
    policy: str, pipelined: bool, pl: PathCost, cv2: PathCost, fps: float | None = None,
) -> str | None:
    """None for the PL, else the reason for cv2, under an effective policy (not auto)."""
    if policy == "pl":
        return None
    if policy == "cpu":
        return REASONS["cpu"]
    if policy == "latency":
        return None if pl.latency < cv2.latency else REASONS["latency"]
    pl_period = period(pl, pipelined)
    if policy == "throughput":
        return None if pl_period < cv2.latency else REASONS["throughput"]
    # offload: keeps up with the source (or with cv2), and saves CPU
    if fps is not None:
        if pl_period > 1.0 / fps:
            return REASONS["rate"]
    elif pl_period > cv2.latency:
        return REASONS["throughput"]
    return None if pl.cpu < cv2.cpu else REASONS["offload"]


def effective_policy(policy: str, pipelined: bool) -> str:
    """``auto`` is ``latency`` for a call, ``offload`` for ``submit``/``stream``."""
    if policy == "auto":
        return "offload" if pipelined else "latency"
    return policy


@dataclass(frozen=True)
class Plan:
    """One shape's decision: the path, the reason for the CPU, both paths' costs."""

    key: PlanKey
    policy: str  # the effective one: latency, offload, pl or cpu
    path: str  # "pl" or "cpu"
    reason: str | None  # the fallback reason when path == "cpu"
    pl: PathCost
    cv2: PathCost
    in_cacheable: bool  # the kinds of the buffers the DMA meets: the pool's by role, or the
    # caller's own buffer used in place
    out_cacheable: bool
    basis: str  # "model", "calibration", "measured", "measured (emulated)", ...
    uncertain: bool = False  # the decision differs across the constants' ranges
    fps: float | None = None  # the source's frame rate the plan was made for
    machine: str = ""  # which machine the costs describe
    # (PL, cv2) at the PL-favouring and the cv2-favouring end of the ranges, when modelled
    corners: tuple[tuple[PathCost, PathCost], tuple[PathCost, PathCost]] | None = None

    @property
    def pl_period(self) -> float:
        return period(self.pl, self.key[3])

    def describe(self) -> dict[str, Any]:
        (ir, ic, orow, ocol), copy_in, copy_out, pipelined, _, _ = self.key
        return {
            "shape": f"{ic}x{ir}->{ocol}x{orow}",
            "mode": "pipelined" if pipelined else "sync",
            "copies": ("in " if copy_in else "") + ("out" if copy_out else "") or "none",
            "policy": self.policy,
            "path": self.path,
            "reason": self.reason,
            "basis": self.basis,
            "pl_ms": round(self.pl.latency * 1e3, 3),
            "pl_cpu_ms": round(self.pl.cpu * 1e3, 3),
            "cv2_ms": round(self.cv2.latency * 1e3, 3),
            "cv2_cpu_ms": round(self.cv2.cpu * 1e3, 3),
            "input_buffer": "cacheable" if self.in_cacheable else "non-cacheable",
            "output_buffer": "cacheable" if self.out_cacheable else "non-cacheable",
            "pl_fps": round(1.0 / max(self.pl_period, 1e-12), 2),
            "cv2_fps": round(1.0 / max(self.cv2.latency, 1e-12), 2),
            "fps": self.fps,
            "uncertain": self.uncertain,
            "machine": self.machine,
        }


class Planner:
    """Plans per shape from one board's costs under one policy (and the source's frame rate,
    ``fps``); ``measure`` (a real board) replaces both modelled costs by timings on scratch
    buffers, once per new shape. Costs of family ``unknown`` (no profile says what the
    board's CPU is) plan every eligible frame to the PL, as ``policy="pl"`` does."""

    def __init__(
        self, costs: BoardCosts, clock_hz: int, policy: str | None = None,
        measure: Measure | None = None, fps: float | str | None = None,
    ) -> None:
        self.costs = costs
        self.clock_hz = clock_hz
        self.policy = resolve_policy(policy)
        self.fps = resolve_fps(fps)
        self.measure = measure
        self.unmodelled = costs.family == cost_model.UNKNOWN_FAMILY
        if self.unmodelled and self.policy != "cpu":
            logging.getLogger("pynq_cv").warning(
                "no cost model for %s; every eligible frame goes to the PL "
                "(policy 'pl' semantics)", costs.machine or "this board")
        self.in_cacheable, self.out_cacheable = cost_model.roles(costs)
        self._plans: dict[PlanKey, Plan] = {}
        # the hot path's lookup: the kept plan for a key, or None (the dict's own ``get``,
        # bound once: no call layer of ours; the dict is cleared, never replaced)
        self.kept: Callable[[PlanKey], Plan | None] = self._plans.get
        self._detailed: deque[PlanKey] = deque()  # keys whose plans keep their cost parts
        self._lock = threading.Lock()  # one decision per key, even when threads race to it

    def plan(self, key: PlanKey) -> Plan:
        """The plan for ``key``: kept, else made. Made outside the lock (measuring runs a
        frame and must not hold a lock of ours while it does); the first plan stored for a
        key wins, so every caller gets the same decision."""
        found = self._plans.get(key)
        if found is not None:
            return found
        made = self._make(key)
        with self._lock:
            found = self._plans.setdefault(key, made)
            if found is made:
                self._keep_details(key)
        return found

    def _keep_details(self, key: PlanKey) -> None:
        """Decisions are kept for the engine's life (a shape's path never changes behind
        the user's back); only the cost breakdowns of the oldest plans beyond
        ``MAX_PLANS`` are dropped, so a stream of ever-new sizes stays small."""
        detailed = self._detailed
        detailed.append(key)
        if len(detailed) > MAX_PLANS:
            old = detailed.popleft()
            plan = self._plans[old]
            self._plans[old] = replace(plan, pl=_slim(plan.pl), cv2=_slim(plan.cv2), corners=None)

    def route(self, key: PlanKey) -> str | None:
        """None for the PL, else the fallback reason (the hot path's one call)."""
        found = self._plans.get(key)
        return (found or self.plan(key)).reason

    def replan(self) -> None:
        """Forget every plan: the next frame of each shape is planned again."""
        with self._lock:
            self._plans.clear()
            self._detailed.clear()

    def recent(self, count: int | None = 16) -> list[dict[str, Any]]:
        """The newest ``count`` plans (None: all), for ``info()`` and the profile."""
        plans = list(self._plans.values())
        plans = plans if count is None else plans[-count:]
        return [plan.describe() for plan in plans]

    def _costs(
        self, costs: BoardCosts, key: PlanKey, in_cached: bool, out_cached: bool,
    ) -> tuple[PathCost, PathCost]:
        sizes, copy_in, copy_out, _, src_cacheable, _ = key
        pl = cost_model.pl_cost(
            costs, sizes, self.clock_hz, copy_in=copy_in, copy_out=copy_out,
            in_cacheable=in_cached, out_cacheable=out_cached,
        )
        return pl, cost_model.cv2_cost(costs, sizes, src_cacheable=src_cacheable)

    def _make(self, key: PlanKey) -> Plan:
        _, copy_in, copy_out, pipelined, src_cacheable, dst_cacheable = key
        policy = effective_policy(self.policy, pipelined)
        basis = _basis(self.costs)
        if self.unmodelled and policy != "cpu":
            policy, basis = "pl", "no cost model (policy pl)"
        in_cached = self.in_cacheable if copy_in else src_cacheable
        out_cached = self.out_cacheable if copy_out else dst_cacheable
        pl, cv2 = self._costs(self.costs, key, in_cached, out_cached)
        corners = None
        if self.measure is not None and policy not in ("pl", "cpu"):
            try:
                pl, cv2, basis = self.measure(key, pl, cv2)
            except Exception as exc:  # noqa: BLE001 -- a busy or faulty PL: keep the model
                basis = f"model (measuring failed: {type(exc).__name__})"
        reason = decide(policy, pipelined, pl, cv2, self.fps)
        uncertain = False
        if not basis.startswith("measured") and self.costs.has_ranges:
            corners = (
                self._costs(self.costs.corner("pl"), key, in_cached, out_cached),
                self._costs(self.costs.corner("cpu"), key, in_cached, out_cached),
            )
            ends = {decide(policy, pipelined, p, c, self.fps) is None for p, c in corners}
            uncertain = len(ends) > 1
        return Plan(
            key, policy, "pl" if reason is None else "cpu", reason,
            pl, cv2, in_cached, out_cached, basis, uncertain, self.fps,
            self.costs.machine, corners,
        )


def _basis(costs: BoardCosts) -> str:
    """What a modelled plan rests on: ``model`` (published constants), ``calibration``
    (some constants from a calibration file) or ``override`` (given in the call)."""
    origins = {c.origin for c in costs.constants.values()}
    if "calibration" in origins:
        return "calibration"
    if "measured" in origins:
        return "measured"
    return "model"


def _slim(cost: PathCost) -> PathCost:
    """``cost`` without its breakdown, but with the IP's share (``ps_seconds`` needs it)."""
    ip = cost.parts.get("ip")
    return replace(cost, parts={} if ip is None else {"ip": ip})
