"""A picture of the difference: PL output | cv2 output | |PL - cv2| amplified, with a legend.

Written by ``pynq-cv verify --save DIR`` and ``pynq-cv resize IN OUT --compare DIFF.png``.
Pictures fit their content: small outputs are zoomed by an integer factor (nearest
neighbour: each pixel repeated, so single pixels stay visible) until a panel is at least
``MIN_PANEL_WIDTH`` x ``MIN_PANEL_HEIGHT``; a panel that would exceed ``MAX_PANEL`` shows a
crop at that zoom around the largest difference, and below it the whole at a reduced scale.
The legend says which. The difference is scaled so the largest one shows near white.
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
MIN_PANEL_HEIGHT = 96  # and lower ones to at least this (a 4-row output is not a strip)
MAX_PANEL = (640, 480)  # (width, height): larger panels show a crop and the whole, reduced
LABEL_ROWS = 20  # between the crop and the whole
BACKGROUND = 32


def zoom_for(width: int, height: int = 0) -> int:
    """The integer zoom that makes a panel at least ``MIN_PANEL_WIDTH`` wide and (given the
    height) ``MIN_PANEL_HEIGHT`` high."""
    zoom = math.ceil(MIN_PANEL_WIDTH / max(width, 1))
    if height:
        zoom = max(zoom, math.ceil(MIN_PANEL_HEIGHT / max(height, 1)))
    return max(1, zoom)


def fits(width: int, height: int, zoom: int) -> bool:
    return width * zoom <= MAX_PANEL[0] and height * zoom <= MAX_PANEL[1]


def _enlarge(image: np.ndarray, zoom: int) -> np.ndarray:
    return np.repeat(np.repeat(image, zoom, 0), zoom, 1) if zoom > 1 else image


def _crop_window(per_pixel: np.ndarray, zoom: int) -> tuple[int, int, int, int]:
    """(top, left, rows, cols) of the source shown at ``zoom``, around the largest difference."""
    rows, cols = per_pixel.shape
    win_r, win_c = min(rows, MAX_PANEL[1] // zoom), min(cols, MAX_PANEL[0] // zoom)
    r, c = np.unravel_index(int(np.argmax(per_pixel)), per_pixel.shape)
    top = int(min(max(r - win_r // 2, 0), rows - win_r))
    left = int(min(max(c - win_c // 2, 0), cols - win_c))
    return top, left, win_r, win_c


def _reduced(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The whole image scaled to fit ``MAX_PANEL`` (integer zoom when it can grow)."""
    rows, cols = image.shape[:2]
    scale = min(MAX_PANEL[0] / cols, MAX_PANEL[1] / rows)
    if scale >= 1:
        zoom = int(scale)
        return _enlarge(image, zoom), float(zoom)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


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
    zoom = zoom_for(cols, rows)
    images = [_as_bgr8(pl), _as_bgr8(ref),
              _as_bgr8(amplified) if pl.dtype == np.uint8 else _as_bgr8(diff)]
    titles = [pl_title, ref_title, f"|PL - cv2| x{amp}"]
    details = [f"{cols}x{rows}", f"{cols}x{rows}", f"max diff {max_diff}, {share:.1%} of pixels"]
    if fits(cols, rows, zoom):
        views = [_enlarge(image, zoom) for image in images]
        if zoom > 1:
            details[:2] = [f"{cols}x{rows}, zoom x{zoom}"] * 2
        label = ""
    else:  # a crop at full zoom, then the whole, reduced: the file stays small
        per_pixel = diff.max(axis=2) if diff.ndim == 3 else diff
        top, left, win_r, win_c = _crop_window(per_pixel, zoom)
        crops = [_enlarge(image[top:top + win_r, left:left + win_c], zoom) for image in images]
        wholes = [_reduced(image) for image in images]
        scale = wholes[0][1]
        details[:2] = [f"{cols}x{rows}: crop {win_c}x{win_r} at x{zoom} from ({left},{top})"] * 2
        label = f"the whole at x{scale:.3g}"
        views = []
        for crop, (whole, _) in zip(crops, wholes, strict=True):
            width = max(crop.shape[1], whole.shape[1])
            view = np.full((crop.shape[0] + LABEL_ROWS + whole.shape[0], width, 3), BACKGROUND,
                           np.uint8)
            view[:crop.shape[0], :crop.shape[1]] = crop
            view[crop.shape[0] + LABEL_ROWS:, :whole.shape[1]] = whole
            views.append(view)
    height = max(v.shape[0] for v in views)
    width = max(v.shape[1] for v in views)
    canvas = np.full((LEGEND_ROWS + height, 3 * width + 2 * GAP, 3), BACKGROUND, np.uint8)
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for i, (view, title, detail) in enumerate(zip(views, titles, details, strict=True)):
        left_px = i * (width + GAP)
        canvas[LEGEND_ROWS:LEGEND_ROWS + view.shape[0], left_px:left_px + view.shape[1]] = view
        cv2.putText(canvas, title, (left_px + 4, 17), font, size, (255, 255, 255), 1,
                    cv2.LINE_AA)
        cv2.putText(canvas, detail, (left_px + 4, 37), font, size, (200, 200, 200), 1,
                    cv2.LINE_AA)
    if label:  # between each crop and its whole (the same rows in every panel)
        crop_rows = crops[0].shape[0]
        for i in range(3):
            cv2.putText(canvas, label, (i * (width + GAP) + 4, LEGEND_ROWS + crop_rows + 15),
                        font, size, (200, 200, 200), 1, cv2.LINE_AA)
    return canvas


def write_picture(path: Path, picture: np.ndarray) -> None:
    """Write a PNG (cv2's writer); ``OSError`` if it cannot be written."""
    if not cv2.imwrite(str(path), picture):
        raise OSError(f"cannot write {path}")
