"""Policies that never lose a frame rate, pinned over bench_policy's whole sweep on every
shipped board; the source rate (fps); cost ranges and uncertain plans; boards without a
shipped cost profile."""

from __future__ import annotations

import importlib.util
import json
import logging

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv import costs, descriptors, planner
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.cli import benchmarks_dir
from pynq_cv.errors import SettingError


def _bench_policy():
    spec = importlib.util.spec_from_file_location(
        "bench_policy", benchmarks_dir() / "bench_policy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench_policy()
BOARDS = sorted(b for b, d in descriptors.available_descriptors().items()
                if d.source.startswith("pynq_cv.overlays/"))
RATES = (5, 10, 15, 24, 30, 60)


def test_the_sweep_covers_every_shipped_board_and_both_families():
    assert len(BOARDS) >= 7
    assert {costs.for_board(b).family for b in BOARDS} == {"zynq7000", "zynqmp"}


@pytest.mark.parametrize("board", BOARDS)
def test_auto_and_latency_never_exceed_cv2s_latency_for_a_call(board):
    for policy in ("auto", "latency"):
        calls = [p for p in BENCH.plans(board, policy) if not p.key[3]]
        assert len(calls) >= 20
        for plan in calls:
            latency, _, _ = BENCH.chosen(plan)
            assert latency <= plan.cv2.latency, (board, policy, plan.describe())


@pytest.mark.parametrize("board", BOARDS)
def test_auto_and_throughput_never_go_below_cv2s_frame_rate_for_a_stream(board):
    for policy in ("auto", "throughput", "offload"):
        streams = [p for p in BENCH.plans(board, policy) if p.key[3]]
        assert len(streams) >= 20
        for plan in streams:
            _, per_frame, _ = BENCH.chosen(plan)
            assert per_frame <= plan.cv2.latency, (board, policy, plan.describe())
        if policy != "throughput":  # the PL only where it also saves CPU
            assert all(p.pl.cpu < p.cv2.cpu for p in streams if p.path == "pl")


@pytest.mark.parametrize("board", BOARDS)
def test_offload_with_a_source_rate_never_goes_below_it_where_cv2_reaches_it(board):
    reached = 0
    for fps in RATES:
        for policy in ("offload", "auto"):
            for plan in BENCH.plans(board, policy, fps=fps):
                pipelined = plan.key[3]
                if policy == "auto" and not pipelined:
                    continue  # auto is latency for a call
                _, per_frame, _ = BENCH.chosen(plan)
                if 1.0 / plan.cv2.latency >= fps:  # cv2 reaches the rate
                    reached += 1
                    assert 1.0 / per_frame >= fps, (board, policy, fps, plan.describe())
                if plan.path == "pl":  # the PL only when it keeps up and saves CPU
                    assert plan.pl_period <= 1.0 / fps and plan.pl.cpu < plan.cv2.cpu
    assert reached > 100


def test_the_policies_differ_where_they_should():
    """Not vacuous: over the sweep each rule sends some frames to the PL and keeps some."""
    for board in ("Pynq-Z2", "KV260"):
        for policy in ("auto", "latency", "throughput", "offload"):
            paths = {p.path for p in BENCH.plans(board, policy)}
            assert paths == {"pl", "cpu"}, (board, policy)
    reasons = {p.reason for b in ("Pynq-Z2", "KV260")
               for pol, fps in (("offload", None), ("offload", 30), ("latency", None),
                                ("throughput", None))
               for p in BENCH.plans(b, pol, fps=fps)}
    assert {"cpu_faster", "cpu_higher_rate", "pl_too_slow_for_rate", "cpu_cheaper"} <= reasons


# -- the KV260 4K stream (issue 23's Done-when) ------------------------------------------------


def _uhd_frames(count: int = 3) -> list[np.ndarray]:
    return [frame(2160, 3840, seed=s) for s in range(count)]


def test_a_kv260_4k_stream_stays_on_cv2_by_default_and_offloads_only_at_a_rate_it_keeps(
        monkeypatch):
    monkeypatch.delenv("PYNQ_CV_POLICY")  # the suite's default is pl; a user's is auto
    frames = _uhd_frames()
    with pynq_cv.Resizer("emulator", board="KV260") as r:  # default policy: auto
        got = list(r.stream(iter(frames), (1920, 1080)))
        assert all(np.array_equal(g, cv2.resize(f, (1920, 1080)))
                   for g, f in zip(got, frames, strict=True))
        snap = r.stats.snapshot()
        assert snap["pl"] == 0 and snap["fallback"] == {"cpu_higher_rate": 3}
    with pynq_cv.Resizer("emulator", board="KV260", policy="offload", fps=10) as r:
        got = list(r.stream(iter(frames), (1920, 1080)))
        assert all(np.array_equal(g, resize_exact(f, 1080, 1920))
                   for g, f in zip(got, frames, strict=True))
        assert r.stats.snapshot()["pl"] == 3
        (plan,) = r.info()["plans"]
        assert 10 <= plan["pl_fps"] < 30  # ~12 fps, IP-bound
    with pynq_cv.Resizer("emulator", board="KV260", policy="offload", fps=30) as r:
        got = list(r.stream(iter(frames), (1920, 1080)))
        assert all(np.array_equal(g, cv2.resize(f, (1920, 1080)))
                   for g, f in zip(got, frames, strict=True))
        assert r.stats.snapshot()["fallback"] == {"pl_too_slow_for_rate": 3}


# -- the source rate ---------------------------------------------------------------------------


def test_fps_is_validated_where_it_is_given(monkeypatch):
    for bad in ("fast", 0, -5, float("nan"), float("inf"), True, [30]):
        with pytest.raises(SettingError, match="frame rate"):
            pynq_cv.Resizer("emulator", fps=bad)
    monkeypatch.setenv("PYNQ_CV_FPS", "lots")
    with pytest.raises(SettingError, match="PYNQ_CV_FPS"):
        pynq_cv.Resizer("emulator")
    monkeypatch.setenv("PYNQ_CV_FPS", " 24 ")
    assert pynq_cv.Resizer("emulator").fps == 24.0
    assert pynq_cv.Resizer("emulator", fps="12.5").fps == 12.5


def test_use_backend_and_close_default_carry_the_source_rate():
    r = pynq_cv.use_backend("emulator", board="KV260", policy="offload", fps=10)
    assert r.fps == 10
    pynq_cv.close_default()
    src = frame(1080, 1920)
    pending = pynq_cv.dispatch.default_resizer().submit(src, (1280, 720))
    assert np.array_equal(pending.result(), resize_exact(src, 720, 1280))
    (plan,) = pynq_cv.info()["plans"]
    assert plan["fps"] == 10 and plan["path"] == "pl"


def test_the_cli_takes_throughput_and_the_source_rate(capsys):
    from pynq_cv.cli import main

    assert main(["plan", "--board", "KV260", "--input", "3840x2160", "--output", "1920x1080",
                 "--mode", "stream", "--policy", "offload", "--fps", "10", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["path"] == "pl" and row["pl_fps"] >= 10
    assert main(["info", "--backend", "emulator", "--policy", "throughput"]) == 0
    assert main(["plan", "--input", "640x480", "--fps", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "frame rate" in err


# -- ranges ------------------------------------------------------------------------------------


def test_every_shipped_constant_carries_its_range_with_a_source_for_each_end():
    folder = benchmarks_dir().parent / "overlays" / "costs"
    files = sorted(folder.glob("*.json"))
    assert len(files) == 2
    for path in files:
        for name, c in json.loads(path.read_text())["constants"].items():
            assert c["low"] <= c["value"] <= c["high"], (path.name, name)
            assert len(c["low_source"]) > 10 and len(c["high_source"]) > 10, (path.name, name)


def test_the_evidence_moved_the_constants_it_contradicts():
    z2, kv = costs.for_board("Pynq-Z2").constants, costs.for_board("KV260").constants
    assert z2["register_access_s"].value == pytest.approx(30e-6)  # KastnerRG/Read_the_docs#25
    assert "Read_the_docs#25" in z2["register_access_s"].source
    # Vitis-AI#710: ~30 ms for 1080p -> 608x608 on an A53 is the high end of cv2 bilinear
    high = kv["cv2_bilinear_s_per_out_byte"].high
    assert high * 608 * 608 * 3 == pytest.approx(0.030, rel=0.05)
    assert "Vitis-AI#710" in kv["cv2_bilinear_s_per_out_byte"].high_source
    assert z2["flush_s_per_byte"].low == 0 and "XRT#8957" in z2["flush_s_per_byte"].low_source
    assert "e8c4225" in z2["flush_s_per_byte"].source  # the 247 ms fit's provenance


def test_a_decision_that_flips_inside_the_ranges_is_uncertain_and_a_measured_one_is_not():
    c = costs.for_board("KV260")
    key = ((1080, 1920, 608, 608), True, True, False, True, True)
    plan = planner.Planner(c, 100_000_000, "latency").plan(key)
    # the model gives cv2 (4 ms vs the PL's ~26 ms); at Vitis-AI#710's 30 ms the PL wins
    assert plan.path == "cpu" and plan.uncertain and plan.describe()["uncertain"] is True
    (pl_lo, cv2_lo), (pl_hi, cv2_hi) = plan.corners
    assert pl_lo.latency < cv2_lo.latency and pl_hi.latency > cv2_hi.latency
    half = planner.Planner(c, 100_000_000, "latency").plan(
        ((1080, 1920, 540, 960), True, True, False, True, True))
    assert half.path == "cpu" and not half.uncertain  # cv2's 2x path wins at every end
    points = c.with_values({n: c.constants[n].value for n in costs.CONSTANTS}, "t", "override")
    assert not planner.Planner(points, 100_000_000, "latency").plan(key).uncertain

    def measured(key, pl, cv2):
        return pl, cv2, "measured"

    assert not planner.Planner(c, 100_000_000, "latency", measure=measured).plan(key).uncertain


# -- boards without a shipped cost profile (issue 21.5) ----------------------------------------


class _EntryPoint:
    def __init__(self, name, target):
        self.name, self._target = name, target

    def load(self):
        return self._target


def _third_party(monkeypatch, board, **extra):
    """Install a descriptor for ``board`` through the ``pynq_cv.overlays`` entry points, as
    overlays/README.md documents for another package."""
    data = json.loads((benchmarks_dir().parent / "overlays" / "kv260.json").read_text())
    data.update(board=board, name=f"my-{board.lower()}", **extra)
    monkeypatch.setattr(descriptors, "_skipped", set())

    def fake(group=None, **_):
        return [_EntryPoint(data["name"], data)] if group == descriptors.ENTRY_POINT_GROUP \
            else []

    monkeypatch.setattr(descriptors.metadata, "entry_points", fake)


@pytest.mark.parametrize(("board", "extra", "family"), [
    ("ZCU106", {}, "zynqmp"),  # the family from the board's name
    ("Acme-Vision", {"cpu_family": "zynq7000"}, "zynq7000"),  # from the descriptor's field
])
def test_an_unshipped_board_runs_frames_on_the_pl_by_its_cpu_familys_costs(
        monkeypatch, board, extra, family):
    _third_party(monkeypatch, board, **extra)
    src = frame(1080, 1920, seed=7)
    want = resize_exact(src, 720, 1280)
    with pynq_cv.Resizer("emulator", board=board, policy="pl") as r:
        assert np.array_equal(r.resize(src, (1280, 720)), want)
        assert r.stats.snapshot()["pl"] == 1
        info = r.info()
        assert info["board"] == board and family in info["plans"][0]["machine"]
    # auto: a call by latency (the Zynq-7000 model sends 1080p -> 720p to the PL); a 10 fps
    # stream by rate and CPU (the PL keeps 10 fps and frees the CPU on both families)
    with pynq_cv.Resizer("emulator", board=board, policy="auto", fps=10) as r:
        if family == "zynq7000":
            assert np.array_equal(r.resize(src, (1280, 720)), want)
        assert np.array_equal(r.submit(src, (1280, 720)).result(), want)
        assert r.stats.snapshot()["pl"] == (2 if family == "zynq7000" else 1)
        assert r.engine.planner.costs.family == family


def test_a_board_whose_cpu_nothing_names_runs_with_pl_semantics_and_says_so(
        monkeypatch, caplog):
    _third_party(monkeypatch, "Mystery")
    monkeypatch.setattr(costs.platform, "machine", lambda: "x86_64")
    src = frame(1080, 1920, seed=8)
    with caplog.at_level(logging.WARNING, logger="pynq_cv"), \
            pynq_cv.Resizer("emulator", board="Mystery", policy="auto") as r:
        assert np.array_equal(r.resize(src, (960, 540)), resize_exact(src, 540, 960))
        assert r.stats.snapshot()["pl"] == 1
        (plan,) = r.info()["plans"]
        assert plan["policy"] == "pl" and plan["basis"].startswith("no cost model")
    notices = [rec.getMessage() for rec in caplog.records if "no cost model" in rec.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0]
    with pynq_cv.Resizer("emulator", board="Mystery", policy="cpu") as r:  # still obeyed
        r.resize(src, (960, 540))
        assert r.stats.snapshot()["fallback"] == {"policy_cpu": 1}


def test_family_for_reads_the_field_the_name_and_the_cpu():
    assert costs.family_for("KV260") == ("zynqmp", "shipped profile")
    assert costs.family_for("X", "Zynq-7000")[0] == "zynq7000"
    assert costs.family_for("Ultra96-V3")[0] == "zynqmp"
    assert costs.family_for("Zybo-Z7-20")[0] == "zynq7000"
    assert costs.family_for("X", machine="aarch64")[0] == "zynqmp"
    assert costs.family_for("X", machine="armv7l")[0] == "zynq7000"
    assert costs.family_for("X", machine="x86_64")[0] is None
    with pytest.raises(ValueError, match="cpu_family"):
        costs.family_for("X", "versal-ai")
    bad = json.loads((benchmarks_dir().parent / "overlays" / "kv260.json").read_text())
    bad["cpu_family"] = "pentium"
    with pytest.raises(descriptors.DescriptorError, match="cpu_family"):
        descriptors._parse(bad, "t.json")
