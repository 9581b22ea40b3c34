"""Shared fixtures: every test gets a fresh emulated board unless it asks otherwise."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import warnings

import cv2
import numpy as np
import pytest
from hypothesis import settings

import pynq_cv
from pynq_cv import dispatch

# A suite started in the background (``cmd &`` in a non-interactive shell, nohup) inherits
# SIGINT ignored, and so would every Python it starts: Ctrl-C tests would then time out.
# A Python-level handler is reset to the default at exec, so children get Python's own.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("PYNQ_CV_BACKEND", "emulator")
# Every eligible frame to the PL unless a test asks for a routing policy: the suite checks
# the PL path's values; tests/test_routing.py pins the policies themselves.
os.environ.setdefault("PYNQ_CV_POLICY", "pl")
# No user's calibration file may change a test's plans.
os.environ.setdefault("PYNQ_CV_CALIBRATION", "none")
# Under emulate() the board backend takes the machine's PL lock, as on a board: a suite's
# locks are its own, so two suites on one machine never see each other's "PL in use".
os.environ.setdefault("PYNQ_CV_LOCK_DIR", tempfile.mkdtemp(prefix="pynq_cv-test-locks-"))

# Hypothesis examples per property: 500 in CI, more with PYNQ_CV_HYPOTHESIS_EXAMPLES=N.
EXAMPLES = settings(
    max_examples=int(os.environ.get("PYNQ_CV_HYPOTHESIS_EXAMPLES", "500")), deadline=None
)


@pytest.fixture(autouse=True)
def _restore_cv2_and_default():
    """No test leaks a patched cv2.resize or a shared engine into the next."""
    original = cv2.resize if not pynq_cv.is_patched() else None
    yield
    pynq_cv.unpatch()
    if original is not None:
        assert cv2.resize is original
    if dispatch._default is not None:
        dispatch._default.close()
        dispatch._default = None


@pytest.fixture
def emulated():
    """A Resizer on a fresh emulated Pynq-Z2, closed afterwards."""
    with pynq_cv.Resizer("emulator") as resizer:
        yield resizer


def real_pynq():
    """The installed pynq (its off-board warnings silenced). Without it the test skips --
    except under ``PYNQ_CV_REQUIRE_PYNQ=1`` (CI's pynq environment), where it fails."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # off-board pynq warns about the CPU architecture
        if os.environ.get("PYNQ_CV_REQUIRE_PYNQ"):
            import pynq
        else:
            pynq = pytest.importorskip("pynq")
    return pynq


def frame(rows: int, cols: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (rows, cols, channels), dtype=np.uint8)


class StepClock:
    """A clock that moves ``step`` seconds each time it is read (``t`` may be set)."""

    def __init__(self, step: float = 0.0) -> None:
        self.t = 100.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def host_deadlines(in_hw: tuple[int, int], out_hw: tuple[int, int],
                   clock_hz: int = 100_000_000) -> tuple[pynq_cv.Deadlines, float]:
    """Deadlines for the emulator on this host, and the host's seconds per frame.

    The emulator computes each frame on the host; a slow host (the armv7l and aarch64 CI
    environments run under qemu, 3-6x slower than the board's IP) can take longer than the
    board it models, and a deadline that fits the board then cuts frames short there. The
    factor never goes below the default, so on a fast host this is ``Deadlines()``."""
    import time

    from pynq_cv.arith import resize_exact
    from pynq_cv.timing import frame_seconds

    src = frame(*in_hw)
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        resize_exact(src, *out_hw)
        np.copyto(np.empty_like(src), src)  # the copy in, as a frame makes it
        best = min(best, time.perf_counter() - t0)
    modelled = frame_seconds(*in_hw, *out_hw, clock_hz)
    default = pynq_cv.Deadlines()
    return pynq_cv.Deadlines(factor=max(default.factor, 3 * best / modelled)), best


def bounded(fn, *args, bound: float = 60.0):
    """``fn(*args)`` on a thread: its result, or its exception raised here; fails past
    ``bound`` seconds instead of hanging the suite (a hang, not a speed check)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["out"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"{getattr(fn, '__name__', fn)} hung (> {bound} s)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["out"]
