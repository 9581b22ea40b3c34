"""Routing: the board cost model, plans per shape under a policy, calibration files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv import calibration, costs, planner, timing
from pynq_cv.backends.emulator.arith import resize_exact

HD = (1080, 1920)
HALF = (960, 540)  # cv2's dsize: width, height
SIZES = (1080, 1920, 540, 960)


def known_costs() -> costs.BoardCosts:
    """Round constants whose arithmetic is easy to check by hand."""
    values = {
        "memcpy_bytes_per_s": 1e9, "wc_write_bytes_per_s": 2e9,
        "uncached_read_bytes_per_s": 1e8, "flush_s_per_byte": 1e-9,
        "invalidate_s_per_byte": 2e-9, "register_access_s": 1e-6, "register_accesses": 10,
        "frame_python_s": 1e-4, "cv2_area2x_bytes_per_s": 1e9,
        "cv2_bilinear_s_per_out_byte": 1e-8, "cv2_call_s": 1e-5, "cv2_threads": 2,
    }
    return costs.for_board("Pynq-Z2").with_values(values, "test", "override")


# -- the model's arithmetic --------------------------------------------------------------------


def test_pl_cost_adds_copies_cache_maintenance_ip_and_driver():
    c = known_costs()
    in_b, out_b = 1080 * 1920 * 3, 540 * 960 * 3
    ip = timing.frame_seconds(*SIZES, clock_hz=100_000_000)
    cached = costs.pl_cost(c, SIZES, 100_000_000)
    assert cached.parts == pytest.approx({
        "copy_in": in_b / 1e9, "flush": in_b * 1e-9, "ip": ip,
        "invalidate": out_b * 2e-9, "copy_out": out_b / 1e9, "driver": 1e-4 + 10 * 1e-6,
    })
    assert cached.latency == pytest.approx(sum(cached.parts.values()))
    assert cached.cpu == pytest.approx(cached.latency - ip)  # the driver sleeps through the IP
    wc = costs.pl_cost(c, SIZES, 100_000_000, in_cacheable=False, out_cacheable=False)
    assert wc.parts["copy_in"] == pytest.approx(in_b / 2e9) and wc.parts["flush"] == 0
    assert wc.parts["copy_out"] == pytest.approx(out_b / 1e8) and wc.parts["invalidate"] == 0
    zero = costs.pl_cost(c, SIZES, 100_000_000, copy_in=False, copy_out=False)
    assert "copy_in" not in zero.parts and "copy_out" not in zero.parts


def test_cv2_cost_knows_the_area_fast_path_and_uncached_sources():
    c = known_costs()
    area = costs.cv2_cost(c, SIZES)
    assert area.latency == pytest.approx(1e-5 + 1080 * 1920 * 3 / 1e9)
    assert area.cpu == pytest.approx(1e-5 + 2 * 1080 * 1920 * 3 / 1e9)
    bilinear = costs.cv2_cost(c, (1080, 1920, 720, 1280))
    assert bilinear.latency == pytest.approx(1e-5 + 720 * 1280 * 3 * 1e-8)
    slow_src = costs.cv2_cost(c, SIZES, src_cacheable=False)
    assert slow_src.latency == pytest.approx(1e-5 + 1080 * 1920 * 3 / 1e8)
    assert costs.is_area_fast(SIZES) and not costs.is_area_fast((1080, 1920, 540, 961))


def test_roles_pick_write_combined_inputs_and_cacheable_outputs_on_both_boards():
    for board in ("Pynq-Z2", "KV260"):
        assert costs.roles(costs.for_board(board)) == (False, True)
    # Make flushing free and write-combined writes slow: the input turns cacheable
    cheap_flush = known_costs().with_values(
        {"flush_s_per_byte": 0.0, "wc_write_bytes_per_s": 1e8}, "t", "override")
    assert costs.roles(cheap_flush)[0] is True


def test_every_published_constant_names_its_source():
    for board in ("Pynq-Z1", "Pynq-Z2", "KV260", "KR260", "Ultra96", "ZCU104", "Pynq-ZU"):
        described = costs.for_board(board).describe()
        assert set(described) == set(costs.CONSTANTS)
        for entry in described.values():
            assert entry["origin"] == "published" and len(entry["source"]) > 10


def test_bad_constants_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown cost constant 'speed'"):
        known_costs().with_values({"speed": 1}, "t", "override")
    with pytest.raises(ValueError, match="memcpy_bytes_per_s.*finite"):
        known_costs().with_values({"memcpy_bytes_per_s": float("nan")}, "t", "override")


# -- policies on the emulated boards -----------------------------------------------------------


@pytest.mark.parametrize("board", ["Pynq-Z2", "KV260"])
def test_latency_policy_sends_1080p_to_half_to_cv2_on_both_boards(board):
    src = frame(*HD)
    with pynq_cv.Resizer("emulator", board=board, policy="latency") as r:
        out = r.resize(src, HALF)
        assert np.array_equal(out, cv2.resize(src, HALF))
        snap = r.stats.snapshot()
        assert snap["pl"] == 0 and snap["fallback"] == {"cpu_faster": 1}
        (plan,) = r.info()["plans"]
        assert plan["path"] == "cpu" and plan["reason"] == "cpu_faster"
        assert plan["pl_ms"] > plan["cv2_ms"]


@pytest.mark.parametrize("board", ["Pynq-Z2", "KV260"])
def test_a_calibration_with_a_ten_times_slower_cv2_sends_it_to_the_pl(tmp_path, board):
    published = costs.for_board(board)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({
        "pynq_cv_calibration": 1, "backend": "emulator", "family": published.family,
        "constants": {
            "cv2_area2x_bytes_per_s": published.cv2_area2x_bytes_per_s / 10,
            "cv2_bilinear_s_per_out_byte": published.cv2_bilinear_s_per_out_byte * 10,
        },
    }))
    src = frame(*HD)
    with pynq_cv.Resizer("emulator", board=board, policy="latency", calibration=path) as r:
        out = r.resize(src, HALF)
        assert np.array_equal(out, resize_exact(src, 540, 960))
        assert r.stats.snapshot()["pl"] == 1
        info = r.info()
        assert str(path) in info["costs_from"]
        assert info["costs"]["cv2_area2x_bytes_per_s"]["origin"] == "calibration"
        assert info["costs"]["memcpy_bytes_per_s"]["origin"] == "published"


def test_pl_policy_takes_every_eligible_frame_and_cpu_policy_none():
    shapes = [((64, 64), (32, 32)), ((1080, 1920), (960, 540)), ((480, 640), (1280, 720))]
    with pynq_cv.Resizer("emulator", policy="pl") as r:
        for (h, w), dsize in shapes:
            r.resize(frame(h, w), dsize)
        assert r.stats.snapshot()["pl"] == len(shapes)
    with pynq_cv.Resizer("emulator", policy="cpu") as r:
        for (h, w), dsize in shapes:
            src = frame(h, w)
            assert np.array_equal(r.resize(src, dsize), cv2.resize(src, dsize))
        snap = r.stats.snapshot()
        assert snap["pl"] == 0 and snap["fallback"] == {"policy_cpu": len(shapes)}


def test_auto_never_lowers_a_streams_rate_and_offloads_when_the_source_rate_allows():
    """Pynq-Z2, 1080p -> 960x540: cv2 runs ~57 fps, the pipelined PL ~31 fps. Without a
    source rate auto keeps cv2 (the PL would lower the rate); a 25 fps source lets the PL
    take the frames and free the CPU."""
    src = frame(*HD)
    with pynq_cv.Resizer("emulator", board="Pynq-Z2", policy="auto") as r:
        r.resize(src, HALF)  # latency: cv2 is faster
        pending = r.submit(src, HALF)
        assert np.array_equal(pending.result(), cv2.resize(src, HALF))
        snap = r.stats.snapshot()
        assert snap["pl"] == 0 and snap["fallback"] == {"cpu_faster": 1, "cpu_higher_rate": 1}
        modes = {p["mode"]: p for p in r.info()["plans"]}
        assert modes["sync"]["policy"] == "latency" and modes["pipelined"]["policy"] == "offload"
        assert modes["pipelined"]["pl_fps"] < modes["pipelined"]["cv2_fps"]
    with pynq_cv.Resizer("emulator", board="Pynq-Z2", policy="auto", fps=25) as r:
        pending = r.submit(src, HALF)  # the PL keeps 25 fps and costs the CPU less
        assert np.array_equal(pending.result(), resize_exact(src, 540, 960))
        (plan,) = r.info()["plans"]
        assert plan["path"] == "pl" and plan["fps"] == 25 and plan["pl_fps"] >= 25
        assert plan["pl_cpu_ms"] < plan["cv2_cpu_ms"]
    with pynq_cv.Resizer("emulator", board="Pynq-Z2", policy="auto", fps=60) as r:
        r.submit(src, HALF).result()
        assert r.stats.snapshot()["fallback"] == {"pl_too_slow_for_rate": 1}


def test_plans_are_made_once_per_shape_and_kept_until_replan(monkeypatch):
    made = []
    original = planner.Planner._make

    def counting(self, key):
        made.append(key)
        return original(self, key)

    monkeypatch.setattr(planner.Planner, "_make", counting)
    with pynq_cv.Resizer("emulator", policy="latency") as r:
        for _ in range(5):
            r.resize(frame(1080, 1920), HALF)
            r.resize(frame(64, 64), (32, 32))
        assert len(made) == 2
        r.replan()
        r.resize(frame(64, 64), (32, 32))
        assert len(made) == 3


def test_a_policy_routed_frame_costs_one_dict_lookup(monkeypatch):
    with pynq_cv.Resizer("emulator", policy="cpu") as r:
        r.resize(frame(64, 64), (32, 32))
        monkeypatch.setattr(planner.Planner, "plan", lambda *a: pytest.fail("planned again"))
        r.resize(frame(64, 64), (32, 32))


def test_policies_are_validated_where_they_are_given(monkeypatch):
    with pytest.raises(ValueError, match="unknown pynq_cv policy 'fastest'"):
        pynq_cv.Resizer("emulator", policy="fastest")
    monkeypatch.setenv("PYNQ_CV_POLICY", "Offload")
    assert pynq_cv.Resizer("emulator").policy == "offload"
    monkeypatch.setenv("PYNQ_CV_POLICY", "nope")
    with pytest.raises(ValueError, match="PYNQ_CV_POLICY"):
        pynq_cv.Resizer("emulator")
    with pytest.raises(ValueError, match="planning"):
        pynq_cv.Resizer("emulator", policy="pl", planning="guess")


def test_use_backend_takes_a_policy():
    r = pynq_cv.use_backend("emulator", policy="cpu")
    assert r.policy == "cpu"
    src = frame(64, 64)
    assert np.array_equal(pynq_cv.resize(src, (32, 32)), cv2.resize(src, (32, 32)))
    assert pynq_cv.stats()["fallback"] == {"policy_cpu": 1}


# -- buffers by role ---------------------------------------------------------------------------


def test_pool_buffers_are_allocated_with_an_explicit_cacheable_per_role():
    with pynq_cv.Resizer("emulator", policy="pl") as r:
        board = r.open().engine.board
        calls = []
        allocate = board.allocate

        def recording(shape, dtype, **kw):
            calls.append((tuple(shape), kw))
            return allocate(shape, dtype, **kw)

        board.allocate = recording
        r.engine.pool._allocate = recording
        r.resize(frame(64, 96), (48, 32))
        lent = r.lend((64, 96, 3), role="output")
        r.give_back(lent)
    assert ((64, 96, 3), {"cacheable": False}) in calls  # input: write-combined, no flush
    assert ((32, 48, 3), {"cacheable": True}) in calls  # output: cacheable + invalidate
    assert ((64, 96, 3), {"cacheable": True}) in calls  # lent for output


def test_the_board_backend_always_passes_cacheable_to_pynq():
    from pynq_cv.backends.board import PynqBoard

    seen = []

    class FakePynq:
        @staticmethod
        def allocate(shape, **kw):
            seen.append(kw)
            return np.zeros(shape, kw["dtype"])

    board = PynqBoard.__new__(PynqBoard)
    board._pynq = FakePynq
    board.allocate((4,), np.uint8)
    board.allocate((4,), np.uint8, cacheable=False)
    assert seen == [{"dtype": np.uint8, "cacheable": True}, {"dtype": np.uint8, "cacheable": False}]


def test_modelled_board_time_counts_copies_and_cache_maintenance():
    with pynq_cv.Resizer("emulator", policy="pl") as r:
        r.resize(frame(360, 640), (320, 180))
        board_seconds = r.stats.snapshot()["board_seconds"]
    expected = costs.pl_cost(costs.for_board("Pynq-Z2"), (360, 640, 180, 320), 100_000_000,
                             in_cacheable=False).latency
    assert board_seconds == pytest.approx(expected)
    assert board_seconds > timing.frame_seconds(360, 640, 180, 320) * 1.5


# -- calibration files -------------------------------------------------------------------------


def test_a_hosts_calibration_never_replaces_a_boards_model_unless_asked(tmp_path, monkeypatch):
    """A host is not a board: after `calibrate` through the emulator, engines keep the
    board's model (and its routing) until the file is asked for by path or env."""
    data = calibration.measure("emulator", rows=120, cols=160, repeat=1, resizer=pynq_cv.Resizer)
    assert data["backend"] == "emulator" and "host" in data["note"]
    assert set(data["constants"]) <= set(costs.CONSTANTS)
    monkeypatch.delenv("PYNQ_CV_CALIBRATION", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = calibration.write(data)
    assert path == tmp_path / "pynq_cv" / "calibration.json"
    src = frame(*HD)
    with pynq_cv.Resizer("emulator", policy="latency") as r:
        r.resize(src, (1280, 720))
        info = r.info()
    assert info["costs_from"].startswith("published defaults") and str(path) in info["costs_from"]
    assert {c["origin"] for c in info["costs"].values()} == {"published"}
    (plan,) = info["plans"]
    assert plan["path"] == "pl" and plan["machine"].startswith("Pynq-Z2 (model")
    monkeypatch.setenv("PYNQ_CV_CALIBRATION", str(path))  # asked for: loaded, and says whose
    with pynq_cv.Resizer("emulator", policy="latency") as r:
        r.resize(src, (1280, 720))
        info = r.info()
    assert info["costs_from"].startswith(f"calibration file {path}")
    measured = data["constants"]["memcpy_bytes_per_s"]["value"]
    assert info["costs"]["memcpy_bytes_per_s"]["value"] == measured
    assert info["plans"][0]["machine"].startswith("this host") and "not a Pynq-Z2" in \
        info["plans"][0]["machine"]
    # a file measured on a board replaces that board family's model by default, on a board
    monkeypatch.delenv("PYNQ_CV_CALIBRATION")
    path.write_text(json.dumps({**data, "backend": "board", "board": "Pynq-Z2"}))
    board_costs, origin = calibration.costs_for("Pynq-Z2", "board")
    assert origin.startswith(f"calibration file {path}; the numbers describe Pynq-Z2 "
                             "(calibrated on the board")
    assert "calibrated on the board" in board_costs.machine
    assert calibration.costs_for("Pynq-Z2", "emulator")[1].startswith("published defaults")
    assert calibration.costs_for("KV260", "board")[1].startswith("published defaults")


def test_bad_calibration_files_are_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="nope.json does not exist"):
        pynq_cv.Resizer("emulator", calibration=missing)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pynq_cv_calibration": 1, "constants": {"cv2_threads": "x"}}))
    with pytest.raises(ValueError, match="cv2_threads"):
        pynq_cv.Resizer("emulator", calibration=bad)


def test_measured_planning_times_both_paths_once_on_scratch_buffers():
    src = frame(120, 160)
    with pynq_cv.Resizer("emulator", policy="latency", planning="measure") as r:
        first = r.resize(src, (80, 60))
        (plan,) = r.info()["plans"]
        assert plan["basis"] == "measured (emulated)"
        for _ in range(3):  # the plan stays put: same path, same values
            assert np.array_equal(r.resize(src, (80, 60)), first)
        assert len(r.info()["plans"]) == 1


def test_the_calibrate_command_writes_a_file_info_then_names(tmp_path, capsys):
    from pynq_cv.cli import main

    path = tmp_path / "cal.json"
    assert main(["calibrate", "--backend", "emulator", "--quick", "--output", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not a board's" in out and str(path) in out
    assert f"to undo: rm {path}" in out and "only when asked" in out
    assert calibration.read(path)["backend"] == "emulator"
    with pynq_cv.Resizer("emulator", calibration=path) as r:
        assert r.info()["costs"]["cv2_call_s"]["origin"] == "calibration"


def test_a_failed_measurement_keeps_the_model_plan():
    def broken(key, pl, cv2):
        raise pynq_cv.PLFault("busy", "the IP is busy")

    p = planner.Planner(costs.for_board("KV260"), 100_000_000, "latency", measure=broken)
    plan = p.plan((SIZES, True, True, False, True, True))
    assert plan.basis.startswith("model (measuring failed") and plan.reason == "cpu_faster"


def test_measured_planning_waits_for_a_submitted_frame_and_measures_the_pl():
    a, b = frame(120, 160, seed=1), frame(96, 128, seed=2)
    with pynq_cv.Resizer("emulator", policy="offload", planning="measure") as r:
        pending = r.submit(a, (80, 60))  # holds the IP while b's shape is planned
        r.resize(b, (64, 48))
        pending.result()
        plans = {p["shape"]: p for p in r.info()["plans"]}
        assert plans["128x96->64x48"]["basis"] == "measured (emulated)"


def test_a_stream_computes_cpu_frames_from_the_pixels_given_at_submit():
    buf = frame(48, 64, seed=3)
    frames = [frame(48, 64, seed=s) for s in range(4)]
    wants = [cv2.resize(f, (32, 24)) for f in frames]

    def refill():  # one buffer refilled in place, as cap.read(image=buf) does
        for f in frames:
            np.copyto(buf, f)
            yield buf

    with pynq_cv.Resizer("emulator", policy="cpu") as r:
        got = list(r.stream(refill(), (32, 24)))
    assert len(got) == 4
    assert all(np.array_equal(g, w) for g, w in zip(got, wants, strict=True))
