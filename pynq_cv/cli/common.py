"""What the ``pynq-cv`` commands share: the usage-error type, argument parsers, the synthetic
clip (also used by the examples), and opening the engine the way the user asked."""

from __future__ import annotations

import argparse
import os
import re
import stat
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import pynq_cv
from pynq_cv.backends.board import BOARD_ENV, board_name
from pynq_cv.backends.select import requested_backend
from pynq_cv.descriptors import DescriptorError, descriptor_for
from pynq_cv.errors import BackendUnavailable
from pynq_cv.opencv_log import opencv_quiet

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


class Parser(argparse.ArgumentParser):
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
        raise argparse.ArgumentTypeError(
            f"bad size {text!r}: size must be positive (both sides at least 1)"
        )
    nbytes, memory = width * height * 3, physical_memory()
    if memory and nbytes > memory:  # refused here, not by numpy's traceback (or the OOM killer)
        raise argparse.ArgumentTypeError(
            f"size {text!r} is too large: one BGR frame is {nbytes / 2**30:.1f} GiB and this "
            f"machine has {memory / 2**30:.1f} GiB of memory"
        )
    return width, height


def physical_memory() -> int:
    """This machine's memory in bytes (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


SIZE_OPTIONS = ("--size", "--input-size")
_NEGATIVE_SIZE = re.compile(r"^-\d+\s*[x×X]")


def join_negative_sizes(argv: Sequence[str]) -> list[str]:
    """``--size -5x10`` -> ``--size=-5x10``: argparse takes a leading ``-`` for an option and
    would say "expected one argument"; joined, the size parser says what is wrong."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in SIZE_OPTIONS and _NEGATIVE_SIZE.match(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


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


def wxh(shape: Sequence[int]) -> str:
    return f"{shape[1]}x{shape[0]}"


def describe_array(img: np.ndarray) -> str:
    channels = img.shape[2] if img.ndim == 3 else 1
    return f"{wxh(img.shape)}, {channels} channel{'s' if channels != 1 else ''} {img.dtype}"


# -- the synthetic clip (shared with examples/) ------------------------------------------------


@lru_cache(maxsize=4)
def _backdrop(width: int, height: int) -> np.ndarray:
    """Smooth gradients, periodic in ``width`` and twice as wide as the frame: a frame is a
    window that scrolls along it, with no seam inside and no jump when the scroll wraps."""
    x = np.arange(2 * width, dtype=np.float32)[None, :]
    y = np.arange(height, dtype=np.float32)[:, None]
    turn = x * (2 * np.pi / width)
    blue = 127.5 - 127.5 * np.cos(turn) + 0.0 * y
    green = (y * (255.0 / max(height - 1, 1))) + 0.0 * x
    red = 127.5 + 127.5 * np.sin(turn * 3) * np.cos(y * (2 * np.pi / height) * 2)
    out = np.stack([blue, green, red], axis=2)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
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
    # a small 8 x 8 checkerboard: sharp edges show interpolation differences
    cell = max(s // 40, 1)
    rows, cols = np.indices((8 * cell, 8 * cell)) // cell
    board = (rows + cols) % 2
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


def _strerror(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def check_readable(path: Path, what: str, devices: bool = False) -> None:
    """A path to read: a regular file (or, with ``devices``, a character device such as
    /dev/video0) that exists and this user may read, or one true line."""
    if path.is_dir():
        raise CliError(f"{path} is a directory, not {what}", 1)
    if not path.exists():
        raise CliError(f"no such file: {path}", 1)
    kind = path.stat().st_mode
    if not (stat.S_ISREG(kind) or (devices and stat.S_ISCHR(kind))):
        # a FIFO would block open() until a writer comes: refused without opening it
        what_it_is = "a FIFO" if stat.S_ISFIFO(kind) else "not a regular file"
        raise CliError(f"{path} is {what_it_is}, not {what}", 1)
    try:
        with path.open("rb"):
            pass
    except OSError as exc:  # permission denied, ...
        raise CliError(f"cannot read {path}: {_strerror(exc)}", 1) from None


def check_writable(path: Path, example: str) -> None:
    """A path to write: not a directory, in a directory that exists, and writable by this
    user (tried, so the answer is true for root and for read-only file systems too)."""
    if path.is_dir():
        raise CliError(f"{path} is a directory; name a file in it, e.g. {path / example}", 1)
    if not path.parent.is_dir():
        raise CliError(f"no such directory: {path.parent}", 1)
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as exc:  # permission denied, read-only file system, ...
        raise CliError(f"cannot write {path}: {_strerror(exc)}", 1) from None
    if not existed:
        path.unlink()


def open_capture(source: str) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a file path or a camera index ("0", "1", ...)."""
    if source.isdigit():
        with opencv_quiet():
            cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise CliError(f"cannot open camera {source}", 1)
        return cap
    check_readable(Path(source), "a video file", devices=True)
    with opencv_quiet():
        cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        raise CliError(f"cannot open {source} as a video", 1)
    return cap


def captured_frames(cap: cv2.VideoCapture, count: int) -> Iterator[np.ndarray]:
    for _ in range(count):
        ok, frame = cap.read()
        if not ok:
            return
        yield frame


# -- the engine --------------------------------------------------------------------------------


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    board = board_name(getattr(args, "board", None))
    if board:
        options["board"] = board
    if getattr(args, "bitstream", None):
        options["bitstream"] = args.bitstream
    if getattr(args, "policy", None):
        options["policy"] = args.policy
    return options


def checked_backend(args: argparse.Namespace) -> str | None:
    """The backend asked for, validated now so a typo is an error, not a silent CPU run;
    so is the board asked for (``--board`` or ``PYNQ_CV_BOARD``), in every command alike."""
    try:
        chosen = requested_backend(args.backend)  # without --backend: PYNQ_CV_BACKEND's
    except BackendUnavailable as exc:
        raise CliError(str(exc)) from None
    board = getattr(args, "board", None) or os.environ.get(BOARD_ENV)
    if board:
        try:
            descriptor_for(board)
        except DescriptorError as exc:
            raise CliError(str(exc), 1) from None
    return chosen if args.backend else None


def _open(resizer: pynq_cv.Resizer) -> pynq_cv.Resizer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the error below says it once
        try:
            return resizer.open()
        except BackendUnavailable as exc:
            raise CliError(str(exc), 1) from None


def shared_engine(args: argparse.Namespace) -> pynq_cv.Resizer:
    """The shared engine (what the patched cv2.resize uses) on the requested backend, open."""
    backend = checked_backend(args)
    return _open(pynq_cv.use_backend(backend, **backend_options(args)))


def own_engine(args: argparse.Namespace, **overrides: Any) -> pynq_cv.Resizer:
    backend = checked_backend(args)
    return _open(pynq_cv.Resizer(backend, **{**backend_options(args), **overrides}))


def describe_plans(info: dict[str, Any]) -> list[str]:
    """One line per routing plan: the path, why, and both paths' modelled costs."""
    if "plans" not in info:
        return []
    lines = [f"routing              policy {info['policy']}; costs: {info['costs_from']}"]
    for plan in info["plans"]:
        why = f" ({plan['reason']})" if plan["reason"] else ""
        why += ", uncertain" if plan.get("uncertain") else ""
        kind = "MEASURED on" if plan["basis"] == "measured" else "MODELLED for"
        lines.append(
            f"  {plan['shape']} {plan['mode']}: {plan['path']}{why}, {kind} "
            f"{plan.get('machine') or info['board']}: "
            f"PL {plan['pl_ms']:.1f} ms ({plan['pl_cpu_ms']:.1f} ms CPU), "
            f"cv2 {plan['cv2_ms']:.1f} ms ({plan['cv2_cpu_ms']:.1f} ms CPU) [{plan['basis']}]"
        )
    return lines


def describe_engine(info: dict[str, Any]) -> str:
    if "overlay" not in info:
        return f"{info['backend']} backend: every frame runs cv2.resize"
    return f"{info['backend']} backend, {info['board']} ({info['overlay']}, {info['build']} build)"


def path_taken(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """None if the frame between two stats snapshots ran on the PL, else the fallback reason."""
    if after["pl"] > before["pl"]:
        return None
    grew = [
        reason for reason, n in after["fallback"].items() if n > before["fallback"].get(reason, 0)
    ]
    return ", ".join(grew) or "unknown"


def format_counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"
