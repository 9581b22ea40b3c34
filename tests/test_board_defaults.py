"""What a board runs by default, CI runs: every default that differs on a board, exercised
under ``pynq_cv.emulate()`` with the real pynq, with nothing set but the board's name.

``backends.select.BOARD_DEFAULTS`` lists the defaults that differ on a board; each place in
the code that decides one carries a ``# board default: NAME`` marker (on the line or the one
above). The first test below fails when a line that looks like a board-only decision (a
comparison with "board", ``machine_has_pl()``, ``emulated_pl()``) has no marker (or a
``# not a default: why``), a marker names no listed default, or a listed default has no
``test_board_default_<NAME>`` here. Runs where ``pynq`` imports (CI environment 2), or
fails under ``PYNQ_CV_REQUIRE_PYNQ=1``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import bounded as run_bounded
from conftest import frame, real_pynq

real_pynq()

import pynq_cv  # noqa: E402
from pynq_cv import dispatch  # noqa: E402
from pynq_cv.backends import board as board_backend  # noqa: E402
from pynq_cv.backends.emulator.arith import resize_exact  # noqa: E402
from pynq_cv.backends.select import BOARD_DEFAULTS  # noqa: E402
from pynq_cv.cv2compat import CV2_RESIZE  # noqa: E402

PACKAGE = Path(pynq_cv.__file__).parent
MARKER = re.compile(r"#\s*board default:\s*([a-z_]+)")
# a line that decides by the kind of backend or machine, in the code (not its definitions)
LOOKS_BOARD_ONLY = re.compile(r'(==|!=)\s*"board"|machine_has_pl\(\)|emulated_pl\(\)')
EXEMPT = re.compile(r"#\s*not a default:")
BOUND = 120.0  # seconds: a hang, not a speed check
HD = frame(1080, 1920, seed=7)


@pytest.fixture(autouse=True)
def as_on_a_board(monkeypatch, tmp_path):
    """Nothing set but what a board's image sets: the suite's own backend and policy
    settings go, the shared engine is fresh, the locks are this test's own."""
    monkeypatch.setattr(board_backend, "_shared", {})
    for var in ("PYNQ_CV_BITSTREAM", "PYNQ_CV_BACKEND", "PYNQ_CV_BOARD", "BOARD",
                "PYNQ_CV_REPROGRAM", "PYNQ_CV_POLICY", "PYNQ_CV_FPS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYNQ_CV_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    if dispatch._default is not None:
        dispatch._default.close()
        dispatch._default = None


def bounded(fn, *args):
    return run_bounded(fn, *args, bound=BOUND)


def promised(src: np.ndarray, dsize: tuple[int, int], plan: dict) -> np.ndarray:
    """What a frame must be: the IP's arithmetic on the PL, cv2's on the CPU."""
    if plan["path"] == "pl":
        return resize_exact(src, dsize[1], dsize[0])
    return CV2_RESIZE(src, dsize)


def plan_of(resizer: pynq_cv.Resizer, src: np.ndarray, dsize: tuple[int, int]) -> dict:
    shape = f"{src.shape[1]}x{src.shape[0]}->{dsize[0]}x{dsize[1]}"
    plans = [p for p in resizer.info()["plans"] if p["shape"] == shape]
    assert plans, f"no plan for {shape}"
    return plans[-1]


# -- the enumeration ---------------------------------------------------------------------------


def test_every_board_default_is_marked_in_the_code_and_tested_here():
    marked: dict[str, list[str]] = {}
    unmarked = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            where = f"{path.relative_to(PACKAGE)}:{number}"
            found = MARKER.search(line)
            if found:
                marked.setdefault(found.group(1), []).append(where)
            if not LOOKS_BOARD_ONLY.search(line.split("#")[0]):
                continue
            if line.lstrip().startswith(("def ", "from ", "import ")):
                continue
            near = line + (lines[number - 2] if number > 1 else "")
            if not (MARKER.search(near) or EXEMPT.search(near)):
                unmarked.append(f"{where}: {line.strip()}")
    assert not unmarked, "board-only decisions without a '# board default:' marker:\n" + \
        "\n".join(unmarked)
    assert set(marked) <= set(BOARD_DEFAULTS), (
        f"markers naming no listed default: {sorted(set(marked) - set(BOARD_DEFAULTS))}"
    )
    tests = {name for name in globals() if name.startswith("test_board_default_")}
    missing = [n for n in BOARD_DEFAULTS if not any(t.startswith(f"test_board_default_{n}")
                                                    for t in tests)]
    assert not missing, f"board defaults without a parity test here: {missing}"


# -- each default, as a board runs it -----------------------------------------------------------


@pytest.mark.parametrize(("board", "to_pl", "to_cpu"), [
    ("Pynq-Z2", (1280, 720), (960, 540)),  # the Pynq-Z2 model: 720p on the PL, 2x on cv2
    ("KV260", None, (1280, 720)),  # the KV260's A53 runs cv2 faster for both
])
def test_board_default_backend_choice_and_planning_with_the_patched_cv2_resize(
    board, to_pl, to_cpu
):
    """A script that only patches and calls cv2.resize: the board backend, the board's
    descriptor, measured plans with the board model's decisions, every frame as promised."""
    with pynq_cv.emulate(board=board):
        pynq_cv.patch()
        for dsize in filter(None, (to_pl, to_cpu)):
            out = bounded(cv2.resize, HD, dsize)
            resizer = dispatch.default_resizer()
            plan = plan_of(resizer, HD, dsize)
            assert plan["basis"] == "measured (emulated)"
            assert plan["path"] == ("pl" if dsize == to_pl else "cpu")
            np.testing.assert_array_equal(out, promised(HD, dsize, plan))
        info = pynq_cv.info()
        stats = pynq_cv.stats()
    assert info["backend"] == "board" and info["board"] == board
    assert stats["emulated"] == stats["pl"]  # never pretends the emulator is the PL
    assert stats["pl"] == (1 if to_pl else 0)


def test_board_default_planning_of_submit_and_stream():
    """Pipelined frames under the board's defaults: planned (measured) per shape, every
    frame as its plan promises, nothing held afterwards."""
    frames = [frame(720, 1280, seed=s) for s in range(4)]
    with pynq_cv.emulate(board="Pynq-Z2"), pynq_cv.Resizer() as rz:
        got = bounded(lambda: list(rz.stream(iter(frames), (1600, 900))))
        plan = plan_of(rz, frames[0], (1600, 900))
        assert plan["mode"] == "pipelined" and plan["basis"] == "measured (emulated)"
        for src, out in zip(frames, got, strict=True):
            np.testing.assert_array_equal(out, promised(src, (1600, 900), plan))
        pending = rz.submit(frames[0], (1600, 900))
        np.testing.assert_array_equal(bounded(pending.result), got[0])
        assert rz.info()["pool"]["in_use"] == 0


def test_board_default_pl_lock_is_taken_by_the_board_backend():
    with pynq_cv.emulate(board="Pynq-Z2"), pynq_cv.Resizer(policy="pl") as rz:
        rz.open()
        lock_dir = Path(os.environ["PYNQ_CV_LOCK_DIR"])
        holders = [p.read_text().strip() for p in lock_dir.iterdir() if p.is_file()]
        assert str(os.getpid()) in " ".join(holders), holders


def test_board_default_calibration_kind_a_hosts_file_never_stands_in_for_the_board(tmp_path):
    """A calibration measured through the emulator (this host's costs) sits in the default
    place: the board backend on the emulated board keeps the board's published costs."""
    from pynq_cv import calibration

    data = calibration.measure("emulator", rows=120, cols=160, repeat=1, resizer=pynq_cv.Resizer)
    written = calibration.write(data, calibration.default_path())
    assert written.is_file()
    with pynq_cv.emulate(board="Pynq-Z2"), pynq_cv.Resizer(policy="pl") as rz:
        rz.open()
        assert rz.backend == "board"
        assert "published" in rz.info()["costs_from"], rz.info()["costs_from"]


def test_board_default_backend_notice_says_which_backend_runs(caplog):
    with caplog.at_level("INFO", logger="pynq_cv"):
        with pynq_cv.emulate(board="KV260"), pynq_cv.Resizer(policy="pl") as rz:
            rz.open()
    lines = [r.getMessage() for r in caplog.records if r.name == "pynq_cv"]
    assert any(line.startswith("backend board") for line in lines), lines


def test_board_default_commands_demo_verify_calibrate_doctor_on_the_emulated_board(
    tmp_path, capsys
):
    from pynq_cv.cli import main

    with pynq_cv.emulate(board="Pynq-Z2"):
        assert bounded(main, ["demo", "--frames", "3", "--input-size", "640x360",
                              "--size", "320x180"]) == 0
        demo = capsys.readouterr()
        assert bounded(main, ["verify", "--sizes", "360x640:180x320"]) == 0
        verify = capsys.readouterr()
        out = tmp_path / "cal.json"
        assert bounded(main, ["calibrate", "--quick", "--output", str(out)]) == 0
        capsys.readouterr()
        assert bounded(main, ["doctor", "--quick", "--report", str(tmp_path / "doc")]) == 0
        capsys.readouterr()
    doctor = json.loads((tmp_path / "doc" / "report.json").read_text())
    assert doctor["emulated"] is True, "the emulated board is never reported as a real one"
    assert doctor["environment"]["backend"] == "board"
    text = demo.out + demo.err
    assert "board" in text, text
    assert "mismatch" not in (verify.out + verify.err).lower() or \
        " 0 mismatch" in (verify.out + verify.err).lower()
    saved = json.loads(out.read_text())
    assert saved["backend"] == "emulator", "the host's costs are never labelled a board's"


def test_board_default_run_of_an_unmodified_script_on_the_emulated_board(tmp_path):
    """``pynq-cv run --profile`` as a board runs it (auto backend, measured plans, the
    patched cv2.resize, the profile), in a process of its own: it exits at once with the
    script's exit code, and the profile counts the board model's decisions."""
    script = tmp_path / "loop.py"
    script.write_text(
        "import sys, cv2, numpy as np\n"
        "f = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)\n"
        "for _ in range(3):\n"
        "    a = cv2.resize(f, (1280, 720))\n"
        "    b = cv2.resize(f, (960, 540))\n"
        "sys.exit(7)\n"
    )
    report = tmp_path / "profile.json"
    driver = (
        "import sys, pynq_cv\n"
        "from pynq_cv.cli import main\n"
        "with pynq_cv.emulate(board='Pynq-Z2'):\n"
        f"    code = main(['run', '--json', {str(report)!r}, {str(script)!r}])\n"
        "    stats = pynq_cv.stats()\n"
        "print('STATS', stats['backend'], stats['pl'], stats['fallback'].get('cpu_faster'))\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYNQ_CV_BACKEND", "PYNQ_CV_POLICY")}
    done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True,
                          timeout=BOUND, env=env, cwd=tmp_path)
    assert done.returncode == 7, done.stderr[-2000:]
    assert "STATS board 3 3" in done.stdout, done.stdout + done.stderr[-2000:]
    rows = json.loads(report.read_text())
    rows = rows.get("sites", rows) if isinstance(rows, dict) else rows
    assert sum(r.get("pl", 0) for r in rows) == 3, rows


PATCHED_SCRIPT = """\
import sys, cv2, numpy as np, pynq_cv
pynq_cv.patch()
f = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)
for dsize in ((1280, 720), (960, 540)):
    out = cv2.resize(f, dsize)
    plan = [p for p in pynq_cv.info()["plans"] if p["shape"].endswith(f"{dsize[0]}x{dsize[1]}")]
    print("PLAN", dsize[0], plan[-1]["path"], plan[-1]["basis"], out.shape, flush=True)
    np.save(f"out{dsize[0]}.npy", out)
info = pynq_cv.info()
print("BOARD", info["backend"], info["board"], info["overlay"])
"""


@pytest.mark.parametrize(("board", "on_pl"), [("Pynq-Z2", {1280}), ("KV260", set())])
def test_board_default_backend_choice_under_the_emulate_command(tmp_path, board, on_pl):
    """The issue's done-when: a script that only patches and calls cv2.resize, run with
    ``pynq-cv emulate --board B``, finishes in seconds on the board backend with the
    board model's decisions, every frame as promised."""
    (tmp_path / "script.py").write_text(PATCHED_SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYNQ_CV_BACKEND", "PYNQ_CV_POLICY", "PYNQ_CV_LOG")}
    done = subprocess.run(
        [sys.executable, "-m", "pynq_cv", "emulate", "--board", board, "script.py"],
        capture_output=True, text=True, timeout=BOUND, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    plans = {int(line.split()[1]): line.split()[2:4]
             for line in done.stdout.splitlines() if line.startswith("PLAN")}
    assert {w for w, (path, _) in plans.items() if path == "pl"} == on_pl, done.stdout
    assert all("measured (emulated)" in line
               for line in done.stdout.splitlines() if line.startswith("PLAN")), done.stdout
    assert f"BOARD board {board}" in done.stdout, done.stdout
    src = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)
    for width, height in ((1280, 720), (960, 540)):
        out = np.load(tmp_path / f"out{width}.npy")
        want = resize_exact(src, height, width) if width in on_pl else \
            CV2_RESIZE(src, (width, height))
        np.testing.assert_array_equal(out, want)
