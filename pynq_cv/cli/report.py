"""The profile ``pynq-cv run --profile`` prints at exit, and its ``--json`` form.

What a user acts on, in order: a header (backend, board model, policy, where the costs come
from, how many frames were emulated); totals (the script's wall time, the time inside
``cv2.resize`` and its share, PL and CPU calls and time); one row per call site with
per-call averages; for frames the routing plan sent to cv2, the modelled numbers behind the
decision and the policy that would change it; one hint per fallback reason
(``reasons.hint``); compare mode's figures per site. ``build`` makes the dict, ``render``
the text: one source, so the table and the JSON cannot disagree.
"""

from __future__ import annotations

from typing import Any

import pynq_cv
from pynq_cv.cli.bench import format_table
from pynq_cv.cli.common import PROG
from pynq_cv.profile import CallSiteProfile
from pynq_cv.reasons import describe, hint

# the policy that would send a frame the plan gave cv2 to the PL, and the figures it weighs
_CHANGE = {
    "cpu_faster": ("pl", "pl_ms", "cv2_ms", "ms end to end"),
    "cpu_cheaper": ("pl", "pl_cpu_ms", "cv2_cpu_ms", "ms of CPU time"),
    "cpu_higher_rate": ("pl", "pl_fps", "cv2_fps", "frames/s"),
    "pl_too_slow_for_rate": ("pl", "pl_fps", "fps", "frames/s (the PL's vs the source's)"),
}


def _header(profile: CallSiteProfile) -> dict[str, Any]:
    """The shared engine as the profile saw it open (the script may have closed it since);
    never opens a PL the script did not use."""
    if profile.header is not None:
        return dict(profile.header)
    rz = pynq_cv.default_resizer()
    return {"backend": rz.backend or "cpu", "policy": rz.policy, "emulated": False,
            "why": rz.why}


def _plan_figures(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan behind a policy reason: both paths' modelled times, and what changes it."""
    keep = ("shape", "mode", "policy", "basis", "reason", "pl_ms", "pl_cpu_ms", "cv2_ms",
            "cv2_cpu_ms", "pl_fps", "cv2_fps", "fps", "machine")
    figures = {k: plan[k] for k in keep if k in plan}
    reason = plan.get("reason")
    figures["would_change_it"] = f"policy {_CHANGE[reason][0]}" if reason in _CHANGE \
        else "policy auto"
    return figures


def build(profile: CallSiteProfile, wall_seconds: float, exit_code: int,
          command: list[str], module: bool) -> dict[str, Any]:
    """The whole profile as plain data (what ``--json`` writes)."""
    head = _header(profile)
    rows = profile.rows()
    calls = sum(r["calls"] for r in rows)
    pl = sum(r["pl"] for r in rows)
    inside = sum(r["seconds"] for r in rows)
    pl_seconds = sum(r["pl_seconds"] for r in rows)
    reasons: dict[str, int] = {}
    for row in rows:
        for reason, n in row["cpu_reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
        row["plans"] = [
            {**_plan_figures(plan), "frames": p["frames"]} for p in row.pop("planned_shapes")
            if (plan := profile.plans.get((p["reason"], p["shape"]))) is not None
        ]
    head["emulated_frames"] = pl if head.pop("emulated") else 0
    return {
        "command": command,
        "module": module,
        "exit_code": exit_code,
        **head,
        "totals": {
            "wall_seconds": wall_seconds,
            "resize_seconds": inside,
            "resize_share": inside / wall_seconds if wall_seconds > 0 else 0.0,
            "calls": calls,
            "pl_calls": pl,
            "pl_seconds": pl_seconds,
            "cpu_calls": calls - pl - sum(r["raised"] for r in rows),
            "cpu_seconds": inside - pl_seconds,
            "raised": sum(r["raised"] for r in rows),
            "board_seconds": sum(r["board_seconds"] for r in rows),
        },
        "fallback": {
            reason: {"frames": n, "why": describe(reason), "hint": hint(reason)}
            for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        },
        "sites": rows,
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def render(report: dict[str, Any]) -> str:
    """The text form, for stderr."""
    t = report["totals"]
    lines = [f"{PROG} run: cv2.resize by call site"]
    where = f"backend {report['backend']}"
    if report.get("board"):
        where += f", board {report['board']}"
    lines.append(f"  {where}, policy {report['policy']}")
    if report.get("costs_from"):
        board = f"a {report['board']}" if report.get("board") else "the board"
        lines.append(f"  costs: {report['costs_from']}; they describe {board}, not this "
                     "machine" if report["emulated_frames"] or report["backend"] == "emulator"
                     else f"  costs: {report['costs_from']}")
    elif report.get("why"):
        lines.append(f"  {report['why']}")
    if report["emulated_frames"]:
        lines.append(f"  emulated: {report['emulated_frames']} of the PL frames were computed "
                     "by the board emulator (the IP's arithmetic, up to 1 apart from cv2; "
                     "board times are modelled); PYNQ_CV_BACKEND=cpu gives cv2.resize")
    lines.append(
        f"  wall time {t['wall_seconds']:.2f} s; inside cv2.resize {_ms(t['resize_seconds'])} "
        f"({t['resize_share']:.0%}); {t['calls']} call{'s' if t['calls'] != 1 else ''}: "
        f"{t['pl_calls']} on the PL ({_ms(t['pl_seconds'])}, modelled board time "
        f"{_ms(t['board_seconds'])}), {t['cpu_calls']} on the CPU ({_ms(t['cpu_seconds'])})"
        + (f", {t['raised']} raised" if t["raised"] else "")
    )
    rows = report["sites"]
    if not rows:
        lines.append("(cv2.resize was never called)")
        return "\n".join(lines)
    raised = any(r["raised"] for r in rows)
    table = [
        {
            "call site": r["site"],
            "calls": r["calls"],
            "PL": r["pl"],
            "CPU": r["cpu"],
            "CPU reasons": ", ".join(f"{k} {v}" for k, v in r["cpu_reasons"].items()) or "-",
            "ms/call": r["ms_per_call"],
            "ms in resize": r["seconds"] * 1e3,
            "board ms/frame": r["board_ms_per_pl_frame"],
            "MB moved": r["bytes_moved"] / 1e6,
            **({"raised": r["raised"]} if raised else {}),
            **({"max diff": r["compare"]["max_diff"] if r["compare"] else "-",
                "differ": f"{r['compare']['differing_share']:.1%}" if r["compare"] else "-"}
               if any(x["compare"] for x in rows) else {}),
        }
        for r in rows
    ]
    lines.append(format_table(table))
    planned = [(r["site"], p) for r in rows for p in r["plans"]]
    if planned:
        lines.append("routing plans that chose cv2 (modelled per frame):")
        for site, p in planned:
            _, pl_key, cv2_key, what = _CHANGE.get(p["reason"],
                                                   ("", "pl_ms", "cv2_ms", "ms end to end"))
            lines.append(
                f"  {site}: {p['frames']} x {p['shape']} {p.get('mode', '')}, "
                f"policy {p.get('policy')}: "
                f"{p['reason']}: PL {p.get(pl_key) or 0:.2f} vs cv2 {p.get(cv2_key) or 0:.2f} "
                f"{what} ({p.get('basis', 'model')}); {p.get('would_change_it', '')} "
                "would send it to the PL"
            )
    if report["fallback"]:
        lines.append("fallback reasons, and what would send such frames to the PL:")
        for reason, f in report["fallback"].items():
            tail = f"; {f['hint']}" if f["hint"] else ""
            lines.append(f"  {reason} ({f['frames']}): {f['why']}{tail}")
    return "\n".join(lines)
