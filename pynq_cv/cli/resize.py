"""``pynq-cv resize``: one image file through pynq_cv.resize, and which path it took."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

import pynq_cv
from pynq_cv.cli.common import (
    INTERPOLATIONS,
    CliError,
    describe_array,
    describe_engine,
    path_taken,
    shared_engine,
    wxh,
)


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """An image file as cv2 would hold it (BGR / BGRA / gray), and which reader read it."""
    if not path.is_file():
        raise CliError(f"no such file: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is not None:
        return img, "cv2"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            pil.load()
            if pil.mode not in ("RGB", "RGBA", "L", "I;16", "I", "F"):
                alpha = "A" in pil.getbands() or "transparency" in pil.info
                pil = pil.convert("RGBA" if alpha else "RGB")
            arr = np.array(pil)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} as an image: {exc}", 1) from None
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    return np.ascontiguousarray(arr), "Pillow"


def write_image(path: Path, img: np.ndarray) -> str:
    """Write with cv2, or with Pillow for the formats cv2 lacks; returns the writer's name."""
    if not path.parent.is_dir():
        raise CliError(f"no such directory: {path.parent}")
    try:
        if cv2.imwrite(str(path), img):
            return "cv2"
    except cv2.error:
        pass  # no cv2 writer for this extension: try Pillow
    from PIL import Image

    arr = img
    if img.ndim == 3 and img.shape[2] == 3:
        arr = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        arr = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    try:
        Image.fromarray(arr).save(path)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        raise CliError(f"cannot write {path}: {exc}", 1) from None
    return "Pillow"


def cmd_resize(args: argparse.Namespace) -> int:
    img, reader = read_image(Path(args.input))
    engine = shared_engine(args)
    interp = INTERPOLATIONS[args.interpolation]
    before = engine.stats.snapshot()
    t0 = time.perf_counter()
    try:
        if args.size is not None:
            out = pynq_cv.resize(img, args.size, interpolation=interp)
        else:
            out = pynq_cv.resize(img, None, fx=args.scale, fy=args.scale, interpolation=interp)
    except cv2.error as exc:
        message = str(exc).strip().splitlines()[-1]
        raise CliError(f"cv2.resize refused {args.input}: {message}", 1) from None
    host = time.perf_counter() - t0
    after = engine.stats.snapshot()
    declined = path_taken(before, after)
    writer = write_image(Path(args.output), out)
    print(f"{args.input} ({describe_array(img)}, read with {reader}) -> "
          f"{args.output} ({wxh(out.shape)}, written with {writer})")
    if declined is None:
        board = after["board_seconds"] - before["board_seconds"]
        print(f"path: PL on the {describe_engine(engine.info())}; modelled board time "
              f"{board * 1e3:.2f} ms, host {host * 1e3:.2f} ms")
    else:
        print(f"path: CPU (cv2.resize, {args.interpolation}); the PL declined: {declined}; "
              f"{host * 1e3:.2f} ms")
    pynq_cv.close()
    return 0
