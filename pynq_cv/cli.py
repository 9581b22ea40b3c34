"""``pynq-cv``: the command line -- demo, info, resize, verify, bench.

    pynq-cv demo                      a short clip through the patched cv2.resize, then telemetry
    pynq-cv info                      backend and why, overlay, bitstream, envelope, versions
    pynq-cv resize IN OUT --size WxH  one image file through pynq_cv.resize
    pynq-cv verify                    PL output against the IP's exact arithmetic and cv2
    pynq-cv bench [--short]           the benchmarks of a source checkout

The library never prints; this module does. A user's mistake (a missing file, a bad size, an
unknown backend) is one line on stderr starting with ``pynq-cv: error:`` and a non-zero exit
code, never a traceback. The synthetic clip helpers (``synthetic_frame``,
``write_synthetic_clip``) are shared with the examples.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import pynq_cv
from pynq_cv.backends.board import BITSTREAM_ENV, board_name, find_bitstream
from pynq_cv.backends.select import requested_backend
from pynq_cv.errors import BackendUnavailable

PROG = "pynq-cv"

INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}


class CliError(Exception):
    """A user's mistake or an unusable environment: one line on stderr, exit ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``pynq-cv: error:`` line and no exit()."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')", 2)


# -- small parsers -----------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``"960x540"`` -> ``(960, 540)`` (width, height, both >= 1)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 960x540"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: both sides must be at least 1")
    return width, height


def parse_size_pair(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``"1920x1080:960x540"`` -> input and output sizes (each width, height)."""
    left, sep, right = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"bad size pair {text!r}: expected IN:OUT, e.g. 1920x1080:960x540"
        )
    return parse_size(left), parse_size(right)


def parse_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad scale {text!r}: expected a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"bad scale {text!r}: must be a positive number")
    return value


def parse_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad count {text!r}: expected an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"bad count {text!r}: must be at least 1")
    return value


def _wh(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def _describe_array(img: np.ndarray) -> str:
    channels = img.shape[2] if img.ndim == 3 else 1
    return f"{_wh(img.shape)}, {channels} channel{'s' if channels != 1 else ''} {img.dtype}"


# -- the synthetic clip (shared with examples/) ------------------------------------------------


@lru_cache(maxsize=4)
def _backdrop(width: int, height: int) -> np.ndarray:
    """Gradients twice as wide as the frame: a frame is a window that scrolls along it."""
    x = np.arange(2 * width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    blue = (x * (255.0 / width)) % 256.0 + 0.0 * y
    green = (y * (255.0 / max(height - 1, 1))) + 0.0 * x
    red = 127.5 + 127.5 * np.sin(x * (6.2832 / width) * 3) * np.cos(y * (6.2832 / height) * 2)
    out = np.stack([blue, green, red], axis=2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    out.flags.writeable = False
    return out


def synthetic_frame(index: int, width: int = 1920, height: int = 1080) -> np.ndarray:
    """Frame ``index`` of a deterministic clip: scrolling gradients, moving shapes, a counter.

    Fresh BGR uint8 ``height x width x 3`` array; the same index gives the same pixels."""
    offset = (index * max(width // 120, 1)) % width
    frame = np.ascontiguousarray(_backdrop(width, height)[:, offset : offset + width])
    s = min(width, height)
    t = index / 30.0
    center = (
        int(width / 2 + width * 0.35 * np.cos(t * 1.3)),
        int(height / 2 + height * 0.35 * np.sin(t * 2.1)),
    )
    cv2.circle(frame, center, max(s // 8, 2), (40, 220, 255), -1, cv2.LINE_AA)
    side = max(s // 6, 2)
    x0 = int((index * max(width // 90, 1)) % max(width - side, 1))
    y0 = height - side - max(s // 20, 1)
    cv2.rectangle(frame, (x0, max(y0, 0)), (x0 + side, max(y0, 0) + side), (255, 60, 60), -1)
    # a small checkerboard patch: sharp edges show interpolation differences
    cell = max(s // 40, 1)
    board = (np.indices((8 * cell, 8 * cell)).sum(axis=0) // cell) % 2
    patch = (board * 255).astype(np.uint8)[:, :, None]
    py, px = max(s // 20, 0), max(s // 20, 0)
    h_fit, w_fit = min(patch.shape[0], height - py), min(patch.shape[1], width - px)
    if h_fit > 0 and w_fit > 0:
        frame[py : py + h_fit, px : px + w_fit] = patch[:h_fit, :w_fit]
    if s >= 60:
        scale = s / 540.0
        cv2.putText(
            frame, f"pynq_cv {index:05d}", (px, py + 8 * cell + int(50 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (255, 255, 255), max(int(2 * scale), 1),
            cv2.LINE_AA,
        )
    return frame


def synthetic_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    for index in range(count):
        yield synthetic_frame(index, width, height)


def write_synthetic_clip(
    path: str | os.PathLike[str], frames: int, width: int, height: int, fps: float = 30.0
) -> Path:
    """Write the synthetic clip as a Motion-JPEG ``.avi`` (OpenCV's built-in writer)."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cv2.VideoWriter cannot write {path} (MJPG)")
    try:
        for frame in synthetic_frames(frames, width, height):
            writer.write(frame)
    finally:
        writer.release()
    return path


def open_capture(source: str) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a file path or a camera index ("0", "1", ...)."""
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise CliError(f"cannot open camera {source}")
        return cap
    if not Path(source).is_file():
        raise CliError(f"no such file: {source}")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise CliError(f"cannot open {source} as a video")
    return cap


def captured_frames(cap: cv2.VideoCapture, count: int) -> Iterator[np.ndarray]:
    for _ in range(count):
        ok, frame = cap.read()
        if not ok:
            return
        yield frame


# -- the engine --------------------------------------------------------------------------------


def _backend_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    board = board_name(getattr(args, "board", None))
    if board:
        options["board"] = board
    if getattr(args, "bitstream", None):
        options["bitstream"] = args.bitstream
    return options


def _checked_backend(args: argparse.Namespace) -> str | None:
    """The backend asked for, validated now so a typo is an error, not a silent CPU run."""
    try:
        requested_backend(args.backend)
    except BackendUnavailable as exc:
        raise CliError(str(exc)) from None
    return args.backend


def _open(resizer: pynq_cv.Resizer) -> pynq_cv.Resizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the error below says it once
        try:
            return resizer.open()
        except BackendUnavailable as exc:
            raise CliError(str(exc), 1) from None


def shared_engine(args: argparse.Namespace) -> pynq_cv.Resizer:
    """The shared engine (what the patched cv2.resize uses) on the requested backend, open."""
    backend = _checked_backend(args)
    return _open(pynq_cv.use_backend(backend, **_backend_options(args)))


def own_engine(args: argparse.Namespace) -> pynq_cv.Resizer:
    backend = _checked_backend(args)
    return _open(pynq_cv.Resizer(backend, **_backend_options(args)))


def _where(info: dict[str, Any]) -> str:
    if "overlay" not in info:
        return f"{info['backend']} backend: every frame runs cv2.resize"
    return f"{info['backend']} backend, {info['board']} ({info['overlay']}, {info['build']} build)"


def _path_taken(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """None if the frame between two stats snapshots ran on the PL, else the fallback reason."""
    if after["pl"] > before["pl"]:
        return None
    grew = [
        reason for reason, n in after["fallback"].items() if n > before["fallback"].get(reason, 0)
    ]
    return ", ".join(grew) or "unknown"


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


# -- demo --------------------------------------------------------------------------------------


def _demo_frames(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], str, Any]:
    """The demo's frames, what they are, and the capture to release (or None)."""
    if args.source is None:
        in_w, in_h = args.input_size
        return synthetic_frames(args.frames, in_w, in_h), f"synthetic {in_w}x{in_h} clip", None
    cap = open_capture(args.source)
    ok, first = cap.read()
    if not ok:
        cap.release()
        raise CliError(f"no frames could be read from {args.source}", 1)
    return itertools.chain([first], captured_frames(cap, args.frames - 1)), args.source, cap


def _video_writer(path: str, size: tuple[int, int]) -> Any:
    if not Path(path).resolve().parent.is_dir():
        raise CliError(f"no such directory: {Path(path).parent}")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    if not writer.isOpened():
        raise CliError(f"cannot write {path} (Motion-JPEG; use .avi)")
    return writer


def cmd_demo(args: argparse.Namespace) -> int:
    out_w, out_h = args.size
    engine = shared_engine(args)
    info = engine.info()
    writer = _video_writer(args.output, (out_w, out_h)) if args.output else None
    try:
        frames, what, cap = _demo_frames(args)
    except CliError:
        if writer is not None:
            writer.release()
        raise
    print(f"{PROG} demo: {args.frames} frames of {what} -> {out_w}x{out_h} through cv2.resize")
    print(f"  on the {_where(info)}")
    print(f"  ({info['why']})")
    pynq_cv.reset_stats()
    side = max(args.frames // 4, 1)
    tty = sys.stderr.isatty()
    resize_seconds = 0.0
    done = 0
    pynq_cv.patch()
    started = time.perf_counter()
    try:
        for index, frame in enumerate(frames):
            t0 = time.perf_counter()
            small = cv2.resize(frame, (out_w, out_h))
            resize_seconds += time.perf_counter() - t0
            if writer is not None:
                writer.write(small)
            done += 1
            if index % side == 0:
                # frames the PL does not take, so that the fallback reasons show
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                cv2.resize(gray, (out_w, out_h))  # one channel
                cv2.resize(frame, (out_w // 4, out_h // 4), interpolation=cv2.INTER_AREA)
                cv2.resize(frame, (321, 241))  # 321 * 241 * 3 bytes: not a multiple of 4
            if tty:
                print(f"\r  frame {done}/{args.frames}", end="", file=sys.stderr, flush=True)
            elif done % side == 0 or done == args.frames:
                print(f"  frame {done}/{args.frames}", file=sys.stderr, flush=True)
    finally:
        wall = time.perf_counter() - started
        pynq_cv.unpatch()
        if cap is not None:
            cap.release()
        if writer is not None:
            writer.release()
        if tty:
            print(file=sys.stderr)
    stats = pynq_cv.stats()
    calls = stats["pl"] + stats["cpu"]
    print()
    print(f"cv2.resize calls     {calls}: {stats['pl']} on the PL, {stats['cpu']} on the CPU")
    print(f"fallback reasons     {_counts(stats['fallback'])}")
    print(f"faults               {_counts(stats['faults'])}")
    print(f"wall time            {wall:.2f} s for {done} frames: {done / wall:.1f} fps "
          "(making the frames included)")
    print(f"inside cv2.resize    {resize_seconds:.2f} s: "
          f"{resize_seconds / done * 1e3:.2f} ms per frame")
    if stats["pl"]:
        board = stats["board_seconds"]
        print(f"modelled board time  {board:.3f} s on the PL: "
              f"{board / stats['pl'] * 1e3:.2f} ms per frame, {stats['pl'] / board:.1f} fps "
              "(the IP's cycle model at its clock)")
        if info["backend"] == "emulator":
            print("                     (the emulator runs as fast as this host allows; "
                  "a board takes the modelled time)")
        print(f"copies               in {stats['copies_in']}, out {stats['copies_out']}, "
              f"{stats['bytes_moved'] / 1e6:.1f} MB moved through the DMA")
    if writer is not None:
        print(f"wrote                {args.output}")
    pynq_cv.close()
    return 0


# -- info --------------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    return {
        "pynq_cv": pynq_cv.__version__,
        "pynq": _version("pynq"),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "python": f"{platform.python_version()} ({platform.machine()})",
    }


def cmd_info(args: argparse.Namespace) -> int:
    backend = _checked_backend(args)
    resizer = pynq_cv.use_backend(backend, **_backend_options(args))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unusable backend shows in "why"
        info = resizer.info()
    found, how = find_bitstream(getattr(args, "bitstream", None))
    report = dict(info)
    report["bitstream_search"] = {"path": str(found) if found else None, "how": how}
    report["versions"] = versions()
    pynq_cv.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"backend          {info['backend']}")
    print(f"why              {info['why']}")
    if "overlay" in info:
        print(f"board            {info['board']}")
        print(f"overlay          {info['overlay']} ({info['build']} build)")
        print(f"descriptor       {info['descriptor']}")
        print(f"bitstream        {info['bitstream']} ({info['bitstream_origin']})")
    print(f"bitstream search {found if found else '-'}: {how}")
    if "envelope" in info:
        env = info["envelope"]
        print("envelope (what the PL takes; the rest runs cv2.resize)")
        print(f"  pixels         {env['dtype']} x {env['channels']} channels")
        print(f"  interpolation  {', '.join(env['interpolations'])}")
        print(f"  input          {env['min_in_rows']} rows at least, "
              f"at most {env['max_in']} (rows x cols)")
        print(f"  output         at most {env['max_out']} (rows x cols)")
        down = env["max_downscale"]
        print(f"  downscale      {'not limited' if down is None else f'at most {down}x'}")
        print(f"  bytes          in and out multiples of {env['byte_multiple']}, "
              f"at most {env['max_transfer_bytes']:,} per DMA transfer")
    if "pool" in info:
        pool = info["pool"]
        print(f"pool             budget {pool['budget_bytes'] / 2**20:.0f} MiB, "
              f"{pool['buffers']} buffers live ({pool['live_bytes'] / 2**20:.1f} MiB)")
        print(f"breaker          {info['breaker']}")
    print("versions")
    for name, version in report["versions"].items():
        print(f"  {name:<14} {version}")
    return 0


# -- resize ------------------------------------------------------------------------------------


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
    declined = _path_taken(before, after)
    writer = write_image(Path(args.output), out)
    print(f"{args.input} ({_describe_array(img)}, read with {reader}) -> "
          f"{args.output} ({_wh(out.shape)}, written with {writer})")
    if declined is None:
        board = after["board_seconds"] - before["board_seconds"]
        print(f"path: PL on the {_where(engine.info())}; modelled board time "
              f"{board * 1e3:.2f} ms, host {host * 1e3:.2f} ms")
    else:
        print(f"path: CPU (cv2.resize, {args.interpolation}); the PL declined: {declined}; "
              f"{host * 1e3:.2f} ms")
    pynq_cv.close()
    return 0


# -- verify ------------------------------------------------------------------------------------

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
    diff = cv2.absdiff(a, b)
    pixels = diff.max(axis=2) if diff.ndim == 3 else diff
    return int(pixels.max()), float(np.count_nonzero(pixels)) / pixels.size


def exact_model() -> Any:
    """The IP's exact arithmetic: ``f(src, rows, cols) -> frame`` (pure numpy + cv2)."""
    from pynq_cv.backends.emulator.arith import resize_exact

    return resize_exact


def cmd_verify(args: argparse.Namespace) -> int:
    resize_exact = exact_model()
    pairs = args.sizes or DEFAULT_PAIRS
    engine = own_engine(args)
    failures = pl_frames = faults = 0
    with engine:
        print(f"{PROG} verify on the {_where(engine.info())}")
        print(f"{'pattern':<13}{'input':>10}{'output':>11}  {'path':<24}"
              f"{'vs exact model':>18}{'vs cv2 LINEAR':>18}")
        print(f"{'':<13}{'':>10}{'':>11}  {'':<24}{'max  differing':>18}"
              f"{'max  differing':>18}")
        for (in_w, in_h), (out_w, out_h) in pairs:
            for kind in PATTERNS:
                src = pattern_frame(kind, in_w, in_h)
                before = engine.stats.snapshot()
                got = engine.resize(src, (out_w, out_h))
                declined = _path_taken(before, engine.stats.snapshot())
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
    print()
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


# -- bench -------------------------------------------------------------------------------------


def benchmarks_dir() -> Path:
    """``benchmarks/`` of a source checkout: the one this package runs from (editable
    install), else the current directory's (``pip install .`` then ``pynq-cv bench`` in
    the repo); the benchmarks are not installed with the package."""
    beside = Path(__file__).resolve().parents[1] / "benchmarks"
    here = Path.cwd() / "benchmarks"
    return beside if beside.is_dir() or not here.is_dir() else here


def _load_module(path: Path) -> Any:
    name = f"_pynq_cv_bench_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as aligned columns (keys in order of first appearance)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    if "case" in columns:  # the row's name first
        columns.insert(0, columns.pop(columns.index("case")))
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 0 or not _numeric(v) else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cmd_bench(args: argparse.Namespace) -> int:
    where = Path(args.dir) if args.dir else benchmarks_dir()
    scripts = sorted(where.glob("bench_*.py")) if where.is_dir() else []
    if not scripts:
        raise CliError(
            f"no benchmarks found in {where}: they live in the source repository's "
            "benchmarks/ (pynq_cv installed without its repository?); pass --dir", 2
        )
    by_name = {p.stem.removeprefix("bench_"): p for p in scripts}
    chosen = []
    for name in args.names:
        key = name.removeprefix("bench_").removesuffix(".py")
        if key not in by_name:
            raise CliError(f"no benchmark {name!r}; available: {', '.join(sorted(by_name))}")
        chosen.append(by_name[key])
    failed = 0
    for path in chosen or scripts:
        print(f"== {path.stem} ({'short' if args.short else 'full'})", flush=True)
        started = time.perf_counter()
        try:
            module = _load_module(path)
            if not callable(getattr(module, "run", None)):
                print(f"skipped: {path.name} has no run(short) function\n")
                continue
            rows = module.run(args.short)
        except Exception as exc:  # noqa: BLE001 -- one broken benchmark must not hide the rest
            failed += 1
            last = traceback.extract_tb(exc.__traceback__)[-1]
            print(f"failed: {type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")
            continue
        print(format_table(list(rows)) if rows else "(no rows)")
        print(f"({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 1 if failed else 0


# -- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="cv2.resize on the PYNQ PL resizer (or its emulator): demo and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {pynq_cv.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    engine = _Parser(add_help=False)
    group = engine.add_argument_group("backend")
    group.add_argument("--backend", metavar="NAME",
                       help="board, emulator, cpu or an entry-point backend "
                            "(default: $PYNQ_CV_BACKEND, else the board if found, else the "
                            "emulator)")
    group.add_argument("--board", metavar="NAME",
                       help="board whose overlay descriptor to use, e.g. Pynq-Z2, KV260 "
                            "(default: $PYNQ_CV_BOARD or $BOARD, else Pynq-Z2)")
    group.add_argument("--bitstream", metavar="PATH",
                       help=f"the resizer .bit on a board (default: ${BITSTREAM_ENV}, else "
                            "the installed pynq-helloworld package)")

    demo = sub.add_parser("demo", parents=[engine], help="a short clip through cv2.resize",
                          description="Push a short clip through the patched cv2.resize and "
                                      "print where the frames ran.")
    demo.add_argument("--source", metavar="FILE|CAMERA_INDEX",
                      help="a video file or a camera index (default: a generated clip)")
    demo.add_argument("--frames", type=parse_count, default=120, metavar="N",
                      help="frames to process (default 120)")
    demo.add_argument("--size", type=parse_size, default=(960, 540), metavar="WxH",
                      help="output size (default 960x540)")
    demo.add_argument("--input-size", type=parse_size, default=(1920, 1080), metavar="WxH",
                      help="size of the generated clip (default 1920x1080)")
    demo.add_argument("--output", metavar="FILE.avi",
                      help="also write the resized frames as a Motion-JPEG video")
    demo.set_defaults(run=cmd_demo)

    info = sub.add_parser("info", parents=[engine], help="backend, overlay, envelope, versions",
                          description="What pynq_cv would use here, and why.")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(run=cmd_info)

    rs = sub.add_parser("resize", parents=[engine], help="resize one image file",
                        description="Resize one image file through pynq_cv.resize.")
    rs.add_argument("input", metavar="IN", help="image to read")
    rs.add_argument("output", metavar="OUT", help="image to write (format from the extension)")
    how = rs.add_mutually_exclusive_group(required=True)
    how.add_argument("--size", type=parse_size, metavar="WxH", help="output size")
    how.add_argument("--scale", type=parse_scale, metavar="F", help="scale both sides by F")
    rs.add_argument("--interpolation", choices=sorted(INTERPOLATIONS), default="linear",
                    help="default linear (the only one the PL takes)")
    rs.set_defaults(run=cmd_resize)

    verify = sub.add_parser("verify", parents=[engine],
                            help="check the PL against the IP's exact arithmetic",
                            description="Resize test patterns on the PL path and compare with "
                                        "the IP's exact arithmetic (must be equal) and with "
                                        "cv2's INTER_LINEAR. Exit 1 if any PL frame differs.")
    verify.add_argument("--sizes", type=parse_size_pair, nargs="+", metavar="IN:OUT",
                        help="size pairs as WxH:WxH (default: a mix of down- and upscales)")
    verify.set_defaults(run=cmd_verify)

    bench = sub.add_parser("bench", help="run the benchmarks of a source checkout",
                           description="Run benchmarks/bench_*.py (each exposes run(short)).")
    bench.add_argument("names", nargs="*", metavar="NAME",
                       help="benchmarks to run, e.g. pipeline fallback (default: all)")
    bench.add_argument("--short", action="store_true", help="few iterations")
    bench.add_argument("--dir", metavar="PATH", help="where the benchmarks are")
    bench.set_defaults(run=cmd_bench)
    return parser


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                  line: Any = None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args = parser.parse_args(argv)
            if getattr(args, "run", None) is None:
                parser.print_help(sys.stderr)
                return 2
            return args.run(args)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `pynq-cv info | head`: stop quietly, like other tools
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    finally:
        pynq_cv.unpatch()


if __name__ == "__main__":
    sys.exit(main())
