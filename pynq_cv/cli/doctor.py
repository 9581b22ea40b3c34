"""``pynq-cv doctor [--report DIR] [--quick] [--calibrate]``: the doctor's steps
(``pynq_cv.doctor``), a progress line per step on stderr, and the report they leave:
``DIR/report.md`` (for people), ``DIR/report.json`` (for tools), ``DIR/routes.png``."""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

from pynq_cv import calibration
from pynq_cv.cli.common import PROG, CliError, backend_options, checked_backend
from pynq_cv.doctor import Doctor, Report, write_json

DEFAULT_DIR = "pynq-cv-doctor"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser(
        "doctor", parents=parents, help="measure this board and write one report",
        description="A board owner's first hour in one command: the image, cv2.resize at the "
                    "sizes users resize to, copies, flush and invalidate, whether flush reaches "
                    "the PL, one MMIO access, the PL against the exact model, pipelined fps, "
                    "the routing map with the measured constants. Off a board: the emulator "
                    "(the host's numbers, said on every section). Ctrl-C writes what it has.")
    doctor.add_argument("--report", metavar="DIR", default=DEFAULT_DIR,
                        help=f"where to write report.md, report.json, routes.png "
                             f"(default: ./{DEFAULT_DIR})")
    doctor.add_argument("--quick", action="store_true", help="fewer repeats, frames, patterns")
    doctor.add_argument("--calibrate", action="store_true",
                        help="also save the measured constants as the calibration file later "
                             "runs load (default: $PYNQ_CV_CALIBRATION, else "
                             "~/.config/pynq_cv/calibration.json)")
    doctor.set_defaults(run=cmd_doctor)


def _report_dir(path: str) -> Path:
    where = Path(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe = where / ".pynq-cv-doctor-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CliError(f"cannot write the report in {where}: {exc.strerror or exc}", 1) from None
    return where


def _progress(line: str) -> None:
    print(f"{PROG} doctor: {line}", file=sys.stderr, flush=True)


def cmd_doctor(args: argparse.Namespace) -> int:
    backend = checked_backend(args)
    where = _report_dir(args.report)
    doctor = Doctor(backend, backend_options(args), quick=args.quick, progress=_progress,
                    policy=getattr(args, "policy", None))
    report = doctor.run()
    saved = None
    if args.calibrate:
        data = doctor.calibration_data()
        if data is None:
            report.doctor["calibration"] = "not saved: nothing was measured"
        else:
            try:
                saved = calibration.write(data)
            except OSError as exc:
                raise CliError(f"cannot write the calibration file: {exc}", 1) from None
            report.doctor["calibration"] = str(saved)
    written = write_report(report, where)
    files = ", ".join(p.name for p in written[1:])
    print(f"{PROG} doctor: {'EMULATED (no board here): ' if report.emulated else ''}"
          f"wrote {written[0]}, {files}")
    for line in summary(report):
        print(f"  {line}")
    if saved is not None:
        print(f"  calibration saved to {saved} (`PYNQ_CV_CALIBRATION=none` or deleting the "
              "file undoes it)")
    if report.doctor.get("interrupted_at"):
        print(f"{PROG} doctor: interrupted during {report.doctor['interrupted_at']}; "
              "the report holds what was measured", file=sys.stderr)
        return 130
    return 1 if report.failed or report.doctor.get("errors") else 0


def summary(report: Report) -> list[str]:
    """The verdicts, in a few lines."""
    lines = []
    coherency = report.coherency
    if coherency.get("failure"):
        lines.append(f"COHERENCY FAILURE: {coherency['failure']}")
    elif coherency.get("ok"):
        lines.append("coherency: every buffer kind gives the exact output")
    elif coherency.get("cases"):
        lines.append("coherency: not settled, the PL faulted (see the coherency section)")
    verify = report.verify
    if verify.get("skipped"):
        lines.append(f"verify: skipped ({verify['skipped']})")
    elif "exact" in verify:
        lines.append(f"verify: {verify['exact']} exact, {verify['mismatched']} mismatched, "
                     f"{verify['not_on_pl']} not on the PL")
    changed = report.routes.get("changed")
    if changed is not None:
        lines.append(f"routing: {len(changed)} decision(s) change with the measured constants")
    for name, error in report.doctor.get("errors", {}).items():
        lines.append(f"step {name} failed: {error}")
    return lines


# -- report.md ---------------------------------------------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_num(c) for c in row) + " |" for row in rows]
    return out + [""]


def _heading(title: str, section: dict[str, Any]) -> list[str]:
    lines = [f"## {title}", ""]
    if section.get("note"):
        lines += [f"_{section['note']}._", ""]
    if section.get("skipped"):
        lines += [f"Skipped: {section['skipped']}.", ""]
    return lines


def markdown(report: Report) -> str:
    doc = report.doctor
    env = report.environment
    lines = ["# pynq-cv doctor report", ""]
    if report.emulated:
        lines += ["**EMULATED: no board here.** Every step ran on the board emulator; the times "
                  "are this host's, not a board's. Run `pynq-cv doctor` on the board for its "
                  "numbers.", ""]
    lines += [f"pynq_cv {doc.get('version')}, started {doc.get('started')}, "
              f"{doc.get('total_seconds', 0):.1f} s{', --quick' if doc.get('quick') else ''}; "
              f"board {env.get('board', '-')}, backend {env.get('backend', '-')}.", ""]
    if doc.get("interrupted_at"):
        lines += [f"**Interrupted during `{doc['interrupted_at']}`**: later sections are "
                  "empty.", ""]
    for line in summary(report):
        lines.append(f"- {'**' + line + '**' if 'FAIL' in line else line}")
    lines.append("")

    lines += _heading("The image", env)
    for key in ("versions", "machine", "cpu_count", "cv2_threads", "cv2_cpu", "cma",
                "emulated_cma_bytes", "backend", "why", "overlay", "build", "bitstream",
                "bitstream_origin", "pl_loaded_before", "pl_lock", "pl_holder"):
        if key in env:
            value = env[key]
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            lines.append(f"- {key.replace('_', ' ')}: {value}")
    lines.append("")

    measurements = report.measurements
    lines += _heading("cv2.resize", measurements)
    rows = [[r["shape"], r["threads"], r["wall_ms"], r["cpu_ms"], r.get("model_ms")]
            for r in measurements.get("cv2", [])]
    lines += _table(["shape", "threads", "wall ms", "CPU ms", "published model ms"], rows)

    lines += _heading("Copies, flush, invalidate", measurements)
    for size, b in measurements.get("buffers", {}).items():
        if not isinstance(b, dict):
            lines += [f"{size}: {b}", ""]
            continue
        rows = [[op.replace("_", " "), b.get(f"{op}_ms"), b.get(f"model_{op}_ms")]
                for op in ("into_cacheable", "out_of_cacheable", "into_non_cacheable",
                           "out_of_non_cacheable", "flush", "invalidate")]
        lines += [f"{size}:", ""] + _table(["operation", "measured ms", "published model ms"],
                                           rows)
    mmio = measurements.get("mmio", {})
    if "read_us" in mmio:
        lines += [f"One Python MMIO read {mmio['read_us']:.2f} us, write {mmio['write_us']:.2f} "
                  f"us (published model: {_num(mmio.get('model_us'))} us).", ""]
    if "frame_us" in mmio:
        how = "counted on the bus" if mmio["accesses_counted"] else "the published count"
        lines += [f"One small frame through the driver: {mmio['frame_us']:.1f} us; "
                  f"{mmio['register_accesses']} register accesses ({how}; model "
                  f"{mmio['model_accesses']}); Python per frame besides them "
                  f"{mmio['frame_python_us']:.1f} us (model {mmio['model_frame_python_us']:.1f}"
                  " us).", ""]

    coherency = report.coherency
    lines += _heading("Coherency", coherency)
    if coherency.get("failure"):
        lines += [f"**FAIL: {coherency['failure']}.** Frames through buffers of that kind come "
                  "out wrong on this image; please attach this report to an issue.", ""]
    rows = [[c["input"], c["output"],
             {True: "yes", False: "**NO**"}.get(c["exact"], f"PL fault: {c.get('error')}"),
             max((r["max_difference"] for r in c["rounds"]), default="-")]
            for c in coherency.get("cases", [])]
    lines += _table(["input buffer", "output buffer", "exact", "max difference"], rows)

    verify = report.verify
    lines += _heading("The PL against the exact model (verify's cases)", verify)
    if "exact" in verify:
        lines += [f"{verify['exact']} exact, {verify['mismatched']} mismatched, "
                  f"{verify['not_on_pl']} not on the PL.", ""]
        bad = [c for c in verify.get("cases", []) if c["on_pl"] and c["max_difference"]]
        lines += _table(["pattern", "input", "output", "max difference"],
                        [[c["pattern"], c["input"], c["output"], c["max_difference"]]
                         for c in bad]) if bad else []

    stream = report.stream
    lines += _heading("Streams: pipelined PL vs cv2", stream)
    modelled = {m["shape"]: m for m in stream.get("modelled", [])}
    rows = []
    for case in stream.get("cases", []):
        model = modelled.get(case["shape"], {})
        on_pl = f"{case['frames_on_pl']}/{case['frames']}" if "frames" in case else "-"
        rows.append([case["stream"], case.get("pl_fps", case.get("pl", "-")), on_pl,
                     case.get("cv2_fps"), model.get("pl_fps"), model.get("cv2_fps")])
    lines += _table(["stream", "PL fps", "frames on the PL", "cv2 fps", "modelled PL fps",
                     "modelled cv2 fps"], rows)
    if report.emulated and stream.get("cases"):
        lines += ["The emulated PL is paced to the IP's modelled time; its copies are the "
                  "host's. The modelled columns use the measured constants.", ""]

    routes = report.routes
    lines += _heading("Routing with the measured constants", routes)
    if "constants" in routes:
        lines += [f"Policy {routes['policy']}, board {routes['board']}. Every constant, "
                  "measured beside published:", ""]
        lines += _table(["constant", "unit", "measured", "published", "published source"],
                        [[c["name"], c["unit"], c["measured"], c["published"], c["source"]]
                         for c in routes["constants"]])
        changed = routes["changed"]
        lines += ["Decisions that changed (published -> measured):", ""]
        lines += _table(["shape", "mode", "published", "measured", "reason"],
                        [[c["shape"], c["mode"], c["published"], c["measured"], c["reason"]]
                         for c in changed]) if changed else ["none", ""]
        lines += _table(
            ["shape", "mode", "path", "reason", "PL ms", "cv2 ms", "PL fps", "cv2 fps"],
            [[r["shape"], r["mode"], r["path"], r["reason"], r["pl_ms"], r["cv2_ms"],
              r["pl_fps"], r["cv2_fps"]] for r in routes["rows"]])
        lines += ["![routes](routes.png)", ""]
    for name, error in doc.get("errors", {}).items():
        lines += [f"Step `{name}` failed: `{error}`", ""]
    return "\n".join(lines)


def write_report(report: Report, where: Path) -> list[Path]:
    """report.md, report.json and (with a routing map) routes.png; the paths written."""
    written = [where / "report.md", where / "report.json"]
    try:
        written[0].write_text(markdown(report) + "\n", encoding="utf-8")
        write_json(report, written[1])
        if report.routes.get("rows"):
            written.append(where / "routes.png")
            picture = routes_picture(report.routes["rows"], picture_title(report),
                                     report.routes.get("published_rows"))
            picture.save(written[-1])
    except OSError as exc:
        raise CliError(f"cannot write the report in {where}: {exc.strerror or exc}", 1) from None
    return written


# -- routes.png ----------------------------------------------------------------------------------

PL_COLOUR = (31, 119, 180)
CV2_COLOUR = (230, 120, 20)
_SHAPE = re.compile(r"(\d+)x(\d+)->(\d+)x(\d+)")


def picture_title(report: Report) -> str:
    board = report.routes.get("board") or report.environment.get("board", "?")
    where = "EMULATED: this host's constants" if report.emulated else "measured on the board"
    return (f"pynq-cv doctor: routes for {board} ({where}), policy "
            f"{report.routes.get('policy', '?')}")


def routes_picture(
    rows: list[dict[str, Any]], title: str, reference: list[dict[str, Any]] | None = None,
    input_size: str = "1920x1080",
) -> Any:
    """Output size against modelled time per frame of both paths, one panel per mode (sync:
    latency; stream: the pipelined period), the chosen path filled: where the lines cross,
    the choice flips. ``reference`` (the published constants' rows) is drawn thin and pale.
    Rows as ``route_rows`` (or ``pynq-cv plan``) gives them; the time axis is logarithmic,
    as a host's and a board's times differ a hundredfold."""
    from PIL import Image, ImageDraw

    modes = [m for m in ("sync", "stream") if any(r["mode"] == m for r in rows)]
    width, panel, top = 900, 330, 40
    image = Image.new("RGB", (width, top + panel * len(modes)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), title, fill="black")
    note = "; thin, pale: the published constants" if reference else ""
    draw.text((10, 22), f"input {input_size}; x: output megapixels, y: ms per frame "
                        f"(1 / frame rate, log scale); filled: the path chosen{note}",
              fill=(80, 80, 80))
    for index, mode in enumerate(modes):
        box = (60, top + index * panel + 20, width - 20, top + (index + 1) * panel - 30)
        _panel(draw, box, _points(rows, mode, input_size),
               _points(reference or [], mode, input_size),
               "sync: latency per call" if mode == "sync" else
               "stream: pipelined period per frame")
    return image


def _points(rows: list[dict[str, Any]], mode: str, input_size: str) -> list[tuple]:
    """(output megapixels, PL ms, cv2 ms, path) of the rows of one mode and input size."""
    points = []
    for row in rows:
        match = _SHAPE.fullmatch(row["shape"])
        if row["mode"] != mode or not match or f"{match[1]}x{match[2]}" != input_size:
            continue
        pixels = int(match[3]) * int(match[4]) / 1e6
        points.append((pixels, 1e3 / row["pl_fps"], 1e3 / row["cv2_fps"], row["path"]))
    return sorted(points)


def _panel(draw: Any, box: tuple[int, int, int, int], points: list[tuple],
           reference: list[tuple], label: str) -> None:
    left, top, right, bottom = box
    draw.rectangle(box, outline=(160, 160, 160))
    draw.text((left + 6, top + 4), label, fill="black")
    if not points:
        draw.text((left + 6, top + 20), "no shapes of this input size", fill="black")
        return
    x_max = max(p[0] for p in points + reference) * 1.05
    times = [t for p in points + reference for t in p[1:3] if t > 0]
    lo = math.floor(math.log10(min(times)))
    hi = max(math.ceil(math.log10(max(times))), lo + 1)

    def at(x: float, y: float) -> tuple[float, float]:
        share = (math.log10(max(y, 10.0**lo)) - lo) / (hi - lo)
        return (left + (right - left) * x / x_max, bottom - (bottom - top - 20) * share)

    for decade in range(lo, hi + 1):
        _, py = at(0, 10.0**decade)
        draw.line((left, py, right, py), fill=(232, 232, 232))
        draw.text((5, py - 6), f"{10.0**decade:g}", fill=(80, 80, 80))
    for tick in range(5):
        x = x_max * tick / 4
        px, _ = at(x, 10.0**lo)
        draw.text((px - 10, bottom + 4), f"{x:.2f}", fill=(80, 80, 80))
    for column, colour, name in ((1, PL_COLOUR, "pl"), (2, CV2_COLOUR, "cpu")):
        pale = tuple(c + (255 - c) * 2 // 3 for c in colour)
        faint = [at(p[0], p[column]) for p in reference]
        if len(faint) > 1:
            draw.line(faint, fill=pale, width=1)
        line = [at(p[0], p[column]) for p in points]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for p, (px, py) in zip(points, line, strict=True):
            r = 5 if p[3] == name else 3
            draw.ellipse((px - r, py - r, px + r, py + r), outline=colour,
                         fill=colour if p[3] == name else "white")
    draw.text((right - 150, top + 4), "PL", fill=PL_COLOUR)
    draw.text((right - 110, top + 4), "cv2.resize", fill=CV2_COLOUR)
