"""Pictures of the difference: three panels (PL, cv2, |PL - cv2| amplified) under a legend."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.cli import main
from pynq_cv.cli.picture import (
    GAP,
    LEGEND_ROWS,
    MAX_PANEL,
    MIN_PANEL_WIDTH,
    amplification,
    difference_picture,
    zoom_for,
)


def panels(picture: np.ndarray, rows: int, cols: int) -> list[np.ndarray]:
    """The three panels, un-zoomed (every zoom-th pixel)."""
    zoom = zoom_for(cols, rows)
    width = cols * zoom
    assert picture.shape == (LEGEND_ROWS + rows * zoom, 3 * width + 2 * GAP, 3)
    body = picture[LEGEND_ROWS:]
    return [body[::zoom, i * (width + GAP):i * (width + GAP) + width:zoom] for i in range(3)]


def test_the_picture_holds_pl_cv2_and_the_amplified_difference():
    rng = np.random.default_rng(3)
    pl = rng.integers(0, 250, (30, 40, 3), dtype=np.uint8)
    ref = pl.copy()
    ref[5, 7, 1] += 3  # one pixel, one channel, differs by 3
    ref[20, 30] += 1
    picture = difference_picture(pl, ref)
    left, middle, right = panels(picture, 30, 40)
    assert np.array_equal(left, pl) and np.array_equal(middle, ref)
    amp = amplification(3)
    assert amp == 85
    expected = np.zeros_like(pl)
    expected[5, 7, 1] = 3 * amp
    expected[20, 30] = amp
    assert np.array_equal(right, expected)
    assert zoom_for(40) * 40 >= MIN_PANEL_WIDTH
    # the gaps are background and the legend has text in it
    assert (picture[LEGEND_ROWS:, zoom_for(40) * 40:zoom_for(40) * 40 + GAP] == 32).all()
    assert (picture[:LEGEND_ROWS] > 150).any()


def test_equal_frames_give_a_black_difference_panel():
    pl = np.full((10, 300, 3), 77, np.uint8)
    pl = np.full((10, 60, 3), 77, np.uint8)
    left, middle, right = panels(difference_picture(pl, pl.copy()), 10, 60)
    assert zoom_for(60, 10) == 10 and not right.any() and (left == 77).all()


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="cannot compare"):
        difference_picture(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


def test_verify_save_writes_one_picture_per_case(tmp_path, capsys):
    out = tmp_path / "pics"
    assert main(["verify", "--sizes", "64x48:32x24", "--save", str(out)]) == 0
    assert "wrote 3 pictures" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{k}-64x48-to-32x24.png" for k in ("checkerboard", "gradient", "noise")]
    from pynq_cv.cli.verify import pattern_frame

    src = pattern_frame("noise", 64, 48)
    left, middle, right = panels(cv2.imread(str(out / names[2])), 24, 32)
    pl = resize_exact(src, 24, 32)  # the PL computes the IP's exact arithmetic
    ref = cv2.resize(src, (32, 24), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(left, pl) and np.array_equal(middle, ref)
    diff = cv2.absdiff(pl, ref)
    amp = amplification(int(diff.max()))
    assert np.array_equal(right, np.clip(diff.astype(int) * amp, 0, 255).astype(np.uint8))


def test_resize_compare_writes_the_picture(tmp_path, capsys):
    src = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in.png"), src)
    diff_png = tmp_path / "diff.png"
    assert main(["resize", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--size",
                 "32x24", "--compare", str(diff_png)]) == 0
    assert f"wrote {diff_png}" in capsys.readouterr().out
    left, middle, right = panels(cv2.imread(str(diff_png)), 24, 32)
    assert np.array_equal(left, resize_exact(src, 24, 32))
    assert np.array_equal(middle, cv2.resize(src, (32, 24)))
    assert right.any()  # the IP truncates where cv2 rounds


def test_resize_compare_into_a_missing_directory_is_one_line(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "in.png"), np.zeros((8, 8, 3), np.uint8))
    assert main(["resize", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--size", "4x4",
                 "--compare", str(tmp_path / "no" / "diff.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynq-cv: error: no such directory") and "\n" not in err


def test_verify_save_onto_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["verify", "--sizes", "64x48:32x24", "--save", str(tmp_path / "taken")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pynq-cv: error: cannot save pictures in") and "\n" not in err


def test_a_few_rows_are_zoomed_so_pixels_show_and_the_zoom_is_in_the_legend(tmp_path):
    """1024x2 -> 512x4 used to give a 4-row strip: now a crop at a zoom, plus the whole."""
    rng = np.random.default_rng(5)
    pl = rng.integers(0, 250, (4, 512, 3), dtype=np.uint8)
    ref = pl.copy()
    ref[2, 300] += 1
    picture = difference_picture(pl, ref)
    zoom = zoom_for(512, 4)
    assert zoom >= 24 and picture.shape[0] >= LEGEND_ROWS + 4 * zoom
    assert picture.shape[1] <= 3 * MAX_PANEL[0] + 2 * GAP
    width = (picture.shape[1] - 2 * GAP) // 3
    crop = picture[LEGEND_ROWS:LEGEND_ROWS + 4 * zoom, 2 * (width + GAP):]
    lit = np.count_nonzero(crop.max(axis=2) == 255)
    assert lit == zoom * zoom  # the one differing pixel, in the crop at full zoom


def test_large_outputs_are_bounded(tmp_path):
    pl = np.random.default_rng(6).integers(0, 250, (1080, 1920, 3), dtype=np.uint8)
    picture = difference_picture(pl, pl.copy())
    assert picture.shape[1] <= 3 * MAX_PANEL[0] + 2 * GAP
    assert picture.shape[0] <= LEGEND_ROWS + 2 * MAX_PANEL[1] + 20
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), picture)
    assert path.stat().st_size < 8e6  # the whole frame alone is ~6 MB of noise
