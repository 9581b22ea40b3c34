"""cv2 parity at the edges: ``cv2.Mat``, warnings as errors, warnings that point at the
caller, reloading the dispatcher while patched, and calls cv2 itself rejects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import cv2
import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.dispatch import CV2_RESIZE

needs_mat = pytest.mark.skipif(not hasattr(cv2, "Mat"), reason="this cv2 has no cv2.Mat")


def cv2_outcome(*args):
    try:
        return CV2_RESIZE(*args)
    except cv2.error as exc:
        return type(exc)


@needs_mat
def test_a_cv2_mat_source_goes_to_cv2_like_cv2_itself(emulated):
    src = cv2.Mat(frame(40, 60))  # wrap_channels=False: cv2 sees a 3-D array
    want = cv2_outcome(src, (30, 20))
    if isinstance(want, type):
        with pytest.raises(want):
            emulated.resize(src, (30, 20))
    else:
        np.testing.assert_array_equal(emulated.resize(src, (30, 20)), want)
    assert emulated.stats.snapshot()["fallback"] == {"cv2_mat": 1}
    wrapped = cv2.Mat(frame(40, 60), wrap_channels=True)  # an image: the PL may take it
    np.testing.assert_array_equal(
        emulated.resize(wrapped, (30, 20)), resize_exact(np.asarray(wrapped), 20, 30)
    )


@needs_mat
def test_a_cv2_mat_dst_goes_to_cv2_which_returns_what_cv2_returns(emulated):
    src = frame(40, 60)
    dst = cv2.Mat(np.zeros((20, 30, 3), np.uint8))
    out = emulated.resize(src, (30, 20), dst)
    want = CV2_RESIZE(src, (30, 20), cv2.Mat(np.zeros((20, 30, 3), np.uint8)))
    assert type(out) is type(want) and (out is dst) == (want is dst)
    np.testing.assert_array_equal(out, want)
    assert emulated.stats.snapshot()["fallback"] == {"cv2_mat": 1}


def test_warnings_as_errors_never_lose_a_frame():
    with pynq_cv.Resizer("emulator") as rz:
        rz.open().engine.board.faults.dma_error()
        src = frame(40, 60)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = rz.resize(src, (30, 20))  # warned (as an error): the frame still comes back
        np.testing.assert_array_equal(out, resize_exact(src, 20, 30))
        assert rz.stats.snapshot()["faults"] == {"dma_error": 1}


def test_a_fallback_warning_points_at_the_callers_line():
    with pynq_cv.Resizer("emulator") as rz:
        pynq_cv.dispatch._default = rz
        rz.open().engine.board.faults.dma_error()
        pynq_cv.patch()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cv2.resize(frame(40, 60), (30, 20))  # the line the warning must point at
        pynq_cv.unpatch()
        pynq_cv.dispatch._default = None
    assert len(caught) == 1 and caught[0].filename == __file__


def test_reloading_the_dispatcher_while_patched_keeps_cv2s_original():
    script = textwrap.dedent(
        """
        import importlib, cv2, numpy as np, pynq_cv
        from pynq_cv import dispatch
        original = cv2.resize
        pynq_cv.patch()
        importlib.reload(dispatch)
        assert dispatch.CV2_RESIZE is original
        gray = np.zeros((40, 60), np.uint8)
        assert cv2.resize(gray, (30, 20)).shape == (20, 30)  # no recursion
        pynq_cv.unpatch()
        assert cv2.resize is original
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYNQ_CV_BACKEND": "emulator"},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


@pytest.mark.parametrize(
    "args, kwargs",
    [((frame(40, 60),), {}), ((frame(40, 60), (30, 20)), {"colour": 1}),
     ((frame(40, 60),) + (None,) * 6, {})],
)
def test_calls_cv2_rejects_are_counted(args, kwargs):
    pynq_cv.use_backend("emulator")
    pynq_cv.reset_stats()
    with pytest.raises((TypeError, cv2.error)):
        pynq_cv.resize(*args, **kwargs)
    assert pynq_cv.stats()["fallback"] == {"arguments_rejected": 1}
