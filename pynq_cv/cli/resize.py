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
    check_readable,
    check_writable,
    describe_array,
    describe_engine,
    own_engine,
    path_taken,
    shared_engine,
    wxh,
)
from pynq_cv.cli.picture import difference_picture, write_picture
from pynq_cv.opencv_log import opencv_quiet
from pynq_cv.reasons import POLICY_REASONS, describe, hint
from pynq_cv.timing import frame_seconds

EXIF_ORIENTATION = 0x0112
# EXIF orientation -> what turns the stored pixels upright (as cv2.imread and viewers show them)
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}

# the formats that keep more than 8 bits per channel when cv2 or Pillow writes them
KEEPS_DEPTH = {
    np.dtype(np.uint16): {".png", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".pxm", ".jp2"},
    np.dtype(np.float32): {".tif", ".tiff", ".exr", ".hdr", ".pfm"},
}


def exif_orientation(path: Path) -> int:
    """The file's EXIF orientation (1: upright; 1 also when there is none or it is unreadable)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            value = pil.getexif().get(EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as stored -> pixels as shown, like ``cv2.imread`` (which reads EXIF orientation
    unless asked for IMREAD_UNCHANGED, which this reader needs for alpha and 16 bits)."""
    turn = _UPRIGHT.get(orientation)
    return img if turn is None else np.ascontiguousarray(turn(img))


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """An image file as cv2 would hold it (BGR / BGRA / gray, upright), and which reader read it."""
    check_readable(path, "an image")
    with opencv_quiet():
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is not None:
        return upright(img, exif_orientation(path)), "cv2"
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as pil:
            pil = ImageOps.exif_transpose(pil)
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
    check_writable(path, "out.png")
    check_depth_kept(path, img.dtype)
    try:
        with opencv_quiet():
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


def check_depth_kept(path: Path, dtype: np.dtype) -> None:
    """Refuse a write that would squeeze 16-bit or float pixels into 8 bits (saturating them:
    a 16-bit gradient comes out nearly all white in a JPEG)."""
    if dtype == np.uint8:
        return
    keepers = KEEPS_DEPTH.get(np.dtype(dtype), set())
    if path.suffix.lower() not in keepers:
        bits = f"{np.dtype(dtype).itemsize * 8}-bit {np.dtype(dtype).name}"
        hint = f"write {' or '.join(sorted(keepers)[:3])} to keep them" if keepers else \
            "convert it to 8 bits first"
        raise CliError(f"{path.name} would lose depth: the image has {bits} pixels and "
                       f"{path.suffix or 'this format'} stores 8 bits; {hint}", 1)


def cmd_resize(args: argparse.Namespace) -> int:
    img, reader = read_image(Path(args.input))
    check_writable(Path(args.output), "out.png")
    if getattr(args, "compare", None) is not None:
        check_writable(Path(args.compare), "diff.png")
    check_depth_kept(Path(args.output), img.dtype)
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
        rows, cols = img.shape[:2]
        ip = frame_seconds(rows, cols, *out.shape[:2], engine.engine.descriptor.clock_hz) \
            if engine.engine is not None else 0.0
        print(f"path: PL on the {describe_engine(engine.info())}; modelled board time "
              f"{board * 1e3:.2f} ms (the IP {ip * 1e3:.2f} ms; the rest copies, cache "
              f"maintenance, registers), host {host * 1e3:.2f} ms")
    else:
        print(f"path: CPU (cv2.resize, {args.interpolation}), {_why_cpu(declined)}; "
              f"{host * 1e3:.2f} ms")
    if getattr(args, "compare", None) is not None:
        pl_out = out
        if declined in POLICY_REASONS:  # a plan, not a limit: the PL can compute it anyway
            pl_out = _pl_frame(img, args, interp)
        if declined is not None and pl_out is out:
            print(f"no PL frame to compare: {_why_cpu(declined)}; {hint(declined)}; "
                  f"{args.compare} not written")
        else:
            _write_comparison(Path(args.compare), img, pl_out, args, interp, declined)
    pynq_cv.close()
    return 0


def _why_cpu(reason: str) -> str:
    """A plan's choice reads as one; a limit of the PL as one (never as a failure)."""
    if reason in POLICY_REASONS:
        return f"as the routing plan chose ({reason}: {describe(reason)})"
    return f"the PL does not take this frame ({reason}: {describe(reason)})"


def _pl_frame(img: np.ndarray, args: argparse.Namespace, interp: int) -> np.ndarray:
    """The frame the PL computes under policy pl, on the same backend and board."""
    with own_engine(args, policy="pl") as engine:
        if args.size is not None:
            return engine.resize(img, args.size, interpolation=interp)
        return engine.resize(img, None, fx=args.scale, fy=args.scale, interpolation=interp)


def _write_comparison(path: Path, img: np.ndarray, out: np.ndarray, args: argparse.Namespace,
                      interp: int, declined: str | None) -> None:
    """``--compare``: this result next to cv2's for the same arguments, and the difference."""
    from pynq_cv.cv2compat import CV2_RESIZE  # the original, even while cv2.resize is patched

    if args.size is not None:
        ref = CV2_RESIZE(img, args.size, interpolation=interp)
    else:
        ref = CV2_RESIZE(img, None, fx=args.scale, fy=args.scale, interpolation=interp)
    title = "PL (pynq_cv)" if declined is None else "PL (policy pl)"
    try:
        with opencv_quiet():
            write_picture(path, difference_picture(out, ref, title,
                                                   f"cv2.resize {args.interpolation}"))
    except OSError as exc:
        raise CliError(str(exc), 1) from None
    how = "" if declined is None else " (the PL's frame computed with policy pl: this run's " \
                                      "plan chose cv2)"
    print(f"wrote {path}: PL | cv2 | difference{how}")
