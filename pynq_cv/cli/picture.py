"""A picture of the difference: PL output | cv2 output | |PL - cv2| amplified, with a legend.

Written by ``pynq-cv verify --save DIR`` and ``pynq-cv resize IN OUT --compare DIFF.png``.
Small outputs are zoomed by an integer factor (each pixel repeated) so the legend fits and
single pixels stay visible; the difference is scaled so the largest one shows near white.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from pynq_cv.watch import difference

LEGEND_ROWS = 44  # two lines of text above the panels
GAP = 8  # columns between panels
MIN_PANEL_WIDTH = 240  # narrower outputs are zoomed to at least this
BACKGROUND = 32


def zoom_for(width: int) -> int:
    """The integer zoom that makes a panel at least ``MIN_PANEL_WIDTH`` wide."""
    return max(1, math.ceil(MIN_PANEL_WIDTH / max(width, 1)))


def amplification(max_diff: int) -> int:
    """The factor that maps the largest difference to 255 or just below (1 when equal)."""
    return max(1, 255 // max(max_diff, 1))


def _as_bgr8(img: np.ndarray) -> np.ndarray:
    """Something to look at: 3-channel uint8 (gray repeated, alpha dropped, depth scaled)."""
    if img.dtype != np.uint8:
        top = float(np.max(img)) if img.size else 0.0
        img = np.clip(img.astype(np.float64) * (255.0 / top if top > 0 else 1.0), 0, 255)
        img = img.astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img[:, :, :3])


def difference_picture(pl: np.ndarray, ref: np.ndarray, pl_title: str = "PL (pynq_cv)",
                       ref_title: str = "cv2.resize INTER_LINEAR") -> np.ndarray:
    """The side-by-side BGR picture of ``pl`` and ``ref`` (same shape) and their difference."""
    if pl.shape != ref.shape or pl.dtype != ref.dtype:
        raise ValueError(f"cannot compare {pl.shape} {pl.dtype} with {ref.shape} {ref.dtype}")
    diff = cv2.absdiff(pl, ref)
    max_diff, differing, pixels = difference(pl, ref)
    share = differing / max(pixels, 1)
    amp = amplification(max_diff)
    amplified = np.clip(diff.astype(np.int64) * amp, 0, 255).astype(np.uint8)

    rows, cols = pl.shape[:2]
    zoom = zoom_for(cols)
    height, width = rows * zoom, cols * zoom
    canvas = np.full((LEGEND_ROWS + height, 3 * width + 2 * GAP, 3), BACKGROUND, np.uint8)
    zoomed = f", zoom x{zoom}" if zoom > 1 else ""
    panels = [
        (_as_bgr8(pl), pl_title, f"{cols}x{rows}{zoomed}"),
        (_as_bgr8(ref), ref_title, f"{cols}x{rows}{zoomed}"),
        (_as_bgr8(amplified) if pl.dtype == np.uint8 else _as_bgr8(diff),
         f"|PL - cv2| x{amp}", f"max diff {max_diff}, {share:.1%} of pixels"),
    ]
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for i, (image, title, detail) in enumerate(panels):
        left = i * (width + GAP)
        canvas[LEGEND_ROWS:, left:left + width] = np.repeat(np.repeat(image, zoom, 0), zoom, 1)
        cv2.putText(canvas, title, (left + 4, 17), font, size, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.putText(canvas, detail, (left + 4, 37), font, size, (200, 200, 200), 1, cv2.LINE_AA)
    return canvas


def write_picture(path: Path, picture: np.ndarray) -> None:
    """Write a PNG (cv2's writer); ``OSError`` if it cannot be written."""
    if not cv2.imwrite(str(path), picture):
        raise OSError(f"cannot write {path}")
