"""Around each routing decision, when asked: DEBUG lines, strict mode, compare mode, observer.

An engine with none of these on never enters this module: its whole cost is one check per
call (``Resizer.watching is None`` and ``logger.isEnabledFor(DEBUG)``).

- strict (``PYNQ_CV_STRICT=1`` or ``Resizer(strict=True)``): a uint8 H x W x 3 frame that
  would fall back raises ``FallbackError`` with the reason instead of running on the CPU
  (not when the routing policy chose cv2 for a frame the PL could take: that is a plan);
- compare (``PYNQ_CV_COMPARE=1`` or ``Resizer(compare=True)``): every PL frame is also
  computed by cv2, and the difference is counted in ``stats()["compare"]`` and logged;
- the frame observer (``telemetry.observe``): the per-call-site profile's feed.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from . import cv2compat, telemetry
from .cv2compat import CV2_RESIZE  # the original cv2.resize, never a patch
from .errors import FallbackError
from .log import logger
from .reasons import POLICY_REASONS, explain
from .settings import env_flag

__all__ = ["COMPARE_ENV", "LOG_ONLY", "STRICT_ENV", "Watch", "env_flag"]

STRICT_ENV = "PYNQ_CV_STRICT"
COMPARE_ENV = "PYNQ_CV_COMPARE"

_DEBUG = logging.DEBUG


def expected_on_pl(src: Any) -> bool:
    """The frames strict mode vouches for: uint8 H x W x 3 arrays (the PL's pixel type)."""
    return (
        isinstance(src, np.ndarray) and src.ndim == 3 and src.shape[2] == 3
        and src.dtype == np.uint8
    )


def _shape(src: Any) -> str:
    if not isinstance(src, np.ndarray):
        return type(src).__name__
    return f"{'x'.join(map(str, src.shape))} {src.dtype}"


def _out_size(src: Any, dsize: Any, fx: Any, fy: Any) -> tuple[int, int] | None:
    shape = getattr(src, "shape", None)
    if shape is None:
        return None
    try:
        return cv2compat.output_size(tuple(shape), dsize, fx, fy)
    except (TypeError, ValueError, OverflowError):
        return None


def _arrow(out: tuple[int, int] | None) -> str:
    return "?" if out is None else f"{out[0]}x{out[1]}"


def difference(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """(largest absolute difference, pixels with any channel differing, pixels): compare
    mode's figures, and ``pynq-cv verify``'s and the pictures'."""
    diff = cv2.absdiff(a, b)
    per_pixel = diff.max(axis=2) if diff.ndim == 3 else diff
    return int(per_pixel.max(initial=0)), int(np.count_nonzero(per_pixel)), per_pixel.size


class Watch:
    """The switched-on modes of one engine."""

    def __init__(self, strict: bool = False, compare: bool = False) -> None:
        self.strict = strict
        self.compare = compare

    def fallback(self, resizer: Any, src: Any, dsize: Any, fx: Any, fy: Any,
                 reason: str) -> None:
        """A frame is about to run on the CPU: report it, log it; strict mode refuses it."""
        observer = telemetry.frame_observer
        if observer is not None:
            observer(reason, 0.0, 0)
        debug = logger.isEnabledFor(_DEBUG)
        strict = self.strict and reason not in POLICY_REASONS and expected_on_pl(src)
        if not (debug or strict):
            return
        out = _out_size(src, dsize, fx, fy)
        engine = resizer.engine
        words = explain(reason, src, out, engine.envelope if engine is not None else None)
        if debug:
            logger.debug("resize %s -> %s: CPU, %s (%s)", _shape(src), _arrow(out), reason, words)
        if strict:
            raise FallbackError(
                reason, f"strict mode: a {_shape(src)} frame -> {_arrow(out)} would run on "
                        f"the CPU: {reason} ({words})"
            )

    def on_pl(self, resizer: Any, args: tuple[Any, ...], result: np.ndarray,
              board_seconds: float, nbytes: int) -> None:
        """A frame ran on the PL: compare it with cv2 if asked, report it, log it.
        ``board_seconds``: the whole PL path (IP, copies, cache maintenance, registers)."""
        src, dsize, _dst, fx, fy, interpolation = args
        compared = ""
        figures = None
        if self.compare:
            ref = CV2_RESIZE(src, dsize, None, fx, fy, interpolation)
            figures = difference(result, ref)
            max_diff, differing, pixels = figures
            resizer.stats.count_compare(max_diff, differing, pixels)
            compared = f"; vs cv2: max diff {max_diff}, {differing / pixels:.2%} of pixels differ"
        observer = telemetry.frame_observer
        if observer is not None:
            if figures is None:
                observer(None, board_seconds, nbytes)
            else:
                observer(None, board_seconds, nbytes, figures)
        if logger.isEnabledFor(_DEBUG):
            logger.debug("resize %s -> %s: PL, modelled board time %.3f ms%s", _shape(src),
                         "x".join(map(str, result.shape[:2])), board_seconds * 1e3, compared)


LOG_ONLY = Watch()  # what an engine with no mode on uses while DEBUG logging is enabled
