"""The routing plan: which path each frame shape takes, and why, fixed for the engine's life.

Like FFTW's planner, a plan is made once per problem (size pair, whether the frame is copied
in and out, synchronous or pipelined) from the board's costs -- the model, or a measurement
on scratch data at plan time, never on the user's frames -- and then reused unchanged until
``replan()``. So a frame's path, and with it its values (the PL and cv2 differ by up to 1),
depends only on the frame and its arguments, never on timing or load.

Policies (``Resizer(policy=...)``, ``PYNQ_CV_POLICY``):

- ``latency``: the PL only when its end-to-end time for this frame is lower than cv2's;
- ``offload``: the PL when it costs the CPU less than cv2 would (the driver sleeps through
  the IP, so other threads run meanwhile);
- ``pl``: every eligible frame to the PL (verification, tests);
- ``cpu``: none;
- ``auto`` (default): ``latency`` for synchronous calls, ``offload`` for ``submit``/``stream``.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import costs as cost_model
from .costs import BoardCosts, PathCost
from .errors import SettingError

POLICY_ENV = "PYNQ_CV_POLICY"
POLICIES = ("auto", "latency", "offload", "pl", "cpu")
REASONS = {"latency": "cpu_faster", "offload": "cpu_cheaper", "cpu": "policy_cpu"}
MAX_PLANS = 4096  # a stream of ever-new sizes must not grow memory without bound

# (in rows, in cols, out rows, out cols), copied in?, copied out?, pipelined?, src cacheable?
PlanKey = tuple[tuple[int, int, int, int], bool, bool, bool, bool]
Measure = Callable[[PlanKey, PathCost, PathCost], tuple[PathCost, PathCost]]


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
            f"unknown pynq_cv policy {chosen!r} (from {source}); known: {POLICIES}{hint}"
        )
    return chosen


@dataclass(frozen=True)
class Plan:
    """One shape's decision: the path, the reason for the CPU, both paths' costs."""

    key: PlanKey
    policy: str  # the effective one: latency, offload, pl or cpu
    path: str  # "pl" or "cpu"
    reason: str | None  # the fallback reason when path == "cpu"
    pl: PathCost
    cv2: PathCost
    in_cacheable: bool  # pool buffer kinds chosen by role
    out_cacheable: bool
    basis: str  # "model" or "measured"

    def describe(self) -> dict[str, Any]:
        (ir, ic, orow, ocol), copy_in, copy_out, pipelined, _ = self.key
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
        }


class Planner:
    """Plans per shape from one board's costs under one policy; ``measure`` (a real board)
    replaces both modelled costs by timings on scratch buffers, once per new shape."""

    def __init__(
        self, costs: BoardCosts, clock_hz: int, policy: str | None = None,
        measure: Measure | None = None,
    ) -> None:
        self.costs = costs
        self.clock_hz = clock_hz
        self.policy = resolve_policy(policy)
        self.measure = measure
        self.in_cacheable, self.out_cacheable = cost_model.roles(costs)
        self._plans: dict[PlanKey, Plan] = {}
        self._lock = threading.Lock()  # one decision per key, even when threads race to it

    def plan(self, key: PlanKey) -> Plan:
        """The plan for ``key``: cached, else made (under a lock: made once)."""
        found = self._plans.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._plans.get(key)
            if found is None:
                if len(self._plans) >= MAX_PLANS:
                    self._plans.clear()
                found = self._plans[key] = self._make(key)
        return found

    def route(self, key: PlanKey) -> str | None:
        """None for the PL, else the fallback reason (the hot path's one call)."""
        found = self._plans.get(key)
        return (found or self.plan(key)).reason

    def replan(self) -> None:
        """Forget every plan: the next frame of each shape is planned again."""
        with self._lock:
            self._plans.clear()

    def recent(self, count: int = 16) -> list[dict[str, Any]]:
        """The newest plans, for ``info()``."""
        plans = list(self._plans.values())[-count:]
        return [plan.describe() for plan in plans]

    def _make(self, key: PlanKey) -> Plan:
        sizes, copy_in, copy_out, pipelined, src_cacheable = key
        policy = self.policy
        if policy == "auto":
            policy = "offload" if pipelined else "latency"
        in_cached = self.in_cacheable if copy_in else src_cacheable
        pl = cost_model.pl_cost(
            self.costs, sizes, self.clock_hz, copy_in=copy_in, copy_out=copy_out,
            in_cacheable=in_cached, out_cacheable=self.out_cacheable,
        )
        cv2 = cost_model.cv2_cost(self.costs, sizes, src_cacheable=src_cacheable)
        basis = "model"
        if self.measure is not None and policy in ("latency", "offload"):
            try:
                pl, cv2 = self.measure(key, pl, cv2)
                basis = "measured"
            except Exception as exc:  # noqa: BLE001 -- a busy or faulty PL: keep the model
                basis = f"model (measuring failed: {type(exc).__name__})"
        if policy == "pl":
            to_pl = True
        elif policy == "cpu":
            to_pl = False
        elif policy == "latency":
            to_pl = pl.latency < cv2.latency
        else:
            to_pl = pl.cpu < cv2.cpu
        return Plan(
            key, policy, "pl" if to_pl else "cpu", None if to_pl else REASONS[policy],
            pl, cv2, in_cached, self.out_cacheable, basis,
        )
