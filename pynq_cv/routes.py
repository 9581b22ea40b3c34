"""The routing map: for one board, one input size and many output sizes, which path the
planner takes and what each path costs -- the rows ``pynq-cv plan`` prints and draws, and
``pynq-cv doctor`` reports with its measured constants.

Nothing runs here: every row is the planner's own decision (``planner.Planner``) on the
board's costs (the published model unless costs are given), with the envelope of the board's
descriptor deciding which sizes the PL takes at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import calibration
from .costs import LENT_CACHEABLE, BoardCosts, PathCost
from .descriptors import descriptor_for
from .envelope import Envelope
from .planner import Planner, effective_policy, period

MODES = ("sync", "stream")
# Output sizes people resize to (width, height): detector inputs, SD, HD, 4K
COMMON_OUTPUTS = [
    (224, 224), (320, 240), (416, 416), (608, 608), (640, 360), (640, 480), (960, 540),
    (1280, 720), (1920, 1080), (3840, 2160),
]
ROW_KEYS = ("shape", "mode", "policy", "path", "reason", "pl_ms", "cv2_ms", "pl_cpu_ms",
            "cv2_cpu_ms", "pl_fps", "cv2_fps", "uncertain", "basis")


def default_outputs(width: int, height: int) -> list[tuple[int, int]]:
    """The common output sizes and the input's exact 2x, 3x and 4x downscales, smallest
    first (sizes as (width, height))."""
    sizes = set(COMMON_OUTPUTS)
    for k in (2, 3, 4):
        if width % k == 0 and height % k == 0:
            sizes.add((width // k, height // k))
    return sorted(sizes, key=lambda s: (s[0] * s[1], s))


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def _fps(seconds: float) -> float:
    return round(1.0 / max(seconds, 1e-12), 2)


def routes(
    board: str, size: tuple[int, int], outputs: list[tuple[int, int]] | None = None, *,
    mode: str = "sync", policy: str | None = None, fps: float | None = None,
    zero_copy: bool = False, costs: BoardCosts | None = None,
) -> dict[str, Any]:
    """The routing map for ``board`` at input ``size`` (width, height): ``{"rows": [...],
    "board", "input", "mode", "policy", "fps", "zero_copy", "machine", "costs_from"}``.

    One row per output size (``default_outputs`` when none are given) with ``ROW_KEYS``,
    plus ``ranges`` (each time and rate at the two ends of the constants' ranges, for the
    picture's bands) and ``machine``. ``costs``: the constants to plan with (e.g. measured
    ones); default the board's published model, or the calibration file
    ``PYNQ_CV_CALIBRATION`` names."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    desc = descriptor_for(board)
    envelope = Envelope.from_descriptor(desc)
    if costs is None:
        costs, costs_from = calibration.costs_for(desc.board, "emulator", None, desc.cpu_family)
    else:
        costs_from = "given"
    planner = Planner(costs, desc.clock_hz, policy, fps=fps)
    width, height = size
    rows = rows_for(planner, envelope, (height, width), outputs or default_outputs(width, height),
                    mode, zero_copy=zero_copy)
    return {
        "board": desc.board, "input": f"{width}x{height}", "mode": mode,
        "policy": planner.policy, "fps": planner.fps, "zero_copy": zero_copy,
        "machine": costs.machine, "costs_from": costs_from, "rows": rows,
    }


def rows_for(
    planner: Planner, envelope: Envelope | None, size: tuple[int, int],
    outputs: list[tuple[int, int]], mode: str, *, zero_copy: bool = False,
    model_rejected: bool = False,
) -> list[dict[str, Any]]:
    """One row per output (width, height) of an input ``size`` (rows, cols): ``ROW_KEYS``,
    the plan's own description (buffer kinds, copies), ``ip_ms`` and ``pl_period_ms`` (the
    PL's time per frame: its latency for a call, the pipelined period for a stream),
    ``machine`` and ``ranges``. An output ``envelope`` does not take is a cv2 row with the
    envelope's reason; its costs are blank unless ``model_rejected`` (the doctor shows what
    the model would give). ``envelope`` None: every size is taken."""
    pipelined = mode == "stream"
    in_rows, in_cols = size
    rows = []
    for out_w, out_h in outputs:
        sizes = (in_rows, in_cols, out_h, out_w)
        reason = envelope.size_reason(*sizes) if envelope is not None else None
        row: dict[str, Any] = {"shape": f"{in_cols}x{in_rows}->{out_w}x{out_h}"}
        if reason is not None and not model_rejected:  # the PL cannot take it: cv2
            row.update(mode=mode, policy=effective_policy(planner.policy, pipelined),
                       path="cpu", reason=reason, pl_ms=None, cv2_ms=None, pl_cpu_ms=None,
                       cv2_cpu_ms=None, pl_fps=None, cv2_fps=None, uncertain=False,
                       basis="envelope", machine=planner.costs.machine, ranges=None,
                       ip_ms=None, pl_period_ms=None)
            rows.append(row)
            continue
        src_cacheable = LENT_CACHEABLE["input"] if zero_copy else True  # lent buffers' kinds
        dst_cacheable = LENT_CACHEABLE["output"] if zero_copy else True
        plan = planner.plan((sizes, not zero_copy, not zero_copy, pipelined, src_cacheable,
                             dst_cacheable))
        pl_period = period(plan.pl, pipelined)
        row.update(plan.describe())
        row.update(
            mode=mode, policy=effective_policy(planner.policy, pipelined),
            pl_fps=_fps(pl_period), cv2_fps=_fps(plan.cv2.latency),
            ip_ms=_ms(plan.pl.parts.get("ip", 0.0)), pl_period_ms=_ms(pl_period),
            ranges=_ranges(plan.corners, pipelined),
        )
        if reason is not None:  # modelled, but the overlay does not take it
            row.update(path="cpu", reason=reason, basis="envelope")
        rows.append(row)
    return rows


def _ranges(
    corners: tuple[tuple[PathCost, PathCost], tuple[PathCost, PathCost]] | None,
    pipelined: bool,
) -> dict[str, list[float]] | None:
    """[low, high] of each path's time and rate across the constants' ranges."""
    if corners is None:
        return None
    (pl_a, cv2_a), (pl_b, cv2_b) = corners

    def span(values: list[float]) -> list[float]:
        return [min(values), max(values)]

    return {
        "pl_ms": span([_ms(pl_a.latency), _ms(pl_b.latency)]),
        "cv2_ms": span([_ms(cv2_a.latency), _ms(cv2_b.latency)]),
        "pl_fps": span([_fps(period(pl_a, pipelined)), _fps(period(pl_b, pipelined))]),
        "cv2_fps": span([_fps(cv2_a.latency), _fps(cv2_b.latency)]),
    }


def markdown(result: dict[str, Any]) -> str:
    """The map as a Markdown table (the README's tables are this, regenerated by a test)."""
    what = f"{result['board']}, {result['input']} {result['mode']}"
    what += ", zero copy" if result["zero_copy"] else ""
    what += f", {result['fps']:g} fps source" if result["fps"] else ""
    what += "" if result["policy"] == "auto" else f", {result['policy']}"
    lines = [
        f"| {what} -> | path | reason | PL ms | cv2 ms | PL CPU ms | cv2 CPU ms | PL fps "
        "| cv2 fps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def num(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for row in result["rows"]:
        output = row["shape"].split("->")[1]
        path = {"pl": "PL", "cpu": "cv2"}[row["path"]]
        if row["uncertain"]:
            path += " (uncertain)"
        lines.append(
            f"| {output} | {path} | {row['reason'] or ''} | {num(row['pl_ms'])} | "
            f"{num(row['cv2_ms'])} | {num(row['pl_cpu_ms'])} | {num(row['cv2_cpu_ms'])} | "
            f"{num(row['pl_fps'], 0)} | {num(row['cv2_fps'], 0)} |"
        )
    return "\n".join(lines)


def rows_for_shapes(
    costs: BoardCosts, clock_hz: int, shapes: Iterable[tuple[int, int, int, int]],
    policy: str | None = None, modes: Iterable[str] = ("sync", "stream"),
    envelope: Any = None,
) -> list[dict[str, Any]]:
    """The routing map: one row per shape and mode (a copied frame in and out) as the
    planner decides it with ``costs`` -- ``routes.rows_for``'s rows (``pynq-cv plan``'s),
    per input size, in the order of ``shapes``. A shape the overlay does not take is a cv2
    row with the envelope's reason, still with the model's numbers (for the picture)."""
    planner = Planner(costs, clock_hz, policy)
    shapes, modes = [tuple(s) for s in shapes], list(modes)
    by_input: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for in_rows, in_cols, out_rows, out_cols in shapes:
        by_input.setdefault((in_rows, in_cols), []).append((out_cols, out_rows))
    found: dict[tuple[Any, str], dict[str, Any]] = {}
    for size, outputs in by_input.items():
        for mode in modes:
            rows = rows_for(planner, envelope, size, outputs, mode, model_rejected=True)
            for (out_cols, out_rows), row in zip(outputs, rows, strict=True):
                found[(*size, out_rows, out_cols), mode] = row
    return [found[sizes, mode] for sizes in shapes for mode in modes]
