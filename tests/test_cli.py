"""``pynq-cv``: each command runs on the emulator and says something true; mistakes: one line."""

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
from PIL import Image

import pynq_cv
from pynq_cv import cli
from pynq_cv.cli import bench, main, verify, write_synthetic_clip
from pynq_cv.costs import for_board, pl_cost

ENV = dict(os.environ, PYNQ_CV_BACKEND="emulator")
SMALL_DEMO = ["--frames", "8", "--input-size", "640x360", "--size", "320x180"]


def calls(out: str) -> tuple[int, int]:
    m = re.search(r"cv2\.resize calls\s+\d+: (\d+) on the PL, (\d+) on the CPU", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def fallback_counts(out: str) -> dict[str, int]:
    line = re.search(r"fallback reasons\s+(.*)", out).group(1)
    return {} if line == "none" else {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line)}


# -- demo -------------------------------------------------------------------------------------


def test_demo_runs_frames_on_the_pl_and_names_why_others_fell_back(capsys):
    assert main(["demo", *SMALL_DEMO]) == 0
    out = capsys.readouterr().out
    assert "on the emulator backend, Pynq-Z2" in out
    pl, cpu = calls(out)
    assert pl == 8  # every BGR INTER_LINEAR frame
    assert cpu > 0
    reasons = fallback_counts(out)
    assert reasons["channels"] > 0 and reasons["interpolation"] > 0
    assert reasons["byte_count_not_multiple"] > 0
    assert sum(reasons.values()) == cpu
    # the IP's 2.36 ms plus the modelled copies and cache maintenance of a Pynq-Z2
    modelled = pl_cost(for_board("Pynq-Z2"), (360, 640, 180, 320), 100_000_000,
                       in_cacheable=False).latency
    per_frame = f"{modelled * 1e3:.2f} ms per frame"
    assert re.search(rf"modelled board time\s+[\d.]+ s on the PL: {per_frame}", out)
    assert "faults               none" in out


def test_demo_reads_a_video_file_and_writes_the_resized_one(tmp_path, capsys):
    clip = write_synthetic_clip(tmp_path / "in.avi", 5, 320, 240)
    out_path = tmp_path / "out.avi"
    rc = main(["demo", "--source", str(clip), "--size", "160x120", "--output", str(out_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert calls(out)[0] == 5  # the clip has 5 frames, fewer than --frames
    cap = cv2.VideoCapture(str(out_path))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (120, 160, 3)


def test_demo_on_the_cpu_backend_runs_nothing_on_the_pl(capsys):
    assert main(["demo", *SMALL_DEMO, "--backend", "cpu"]) == 0
    out = capsys.readouterr().out
    assert calls(out)[0] == 0
    assert fallback_counts(out)["backend_cpu"] > 0


def test_demo_leaves_cv2_resize_unpatched():
    original = cv2.resize
    assert main(["demo", "--frames", "2", "--input-size", "64x48", "--size", "32x24"]) == 0
    assert cv2.resize is original


# -- info -------------------------------------------------------------------------------------


def test_info_reports_backend_overlay_envelope_and_versions(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^backend\s+emulator$", out, re.M)
    assert "helloworld-resizer-pynq-z2 (2020 build)" in out
    assert "INTER_LINEAR" in out
    # sizes as the command line takes them: width x height
    assert re.search(r"input\s+at most 3840x2160 \(WxH\)", out)
    assert re.search(r"output\s+at most 1920x1080 \(WxH\)", out)
    assert "67,108,863 per DMA transfer" in out  # the 2020 build scripts: 26-bit length
    assert re.search(rf"^\s+numpy\s+{re.escape(np.__version__)}$", out, re.M)
    assert re.search(rf"^\s+opencv\s+{re.escape(cv2.__version__)}$", out, re.M)
    assert re.search(r"^\s+pynq\s+", out, re.M)
    assert "bitstream search" in out


def test_info_json_follows_the_chosen_board(capsys):
    assert main(["info", "--json", "--board", "KV260"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "emulator"
    assert report["build"] == "2021"
    assert report["envelope"]["max_out"] == {"width": 3840, "height": 2160}  # numbers
    assert report["envelope"]["max_in"] == {"width": 3840, "height": 2160}
    assert report["versions"]["numpy"] == np.__version__


def test_info_on_the_cpu_backend_says_so(capsys):
    assert main(["info", "--backend", "cpu"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^backend\s+cpu$", out, re.M)
    assert "envelope" not in out


# -- resize -----------------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), cli.synthetic_frame(3, 640, 360))
    return path


def test_resize_writes_the_requested_size_through_the_pl(image, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    assert main(["resize", str(image), str(out), "--size", "320x180"]) == 0
    assert cv2.imread(str(out)).shape == (180, 320, 3)
    text = capsys.readouterr().out
    assert "path: PL on the emulator backend" in text
    modelled = pl_cost(for_board("Pynq-Z2"), (360, 640, 180, 320), 100_000_000,
                       in_cacheable=False).latency
    assert f"modelled board time {modelled * 1e3:.2f} ms" in text


def test_resize_by_scale_matches_the_ip_exactly(image, tmp_path):
    out = tmp_path / "out.png"  # lossless, so the pixels can be compared
    assert main(["resize", str(image), str(out), "--scale", "0.5"]) == 0
    got = cv2.imread(str(out))
    exact = cli.exact_model()(cv2.imread(str(image)), 180, 320)
    assert np.array_equal(got, exact)


def test_resize_says_why_the_pl_declined(image, tmp_path, capsys):
    out = tmp_path / "out.png"
    argv = ["resize", str(image), str(out), "--size", "160x90", "--interpolation", "area"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "path: CPU" in text and "the PL does not take this frame (interpolation" in text
    assert "declined" not in text
    assert np.array_equal(
        cv2.imread(str(out)),
        cv2.resize(cv2.imread(str(image)), (160, 90), interpolation=cv2.INTER_AREA),
    )


def test_resize_uses_pillow_for_formats_cv2_lacks(tmp_path, capsys):
    src = tmp_path / "in.tga"  # cv2 reads and writes no Targa
    rgb = cli.synthetic_frame(1, 320, 240)[:, :, ::-1]
    Image.fromarray(np.ascontiguousarray(rgb)).save(src)
    out = tmp_path / "out.tga"
    assert main(["resize", str(src), str(out), "--size", "160x120"]) == 0
    text = capsys.readouterr().out
    assert "read with Pillow" in text and "written with Pillow" in text
    assert "path: PL" in text  # RGB from Pillow became BGR: still 3-channel uint8
    with Image.open(out) as result:
        assert result.size == (160, 120)


# -- verify -----------------------------------------------------------------------------------


def test_verify_finds_no_difference_from_the_exact_model_on_the_emulator(capsys):
    rc = main(["verify", "--sizes", "640x360:320x180", "64x48:200x100"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = [line for line in out.splitlines() if re.match(r"(noise|gradient|checkerboard)\s", line)]
    assert len(rows) == 6
    for row in rows:
        path, e_max, e_share, c_max, c_share = re.search(
            r"\s(PL|CPU \(\w+\))\s+(\d+)\s+([\d.]+)%\s+(\d+)\s+([\d.]+)%", row
        ).groups()
        assert path == "PL"
        assert e_max == "0" and float(e_share) == 0.0
        assert int(c_max) <= 2  # cv2 rounds, the IP truncates
    assert any(float(re.findall(r"([\d.]+)%", row)[1]) > 0 for row in rows)
    assert "OK: all 6 PL frames" in out


def test_verify_fails_when_the_pl_differs_from_the_model(monkeypatch, capsys):
    real = cli.exact_model()

    def off_by_one(src, rows, cols):
        out = real(src, rows, cols).copy()
        out[0, 0, 0] ^= 1
        return out

    monkeypatch.setattr(verify, "exact_model", lambda: off_by_one)
    assert main(["verify", "--sizes", "64x48:32x24"]) == 1
    out = capsys.readouterr().out
    assert "<- differs" in out and "FAIL: 3 PL frame(s) differ" in out


def test_verify_fails_when_the_pl_path_faults(monkeypatch, capsys):
    resizer = pynq_cv.Resizer("emulator").open()
    resizer.engine.board.faults.dma_error("send", count=1)
    monkeypatch.setattr(verify, "own_engine", lambda args, **kw: resizer)
    assert main(["verify", "--sizes", "64x48:32x24"]) == 1
    captured = capsys.readouterr()
    assert "CPU (fault_dma_error)" in captured.out and "<- PL fault" in captured.out
    assert "FAIL: 0 PL frame(s) differ from the IP's exact arithmetic, 1 fault(s)" in captured.out
    assert captured.err.startswith("pynq-cv: warning: pynq_cv: dma_error")


def test_verify_fails_when_nothing_ran_on_the_pl(capsys):
    assert main(["verify", "--backend", "cpu", "--sizes", "64x48:32x24"]) == 1
    out = capsys.readouterr().out
    assert "CPU (backend_cpu)" in out and "nothing was verified" in out


# -- bench ------------------------------------------------------------------------------------


def test_bench_runs_benchmark_modules_and_prints_their_rows(tmp_path, capsys):
    (tmp_path / "bench_toy.py").write_text(
        "def run(short):\n"
        "    return [{'case': 'a', 'ms': 1.5, 'short': short}, {'case': 'bb', 'ms': 12.25}]\n"
    )
    assert main(["bench", "--short", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "== bench_toy (short)" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("case"))
    assert header.split() == ["case", "ms", "short"]
    assert any(re.match(r"a\s+1\.50\s+True", line) for line in lines)
    assert any(re.match(r"bb\s+12\.2", line) for line in lines)


def test_bench_finds_the_repositorys_benchmarks(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the repo, as a user runs it
    assert (cli.benchmarks_dir() / "bench_pl_path.py").is_file()


def test_bench_without_benchmarks_says_so_and_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: tmp_path / "missing")
    assert main(["bench"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynq-cv: error: no benchmarks found") and "\n" not in err


def test_bench_reports_a_broken_benchmark_and_exits_1(tmp_path, capsys):
    (tmp_path / "bench_broken.py").write_text("def run(short):\n    raise ValueError('boom')\n")
    assert main(["bench", "--dir", str(tmp_path)]) == 1
    assert "failed: ValueError: boom" in capsys.readouterr().out


# -- mistakes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["resize", "{tmp}/missing.png", "{tmp}/out.png", "--size", "10x10"],
        ["resize", "{tmp}/not_an_image.png", "{tmp}/out.png", "--size", "10x10"],
        ["resize", "{tmp}/in.png", "{tmp}/out.png", "--size", "10by10"],
        ["resize", "{tmp}/in.png", "{tmp}/out.png", "--scale", "-2"],
        ["resize", "{tmp}/in.png", "{tmp}/out.png"],
        ["resize", "{tmp}/in.png", "{tmp}/no/such/dir/out.png", "--size", "10x10"],
        ["resize", "{tmp}/in.png", "{tmp}/out.unknownext", "--size", "10x10"],
        ["demo", "--backend", "no-such-backend"],
        ["demo", "--backend", "board"],  # no pynq here
        ["demo", "--board", "no-such-board"],
        ["demo", "--source", "{tmp}/missing.avi"],
        ["demo", "--source", "{tmp}/not_an_image.png"],
        ["demo", "--frames", "0"],
        ["demo", "--size", "0x10"],
        ["verify", "--sizes", "640x360"],
        ["info", "--backend", "nope"],
        ["bench", "no-such-benchmark"],
        ["no-such-command"],
    ],
)
def test_a_users_mistake_is_one_error_line_and_a_nonzero_exit(argv, tmp_path, capsys):
    (tmp_path / "not_an_image.png").write_text("hello")
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((8, 8, 3), np.uint8))
    rc = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("pynq-cv: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_version_and_help_exit_0(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pynq-cv {pynq_cv.__version__}"
    assert main(["resize", "--help"]) == 0
    assert "--interpolation" in capsys.readouterr().out


# -- as installed -----------------------------------------------------------------------------


def test_console_script_and_module_run_as_processes():
    script = Path(sys.executable).with_name("pynq-cv")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pynq_cv.cli"]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name in ("demo", "info", "resize", "verify", "bench"):
        assert name in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "pynq_cv.cli", "info"],
        capture_output=True, text=True, timeout=60, env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^backend\s+emulator$", done.stdout, re.M)


# -- what a new user trips on (issue 17) ------------------------------------------------------


def one_error_line(err: str, *fragments: str) -> None:
    assert err.startswith("pynq-cv: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture
def small_png(tmp_path) -> Path:
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


@pytest.mark.parametrize("argv, says", [
    (["demo", "--source", "99"], "cannot open camera 99"),
    (["demo", "--source", "{tmp}/notes.avi"], "cannot open"),
    (["demo", "--frames", "2", "--input-size", "64x48", "--output", "{tmp}"], "is a directory"),
    (["resize", "{tmp}/notes.avi", "{tmp}/out.png", "--size", "4x4"], "cannot read"),
])
def test_opencvs_own_log_lines_do_not_bury_the_one_error_line(argv, says, tmp_path, capfd):
    (tmp_path / "notes.avi").write_text("not a video")
    api = getattr(getattr(cv2, "utils", None), "logging", None)
    level = api.getLogLevel() if api is not None else None
    assert main([a.format(tmp=tmp_path) for a in argv]) != 0
    err = capfd.readouterr().err  # file descriptor 2: OpenCV's native lines land here too
    one_error_line(err, says)
    if api is not None:
        assert api.getLogLevel() == level  # silenced around our I/O only, then restored


@pytest.mark.parametrize("argv, says", [
    (["resize", "{png}", "{tmp}", "--size", "4x4"], "is a directory; name a file in it"),
    (["resize", "{tmp}", "{tmp}/out.png", "--size", "4x4"], "is a directory, not an image"),
    (["demo", "--source", "{tmp}"], "is a directory, not a video file"),
    (["demo", "--output", "{tmp}"], "is a directory; name a file in it"),
    (["resize", "{png}", "{tmp}/out.png", "--size", "-5x10"], "size must be positive"),
    (["resize", "{png}", "{tmp}/out.png", "--size", "5x-10"], "size must be positive"),
    (["demo", "--size", "-5x10"], "size must be positive"),
    (["demo", "--input-size", "-640x360"], "size must be positive"),
    (["info", "--board", "Foo"], "no overlay descriptor for board 'Foo'"),
])
def test_a_mistake_is_named_for_what_it_is(argv, says, small_png, tmp_path, capsys):
    rc = main([a.format(tmp=tmp_path, png=small_png) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0
    one_error_line(err, says)
    assert "expected one argument" not in err and "unknown file extension" not in err


def test_info_with_an_unknown_board_exits_1_like_the_other_commands(capsys):
    codes = {cmd: main([cmd, "--board", "Foo"]) for cmd in ("info", "demo", "verify")}
    assert codes == {"info": 1, "demo": 1, "verify": 1}


def _unwritable_dir(tmp_path: Path) -> Path:
    """A directory this user cannot create files in (root can write anywhere on disk: sysfs)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        return locked
    try:
        (Path("/sys") / "pynq_cv_probe").open("ab").close()
    except PermissionError:
        return Path("/sys")
    pytest.skip("no directory here that root cannot write")


@pytest.mark.parametrize("command", ["resize", "demo"])
def test_an_unwritable_output_says_permission_denied(command, small_png, tmp_path, capsys):
    target = _unwritable_dir(tmp_path) / ("out.png" if command == "resize" else "out.avi")
    argv = (["resize", str(small_png), str(target), "--size", "4x4"] if command == "resize"
            else ["demo", "--frames", "2", "--input-size", "64x48", "--output", str(target)])
    assert main(argv) == 1
    one_error_line(capsys.readouterr().err, f"cannot write {target}: permission denied")


def test_an_unreadable_input_says_permission_denied(small_png, tmp_path, monkeypatch, capsys):
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == small_png:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    assert main(["resize", str(small_png), str(tmp_path / "out.png"), "--size", "4x4"]) == 1
    one_error_line(capsys.readouterr().err, f"cannot read {small_png}: permission denied")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_resize_honours_exif_orientation_like_cv2_imread(orientation, tmp_path):
    stored = np.random.default_rng(orientation).integers(0, 256, (24, 40, 3), np.uint8)
    src = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(src, exif=exif.tobytes(), quality=95)
    shown = cv2.imread(str(src))  # cv2.imread turns it upright, as every viewer does
    if orientation >= 5:
        assert shown.shape[:2] == (40, 24)  # portrait: the sides swap
    height, width = shown.shape[:2]
    out = tmp_path / "out.png"
    argv = ["resize", str(src), str(out), "--size", f"{width // 2}x{height // 2}",
            "--interpolation", "area"]  # the CPU path: cv2.resize is the reference
    assert main(argv) == 0
    expected = cv2.resize(shown, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    assert np.array_equal(cv2.imread(str(out)), expected)


def test_resize_refuses_to_squeeze_16_bits_into_an_8_bit_jpeg(tmp_path, capsys):
    src = tmp_path / "deep.png"
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    cv2.imwrite(str(src), ramp)
    jpeg = tmp_path / "out.jpg"
    assert main(["resize", str(src), str(jpeg), "--size", "32x8"]) == 1
    one_error_line(capsys.readouterr().err, "would lose depth", "16-bit", ".png")
    assert not jpeg.exists()
    png = tmp_path / "out.png"
    assert main(["resize", str(src), str(png), "--size", "32x8"]) == 0
    kept = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
    assert kept.dtype == np.uint16 and kept.max() > 255  # the gradient survives


def test_backend_names_are_case_insensitive_in_the_cli_the_environment_and_the_library(
    monkeypatch, capsys
):
    assert main(["info", "--backend", "Emulator"]) == 0
    assert re.search(r"^backend\s+emulator$", capsys.readouterr().out, re.M)
    monkeypatch.setenv("PYNQ_CV_BACKEND", "CPU")
    assert main(["info"]) == 0
    assert re.search(r"^backend\s+cpu$", capsys.readouterr().out, re.M)
    assert pynq_cv.use_backend("EMULATOR").info()["backend"] == "emulator"
    assert main(["info", "--board", "kv260", "--backend", "emulator"]) == 0
    assert re.search(r"^board\s+KV260$", capsys.readouterr().out, re.M)


def test_demo_shows_the_cv2_baseline_and_names_its_own_cpu_calls(capsys):
    assert main(["demo", *SMALL_DEMO]) == 0
    out = capsys.readouterr().out
    pl, cpu = calls(out)
    clip = re.search(r"the clip's frames\s+(\d+): (\d+) on the PL, (\d+) on the CPU", out)
    own = re.search(r"the demo's own\s+(\d+) on the CPU", out)
    assert clip and own, out
    assert int(clip.group(1)) == 8 and int(clip.group(2)) == pl
    assert int(clip.group(3)) + int(own.group(1)) == cpu
    assert re.search(r"cv2 baseline\s+[\d.]+ s: [\d.]+ ms per frame \(OpenCV's own", out)


def test_demo_writes_at_the_source_frame_rate(tmp_path, capsys):
    clip = write_synthetic_clip(tmp_path / "in.avi", 3, 64, 48, fps=12.0)
    out_path = tmp_path / "out.avi"
    assert main(["demo", "--source", str(clip), "--size", "32x24", "--output",
                 str(out_path)]) == 0
    cap = cv2.VideoCapture(str(out_path))
    try:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    finally:
        cap.release()


def test_the_synthetic_clip_has_a_real_checkerboard_and_no_seam():
    width, height = 640, 360
    frame = cli.synthetic_frame(0, width, height)
    cell, corner = min(width, height) // 40, min(width, height) // 20
    for i in range(8):
        for j in range(8):
            block = frame[corner + i * cell : corner + (i + 1) * cell,
                          corner + j * cell : corner + (j + 1) * cell]
            assert (block == (255 if (i + j) % 2 else 0)).all(), (i, j)
    backdrop = cli.common._backdrop(width, height).astype(int)
    assert np.abs(np.diff(backdrop, axis=1)).max() <= 8  # smooth along the scroll
    # periodic in the frame width: the scroll wraps without a jump
    assert np.abs(backdrop[:, :width] - backdrop[:, width:]).max() <= 1


@pytest.mark.parametrize("argv, env, code, says", [
    (["--backend", "cpu"], {}, 2, "the cpu backend has no PL path"),
    ([], {"PYNQ_CV_BACKEND": "cpu"}, 2, "the cpu backend has no PL path"),
    (["--backend", "board"], {}, 1, "cannot calibrate: PL unavailable"),
])
def test_calibrate_without_a_pl_path_is_one_line(tmp_path, argv, env, code, says):
    done = subprocess.run(
        [sys.executable, "-m", "pynq_cv", "calibrate", "--quick", "--output",
         str(tmp_path / "c.json"), *argv],
        capture_output=True, text=True, timeout=120, env=dict(ENV, **env))
    assert done.returncode == code
    assert done.stderr.strip().splitlines() == [done.stderr.strip()], done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "c.json").exists()


def test_resize_compare_of_a_planned_cpu_frame_computes_the_pl_panel(image, tmp_path, capsys):
    diff = tmp_path / "diff.png"
    argv = ["resize", str(image), str(tmp_path / "out.png"), "--size", "320x180",
            "--policy", "latency", "--compare", str(diff)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "as the routing plan chose (cpu_faster" in text
    assert "computed with policy pl" in text
    picture = cv2.imread(str(diff))
    third = (picture.shape[1] - 16) // 3  # three panels, two gaps of 8
    difference = picture[60:, 2 * third + 16:]
    assert difference.max() > 100  # the IP's frame differs from cv2's: not a black panel


def test_resize_compare_without_a_pl_frame_says_so_in_one_line(image, tmp_path, capsys):
    diff = tmp_path / "diff.png"
    argv = ["resize", str(image), str(tmp_path / "out.png"), "--size", "160x90",
            "--interpolation", "area", "--compare", str(diff)]
    assert main(argv) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("no PL frame")]
    assert len(lines) == 1 and "INTER_LINEAR" in lines[0] and not diff.exists()


@pytest.mark.parametrize("argv", [
    ["resize", "{fifo}", "{tmp}/out.png", "--size", "4x4"],
    ["demo", "--source", "{fifo}", "--frames", "1"],
])
def test_a_fifo_is_refused_without_opening_it(tmp_path, argv):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # open() of it would block until a writer comes
    argv = [a.format(fifo=fifo, tmp=tmp_path) for a in argv]
    done = subprocess.run([sys.executable, "-m", "pynq_cv", *argv], capture_output=True,
                          text=True, timeout=60, env=ENV)
    assert done.returncode == 1
    assert done.stderr == f"pynq-cv: error: {fifo} is a FIFO, not " \
                          f"{'an image' if argv[0] == 'resize' else 'a video file'}\n"


@pytest.mark.parametrize("argv", [
    ["demo", "--input-size", "100000x100000"],
    ["verify", "--sizes", "100000x100000:2x2"],
    ["verify", "--sizes", "2x2:100000x100000"],
])
def test_sizes_too_large_for_this_machine_are_one_line(argv, capsys, monkeypatch):
    monkeypatch.setattr(cli.common, "physical_memory", lambda: 8 * 2**30)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is too large: one BGR frame is 27.9 GiB" in err
    assert "machine has 8.0 GiB of memory" in err


def test_a_memory_error_is_one_line(monkeypatch, capsys):
    def exhausted(args):
        raise MemoryError("Unable to allocate 9 GiB for an array")

    parser = cli.build_parser()
    parser._subparsers._group_actions[0].choices["info"].set_defaults(run=exhausted)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert main(["info"]) == 1
    assert capsys.readouterr().err == ("pynq-cv: error: not enough memory: Unable to allocate "
                                       "9 GiB for an array\n")
