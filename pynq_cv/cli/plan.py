"""``pynq-cv plan``: the routing map -- which path each output size takes on a board, and
what both paths cost -- before buying a board or writing a loop. MODELLED (``routes.py``):
nothing runs on a PL.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from pynq_cv import planner, routes
from pynq_cv.cli.common import PROG, CliError, parse_size

PICTURE_SIZE = (960, 600)
MARGIN = (80, 60, 30, 70)  # left, top, right, bottom
COLOURS = {"pl": (31, 119, 180), "cpu": (230, 120, 20)}
NAMES = {"pl": "PL", "cpu": "cv2"}


def add_parser(sub: Any) -> None:
    plan = sub.add_parser(
        "plan", help="the routing map of a board: which path each output size takes",
        description="For one board and input size: per output size, the path pynq_cv's "
                    "planner takes under a policy and what both paths cost, MODELLED from "
                    "the board's published constants (or PYNQ_CV_CALIBRATION's file). "
                    "'uncertain': the decision flips inside the constants' published ranges.")
    plan.add_argument("--board", default="Pynq-Z2", metavar="NAME",
                      help="board whose descriptor and cost model to use (default Pynq-Z2)")
    plan.add_argument("--input", type=parse_size, required=True, metavar="WxH",
                      help="input frame size, e.g. 1920x1080")
    plan.add_argument("--output", type=parse_size, nargs="+", metavar="WxH",
                      help="output sizes (default: common sizes and the input's exact "
                           "2x/3x/4x downscales)")
    plan.add_argument("--mode", choices=routes.MODES, default="sync",
                      help="sync: one call at a time (resize, cv2.resize); stream: a "
                           "pipelined loop (submit, stream). Default sync")
    plan.add_argument("--policy", type=str.lower, choices=planner.POLICIES, metavar="NAME",
                      help=f"one of {', '.join(planner.POLICIES)} (default: $PYNQ_CV_POLICY, "
                           "else auto)")
    plan.add_argument("--fps", type=float, metavar="N",
                      help="the source's frame rate (default: $PYNQ_CV_FPS, else none)")
    plan.add_argument("--zero-copy", action="store_true",
                      help="frames in and out of lent buffers (no copies)")
    plan.add_argument("--json", action="store_true", help='print {"rows": [...], ...}')
    plan.add_argument("--markdown", action="store_true", help="print a Markdown table")
    plan.add_argument("--picture", metavar="FILE.png",
                      help="also draw output size against modelled time for both paths")
    plan.set_defaults(run=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        result = routes.routes(
            args.board, args.input, args.output, mode=args.mode, policy=args.policy,
            fps=args.fps, zero_copy=args.zero_copy,
        )
    except ValueError as exc:  # an unknown board, a bad cost model
        raise CliError(str(exc).splitlines()[0], 2) from None
    if args.picture:
        try:
            draw(result, args.picture)
        except OSError as exc:
            raise CliError(f"cannot write {args.picture}: {exc}", 1) from None
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.markdown:
        print(routes.markdown(result))
    else:
        print(text(result))
        if args.picture:
            print(f"wrote {args.picture}")
    return 0


def title(result: dict[str, Any]) -> str:
    rate = f", source {result['fps']:g} fps" if result["fps"] else ""
    policy = result["policy"]
    if policy == "auto":
        policy += " (offload for a stream)" if result["mode"] == "stream" else " (latency)"
    copies = "zero copy" if result["zero_copy"] else "copied in and out"
    return (f"MODELLED for {result['machine']}: {result['input']} input, {result['mode']}, "
            f"policy {policy}{rate}, {copies}")


def text(result: dict[str, Any]) -> str:
    """The map as aligned columns, under a line saying which machine it describes."""
    from pynq_cv.cli.bench import format_table

    rows = []
    for row in result["rows"]:
        rows.append({
            "output": row["shape"].split("->")[1],
            "path": NAMES[row["path"]] + ("?" if row["uncertain"] else ""),
            "reason": row["reason"] or "",
            **{name: "-" if row[key] is None else row[key] for name, key in (
                ("PL ms", "pl_ms"), ("cv2 ms", "cv2_ms"), ("PL CPU ms", "pl_cpu_ms"),
                ("cv2 CPU ms", "cv2_cpu_ms"), ("PL fps", "pl_fps"), ("cv2 fps", "cv2_fps"))},
        })
    note = ("'?': uncertain -- the decision flips inside the constants' published ranges "
            "(overlays/costs/README.md); on a board, measured planning settles it")
    return f"{PROG} plan: {title(result)}\n{format_table(rows)}\n{note}"


def label_lines(spans: list[tuple[float, float, str]], lines: int = 3, gap: float = 6) -> list[int]:
    """The line (0: nearest the axis) for each x label, spans (start, end) in x order, so
    that no two labels on a line overlap (640x480 next to 608x608); past ``lines`` a label
    takes the line whose last label ends first."""
    ends = [-math.inf] * lines
    chosen = []
    for start, end, _ in spans:
        free = [i for i in range(lines) if ends[i] + gap <= start]
        line = free[0] if free else min(range(lines), key=ends.__getitem__)
        ends[line] = end
        chosen.append(line)
    return chosen


def draw(result: dict[str, Any], path: str) -> None:
    """Output size (pixels, log scale) against modelled ms per frame (log scale) for both
    paths, each with its range as a band; the chosen path's points filled, uncertain ones
    ringed; where the lines cross, the choice changes."""
    from PIL import Image, ImageDraw

    rows = [r for r in result["rows"] if r["pl_ms"] is not None]
    width, height = PICTURE_SIZE
    left, top, right, bottom = MARGIN
    image = Image.new("RGB", PICTURE_SIZE, (255, 255, 255))
    pen = ImageDraw.Draw(image)
    pen.text((left, 10), f"{PROG} plan -- {title(result)}", fill=(0, 0, 0))
    stream = result["mode"] == "stream"
    what = "ms per frame (1000 / fps)" if stream else "ms per call (latency)"
    pen.text((left, 28), f"y: {what}; x: output pixels. Bands: the constants' ranges. "
             "Filled: the chosen path. Ringed: uncertain.", fill=(60, 60, 60))
    if not rows:
        pen.text((left, top + 40), "no output size here is one the PL takes", fill=(0, 0, 0))
        image.save(path)
        return

    def ms(row: dict[str, Any], which: str, value: float | None = None) -> float:
        if stream:
            return 1000.0 / (value if value is not None else row[f"{which}_fps"])
        return value if value is not None else row[f"{which}_ms"]

    values = []
    for row in rows:
        for which in ("pl", "cpu"):
            key = "pl" if which == "pl" else "cv2"
            values.append(ms(row, key))
            if row["ranges"]:
                values.extend(ms(row, key, v) for v in row["ranges"][
                    f"{key}_fps" if stream else f"{key}_ms"])
    y_lo, y_hi = math.log10(max(min(values), 1e-3)), math.log10(max(values))
    y_lo, y_hi = math.floor(y_lo), math.ceil(y_hi + 1e-9)
    pixels = [int(r["shape"].split("->")[1].split("x")[0]) * int(
        r["shape"].split("->")[1].split("x")[1]) for r in rows]
    x_lo, x_hi = math.log10(min(pixels)), math.log10(max(pixels))
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5

    def xy(px: int, value: float) -> tuple[float, float]:
        x = left + (math.log10(px) - x_lo) / (x_hi - x_lo) * (width - left - right)
        y = top + (y_hi - math.log10(max(value, 1e-3))) / (y_hi - y_lo) * (
            height - top - bottom)
        return x, y

    pen.rectangle((left, top, width - right, height - bottom), outline=(0, 0, 0))
    for decade in range(y_lo, y_hi + 1):
        _, y = xy(pixels[0], 10.0 ** decade)
        pen.line((left, y, width - right, y), fill=(225, 225, 225))
        pen.text((8, y - 6), f"{10.0 ** decade:g} ms", fill=(0, 0, 0))
    spans = []
    for px, row in zip(pixels, rows, strict=True):
        x, _ = xy(px, 1.0)
        pen.line((x, top, x, height - bottom), fill=(240, 240, 240))
        label = row["shape"].split("->")[1]
        half = pen.textlength(label) / 2
        spans.append((x - half, x + half, label))
    for (start, _, label), line in zip(spans, label_lines(spans), strict=True):
        pen.text((start, height - bottom + 6 + 12 * line), label, fill=(0, 0, 0))
    for which, key in (("pl", "pl"), ("cpu", "cv2")):
        colour = COLOURS[which]
        band = tuple(min(255, c + (255 - c) * 2 // 3) for c in colour)
        points = []
        for px, row in zip(pixels, rows, strict=True):
            if row["ranges"]:
                lo, hi = (ms(row, key, v) for v in row["ranges"][
                    f"{key}_fps" if stream else f"{key}_ms"])
                x, y1 = xy(px, lo)
                _, y2 = xy(px, hi)
                pen.rectangle((x - 4, min(y1, y2), x + 4, max(y1, y2)), fill=band)
            points.append(xy(px, ms(row, key)))
        if len(points) > 1:
            pen.line(points, fill=colour, width=2)
        for (x, y), row in zip(points, rows, strict=True):
            chosen = row["path"] == which
            pen.ellipse((x - 5, y - 5, x + 5, y + 5), outline=colour,
                        fill=colour if chosen else (255, 255, 255), width=2)
            if chosen and row["uncertain"]:
                pen.ellipse((x - 9, y - 9, x + 9, y + 9), outline=(200, 0, 0), width=2)
    legend_y = height - 24
    for i, which in enumerate(("pl", "cpu")):
        x = left + i * 160
        pen.rectangle((x, legend_y, x + 14, legend_y + 10), fill=COLOURS[which])
        pen.text((x + 20, legend_y - 1), f"{NAMES[which]} path", fill=(0, 0, 0))
    pen.ellipse((left + 330, legend_y - 2, left + 344, legend_y + 12), outline=(200, 0, 0),
                width=2)
    pen.text((left + 350, legend_y - 1), "uncertain choice", fill=(0, 0, 0))
    image.save(path)
