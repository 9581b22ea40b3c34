"""``pynq-cv verify``: PL output against the IP's exact arithmetic (must be equal) and cv2."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pynq_cv.cli.common import PROG, CliError, describe_engine, own_engine, path_taken
from pynq_cv.cli.picture import difference_picture, write_picture
from pynq_cv.watch import difference

DEFAULT_PAIRS = [
    ((1920, 1080), (960, 540)),
    ((1920, 1080), (1280, 720)),
    ((640, 360), (320, 180)),
    ((1280, 720), (1920, 1080)),
    ((800, 600), (300, 200)),
    ((64, 48), (640, 480)),
    ((1024, 2), (512, 4)),
]


def pattern_frame(kind: str, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Deterministic BGR test images: "noise", "gradient" or "checkerboard"."""
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    y, x = np.indices((height, width))
    if kind == "gradient":
        b = x * 255 // max(width - 1, 1)
        g = y * 255 // max(height - 1, 1)
        r = (x + y) * 255 // max(width + height - 2, 1)
        return np.stack([b, g, r], axis=2).astype(np.uint8)
    if kind == "checkerboard":
        cell = max(min(width, height) // 16, 1)
        on = ((x // cell + y // cell) % 2).astype(np.uint8)
        return np.stack([on * 255, on * 200 + 20, 235 - on * 230], axis=2).astype(np.uint8)
    raise ValueError(f"unknown test pattern {kind!r}")


PATTERNS = ("noise", "gradient", "checkerboard")


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """Largest absolute difference, and the share of pixels with any channel differing."""
    largest, differing, pixels = difference(a, b)
    return largest, differing / pixels


def exact_model() -> Any:
    """The IP's exact arithmetic: ``f(src, rows, cols) -> frame`` (pure numpy + cv2)."""
    from pynq_cv.arith import resize_exact

    return resize_exact


def picture_dir(path: str | None) -> Path | None:
    """``--save DIR``, created if missing."""
    if path is None:
        return None
    where = Path(path)
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot save pictures in {where}: {exc.strerror or exc}") from None
    return where


def cmd_verify(args: argparse.Namespace) -> int:
    resize_exact = exact_model()
    pairs = args.sizes or DEFAULT_PAIRS
    save = picture_dir(getattr(args, "save", None))
    saved = 0
    engine = own_engine(args, policy="pl")  # verification: every eligible frame to the PL
    failures = pl_frames = faults = 0
    with engine:
        print(f"{PROG} verify on the {describe_engine(engine.info())}")
        print(f"{'pattern':<13}{'input':>10}{'output':>11}  {'path':<24}"
              f"{'vs exact model':>18}{'vs cv2 LINEAR':>18}")
        print(f"{'':<13}{'':>10}{'':>11}  {'':<24}{'max  differing':>18}"
              f"{'max  differing':>18}")
        for (in_w, in_h), (out_w, out_h) in pairs:
            for kind in PATTERNS:
                src = pattern_frame(kind, in_w, in_h)
                before = engine.stats.snapshot()
                got = engine.resize(src, (out_w, out_h))
                declined = path_taken(before, engine.stats.snapshot())
                path = "PL" if declined is None else f"CPU ({declined})"
                exact = resize_exact(src, out_h, out_w)
                ref = cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
                e_max, e_share = _difference(got, exact)
                c_max, c_share = _difference(got, ref)
                mark = ""
                if path == "PL":
                    pl_frames += 1
                    if e_max:
                        failures += 1
                        mark = "  <- differs"
                elif "fault_" in declined:
                    faults += 1
                    mark = "  <- PL fault"
                print(f"{kind:<13}{f'{in_w}x{in_h}':>10}{f'{out_w}x{out_h}':>11}  {path:<24}"
                      f"{e_max:>6} {e_share:>10.3%}{c_max:>7} {c_share:>10.3%}{mark}")
                if save is not None:
                    name = save / f"{kind}-{in_w}x{in_h}-to-{out_w}x{out_h}.png"
                    title = "PL (pynq_cv)" if path == "PL" else f"pynq_cv: {path}"
                    try:
                        write_picture(name, difference_picture(got, ref, title))
                    except OSError as exc:
                        raise CliError(str(exc), 1) from None
                    saved += 1
    print()
    if save is not None:
        print(f"wrote {saved} pictures (PL | cv2 | difference) to {save}")
    if failures or faults:
        print(f"FAIL: {failures} PL frame(s) differ from the IP's exact arithmetic, "
              f"{faults} fault(s) on the PL path")
        return 1
    if pl_frames == 0:
        print("FAIL: no frame ran on the PL, so nothing was verified")
        return 1
    print(f"OK: all {pl_frames} PL frames equal the IP's exact arithmetic "
          "(and differ from cv2's INTER_LINEAR only by its rounding)")
    return 0
