"""The examples run as scripts, in their short modes, on the emulator, and do what they say."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

import pynq_cv
from pynq_cv.costs import for_board, pl_cost

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENV = dict(os.environ, PYNQ_CV_BACKEND="emulator", PYTHONUNBUFFERED="1")


def run_example(name: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=60, env=ENV,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# -- video_loop -------------------------------------------------------------------------------


def test_video_loop_resizes_a_generated_clip_on_the_pl(tmp_path):
    out_path = tmp_path / "small.avi"
    out = run_example("video_loop.py", "--short", "-o", str(out_path))
    assert "12 frames -> 320x180" in out
    assert "backend emulator: 12 frames on the PL, 0 on the CPU" in out
    assert re.search(r"[\d.]+ fps", out)
    cap = cv2.VideoCapture(str(out_path))
    shapes = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        shapes.append(frame.shape)
    cap.release()
    assert shapes == [(180, 320, 3)] * 12


def test_video_loop_zero_copy_reads_frames_straight_into_pl_buffers():
    out = run_example("video_loop.py", "--short", "--zero-copy")
    assert "12 frames on the PL" in out
    assert "copies into PL buffers: 0 of 12 (zero copy)" in out


def test_video_loop_reads_a_given_file(tmp_path):
    from pynq_cv.cli import write_synthetic_clip

    clip = write_synthetic_clip(tmp_path / "in.avi", 4, 320, 240)
    out = run_example("video_loop.py", str(clip), "--size", "160x120")
    assert "4 frames -> 160x120" in out and "4 frames on the PL" in out


# -- resizer_walkthrough ----------------------------------------------------------------------


def test_resizer_walkthrough_resizes_on_the_pl_and_times_the_ps(tmp_path):
    out_path = tmp_path / "resized.png"
    out = run_example("resizer_walkthrough.py", "--short", "--output", str(out_path))
    assert "3 runs on the PL" in out
    modelled = pl_cost(for_board("Pynq-Z2"), (360, 640, 180, 320), 100_000_000,
                       in_cacheable=False).latency
    assert f"modelled board time (copies, cache upkeep, IP): {modelled * 1e3:.2f} ms" in out
    assert re.search(r"Pillow BILINEAR: [\d.]+ ms per frame", out)
    assert "helloworld-resizer-pynq-z2" in out
    assert cv2.imread(str(out_path)).shape == (180, 320, 3)


# -- camera_stream ----------------------------------------------------------------------------


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no output from camera_stream.py in time"
    return proc.stdout.readline()


def jpeg_parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart/x-mixed-replace body, each read by its Content-Length."""
    parts, pos = [], 0
    while True:
        start = body.find(b"--" + boundary, pos)
        assert start >= 0, "stream ended without its closing boundary"
        pos = start + len(boundary) + 2
        if body[pos : pos + 2] == b"--":
            return parts
        head_end = body.index(b"\r\n\r\n", pos)
        headers = dict(
            line.split(": ", 1) for line in body[pos:head_end].decode().strip().split("\r\n")
        )
        assert headers["Content-Type"] == "image/jpeg"
        length = int(headers["Content-Length"])
        parts.append(body[head_end + 4 : head_end + 4 + length])
        pos = head_end + 4 + length
        assert body[pos : pos + 2] == b"\r\n"


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes")
def test_camera_stream_serves_mjpeg_of_resized_frames():
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "camera_stream.py"), "--bind", "127.0.0.1",
         "--port", "0", "--max-frames", "4", "--fps", "20", "--size", "320x180",
         "--input-size", "640x360"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    try:
        line = read_line(proc, 30)
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))
        base = f"http://127.0.0.1:{port}"

        with urllib.request.urlopen(f"{base}/", timeout=10) as page:
            assert b'<img src="/stream"' in page.read()
        with urllib.request.urlopen(f"{base}/stats", timeout=10) as reply:
            assert reply.headers["Content-Type"] == "application/json"
            assert json.loads(reply.read())["cpu"] == 0

        started = time.monotonic()
        with urllib.request.urlopen(f"{base}/stream", timeout=20) as stream:
            kind = stream.headers["Content-Type"]
            assert kind.startswith("multipart/x-mixed-replace")
            boundary = re.search(r"boundary=(\S+)", kind).group(1).encode()
            body = stream.read()  # the server ends the stream after --max-frames
        assert time.monotonic() - started < 20

        frames = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR)
                  for p in jpeg_parts(body, boundary)]
        assert len(frames) >= 2
        for frame in frames:
            assert frame is not None and frame.shape == (180, 320, 3)

        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "4 frames streamed: 4 resized on the PL, 0 on the CPU" in out
        # per PL frame, as everywhere else (it was a total here, per frame in video_loop)
        modelled = pl_cost(for_board("Pynq-Z2"), (360, 640, 180, 320), 100_000_000,
                           in_cacheable=False).latency
        assert f"modelled board time {modelled * 1e3:.2f} ms per PL frame" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


# -- failing cleanly: one line, a non-zero exit, 130 on Ctrl-C ---------------------------------


def run_failing(name: str, *args: str, env: dict[str, str] | None = None):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=60, env=env or ENV,
    )
    return done.returncode, done.stdout, done.stderr


def assert_one_line(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"_example_{Path(name).stem}", EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("make_source, says", [
    (lambda tmp: tmp / "missing.mp4", "no such file"),
    (lambda tmp: tmp, "is a directory"),
    (lambda tmp: (tmp / "notes.avi").write_text("not a video") and tmp / "notes.avi",
     "cannot open"),
])
def test_camera_stream_checks_its_source_before_announcing_anything(tmp_path, make_source, says):
    source = make_source(tmp_path)
    rc, out, err = run_failing("camera_stream.py", "--source", str(source), "--port", "0")
    assert rc == 1
    assert out == ""  # no "serving ..." for a stream that cannot be served
    assert_one_line(err, "camera_stream:", says)


def test_camera_stream_with_an_unknown_backend_says_so_in_one_line():
    rc, out, err = run_failing("camera_stream.py", "--backend", "foo", "--port", "0")
    assert rc == 2 and out == ""
    assert_one_line(err, "camera_stream:", "unknown pynq_cv backend 'foo'")


def test_camera_stream_on_a_busy_port_says_so_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, out, err = run_failing("camera_stream.py", "--port", str(port))
    assert rc == 1 and out == ""
    assert_one_line(err, f"cannot listen on 127.0.0.1:{port}", "in use")


@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes, SIGINT")
def test_camera_stream_answers_head_and_exits_130_with_its_summary_on_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "camera_stream.py"), "--port", "0",
         "--input-size", "320x180", "--size", "160x90"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    try:
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", read_line(proc, 30)).group(1))
        for path, kind in [("/", "text/html"), ("/stats", "application/json"),
                           ("/stream", "multipart/x-mixed-replace")]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="HEAD")
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert reply.status == 200
                assert reply.headers["Content-Type"].startswith(kind)
                assert reply.read() == b""
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert re.search(r"\d+ frames streamed: \d+ resized on the PL", out)


def test_video_loop_that_cannot_open_its_source_says_so_in_one_line(tmp_path):
    rc, out, err = run_failing("video_loop.py", str(tmp_path / "missing.avi"))
    assert rc == 1 and out == ""
    assert_one_line(err, "video_loop: cannot open")


def test_video_loop_on_ctrl_c_prints_its_summary_and_returns_130(tmp_path, capsys):
    example = load_example("video_loop.py")
    resized = []

    class InterruptedOnThirdFrame:
        """cv2 as the example sees it, with a Ctrl-C arriving during the third resize."""

        def __getattr__(self, name):
            return getattr(cv2, name)

        def resize(self, *args, **kwargs):
            if len(resized) == 2:
                signal.raise_signal(signal.SIGINT)
            resized.append(cv2.resize(*args, **kwargs))
            return resized[-1]

    example.cv2 = InterruptedOnThirdFrame()
    try:
        rc = example.main(["--short", "-o", str(tmp_path / "out.avi")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped video_loop.main() as a traceback")
    out = capsys.readouterr().out
    assert rc == 130
    assert "interrupted after 2 frames" in out
    assert "2 frames -> 320x180" in out and "2 frames on the PL" in out
    assert not pynq_cv.is_patched()


@pytest.mark.parametrize("args, says", [
    (["--ratio", "0"], "--ratio 0: must be a positive number"),
    (["--ratio", "-2"], "must be a positive number"),
    (["--ratio", "5000"], "shrinks 640x360 to nothing"),
    (["--repeats", "0"], "--repeats 0"),
    (["--board", "Foo"], "no overlay descriptor for board 'Foo'"),
    (["--backend", "foo"], "unknown pynq_cv backend 'foo'"),
    (["--output", "."], "is a directory"),
    (["--output", "small.xyz"], "Pillow writes no .xyz files"),
])
def test_resizer_walkthrough_rejects_a_user_mistake_in_one_line(args, says):
    rc, out, err = run_failing("resizer_walkthrough.py", "--short", *args)
    assert rc != 0 and out == ""
    assert_one_line(err, "resizer_walkthrough:", says)


def test_resizer_walkthrough_show_without_a_display_says_so_in_one_line():
    env = {k: v for k, v in ENV.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    rc, out, err = run_failing("resizer_walkthrough.py", "--short", "--show", env=env)
    assert rc == 2 and out == ""
    assert_one_line(err, "--show needs a display")


def test_camera_stream_with_a_bad_policy_in_the_environment_says_so_in_one_line():
    rc, out, err = run_failing("camera_stream.py", "--port", "0",
                               env=dict(ENV, PYNQ_CV_POLICY="fast"))
    assert rc == 2 and out == ""
    assert_one_line(err, "camera_stream:", "PYNQ_CV_POLICY")


@pytest.mark.parametrize("name", ["camera_stream.py", "video_loop.py"])
def test_both_examples_take_policy_and_board(name):
    rc, out, err = run_failing(name, "--help")
    assert rc == 0 and "--policy" in out and "--board" in out
    rc, out, err = run_failing(name, "--policy", "bogus", "--board", "Pynq-Z2")
    assert rc != 0 and "unknown pynq_cv policy 'bogus'" in err


def test_video_loop_help_gives_the_frames_default():
    rc, out, _ = run_failing("video_loop.py", "--help")
    assert re.search(r"--frames FRAMES\s+at most this many frames \(default: 150\)", out)


def test_the_stream_page_does_not_claim_every_frame_runs_on_the_pl():
    page = load_example("camera_stream.py").PAGE
    assert "on the PL</h1>" not in page and "cpu" in page
