"""``pynq-cv run``: an unmodified script behaves as alone; ``--profile`` counts per call site."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import pynq_cv
from pynq_cv import dispatch, patching, telemetry
from pynq_cv.cli import main
from pynq_cv.cli.run import protect_command
from pynq_cv.profile import CallSiteProfile

ENV = dict(os.environ, PYNQ_CV_BACKEND="emulator")
ENV.pop("PYNQ_CV_LOG", None)
FRAMES = 6

PLAIN_SCRIPT = """\
import sys

import cv2

cap = cv2.VideoCapture(sys.argv[1])
sizes = []
while True:
    ok, frame = cap.read()
    if not ok:
        break
    small = cv2.resize(frame, (80, 60))
    thumb = cv2.resize(frame, (40, 30), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", small)
    sizes.append((small.shape, thumb.shape, len(png) > 0))
cap.release()
print(len(sizes), sizes[0], __name__, sys.argv[0], sys.argv[2:])
sys.exit(int(sys.argv[2]))
"""


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    assert writer.isOpened()
    for i in range(FRAMES):
        writer.write(np.full((120, 160, 3), 20 * i, np.uint8))
    writer.release()
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          env=ENV, cwd=cwd)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def table_rows(stderr: str) -> dict[str, list[str]]:
    """The profile table's rows by call site, cells split on runs of 2+ spaces."""
    rows = {}
    for line in stderr.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if re.fullmatch(r".+:\d+", cells[0]):
            rows[cells[0]] = cells
    return rows


# -- the plain script of the issue ------------------------------------------------------------


def test_profile_of_a_script_that_never_imports_pynq_cv(tmp_path, clip):
    script = write(tmp_path, "loop.py", PLAIN_SCRIPT)
    report = tmp_path / "profile.json"
    alone = python("loop.py", str(clip), "3", cwd=tmp_path)
    run = python("-m", "pynq_cv", "run", "--profile", "--json", str(report),
                 "loop.py", str(clip), "3", cwd=tmp_path)
    assert alone.returncode == run.returncode == 3, run.stderr
    assert run.stdout == alone.stdout  # the script's stdout is exactly its own
    assert alone.stdout == f"{FRAMES} ((60, 80, 3), (30, 40, 3), True) __main__ loop.py ['3']\n"
    eligible, area = line_of(script, "(80, 60)"), line_of(script, "INTER_AREA")
    rows = table_rows(run.stderr)
    assert set(rows) == {f"loop.py:{eligible}", f"loop.py:{area}"}, run.stderr
    # call site, calls, PL, CPU, CPU reasons, ms/call, ms in resize, board ms/frame, MB moved
    pl_row, cpu_row = rows[f"loop.py:{eligible}"], rows[f"loop.py:{area}"]
    assert pl_row[1:5] == [str(FRAMES), str(FRAMES), "0", "-"]
    assert cpu_row[1:5] == [str(FRAMES), "0", str(FRAMES), f"interpolation {FRAMES}"]
    assert float(pl_row[7]) > 0 and float(cpu_row[7]) == 0
    sites = {s["line"]: s for s in json.loads(report.read_text())["sites"]}
    assert sites[eligible]["pl"] == FRAMES and sites[eligible]["cpu"] == 0
    assert sites[eligible]["bytes_moved"] == FRAMES * (120 * 160 * 3 + 60 * 80 * 3)
    assert sites[eligible]["board_seconds"] > 0
    assert sites[area]["cpu_reasons"] == {"interpolation": FRAMES}
    assert sites[area]["bytes_moved"] == 0


def test_the_video_loop_example_profiled_counts_what_it_reports(tmp_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "video_loop.py"
    env = dict(ENV, PYNQ_CV_POLICY="pl")  # every eligible frame to the PL
    run = subprocess.run([sys.executable, "-m", "pynq_cv", "run", "--profile", str(example),
                          "--short"], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    own = re.search(r"(\d+) frames on the PL, (\d+) on the CPU", run.stdout)
    assert own and own.groups() == ("12", "0"), run.stdout  # the script's own account
    site = f"{example}:{line_of(example, 'small = cv2.resize(')}"
    assert table_rows(run.stderr)[site][1:5] == ["12", "12", "0", "-"]


# -- behaving as the script alone -----------------------------------------------------------


def test_a_script_that_raises_exits_as_it_would_alone(tmp_path):
    write(tmp_path, "boom.py", """\
        import cv2, numpy as np
        def fail():
            raise ValueError("boom")
        cv2.resize(np.zeros((8, 8, 3), np.uint8), (4, 4))
        print("before")
        fail()
        """)
    alone = python("boom.py", cwd=tmp_path)
    run = python("-m", "pynq_cv", "run", "boom.py", cwd=tmp_path)
    assert alone.returncode == run.returncode == 1
    assert run.stdout == alone.stdout == "before\n"
    notice = f"{telemetry.EMULATOR_NOTICE}\n"  # the emulator says so once: ours alone
    summary = "pynq-cv run: 1 cv2.resize frame ran on the board emulator " \
              "(PYNQ_CV_BACKEND=cpu for cv2.resize)\n"  # and how many, at exit
    err = run.stderr.replace(notice, "", 1).replace(summary, "", 1)
    assert err == alone.stderr  # the same traceback otherwise: no frame of ours in it
    assert err.startswith("Traceback") and "ValueError: boom" in err


@pytest.mark.parametrize("code, status, err", [("None", 0, ""), ("7", 7, ""),
                                               ("'bye'", 1, "bye\n")])
def test_sys_exit_codes_pass_through(tmp_path, code, status, err):
    write(tmp_path, "ex.py", f"import sys\nprint('out')\nsys.exit({code})\n")
    run = python("-m", "pynq_cv", "run", "ex.py", cwd=tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (status, "out\n", err)


def interrupted(*args: str, cwd: Path, env: dict[str, str] | None = None,
                ready: str = "ready\n", delay: float = 0.0) -> tuple[int, str, str]:
    """Start ``python args``, send SIGINT ``delay`` s after it printed ``ready``; (status,
    out, err)."""
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env or ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == ready
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode, out, err


def test_ctrl_c_gives_the_scripts_traceback_and_pythons_status(tmp_path):
    write(tmp_path, "wait.py", """\
        import time
        print("ready", flush=True)
        time.sleep(60)
        """)
    # a moment after "ready", so both land in the sleep (the traceback's line is the same)
    alone = interrupted("wait.py", cwd=tmp_path, delay=0.3)
    status, _, err = interrupted("-m", "pynq_cv", "run", "wait.py", cwd=tmp_path, delay=0.3)
    assert status == alone[0] != 0  # killed by SIGINT, as Python ends (a shell shows 130)
    assert err == alone[2]
    assert err.startswith("Traceback") and 'wait.py", line ' in err
    assert err.rstrip().endswith("KeyboardInterrupt") and "pynq_cv" not in err


def test_module_mode_sets_argv_like_python_dash_m(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tool.py").write_text(
        "import sys, cv2, numpy as np\n"
        "cv2.resize(np.zeros((8, 8, 3), np.uint8), (4, 4))\n"
        "print(__name__, sys.argv[1:])\n"
    )
    alone = python("-m", "pkg.tool", "a", "--b", cwd=tmp_path)
    run = python("-m", "pynq_cv", "run", "--profile", "-m", "pkg.tool", "a", "--b", cwd=tmp_path)
    assert alone.returncode == run.returncode == 0, run.stderr
    assert run.stdout == alone.stdout == "__main__ ['a', '--b']\n"
    assert table_rows(run.stderr)[os.path.join("pkg", "tool.py") + ":2"][1:3] == ["1", "1"]


def test_threads_are_counted_per_site_and_awaited(tmp_path):
    write(tmp_path, "threads.py", """\
        import threading, time, cv2, numpy as np
        frame = np.zeros((48, 64, 3), np.uint8)
        def work():
            time.sleep(0.2)  # still running when the main thread's code ends
            for _ in range(25):
                cv2.resize(frame, (32, 24))
                cv2.resize(frame[:, :, 0], (32, 24))
        for _ in range(4):
            threading.Thread(target=work).start()
        """)
    run = python("-m", "pynq_cv", "run", "--profile", "threads.py", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = table_rows(run.stderr)
    assert rows["threads.py:6"][1:5] == ["100", "100", "0", "-"]
    assert rows["threads.py:7"][1:5] == ["100", "0", "100", "channels 100"]


# -- in process: the pieces -----------------------------------------------------------------


def test_run_in_process_restores_argv_path_and_cv2(tmp_path, capsys):
    script = write(tmp_path, "s.py", "import sys, cv2\nprint(sys.argv, cv2.resize.__name__)\n")
    argv, path, original = sys.argv[:], sys.path[:], cv2.resize
    assert main(["run", "--profile", str(script), "x", "-v"]) == 0
    out = capsys.readouterr()
    assert out.out == f"{[str(script), 'x', '-v']} resize\n"
    assert (sys.argv, sys.path, cv2.resize) == (argv, path, original)
    assert telemetry.frame_observer is None


def test_the_scripts_arguments_reach_it_untouched(tmp_path, capsys):
    script = write(tmp_path, "a.py", "import sys\nprint(sys.argv[1:])\n")
    args = ["--size", "-5x10", "--profile", "--", "-m", "x"]
    assert main(["run", str(script), *args]) == 0
    assert capsys.readouterr().out == f"{args}\n"


def test_missing_script_or_module_is_one_line(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.py")]) == 2
    assert main(["run", "-m", "no_such_module_here"]) == 2
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("pynq-cv: error: ") for line in err)
    assert "no such file" in err[0] and "no module named" in err[1]


def test_run_options_stop_at_the_script():
    assert protect_command(["run", "--profile", "s.py", "--profile", "-m", "x"]) == [
        "run", "--profile", "--", "s.py", "--profile", "-m", "x"]
    assert protect_command(["run", "--json", "f.json", "-m", "mod", "--json"]) == [
        "run", "--json", "f.json", "-m", "mod", "--", "--json"]
    assert protect_command(["info", "--json"]) == ["info", "--json"]


def test_the_profile_wrapper_records_site_path_and_bytes():
    profile = CallSiteProfile()
    telemetry.observe(profile.observe)
    try:
        dispatch.default_resizer().rewatch()
        patching.patch_with(profile.wrap(dispatch.resize))
        assert pynq_cv.is_patched()
        pynq_cv.patch()  # a script's own patch() keeps the profile in place
        frame = np.zeros((20, 40, 3), np.uint8)
        line = sys._getframe().f_lineno + 2
        for _ in range(3):
            cv2.resize(frame, (20, 10))
        with pytest.raises(cv2.error):
            cv2.resize(frame, (-1, 5), interpolation=cv2.INTER_AREA)
    finally:
        pynq_cv.unpatch()
        telemetry.observe(None)
    sites = profile.sites()
    ours = sites[(__file__, line)]
    assert (ours.calls, ours.pl, dict(ours.cpu), ours.raised) == (3, 3, {}, 0)
    assert ours.bytes_moved == 3 * (20 * 40 * 3 + 10 * 20 * 3)
    bad = sites[(__file__, line + 2)]
    assert (bad.calls, bad.pl, bad.raised) == (1, 0, 1)


def test_without_a_profile_nothing_is_wrapped_or_watched(monkeypatch):
    for name in ("PYNQ_CV_STRICT", "PYNQ_CV_COMPARE"):
        monkeypatch.delenv(name, raising=False)
    pynq_cv.patch()
    assert cv2.resize is dispatch.resize  # the plain patch: no wrapper, no frame lookups
    assert pynq_cv.Resizer("emulator").watching is None
