"""``pynq-cv doctor``: every step runs on the emulator and says so, a flush or invalidate that
does nothing is named as the coherency failure, Ctrl-C keeps what was measured.

The doctor runs as the command it is, in its own process (``setup`` patches it there before
``main``): after its 4K cv2 work in pytest's own process, OpenCV's thread pool made a child
that tests/test_fork.py forks mid-cv2 hang now and then."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import real_pynq
from PIL import Image

import pynq_cv
from pynq_cv import calibration, coherency, doctor, routes
from pynq_cv.cli.doctor import routes_picture
from pynq_cv.costs import for_board
from pynq_cv.descriptors import descriptor_for
from pynq_cv.envelope import Envelope

KEYS = {"environment", "measurements", "coherency", "verify", "stream", "routes", "emulated"}


@dataclass
class Run:
    code: int
    report: dict
    md: str
    out: str
    err: str
    where: Path


def run_doctor(tmp_path: Path, *extra: str, setup: str = "", backend: str = "emulator",
               env: dict[str, str] | None = None) -> Run:
    """``pynq-cv doctor --quick`` in a process of its own, after ``setup`` (Python code)."""
    where = tmp_path / "report"
    code = textwrap.dedent(setup) + (
        "\nimport sys\nfrom pynq_cv.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    argv = ["doctor", "--quick", "--backend", backend, "--report", str(where), *extra]
    done = subprocess.run([sys.executable, "-c", code, *argv],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, **(env or {})})
    report = json.loads((where / "report.json").read_text()) if where.is_dir() else {}
    md = (where / "report.md").read_text() if where.is_dir() else ""
    return Run(done.returncode, report, md, done.stdout, done.stderr, where)


def test_doctor_on_the_emulator_finds_no_coherency_or_verify_mismatch(tmp_path):
    run = run_doctor(tmp_path)
    report, md = run.report, run.md
    assert run.code == 0, (run.out, run.err)
    assert KEYS <= set(report)
    assert report["emulated"] is True
    assert report["doctor"]["complete"] and not report["doctor"]["errors"]
    assert report["coherency"]["ok"] and report["coherency"]["failure"] is None
    assert len(report["coherency"]["cases"]) == 4
    verify = report["verify"]
    assert verify["mismatched"] == 0 and verify["exact"] == len(verify["cases"]) > 0
    # every section says it was emulated, in the JSON and in the Markdown
    for key in KEYS - {"emulated"}:
        assert report[key]["emulated"] is True, key
        assert "EMULATED" in report[key]["note"], key
    assert md.count("_EMULATED:") == md.count("\n## ")
    assert "EMULATED" in run.out
    # a progress line per step on stderr
    steps = [line for line in run.err.splitlines() if line.startswith("pynq-cv doctor: [")]
    assert len(steps) == 8 and all(line.endswith(" ...") for line in steps)
    for name in ("report.md", "report.json", "routes.png"):
        assert (run.where / name).stat().st_size > 0
    with Image.open(run.where / "routes.png") as picture:
        assert picture.format == "PNG"


def test_doctor_measures_every_shape_and_buffer_the_issue_names(tmp_path):
    run = run_doctor(tmp_path, setup="import cv2\nprint('threads', cv2.getNumThreads())")
    report, md = run.report, run.md
    threads = int(run.out.split()[1])
    cv2_rows = report["measurements"]["cv2"]
    shapes = {row["shape"] for row in cv2_rows}
    assert shapes == {name for name, _, _ in doctor.CV2_SHAPES}
    assert {row["threads"] for row in cv2_rows} == {1, threads}
    assert all(row["wall_ms"] > 0 and row["cpu_ms"] >= 0 for row in cv2_rows)
    buffers = report["measurements"]["buffers"]
    assert set(buffers) == {"6.22 MB", "1.56 MB"}
    for ops in buffers.values():
        for op in ("into_cacheable", "out_of_cacheable", "into_non_cacheable",
                   "out_of_non_cacheable", "flush", "invalidate"):
            assert ops[f"{op}_ms"] > 0 and ops[f"model_{op}_ms"] > 0
    mmio = report["measurements"]["mmio"]
    published = for_board(report["environment"].get("board", "Pynq-Z2")).register_access_s
    assert mmio["read_us"] > 0 and mmio["write_us"] > 0
    assert mmio["model_us"] == pytest.approx(published * 1e6)
    # one small frame's driver work: its registers counted on the emulated bus
    assert mmio["accesses_counted"] and mmio["register_accesses"] == mmio["model_accesses"]
    assert mmio["frame_us"] > 0 and mmio["frame_python_us"] >= 0
    streams = report["stream"]["cases"]
    assert [c["stream"] for c in streams] == ["1080p -> 960x540", "4K -> 1080p"]
    assert all(c["frames_on_pl"] == c["frames"] > 0 for c in streams)
    assert all(c["pl_fps"] > 0 and c["cv2_fps"] > 0 for c in streams)
    modelled = {m["shape"] for m in report["stream"]["modelled"]}
    assert modelled == {c["shape"] for c in streams}
    # every constant: measured (or '-') beside the published value
    table = report["routes"]["constants"]
    published = for_board("Pynq-Z2")
    assert [c["name"] for c in table] == list(published.constants)
    assert all(c["published"] == published.constants[c["name"]].value for c in table)
    assert table[0]["measured"] > 0
    for c in table:
        assert f"| {c['name']} |" in md


FLUSH_NOOP = """
from pynq_cv.backends.emulator.memory import EmulatedBuffer
EmulatedBuffer.flush = lambda self: None
"""


def test_a_flush_that_does_nothing_is_reported_as_the_coherency_failure(tmp_path):
    run = run_doctor(tmp_path, setup=FLUSH_NOOP)
    assert run.code == 1
    found = run.report["coherency"]
    assert found["ok"] is False
    assert found["failure"] == coherency.FLUSH_FAILURE
    assert coherency.FLUSH_FAILURE == "flush does not reach the PL on this image"
    flushed = [c for c in found["cases"] if c["input"].startswith("cacheable")]
    assert flushed and not any(c["exact"] for c in flushed)
    assert all(c["exact"] for c in found["cases"] if c not in flushed)
    assert f"COHERENCY FAILURE: {coherency.FLUSH_FAILURE}" in run.out
    assert f"**FAIL: {coherency.FLUSH_FAILURE}.**" in run.md


def test_an_invalidate_that_does_nothing_is_named_apart_from_flush(tmp_path):
    run = run_doctor(tmp_path, setup=FLUSH_NOOP.replace("flush", "invalidate"))
    assert run.code == 1
    assert run.report["coherency"]["failure"] == coherency.INVALIDATE_FAILURE


def test_a_pl_fault_in_the_coherency_step_is_not_taken_for_a_cache_failure(tmp_path):
    run = run_doctor(tmp_path, setup="""
        from pynq_cv.driver import ResizeDriver
        from pynq_cv.errors import PLFault

        def faulty(self, src, dst, sizes):
            raise PLFault("dma_error", "DMA refused the transfer: test")

        ResizeDriver.run = faulty
    """)
    found = run.report["coherency"]
    assert found["failure"] is None and found["ok"] is False
    assert all(c["exact"] is None and "DMA refused" in c["error"] for c in found["cases"])
    assert "PL fault" in run.md and coherency.FLUSH_FAILURE not in run.md
    assert run.report["verify"]["exact"] > 0  # frames of the engine itself do not use run()
    assert run.code == 1  # unsettled is not a pass


def test_ctrl_c_writes_what_was_measured_and_exits_130(tmp_path):
    run = run_doctor(tmp_path, setup=f"""
        import atexit, sys
        import cv2
        from pynq_cv import doctor

        threads = cv2.getNumThreads()
        calls = []

        def interrupted(fn, repeat):  # the first single-threaded shape: Ctrl-C
            calls.append(cv2.getNumThreads())
            if len(calls) == {len(doctor.CV2_SHAPES) + 1}:
                raise KeyboardInterrupt
            return 1e-3, 1e-3

        doctor.timed = interrupted
        atexit.register(lambda: print("threads", threads, calls[-1], cv2.getNumThreads()))
    """)
    assert run.code == 130
    threads, last, after = (int(n) for n in run.out.split("threads ", 1)[1].split()[:3])
    assert last == 1 and after == threads  # cv2's threads put back
    report = run.report
    assert report["doctor"]["interrupted_at"] == "cv2"
    assert report["doctor"]["complete"] is False
    assert report["environment"]["board"] == "Pynq-Z2"
    # the shapes measured are kept: every one at default threads
    assert [r["threads"] for r in report["measurements"]["cv2"]] == [threads] * len(
        doctor.CV2_SHAPES)
    assert report["verify"] == {} and report["routes"] == {}
    assert "Interrupted during `cv2`" in run.md
    assert "interrupted during cv2" in run.err


def test_a_failing_step_is_recorded_and_the_next_steps_run(tmp_path):
    run = run_doctor(tmp_path, setup="""
        from pynq_cv import doctor

        def broken(self):
            raise RuntimeError("MMIO bus error")

        doctor.Doctor.step_mmio = broken
    """)
    assert run.code == 1
    assert run.report["doctor"]["errors"] == {"mmio": "RuntimeError: MMIO bus error"}
    assert run.report["verify"]["exact"] > 0 and run.report["routes"]["rows"]
    assert "MMIO bus error" in run.md


def test_calibrate_saves_the_measured_constants_as_the_calibration_file(tmp_path):
    target = tmp_path / "calibration.json"
    run = run_doctor(tmp_path, "--calibrate", env={"PYNQ_CV_CALIBRATION": str(target)})
    assert run.code == 0
    data = calibration.read(target)
    assert data["backend"] == "emulator" and data["board"] == "Pynq-Z2"
    assert run.report["doctor"]["calibration"] == str(target)
    measured = {c["name"]: c["measured"] for c in run.report["routes"]["constants"]}
    for name, constant in data["constants"].items():
        assert constant["value"] == pytest.approx(measured[name])
        assert "pynq-cv doctor" in constant["source"]
    assert "flush_s_per_byte" in data["constants"]
    assert str(target) in run.out


def test_a_stream_the_overlay_does_not_take_says_so(tmp_path):
    run = run_doctor(tmp_path, setup="""
        from pynq_cv import doctor
        doctor.STREAMS = [("4K -> 4K", doctor.FRAME_4K, doctor.FRAME_4K)]
    """)
    assert run.code == 0
    [case] = run.report["stream"]["cases"]
    assert case["pl"].startswith("not eligible on this overlay (output_too_large)")
    assert case["cv2_fps"] > 0
    assert "not eligible on this overlay" in run.md


def test_on_the_cpu_backend_the_pl_steps_say_why_they_were_skipped(tmp_path):
    saved = tmp_path / "calibration.json"
    run = run_doctor(tmp_path, "--calibrate", backend="cpu",
                     env={"PYNQ_CV_CALIBRATION": str(saved)})
    report, md = run.report, run.md
    assert run.code == 0
    assert report["environment"]["backend"] == "cpu"
    assert report["emulated"] is False and "EMULATED" not in md
    assert "no PL path" in report["coherency"]["skipped"]
    assert "no PL path" in report["verify"]["skipped"]
    assert report["measurements"]["cv2"]  # cv2 is measured all the same
    assert "no PL path" in report["measurements"]["note"]
    # the routing map: the board's model with the cv2 constants measured here
    assert report["routes"]["rows"] and (run.where / "routes.png").exists()
    assert "verify: skipped (no PL path" in run.out
    # this host's cv2 constants are saved, and never as a board's
    data = calibration.read(saved)
    assert data["backend"] != "board" and set(data["constants"]) == {
        "cv2_area2x_bytes_per_s", "cv2_bilinear_s_per_out_byte", "cv2_call_s", "cv2_threads"}


def test_an_unwritable_report_directory_is_one_error_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = run_doctor(tmp_path, "--report", str(blocker / "sub"))
    assert run.code == 1
    assert run.err.startswith("pynq-cv: error: cannot write the report in")
    assert "Traceback" not in run.err


# -- the routing map and its picture -----------------------------------------------------------


def sizes_of(shape: str) -> tuple[int, int, int, int]:
    """"1920x1080->960x540" -> (1080, 1920, 540, 960)."""
    (in_w, in_h), (out_w, out_h) = (map(int, side.split("x")) for side in shape.split("->"))
    return in_h, in_w, out_h, out_w


def test_route_rows_follow_the_envelope_and_the_costs():
    costs = for_board("Pynq-Z2")
    envelope = Envelope.from_descriptor(descriptor_for("Pynq-Z2"))
    shapes = doctor.route_shapes()
    rows = doctor.route_rows(costs, 100_000_000, shapes, "latency", envelope=envelope)
    assert len(rows) == 2 * len(shapes)
    assert {r["mode"] for r in rows} == {"sync", "stream"}
    # a shape the overlay does not take is cv2's, with the envelope's reason
    assert envelope.size_reason(2160, 3840, 2160, 3840) == "output_too_large"
    big = doctor.route_rows(costs, 100_000_000, [(2160, 3840, 2160, 3840)], "pl",
                            envelope=envelope)
    assert [(r["path"], r["reason"]) for r in big] == [("cpu", "output_too_large")] * 2
    # a CPU a hundred times slower sends every eligible sync shape to the PL
    slow = costs.with_values({"cv2_bilinear_s_per_out_byte": 3e-6,
                              "cv2_area2x_bytes_per_s": 3e6}, "test", "override")
    slow_rows = doctor.route_rows(slow, 100_000_000, shapes, "latency", envelope=envelope)
    for row in slow_rows:
        if row["mode"] == "sync" and envelope.size_reason(*sizes_of(row["shape"])) is None:
            assert row["path"] == "pl", row
    for row in rows:
        period = 1e3 / row["pl_fps"]
        if row["mode"] == "stream":
            assert period == pytest.approx(max(row["ip_ms"], row["pl_cpu_ms"]), rel=1e-2)
        else:
            assert period == pytest.approx(row["pl_ms"], rel=1e-2)


def test_the_doctors_routing_map_is_pynq_cv_plans():
    """One routing map: the doctor's rows for a board are ``pynq-cv plan``'s (routes.routes)
    for the same input, mode and costs, keys and numbers, with the doctor's extras on top."""
    board = "Pynq-Z2"
    desc = descriptor_for(board)
    costs = for_board(board)
    envelope = Envelope.from_descriptor(desc)
    outputs = [(960, 540), (416, 416), (3840, 2160)]  # the last: the overlay cannot make it
    shapes = [(1080, 1920, h, w) for w, h in outputs]
    rows = doctor.route_rows(costs, desc.clock_hz, shapes, "auto", envelope=envelope)
    for mode in ("sync", "stream"):
        plan = routes.routes(board, (1920, 1080), outputs, mode=mode, policy="auto", costs=costs)
        mine = [r for r in rows if r["mode"] == mode]
        assert [r["shape"] for r in mine] == [r["shape"] for r in plan["rows"]]
        for ours, theirs in zip(mine, plan["rows"], strict=True):
            assert set(theirs) <= set(ours)
            assert (ours["path"], ours["reason"]) == (theirs["path"], theirs["reason"])
            if theirs["pl_ms"] is not None:
                assert {k: ours[k] for k in theirs} == theirs
            else:  # the doctor keeps the model's numbers of a shape the PL cannot take
                assert ours["pl_fps"] > 0 and ours["reason"] == "output_too_large"


def test_the_routes_picture_marks_the_chosen_path_of_each_mode():
    def row(width: int, mode: str, path: str) -> dict:
        return {"shape": f"1920x1080->{width}x{width * 9 // 16}", "mode": mode, "path": path,
                "pl_fps": 50.0, "cv2_fps": 100.0 if width < 960 else 25.0}

    rows = [row(w, m, "cpu" if w < 960 else "pl") for w in (320, 640, 960, 1280)
            for m in ("sync", "stream")]
    image = routes_picture(rows, "test")
    assert image.size[0] == 900 and image.size[1] > 600  # two panels
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)

    def count(colour):
        return int(np.all(pixels == colour, axis=1).sum())

    from pynq_cv.cli.doctor import CV2_COLOUR, PL_COLOUR

    assert count(PL_COLOUR) > 50 and count(CV2_COLOUR) > 50
    only_pl = routes_picture([r for r in rows if r["path"] == "pl"], "test")
    assert isinstance(only_pl, Image.Image)
    # the published constants' rows: pale lines beside the measured ones
    slower = [dict(r, pl_fps=r["pl_fps"] / 10, cv2_fps=r["cv2_fps"] / 10) for r in rows]
    both = np.asarray(routes_picture(rows, "test", slower).convert("RGB")).reshape(-1, 3)
    pale = tuple(c + (255 - c) * 2 // 3 for c in PL_COLOUR)
    assert np.all(both == pale, axis=1).sum() > 50
    assert np.all(pixels == pale, axis=1).sum() == 0


def test_doctor_runs_from_the_installed_console_script(tmp_path):
    env = dict(os.environ, PYNQ_CV_BACKEND="emulator")
    script = Path(sys.executable).with_name("pynq-cv")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pynq_cv.cli"]
    done = subprocess.run([*command, "doctor", "--quick", "--report", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "EMULATED" in done.stdout
    for name in ("report.md", "report.json", "routes.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    with Image.open(tmp_path / "r" / "routes.png") as picture:
        assert picture.format == "PNG"


@pytest.mark.parametrize("stack", ["emulator", "pynq"])
@pytest.mark.parametrize("board", ["Pynq-Z2", "KV260"])
def test_the_published_register_count_is_what_one_frame_makes_on_the_bus(stack, board):
    """``register_accesses`` is a fact of the driver's code, not an estimate: one frame on
    the emulated bus -- pynq_cv's own stack, and pynq's under ``emulate()`` -- makes
    exactly the published count (a changed driver must change the constant)."""
    import pynq_cv

    if stack == "pynq":
        real_pynq()
        context = pynq_cv.emulate(board=board)
        backend = None
    else:
        context, backend = contextlib.nullcontext(), "emulator"
    with context, pynq_cv.Resizer(backend, board=board, policy="pl") as rz:
        counts = {calibration.driver_seconds(rz.open().engine, 1)["accesses"]
                  for _ in range(3)}
    assert counts == {for_board(board).register_accesses}


def test_a_ctrl_c_inside_the_coherency_step_keeps_the_cases_already_run(monkeypatch):
    real_case, calls = coherency._case, []

    def case(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_case(*args)

    monkeypatch.setattr(coherency, "_case", case)
    found: dict = {}
    with pynq_cv.Resizer("emulator", policy="pl") as rz, pytest.raises(KeyboardInterrupt):
        coherency.check(rz.open().engine, found)
    assert len(found["cases"]) == 2 and all(c["exact"] for c in found["cases"])
    assert "ok" not in found  # not judged on half the cases
