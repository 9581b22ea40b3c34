"""``pynq-cv run`` ends as ``python script.py`` ends: at once, with the script's status, its
tracebacks as Python prints them, one Ctrl-C -- also after frames ran on the emulated PL,
whose band threads (``pynq_cv-ip_*``) must never keep a process alive."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_run import ENV, interrupted, python, table_rows, write

from pynq_cv import telemetry
from pynq_cv.backends.emulator import arith
from pynq_cv.runner import INTERRUPTED, exit_status, strip_our_frames

PL = dict(ENV, PYNQ_CV_POLICY="pl")  # every eligible frame to the (emulated) PL
BIG = """\
    import sys, cv2, numpy as np
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    small = cv2.resize(frame, (960, 540))  # 518400 output pixels: bands on the pool
"""
TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:  .*\n)+\S.*\n")


def run(*args: str, cwd: Path, env: dict[str, str] = PL) -> subprocess.CompletedProcess[str]:
    """``pynq-cv run args``; the timeout catches the hang of a process kept alive."""
    return subprocess.run([sys.executable, "-m", "pynq_cv", "run", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def traceback_of(stderr: str) -> str:
    """stderr up to the profile's table (what Python itself printed), without the
    emulator's one-line notice (pynq_cv's own, at its first emulated frame)."""
    printed = stderr.split("pynq-cv run: cv2.resize by call site")[0]
    return printed.replace(f"{telemetry.EMULATOR_NOTICE}\n", "", 1)


# -- ending at once ---------------------------------------------------------------------------


@pytest.mark.parametrize("ending, status", [("sys.exit(3)", 3), ("raise ValueError('x')", 1),
                                            ("pass", 0)])
def test_a_script_whose_frames_ran_on_the_emulated_pl_ends_at_once(tmp_path, ending, status):
    write(tmp_path, "big.py", BIG + f"    print(small.shape, flush=True)\n    {ending}\n")
    for profile in ([], ["--profile"]):
        done = run(*profile, "big.py", cwd=tmp_path)
        assert done.returncode == status, done.stderr
        assert done.stdout == "(540, 960, 3)\n"
        if profile:
            assert table_rows(done.stderr)["big.py:3"][1:3] == ["1", "1"], done.stderr


def test_the_band_pool_is_daemon_threads(monkeypatch):
    monkeypatch.setattr(arith, "_WORKERS", 2)
    monkeypatch.setattr(arith, "_pool", None)
    src = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    arith.resize_exact(src, 540, 960)
    bands = [t for t in threading.enumerate() if t.name.startswith("pynq_cv-ip")]
    assert bands and all(t.daemon for t in bands)
    arith.set_workers(arith._WORKERS)  # the pool made here ends its threads


def test_a_plain_python_script_that_used_the_emulator_ends_at_once(tmp_path):
    write(tmp_path, "plain.py", BIG.replace("import sys, cv2", "import sys, cv2, pynq_cv\n"
                                            "    pynq_cv.patch()\n    import sys")
          + "    sys.exit(4)\n")
    done = python("plain.py", cwd=tmp_path)
    assert done.returncode == 4, done.stderr


def test_the_scripts_own_executor_is_shut_down_as_at_exit(tmp_path):
    write(tmp_path, "pool.py", """\
        import time
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(2)  # never shut down: the interpreter does it at exit
        def late():
            time.sleep(0.3)
            print("late work done", flush=True)
        pool.submit(late)
        """)
    alone = python("pool.py", cwd=tmp_path)
    done = run("pool.py", cwd=tmp_path)
    assert alone.returncode == done.returncode == 0, done.stderr
    assert alone.stdout == done.stdout == "late work done\n"


def test_the_scripts_threads_are_still_awaited_after_a_pl_frame(tmp_path):
    write(tmp_path, "worker.py", BIG + """\
    import threading, time
    def work():
        time.sleep(0.3)
        print("worker", cv2.resize(frame, (960, 540)).shape, flush=True)
    threading.Thread(target=work).start()
    sys.exit(5)
    """)
    done = run("--profile", "worker.py", cwd=tmp_path)
    assert done.returncode == 5, done.stderr
    assert done.stdout == "worker (540, 960, 3)\n"
    assert table_rows(done.stderr)["worker.py:7"][1:3] == ["1", "1"]


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_one_ctrl_c_in_a_pl_loop_ends_the_run_as_python_ends(tmp_path):
    loop = write(tmp_path, "loop.py", BIG + """\
    done = 0
    while True:
        small = cv2.resize(frame, (960, 540))
        done += 1
        if done == 2:
            print("ready", flush=True)
    """)
    report = tmp_path / "profile.json"
    alone = interrupted("loop.py", cwd=tmp_path, env=PL)
    status, out, err = interrupted("-m", "pynq_cv", "run", "--json", str(report), "loop.py",
                                   cwd=tmp_path, env=PL)
    assert status == alone[0] != 0, err  # killed by SIGINT, as Python is
    # one traceback of the script's frame only (the line the signal lands on varies)
    for printed in (traceback_of(err), alone[2]):
        assert printed.startswith("Traceback") and printed.count("Traceback") == 1, printed
        assert printed.endswith("\nKeyboardInterrupt\n"), printed
        assert re.findall(r'File "([^"]+)"', printed) == [str(loop)], printed
    assert err.count("pynq-cv run: cv2.resize by call site") == 1  # the profile, once
    assert int(table_rows(err)["loop.py:6"][1]) >= 2
    assert json.loads(report.read_text())["exit_code"] == 130


def test_ctrl_c_while_waiting_for_the_scripts_threads_ends_as_python_ends(tmp_path):
    write(tmp_path, "thr.py", """\
        import sys, threading, time
        threading.Thread(target=time.sleep, args=(60,)).start()  # outlives the script
        print("ready", flush=True)
        sys.exit(6)
        """)
    alone = interrupted("thr.py", cwd=tmp_path, delay=0.5)  # the script has ended by then
    status, _, err = interrupted("-m", "pynq_cv", "run", "--profile", "thr.py", cwd=tmp_path,
                                 delay=0.5)
    assert status == alone[0] == 6  # the script's status; the thread is not awaited further
    for printed in (err, alone[2]):
        assert printed.startswith("Exception ignored in: <module 'threading'"), printed
        assert "KeyboardInterrupt" in printed and "Traceback" not in printed.split("\n")[0]
    assert err.count("pynq-cv run: cv2.resize by call site") == 1


def test_interrupted_is_130_for_a_caller_of_main():
    assert exit_status(INTERRUPTED) == 130 and exit_status(7) == 7


# -- tracebacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    "cv2.resize(None, (2, 2))\n",
    "def f():\n    cv2.resize(None, (2, 2))\nf()\n",
    "def f():\n    cv2.resize(None, (2, 2))\ntry:\n    f()\n"
    "except cv2.error as e:\n    raise ValueError('again') from e\n",
    "try:\n    cv2.resize(np.zeros((4, 4, 3), np.uint8), (0, 0))\n"
    "except cv2.error:\n    raise KeyError('while handling')\n",
    "cv2.resize(np.zeros((4, 4, 3), np.uint8), (3, 3), interpolation=99)\n",
])
def test_tracebacks_are_pythons(tmp_path, body):
    write(tmp_path, "tb.py", "import cv2, numpy as np\nprint('x')\n" + body)
    alone = python("tb.py", cwd=tmp_path)
    assert alone.returncode == 1 and TRACEBACK.search(alone.stderr)
    for profile in ([], ["--profile"]):
        done = run(*profile, "tb.py", cwd=tmp_path)
        assert (done.returncode, done.stdout) == (1, "x\n")
        assert traceback_of(done.stderr) == alone.stderr


def test_a_threads_traceback_is_pythons(tmp_path):
    write(tmp_path, "th.py", """\
        import threading, cv2
        t = threading.Thread(target=lambda: cv2.resize(None, (2, 2)), name="work")
        t.start()
        t.join()
        """)
    alone = python("th.py", cwd=tmp_path)
    done = run("th.py", cwd=tmp_path)
    assert done.returncode == alone.returncode == 0
    assert done.stderr == alone.stderr and "cv2.error" in done.stderr


def test_a_directory_without_main_is_one_line_and_pythons_status(tmp_path):
    (tmp_path / "pkg").mkdir()
    alone = python("pkg", cwd=tmp_path)
    done = run("pkg", cwd=tmp_path)
    assert done.returncode == alone.returncode == 1
    where = str(tmp_path / "pkg")
    assert done.stderr == f"pynq-cv: error: can't find '__main__' module in {where!r}\n"
    assert "can't find '__main__' module" in alone.stderr


def test_a_library_callback_of_the_script_keeps_its_frames():
    """Frames of the script's own code called from within ours stay (a user callback)."""
    def user_callback():
        raise RuntimeError("theirs")

    try:
        exec(compile("user_callback()", "/nonexistent/script.py", "exec"),
             {"user_callback": user_callback})
    except RuntimeError as exc:
        tb = strip_our_frames(exc).__traceback__
        files = []
        while tb is not None:
            files.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
    assert "/nonexistent/script.py" in files and __file__ in files


def test_generated_library_frames_our_code_called_are_not_the_scripts():
    """numpy 1.21 runs ``np.copyto`` through ``<__array_function__ internals>``: a Ctrl-C
    landing there, inside pynq_cv's frame, shows the script's frame only."""
    from types import SimpleNamespace

    from pynq_cv import runner

    script = "/tmp/the_script.py"
    names = [script, runner.__file__, "<__array_function__ internals>"]
    chain = None
    for filename in reversed(names):  # a fake traceback: script -> pynq_cv -> generated
        chain = SimpleNamespace(tb_frame=SimpleNamespace(f_code=SimpleNamespace(
            co_filename=filename)), tb_next=chain)
    kept = runner._theirs(chain)
    assert kept.tb_frame.f_code.co_filename == script and kept.tb_next is None
    assert not runner._library("<string>") and runner._library("<frozen runpy>")
