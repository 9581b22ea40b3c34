"""Per-call-site profile of ``cv2.resize``: which line of the user's code ran where, at what cost.

``CallSiteProfile.wrap(resize)`` makes the function ``pynq-cv run --profile`` patches in: it
names its caller's file:line (``sys._getframe``), times the call, and learns the frame's
path from the telemetry observer, which the engine calls in the same thread during the same
call. Counters live per call site under one lock, so threads may resize concurrently.
Nothing here runs unless a profile is installed: the plain patch is untouched.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .reasons import POLICY_REASONS

NOT_ROUTED = "not_routed"  # cv2 was called directly: arguments cv2 itself must judge, or it raised


Compared = tuple[int, int, int]  # compare mode: (max difference, differing pixels, pixels)


@dataclass
class SiteCounts:
    """What one call site did: frames on each path, time, bytes."""

    calls: int = 0
    pl: int = 0
    cpu: Counter[str] = field(default_factory=Counter)  # fallback reason -> frames
    raised: int = 0  # calls that raised (cv2's error, strict mode)
    seconds: float = 0.0  # wall time inside cv2.resize, as the caller saw it
    board_seconds: float = 0.0  # the PL's modelled time for its frames (the whole PL path)
    bytes_moved: int = 0  # through the DMA, in and out
    pl_seconds: float = 0.0  # of ``seconds``: the calls whose frame ran on the PL
    planned: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, shape) -> n
    compared: int = 0  # compare mode: PL frames also computed by cv2
    compare_max: int = 0
    compare_differing: int = 0
    compare_pixels: int = 0


def _shape_pair(src: Any, out: Any) -> str | None:
    """``WxH->WxH`` as ``info()["plans"]`` names a shape (None when not arrays)."""
    a, b = getattr(src, "shape", None), getattr(out, "shape", None)
    if a is None or b is None or len(a) < 2 or len(b) < 2:
        return None
    return f"{a[1]}x{a[0]}->{b[1]}x{b[0]}"


_profiles: weakref.WeakSet[CallSiteProfile] = weakref.WeakSet()


def _fresh_locks_in_child() -> None:
    """A forked child: a lock a parent thread held at fork() would never be released."""
    for profile in list(_profiles):
        profile._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


class CallSiteProfile:
    """Per-call-site counters of the patched ``cv2.resize``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, int], SiteCounts] = {}
        self._local = threading.local()
        self.header: dict[str, Any] | None = None  # the shared engine, once it was open
        self.plans: dict[tuple[str, str], dict[str, Any]] = {}  # behind policy reasons
        _profiles.add(self)

    def observe(self, reason: str | None, board_seconds: float, nbytes: int,
                compared: Compared | None = None) -> None:
        """The telemetry observer: the current thread's frame went to the PL (None) or not."""
        self._local.outcome = (reason, board_seconds, nbytes, compared)

    def wrap(self, resize: Callable[..., Any]) -> Callable[..., Any]:
        """``resize`` that records each call under its caller's file:line."""
        local, record, clock, frame_of = self._local, self._record, time.perf_counter, sys._getframe

        def profiled_resize(*args: Any, **kwargs: Any) -> Any:
            caller = frame_of(1)
            local.outcome = None
            started = clock()
            raised = True
            result = None
            try:
                result = resize(*args, **kwargs)
                raised = False
                return result
            finally:
                record((caller.f_code.co_filename, caller.f_lineno), clock() - started,
                       local.outcome, raised, args, result)

        profiled_resize.__name__ = getattr(resize, "__name__", "resize")
        profiled_resize.__doc__ = resize.__doc__
        profiled_resize.__signature__ = getattr(resize, "__signature__", None)  # type: ignore[attr-defined]
        profiled_resize.__wrapped__ = resize  # type: ignore[attr-defined]
        return profiled_resize

    def _record(self, site: tuple[str, int], seconds: float, outcome: Any, raised: bool,
                args: tuple[Any, ...], result: Any) -> None:
        shape = None
        if outcome is not None and outcome[0] in POLICY_REASONS:  # which plan said cv2
            shape = _shape_pair(args[0] if args else None, result)
        new_plan = shape is not None and (outcome[0], shape) not in self.plans
        if outcome is not None and (self.header is None or new_plan):
            self._engine_facts(outcome[0], shape)  # rarely: the script may close the engine
        with self._lock:
            counts = self._sites.get(site)
            if counts is None:
                counts = self._sites[site] = SiteCounts()
            counts.calls += 1
            counts.seconds += seconds
            counts.raised += raised
            if outcome is None:
                if not raised:
                    counts.cpu[NOT_ROUTED] += 1
                return
            reason, board_seconds, nbytes, compared = outcome
            if reason is None:
                counts.pl += 1
                counts.pl_seconds += seconds
                counts.board_seconds += board_seconds
                counts.bytes_moved += nbytes
                if compared is not None:
                    counts.compared += 1
                    counts.compare_max = max(counts.compare_max, compared[0])
                    counts.compare_differing += compared[1]
                    counts.compare_pixels += compared[2]
            elif not raised:  # a strict-mode refusal ran nowhere
                counts.cpu[reason] += 1
                if shape is not None:
                    counts.planned[reason, shape] += 1

    def _engine_facts(self, reason: str | None, shape: str | None) -> None:
        """What the report says about the shared engine, read while it is open: its header
        once, and the plan behind each (policy reason, shape) the first time it is seen."""
        from . import dispatch  # (dispatch -> watch -> telemetry; never the other way)

        rz = dispatch.peek_default()
        engine = getattr(rz, "engine", None)
        if rz is None or engine is None:
            return
        if self.header is None:
            info = rz.info()
            self.header = {"backend": info.get("backend"), "board": info.get("board"),
                           "policy": rz.policy, "costs_from": info.get("costs_from"),
                           "emulated": bool(rz.stats.emulated)}
        if shape is not None and reason is not None:
            for plan in engine.planner.recent(None):
                if plan["shape"] == shape and plan["reason"] == reason:
                    self.plans[reason, shape] = plan
                    break

    def sites(self) -> dict[tuple[str, int], SiteCounts]:
        """A copy of the counters, by (file, line)."""
        with self._lock:
            return {site: replace(c, cpu=Counter(c.cpu), planned=Counter(c.planned))
                    for site, c in self._sites.items()}

    def rows(self, relative_to: str | None = None) -> list[dict[str, Any]]:
        """One plain dict per call site, busiest first (the ``--json`` form)."""
        base = os.path.abspath(relative_to or os.getcwd())
        rows = []
        for (filename, line), c in self.sites().items():
            shown = filename
            if os.path.isabs(filename) and os.path.abspath(filename).startswith(base + os.sep):
                shown = os.path.relpath(filename, base)
            cpu = sum(c.cpu.values())
            rows.append({
                "site": f"{shown}:{line}",
                "file": filename,
                "line": line,
                "calls": c.calls,
                "pl": c.pl,
                "cpu": cpu,
                "cpu_reasons": dict(sorted(c.cpu.items())),
                "raised": c.raised,
                "seconds": c.seconds,
                "ms_per_call": c.seconds / c.calls * 1e3 if c.calls else 0.0,
                "pl_seconds": c.pl_seconds,
                "cpu_seconds": c.seconds - c.pl_seconds,
                "board_seconds": c.board_seconds,
                "board_ms_per_pl_frame": c.board_seconds / c.pl * 1e3 if c.pl else 0.0,
                "bytes_moved": c.bytes_moved,
                "planned_shapes": [
                    {"reason": reason, "shape": shape, "frames": n}
                    for (reason, shape), n in sorted(c.planned.items())
                ],
                "compare": None if not c.compared else {
                    "frames": c.compared,
                    "max_diff": c.compare_max,
                    "differing_share": c.compare_differing / c.compare_pixels
                    if c.compare_pixels else 0.0,
                },
            })
        rows.sort(key=lambda r: (-r["calls"], r["file"], r["line"]))
        return rows
