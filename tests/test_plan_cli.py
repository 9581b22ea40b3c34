"""``pynq-cv plan``: the routing map's rows, its JSON, its picture, and the README's tables,
which are its output (regenerated here, so they cannot drift from the model)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from pynq_cv import routes
from pynq_cv.cli import main

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- (pynq-cv plan .*) -->$")


def run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def readme_tables(text: str) -> list[tuple[str, str]]:
    """(command, the table under its marker) for every ``<!-- pynq-cv plan ... -->``."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines):
        match = MARKER.match(line)
        if match:
            table = []
            for after in lines[i + 1:]:
                if not after.startswith("|"):
                    break
                table.append(after)
            found.append((match.group(1), "\n".join(table)))
    return found


@pytest.fixture
def model_env(monkeypatch):
    """The published model and the default policy, whatever the suite's defaults."""
    for name in ("PYNQ_CV_POLICY", "PYNQ_CV_FPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYNQ_CV_CALIBRATION", "none")


def test_the_readmes_tables_are_the_plan_commands_output(model_env, capsys):
    tables = readme_tables((ROOT / "README.md").read_text())
    assert len(tables) >= 6
    for command, table in tables:
        want = run(capsys, *shlex.split(command)[1:]).strip()
        assert table == want, f"README table for `{command}` is stale; it is now:\n{want}"
    marked = [t for _, t in tables if "(uncertain)" in t]
    assert marked  # the tables say where the model cannot decide


def test_rows_carry_every_documented_key_and_the_json_wraps_them(model_env, capsys):
    out = json.loads(run(capsys, "plan", "--board", "KV260", "--input", "1920x1080",
                         "--output", "960x540", "1280x720", "--json"))
    assert [r["shape"] for r in out["rows"]] == ["1920x1080->960x540", "1920x1080->1280x720"]
    for row in out["rows"]:
        assert set(routes.ROW_KEYS) <= set(row)
        assert row["mode"] == "sync" and row["policy"] == "latency" and row["path"] == "cpu"
        assert row["reason"] == "cpu_faster" and row["basis"] == "model"
        assert row["pl_ms"] > row["cv2_ms"] and row["pl_cpu_ms"] < row["pl_ms"]
        assert row["pl_fps"] == pytest.approx(1000 / row["pl_ms"], rel=0.01)
        lo, hi = row["ranges"]["cv2_ms"]
        assert lo <= row["cv2_ms"] <= hi
    assert out["machine"].startswith("KV260 (model") and out["board"] == "KV260"
    text = run(capsys, "plan", "--board", "KV260", "--input", "1920x1080")
    assert text.startswith("pynq-cv plan: MODELLED for KV260 (model")


def test_without_outputs_a_grid_with_the_inputs_exact_downscales(model_env):
    rows = routes.routes("Pynq-Z2", (1920, 1080))["rows"]
    outputs = [r["shape"].split("->")[1] for r in rows]
    assert {"960x540", "640x360", "480x270", "1280x720", "416x416"} <= set(outputs)
    # an output the overlay cannot make is a row too, on cv2 with the envelope's reason
    (big,) = [r for r in rows if r["shape"].endswith("3840x2160")]
    assert big["path"] == "cpu" and big["reason"] == "output_too_large" and big["pl_ms"] is None
    streamed = routes.routes("Pynq-Z2", (1920, 1080), [(960, 540)], mode="stream")["rows"][0]
    assert streamed["pl_fps"] > 1000 / streamed["pl_ms"]  # pipelined beats one at a time


def test_zero_copy_plans_what_the_engine_plans_for_lent_buffers(model_env):
    import numpy as np

    import pynq_cv

    (row,) = routes.routes("Pynq-Z2", (1920, 1080), [(960, 540)], zero_copy=True,
                           policy="latency")["rows"]
    with pynq_cv.Resizer("emulator", board="Pynq-Z2", policy="latency") as r:
        src, dst = r.lend((1080, 1920, 3)), r.lend((540, 960, 3), role="output")
        src[:] = 7
        r.resize(src, (960, 540), dst=dst)
        (plan,) = r.info()["plans"]
        r.give_back(src)
        r.give_back(dst)
    assert plan["copies"] == "none"
    for key in ("path", "pl_ms", "cv2_ms", "pl_cpu_ms", "cv2_cpu_ms", "uncertain"):
        assert row[key] == plan[key], key
    assert np.isfinite(row["pl_ms"])


def test_the_picture_is_a_png_with_both_paths_drawn(model_env, tmp_path, capsys):
    target = tmp_path / "map.png"
    out = run(capsys, "plan", "--board", "Pynq-Z2", "--input", "1920x1080", "--picture",
              str(target))
    assert f"wrote {target}" in out
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (960, 600)
        colours = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (230, 120, 20) in colours  # the PL and cv2 lines


def test_x_labels_that_would_overlap_go_on_separate_lines():
    from pynq_cv.cli.plan import label_lines

    spans = [(0, 40, "320x240"), (30, 70, "608x608"), (35, 75, "640x480"), (200, 240, "1280x720")]
    lines = label_lines(spans)
    assert lines == [0, 1, 2, 0]
    for (s1, e1, _), l1 in zip(spans, lines, strict=True):
        for (s2, _, _), l2 in zip(spans, lines, strict=True):
            assert not (l1 == l2 and s1 < s2 < e1 + 6), (s1, s2)


def test_bad_arguments_end_in_one_line(model_env, capsys):
    assert main(["plan", "--board", "NoSuchBoard", "--input", "640x480"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pynq-cv: error:") and err.count("\n") == 1
    assert main(["plan", "--input", "640x480", "--policy", "fastest"]) == 2
