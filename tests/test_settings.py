"""Bad settings fail at construction with one clear error naming the setting -- not later,
inside a frame."""

from __future__ import annotations

import math
import os
import pathlib
import re

import pytest

import pynq_cv


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"factor": math.nan}, "factor"),
        ({"factor": math.inf}, "factor"),
        ({"factor": 0}, "factor"),
        ({"factor": "2"}, "factor"),
        ({"margin": -0.01}, "margin"),
        ({"margin": math.nan}, "margin"),
        ({"poll": 0}, "poll"),
        ({"poll": -1e-3}, "poll"),
    ],
)
def test_deadlines_refuse_values_that_cannot_bound_a_wait(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=f"Deadlines.{name}"):
        pynq_cv.Deadlines(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"threshold": "x"}, "threshold"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 2.5}, "threshold"),
        ({"cooldown": -1}, "cooldown"),
        ({"cooldown": math.nan}, "cooldown"),
    ],
)
def test_circuit_breaker_refuses_bad_settings(kwargs, name):
    with pytest.raises(ValueError, match=name):
        pynq_cv.CircuitBreaker(**kwargs)


@pytest.mark.parametrize("budget", ["x", 0, -5, 1.5, True])
def test_resizer_refuses_a_bad_budget(budget):
    with pytest.raises(ValueError, match="budget_bytes"):
        pynq_cv.Resizer("emulator", budget_bytes=budget)


def test_resizer_refuses_settings_of_the_wrong_kind():
    with pytest.raises(TypeError, match="deadlines"):
        pynq_cv.Resizer("emulator", deadlines=0.1)
    with pytest.raises(TypeError, match="breaker"):
        pynq_cv.Resizer("emulator", breaker=3)


def test_unknown_backend_options_are_named_at_construction():
    with pytest.raises(TypeError, match="'pace_typo'"):
        pynq_cv.Resizer("emulator", pace_typo=True)
    with pytest.raises(TypeError, match="'pace'"):
        pynq_cv.use_backend("cpu", pace=True)
    assert pynq_cv.Resizer("emulator", pace=True, board="KV260").backend_options == {
        "pace": True, "board": "KV260"}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"calibration": 5}, "calibration"),
        ({"policy": 1}, "policy"),
        ({"planning": 2}, "planning"),
        ({"strict": "yes"}, "strict"),
        ({"compare": 1}, "compare"),
        ({"reprogram": "no"}, "reprogram"),
        ({"wait_for_pl": "1"}, "wait_for_pl"),
        ({"wait_for_pl": True}, "wait_for_pl"),
        ({"backend": 3}, "backend"),
    ],
)
def test_settings_of_the_wrong_type_are_refused_in_one_line_naming_them(kwargs, name):
    with pytest.raises(pynq_cv.SettingError) as info:
        pynq_cv.Resizer(**kwargs)
    message = str(info.value)
    assert message.startswith(name) and "\n" not in message, message


def test_settings_of_the_right_type_are_taken():
    rz = pynq_cv.Resizer("emulator", calibration={}, policy="pl", planning="estimate",
                         strict=False, compare=False, wait_for_pl=0)
    assert rz.policy == "pl" and rz.strict is False


def test_a_descriptor_whose_dma_and_resizer_names_collide_is_refused_at_load():
    import copy
    import json

    from pynq_cv import descriptors

    data = json.loads((descriptors._shipped_dir() / "kv260.json").read_text())
    bad = copy.deepcopy(data)
    bad["ips"]["resizer"]["name"] = bad["ips"]["dma"]["name"]
    with pytest.raises(descriptors.DescriptorError, match="ips.resizer.name"):
        descriptors._parse(bad, "test.json")
    assert descriptors._parse(data, "test.json").resizer.name != data["ips"]["dma"]["name"]


def test_a_board_name_typo_fails_at_construction_with_did_you_mean(monkeypatch):
    monkeypatch.setenv("PYNQ_CV_BOARD", "kv26")
    with pytest.raises(pynq_cv.SettingError, match=r"'kv26'.*did you mean 'KV260'.*PYNQ_CV_BOARD"):
        pynq_cv.Resizer("emulator")
    monkeypatch.delenv("PYNQ_CV_BOARD")
    with pytest.raises(pynq_cv.SettingError, match="from board="):
        pynq_cv.Resizer("emulator", board="Pynq-Z3")


def test_a_missing_calibration_file_is_said_once_and_never_an_error_under_w_error(tmp_path):
    """PYNQ_CV_CALIBRATION set outside the program: a bad file keeps the published costs
    and says so through the pynq_cv logger, not a warning -W error would raise."""
    import subprocess
    import sys

    script = (
        "import numpy as np, pynq_cv\n"
        "f = np.zeros((64, 64, 3), np.uint8)\n"
        "print(pynq_cv.resize(f, (32, 32)).shape)\n"
    )
    env = dict(os.environ, PYNQ_CV_CALIBRATION=str(tmp_path / "missing.json"),
               PYNQ_CV_BACKEND="emulator", PYNQ_CV_POLICY="pl")
    env.pop("PYNQ_CV_LOG", None)
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "(32, 32, 3)" in done.stdout
    said = [line for line in done.stderr.splitlines() if "PYNQ_CV_CALIBRATION" in line]
    assert len(said) == 1 and "missing.json" in said[0], done.stderr


ROOT = pathlib.Path(__file__).resolve().parents[1]
NAME = re.compile(r"PYNQ_CV_[A-Z0-9_]*[A-Z0-9]")


def _names_in(*parts: str) -> set[str]:
    found: set[str] = set()
    for part in parts:
        for path in (ROOT / part).rglob("*"):
            if path.name == "settings.py" or path.name == "test_settings.py":
                continue  # the lists themselves, and this test's typo
            if path.suffix in (".py", ".sh", "") and path.is_file():
                found |= set(NAME.findall(path.read_text(errors="replace")))
    return found


def test_the_known_names_are_exactly_the_switches_the_code_reads():
    from pynq_cv import settings

    assert _names_in("pynq_cv") == set(settings.NAMES)
    suite = _names_in("tests", ".ci", "benchmarks", "examples") - set(settings.NAMES)
    assert suite == set(settings.SUITE_NAMES)


def test_an_unknown_pynq_cv_name_is_named_once_with_the_nearest(monkeypatch, caplog):
    from pynq_cv import settings

    monkeypatch.setattr(settings, "_named", {})
    monkeypatch.setenv("PYNQ_CV_STICT", "1")
    monkeypatch.setenv("PYNQ_CV_SOAK_SECONDS", "3")  # the suite's own: no warning
    with caplog.at_level("WARNING", logger="pynq_cv"):
        pynq_cv.Resizer("cpu")
        pynq_cv.Resizer("cpu")
    said = [r.getMessage() for r in caplog.records if "not a pynq_cv setting" in r.getMessage()]
    assert len(said) == 1, said
    assert "PYNQ_CV_STICT" in said[0] and "did you mean PYNQ_CV_STRICT?" in said[0]
    assert "SOAK" not in said[0]


def test_threads_opening_engines_together_name_an_unknown_name_once(monkeypatch, caplog):
    import threading

    from pynq_cv import settings

    monkeypatch.setattr(settings, "_named", {})
    monkeypatch.setenv("PYNQ_CV_BAKCEND", "cpu")
    go = threading.Barrier(8)

    def check() -> None:
        go.wait()
        for _ in range(50):
            settings.check_names()

    with caplog.at_level("WARNING", logger="pynq_cv"):
        threads = [threading.Thread(target=check) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    said = [r.getMessage() for r in caplog.records if "PYNQ_CV_BAKCEND" in r.getMessage()]
    assert len(said) == 1, said
