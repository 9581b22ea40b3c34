"""The frames the PL never takes leave by the flat path: ``Resizer.resize`` and, inlined,
``pynq_cv.resize`` (the patched ``cv2.resize``). Each way counts the same reason as the
full admission (``_plan``) and returns exactly cv2's output."""

from __future__ import annotations

import enum

import cv2
import numpy as np
import pytest

import pynq_cv
from pynq_cv.cv2compat import CV2_RESIZE

RNG = np.random.default_rng(3)
BGR = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
CASES = {  # name: (args, kwargs, the reason)
    "gray": ((BGR[:, :, 0], (16, 12)), {}, "channels"),
    "float32": ((BGR.astype(np.float32), (16, 12)), {}, "dtype"),
    "nearest": ((BGR, (16, 12), None, 0, 0, cv2.INTER_NEAREST), {}, "interpolation"),
    "nearest_kw": ((BGR, (16, 12)), {"interpolation": cv2.INTER_NEAREST}, "interpolation"),
    "four_channels": ((RNG.integers(0, 256, (24, 32, 4), dtype=np.uint8), (16, 12)), {},
                      "channels"),
    "float_gray_nearest": ((BGR[:, :, 0].astype(np.float32), (16, 12), None, 0, 0,
                            cv2.INTER_NEAREST), {}, "channels"),
    "four_channels_float": ((RNG.random((24, 32, 4)).astype(np.float32), (16, 12)), {},
                            "channels"),
}


def _admitted(rz: pynq_cv.Resizer, args, kwargs) -> str:
    """The reason the full admission gives."""
    full = dict(zip(("src", "dsize", "dst", "fx", "fy", "interpolation"), args, strict=False))
    full.update(kwargs)
    return rz._plan(full["src"], full["dsize"], full.get("dst"), full.get("fx", 0),
                    full.get("fy", 0), full.get("interpolation", cv2.INTER_LINEAR))


def _run(way: str, rz: pynq_cv.Resizer, args, kwargs):
    if way == "Resizer.resize":
        return rz.resize(*args, **kwargs)
    if way == "pynq_cv.resize":
        return pynq_cv.resize(*args, **kwargs)
    with pynq_cv.patched():
        return cv2.resize(*args, **kwargs)


@pytest.mark.parametrize("way", ["Resizer.resize", "pynq_cv.resize", "patched cv2.resize"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_way_counts_the_admissions_reason_and_returns_cv2s_frame(case, way):
    args, kwargs, reason = CASES[case]
    rz = pynq_cv.use_backend("emulator")
    rz.open()
    assert _admitted(rz, args, kwargs) == reason
    rz.stats.reset()
    out = _run(way, rz, args, kwargs)
    np.testing.assert_array_equal(out, CV2_RESIZE(*args, **kwargs))
    snap = rz.stats.snapshot()
    assert snap["cpu"] == 1 and snap["pl"] == 0, snap
    assert snap["fallback"] == {reason: 1}, snap


@pytest.mark.parametrize("way", ["Resizer.resize", "pynq_cv.resize", "patched cv2.resize"])
def test_the_cpu_backend_and_a_closed_engine_go_to_cv2_by_their_reason(way):
    rz = pynq_cv.use_backend("cpu")
    _run(way, rz, (BGR, (16, 12)), {})  # opens: no PL
    rz.stats.reset()
    out = _run(way, rz, (BGR, (16, 12)), {})
    np.testing.assert_array_equal(out, CV2_RESIZE(BGR, (16, 12)))
    assert rz.stats.snapshot()["fallback"] == {"backend_cpu": 1}
    rz = pynq_cv.use_backend("emulator")
    rz.open()
    rz.close()
    rz.stats.reset()
    _run(way, rz, (BGR[:, :, 0], (16, 12)), {})
    assert rz.stats.snapshot()["fallback"] == {"closed": 1}


@pytest.mark.parametrize("way", ["Resizer.resize", "pynq_cv.resize", "patched cv2.resize"])
def test_an_eligible_frame_still_reaches_the_pl_by_each_way(way):
    rz = pynq_cv.use_backend("emulator", policy="pl")
    rz.open()
    _run(way, rz, (BGR, (16, 12)), {})
    _run(way, rz, (BGR, (16, 12)), {"interpolation": cv2.INTER_LINEAR})
    assert rz.stats.snapshot()["pl"] == 2


class _Inter(enum.IntEnum):
    LINEAR = cv2.INTER_LINEAR
    NEAREST = cv2.INTER_NEAREST


@pytest.mark.parametrize("way", ["Resizer.resize", "pynq_cv.resize", "patched cv2.resize"])
def test_an_integer_cv2_reads_as_inter_linear_is_inter_linear_by_each_way(way):
    """cv2 reads numpy integers and IntEnums as ints, and None as the default: so does the
    admission (positional too)."""
    rz = pynq_cv.use_backend("emulator", policy="pl")
    rz.open()
    for value in (np.int32(1), np.int64(1), np.uint8(1), _Inter.LINEAR, None):
        _run(way, rz, (BGR, (16, 12)), {"interpolation": value})
        _run(way, rz, (BGR, (16, 12), None, 0, 0, value), {})
    for value in (np.int32(0), _Inter.NEAREST):
        out = _run(way, rz, (BGR, (16, 12)), {"interpolation": value})
        np.testing.assert_array_equal(out, CV2_RESIZE(BGR, (16, 12), interpolation=0))
    snap = rz.stats.snapshot()
    assert snap["pl"] == 10 and snap["fallback"] == {"interpolation": 2}, snap
    with pytest.raises(cv2.error):  # a bool is no integer to cv2, nor to us
        _run(way, rz, (BGR, (16, 12)), {"interpolation": True})
