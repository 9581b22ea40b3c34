"""What users read: the emulator's notice, one meaning of board time, the profile's report,
the environment switches' errors, an explicit engine's stats."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import pynq_cv
from pynq_cv import dispatch, telemetry
from pynq_cv.cli import main
from pynq_cv.cli.report import build, render
from pynq_cv.profile import CallSiteProfile
from pynq_cv.reasons import FALLBACK_REASONS, hint
from pynq_cv.timing import frame_seconds

ELIGIBLE = (
    "import cv2, numpy as np, pynq_cv\n"
    "pynq_cv.patch()\n"
    "for _ in range(3):\n"
    "    cv2.resize(np.zeros((48, 64, 3), np.uint8), (32, 24))\n"
    "print(pynq_cv.stats()['pl'])\n"
)


def run_python(code: str, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_CV_")}
    full.update(PYNQ_CV_POLICY="pl", **env)
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True,
                          text=True, env=full, timeout=120)


# -- the emulator says so -----------------------------------------------------------------------


def test_a_default_off_board_run_prints_exactly_one_line_about_the_emulator():
    done = run_python(ELIGIBLE)
    assert done.returncode == 0 and done.stdout == "3\n"
    lines = done.stderr.splitlines()
    assert lines == [telemetry.EMULATOR_NOTICE], done.stderr
    assert "up to 1 apart from cv2" in lines[0] and "PYNQ_CV_BACKEND=cpu" in lines[0]


def test_the_notice_is_a_log_record_never_a_warning_so_w_error_passes():
    done = run_python(ELIGIBLE, "-W", "error")
    assert done.returncode == 0 and done.stderr.splitlines() == [telemetry.EMULATOR_NOTICE]


def test_no_notice_on_the_cpu_backend():
    done = run_python(ELIGIBLE, PYNQ_CV_BACKEND="cpu")
    assert done.returncode == 0 and done.stdout == "0\n" and done.stderr == ""


def test_an_application_that_configured_logging_gets_the_notice_through_its_handlers():
    code = ("import logging, sys\n"
            "logging.basicConfig(stream=sys.stdout, format='APP %(name)s %(message)s')\n"
            + ELIGIBLE)
    done = run_python(code)
    assert done.returncode == 0 and done.stderr == ""  # nothing extra on stderr
    assert done.stdout.splitlines() == [f"APP pynq_cv {telemetry.EMULATOR_NOTICE}", "3"]


# -- one meaning of board time ------------------------------------------------------------------


def test_every_place_gives_the_same_board_time_for_the_same_frame(tmp_path, caplog, capsys):
    """stats, the DEBUG line, the profile, `pynq-cv resize` and the demo: the whole PL path."""
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    profile = CallSiteProfile()
    caplog.set_level(logging.DEBUG, logger="pynq_cv")
    telemetry.observe(profile.observe)
    try:
        with pynq_cv.Resizer("emulator", policy="pl") as rz:
            profile.wrap(rz.resize)(frame, (960, 540))
            stats_ms = rz.stats()["board_seconds"] * 1e3
            plan_ms = rz.info()["plans"][0]["pl_ms"]
    finally:
        telemetry.observe(None)
        dispatch.rewatch_all()
    (row,) = profile.rows()
    debug_ms = float(re.search(r"PL, modelled board time ([\d.]+) ms", caplog.text).group(1))
    caplog.clear()
    ip_only = 1920 * 1080 / 100e6 * 1e3  # the IP's cycles alone: a part, not the whole
    assert stats_ms > ip_only * 1.5
    assert row["board_seconds"] * 1e3 == pytest.approx(stats_ms)
    assert debug_ms == pytest.approx(stats_ms, abs=1e-3)
    assert plan_ms == pytest.approx(stats_ms, abs=1e-3)

    cv2.imwrite(str(tmp_path / "in.png"), frame)
    assert main(["resize", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--size",
                 "960x540", "--backend", "emulator", "--policy", "pl"]) == 0
    text = capsys.readouterr().out
    resized = float(re.search(r"modelled board time ([\d.]+) ms", text)[1])
    assert resized == pytest.approx(stats_ms, abs=0.01)
    ip = float(re.search(r"\(the IP ([\d.]+) ms; the rest copies", text)[1])
    assert ip == pytest.approx(frame_seconds(1080, 1920, 540, 960) * 1e3, abs=0.01)
    assert ip < resized / 1.5  # a part of the whole, shown apart
    assert main(["demo", "--frames", "2", "--backend", "emulator", "--policy", "pl"]) == 0
    demo = float(re.search(r"modelled board time .*: ([\d.]+) ms per frame",
                           capsys.readouterr().out)[1])
    assert demo == pytest.approx(stats_ms, abs=0.01)


# -- the profile ---------------------------------------------------------------------------------


def test_the_profile_reports_header_totals_plans_hints_and_compare(monkeypatch):
    frame = np.zeros((120, 160, 3), np.uint8)
    profile = CallSiteProfile()
    telemetry.observe(profile.observe)
    monkeypatch.setattr(dispatch, "_default", None)
    try:
        rz = pynq_cv.use_backend("emulator", policy="auto", compare=True)
        resize = profile.wrap(dispatch.resize)
        for _ in range(2):
            resize(frame, (80, 60))  # the model: cv2 is faster on a Pynq-Z2 -> cpu_faster
        resize(frame, (80, 60), interpolation=cv2.INTER_AREA)
        resize(frame[:, :, 0], (80, 60))
        rz.replan()
        pynq_cv.use_backend("emulator", policy="pl", compare=True)
        resize(frame, (80, 60))
        report = build(profile, 2.0, 0, ["x.py"], False)
        text = render(report)
    finally:
        telemetry.observe(None)
        pynq_cv.close()
    assert report["backend"] == "emulator" and report["board"] == "Pynq-Z2"
    assert report["policy"] == "auto" and "costs_from" in report
    assert report["emulated_frames"] == 1
    t = report["totals"]
    assert (t["calls"], t["pl_calls"], t["cpu_calls"]) == (5, 1, 4)
    assert t["wall_seconds"] == 2.0 and 0 < t["resize_share"] == t["resize_seconds"] / 2.0
    assert set(report["fallback"]) == {"cpu_faster", "interpolation", "channels"}
    assert "INTER_LINEAR" in report["fallback"]["interpolation"]["hint"]
    assert "cvtColor" in report["fallback"]["channels"]["hint"]
    sites = {r["line"]: r for r in report["sites"]}
    (plan,) = [p for r in sites.values() for p in r["plans"]]
    assert plan["reason"] == "cpu_faster" and plan["shape"] == "160x120->80x60"
    assert plan["pl_ms"] > plan["cv2_ms"] and plan["would_change_it"] == "policy pl"
    assert plan["frames"] == 2
    (compared,) = [r["compare"] for r in sites.values() if r["compare"]]
    assert compared["frames"] == 1 and compared["max_diff"] <= 1
    for needle in ("backend emulator, board Pynq-Z2", "emulated: 1", "wall time 2.00 s",
                   "ms/call", "max diff", "cpu_faster: PL", "policy pl would send it",
                   "interpolation (1):"):
        assert needle in text, text


def test_every_fallback_reason_has_a_hint():
    assert all(hint(reason) for reason in FALLBACK_REASONS)
    assert "multiple of 4" in hint("byte_count_not_multiple")


# -- switches and stats -------------------------------------------------------------------------


@pytest.mark.parametrize("name, value, near", [
    ("PYNQ_CV_STRICT", "ture", "true"), ("PYNQ_CV_COMPARE", "yse", "yes"),
    ("PYNQ_CV_LOG", "debg", "debug"), ("PYNQ_CV_LOG", "bogus", None),
])
def test_a_bad_switch_is_one_line_naming_it(name, value, near):
    done = run_python("import pynq_cv; pynq_cv.patch()", **{name: value})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"pynq_cv.errors.SettingError: {name}={value!r}")
    assert "RuntimeWarning" not in done.stderr
    assert (f"did you mean {near!r}" in last) if near else "did you mean" not in last
    cli = subprocess.run([sys.executable, "-m", "pynq_cv", "info"], capture_output=True,
                         text=True, env=dict(os.environ, **{name: value}), timeout=120)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1
    assert cli.stderr.startswith(f"pynq-cv: error: {name}=")


@pytest.mark.parametrize("value, on", [("1", True), ("TRUE", True), ("off", False), ("", False)])
def test_on_off_switches_take_the_documented_values(monkeypatch, value, on):
    monkeypatch.setenv("PYNQ_CV_STRICT", value)
    with pynq_cv.Resizer("cpu") as rz:
        assert rz.strict is on


def test_an_explicit_engine_stats_are_callable_like_pynq_cv_stats():
    with pynq_cv.Resizer("emulator", policy="pl") as rz:
        rz.resize(np.zeros((48, 64, 3), np.uint8), (32, 24))
        assert rz.stats()["pl"] == 1 == rz.stats.snapshot()["pl"]
        assert rz.stats()["emulated"] == 1


def test_the_readme_documents_every_environment_switch_with_its_values():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    table = readme[readme.index("### Environment switches"):]
    from pynq_cv.settings import NAMES  # test_settings checks them against the code

    switches = set(NAMES)
    assert switches >= {"PYNQ_CV_LOG", "PYNQ_CV_STRICT", "PYNQ_CV_BACKEND", "PYNQ_CV_POLICY"}
    for name in switches:
        assert re.search(rf"^\| `{name}`[^|]*\| [^|]*\w", table, re.M), name


def test_pynq_cv_log_lines_carry_the_name_once():
    done = run_python(ELIGIBLE, PYNQ_CV_LOG="info", PYNQ_CV_BACKEND="")
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith("pynq_cv ") for line in lines), done.stderr
    assert not any(": pynq_cv: " in line for line in lines), done.stderr
    assert any(line.startswith("pynq_cv INFO: no board") for line in lines), done.stderr


def test_pynq_cv_run_says_how_many_frames_were_emulated(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(ELIGIBLE.replace("pynq_cv.patch()\n", "").replace(
        "import cv2, numpy as np, pynq_cv", "import cv2, numpy as np"
    ).replace("print(pynq_cv.stats()['pl'])", "print('done')"))
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_CV_")}
    done = subprocess.run([sys.executable, "-m", "pynq_cv", "run", str(script)],
                          capture_output=True, text=True, env=dict(full, PYNQ_CV_POLICY="pl"),
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "done\n"
    assert done.stderr.splitlines() == [
        telemetry.EMULATOR_NOTICE,
        "pynq-cv run: 3 cv2.resize frames ran on the board emulator "
        "(PYNQ_CV_BACKEND=cpu for cv2.resize)",
    ]


def test_pynq_cv_run_profile_of_video_loop_holds_the_whole_report(tmp_path):
    import json
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "video_loop.py"
    out = tmp_path / "p.json"
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_CV_")}
    done = subprocess.run(
        [sys.executable, "-m", "pynq_cv", "run", "--profile", "--json", str(out), str(example),
         "--frames", "6", "--input-size", "1280x720", "--size", "640x360"],
        capture_output=True, text=True, env=dict(full, PYNQ_CV_CALIBRATION="none"), timeout=300)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    for needle in ("backend emulator, board Pynq-Z2, policy auto", "costs: published defaults",
                   "wall time", "inside cv2.resize", "ms/call", "routing plans that chose cv2",
                   "cpu_faster: PL", "policy pl would send it to the PL",
                   "fallback reasons, and what would send such frames to the PL",
                   "PYNQ_CV_POLICY=pl"):
        assert needle in err, err
    report = json.loads(out.read_text())
    assert report["backend"] == "emulator" and report["policy"] == "auto"
    assert report["totals"]["calls"] == 6 and report["totals"]["wall_seconds"] > 0
    (site,) = report["sites"]
    assert site["cpu_reasons"] == {"cpu_faster": 6} and site["ms_per_call"] > 0
    (plan,) = site["plans"]
    assert plan["shape"] == "1280x720->640x360" and plan["pl_ms"] > plan["cv2_ms"]
    assert report["fallback"]["cpu_faster"]["hint"]
