"""Strict mode raises with the reason instead of falling back; compare mode counts the
difference of PL frames from cv2."""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv import FallbackError, PynqCvError, Resizer
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.descriptors import descriptor_for


@pytest.fixture(autouse=True)
def _no_mode_from_the_environment(monkeypatch):
    for name in ("PYNQ_CV_STRICT", "PYNQ_CV_COMPARE"):
        monkeypatch.delenv(name, raising=False)


# -- strict -----------------------------------------------------------------------------------


def test_strict_refuses_an_eligible_typed_frame_that_would_fall_back():
    src = frame(48, 64)
    with Resizer("emulator", strict=True) as rz:
        assert np.array_equal(rz.resize(src, (32, 24)), resize_exact(src, 24, 32))
        with pytest.raises(FallbackError) as caught:
            rz.resize(src, (32, 24), interpolation=cv2.INTER_AREA)
        assert isinstance(caught.value, PynqCvError)
        assert caught.value.reason == "interpolation"
        assert "interpolation" in str(caught.value) and "INTER_LINEAR" in str(caught.value)
        assert rz.stats.snapshot()["cpu"] == 0  # refused, not computed


def test_strict_lets_frames_of_other_types_run_on_the_cpu():
    gray = frame(48, 64, channels=1)[:, :, 0]
    floats = frame(48, 64).astype(np.float32)
    with Resizer("emulator", strict=True) as rz:
        assert np.array_equal(rz.resize(gray, (32, 24)), cv2.resize(gray, (32, 24)))
        assert np.array_equal(rz.resize(floats, (32, 24)), cv2.resize(floats, (32, 24)))
        assert rz.stats.snapshot()["fallback"] == {"channels": 1, "dtype": 1}


def test_strict_accepts_the_routing_policys_choice_of_cv2():
    src = frame(48, 64)
    with Resizer("emulator", strict=True, policy="cpu") as rz:
        assert np.array_equal(rz.resize(src, (32, 24)), cv2.resize(src, (32, 24)))
        assert rz.stats.snapshot()["fallback"] == {"policy_cpu": 1}


def test_strict_names_the_dma_limit_in_figures():
    desc = descriptor_for("Pynq-Z2")  # as its 2019.1 .hwh has it: a 23-bit LENGTH register
    params = {**desc.dma.parameters, "c_sg_length_width": 23}
    old = dataclasses.replace(desc, dma=dataclasses.replace(desc.dma, parameters=params))
    big = np.zeros((2160, 3840, 3), np.uint8)  # 24.9 MB
    with Resizer("emulator", descriptor=old, strict=True) as rz:
        with pytest.raises(FallbackError, match=r"input 24\.9 MB exceeds this DMA's "
                                                r"8,388,607-byte transfer limit") as caught:
            rz.resize(big, (960, 540))
    assert caught.value.reason == "dma_length"


def test_strict_from_the_environment_covers_the_patched_cv2_resize(monkeypatch):
    monkeypatch.setenv("PYNQ_CV_STRICT", "1")
    pynq_cv.use_backend("cpu")
    with pynq_cv.patched(), pytest.raises(FallbackError, match="CPU backend") as caught:
        cv2.resize(frame(48, 64), (32, 24))
    assert caught.value.reason == "backend_cpu"


def test_strict_raises_for_a_pl_fault_with_its_kind():
    with Resizer("emulator", strict=True) as rz:
        rz.open()
        rz.engine.board.faults.dma_error("send", count=1)
        with pytest.warns(RuntimeWarning), pytest.raises(FallbackError) as caught:
            rz.resize(frame(48, 64), (32, 24))
        assert caught.value.reason == "fault_dma_error"
        assert rz.stats.snapshot()["faults"] == {"dma_error": 1}
        assert np.array_equal(rz.resize(frame(48, 64), (32, 24)),
                              resize_exact(frame(48, 64), 24, 32))  # recovered


def test_strict_in_a_stream_raises_from_that_frames_result():
    frames = [frame(48, 64, seed=1), frame(47, 63, seed=2)]  # 47 * 63 * 3 bytes: not x4
    with Resizer("emulator", strict=True) as rz:
        results = rz.stream(frames, (32, 24))
        assert np.array_equal(next(results), resize_exact(frames[0], 24, 32))
        with pytest.raises(FallbackError) as caught:
            next(results)
    assert caught.value.reason == "byte_count_not_multiple"


# -- compare ---------------------------------------------------------------------------------


def expected_difference(src: np.ndarray, rows: int, cols: int) -> tuple[int, float]:
    diff = cv2.absdiff(resize_exact(src, rows, cols), cv2.resize(src, (cols, rows)))
    per_pixel = diff.max(axis=2)
    return int(per_pixel.max()), np.count_nonzero(per_pixel) / per_pixel.size


def test_compare_counts_the_difference_of_each_pl_frame_from_cv2():
    a, b = frame(48, 64, seed=7), frame(90, 120, seed=8)
    max_a, share_a = expected_difference(a, 24, 32)
    max_b, share_b = expected_difference(b, 45, 60)
    assert max(max_a, max_b) == 1 and share_a > 0  # the IP truncates where cv2 rounds
    with Resizer("emulator", compare=True) as rz:
        assert np.array_equal(rz.resize(a, (32, 24)), resize_exact(a, 24, 32))
        rz.resize(b, (60, 45))
        rz.resize(a, (32, 24), interpolation=cv2.INTER_AREA)  # CPU: not compared
        got = rz.stats.snapshot()["compare"]
    assert got["frames"] == 2 and got["max_diff"] == max(max_a, max_b)
    pixels_a, pixels_b = 24 * 32, 45 * 60
    share = (share_a * pixels_a + share_b * pixels_b) / (pixels_a + pixels_b)
    assert got["differing_share"] == pytest.approx(share)


def test_compare_of_a_flat_frame_finds_no_difference():
    with Resizer("emulator", compare=True) as rz:
        rz.resize(np.full((48, 64, 3), 200, np.uint8), (32, 24))
        assert rz.stats.snapshot()["compare"] == {"frames": 1, "max_diff": 0,
                                                  "differing_share": 0.0}


def test_compare_from_the_environment_logs_each_frame(monkeypatch, caplog):
    monkeypatch.setenv("PYNQ_CV_COMPARE", "yes")
    caplog.set_level(logging.DEBUG, logger="pynq_cv")
    src = frame(48, 64, seed=7)
    max_diff, share = expected_difference(src, 24, 32)
    pynq_cv.use_backend("emulator")
    pynq_cv.resize(src, (32, 24))
    assert pynq_cv.stats()["compare"]["frames"] == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "pynq_cv"
              and r.getMessage().startswith("resize ")]
    assert line.endswith(f"vs cv2: max diff {max_diff}, {share:.2%} of pixels differ")


def test_stats_report_compare_zeros_when_off():
    with Resizer("emulator") as rz:
        rz.resize(frame(48, 64), (32, 24))
        assert rz.watching is None
        assert rz.stats.snapshot()["compare"] == {"frames": 0, "max_diff": 0,
                                                  "differing_share": 0.0}
