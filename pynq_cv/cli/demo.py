"""``pynq-cv demo``: a short clip through the patched cv2.resize, then where the frames ran."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import pynq_cv
from pynq_cv.cli.common import (
    PROG,
    CliError,
    captured_frames,
    check_writable,
    describe_engine,
    describe_plans,
    format_counts,
    open_capture,
    shared_engine,
    synthetic_frames,
)
from pynq_cv.opencv_log import opencv_quiet

DEFAULT_FPS = 30.0


def _demo_frames(args: argparse.Namespace) -> tuple[Iterator[np.ndarray], str, Any, float]:
    """The demo's frames, what they are, the capture to release (or None), and their fps."""
    if args.source is None:
        in_w, in_h = args.input_size
        frames = synthetic_frames(args.frames, in_w, in_h)
        return frames, f"synthetic {in_w}x{in_h} clip", None, DEFAULT_FPS
    cap = open_capture(args.source)
    with opencv_quiet():
        ok, first = cap.read()
    if not ok:
        cap.release()
        raise CliError(f"no frames could be read from {args.source}", 1)
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 0 < fps < 1000 else DEFAULT_FPS  # cameras and some files say 0
    frames = itertools.chain([first], captured_frames(cap, args.frames - 1))
    return frames, args.source, cap, fps


def _video_writer(path: str, size: tuple[int, int], fps: float) -> Any:
    """A Motion-JPEG writer at the source's frame rate, or one line on what is wrong."""
    with opencv_quiet():
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        suffix = Path(path).suffix.lower()
        if suffix != ".avi":
            raise CliError(f"cannot write {path}: OpenCV writes Motion-JPEG into .avi files, "
                           f"not {suffix or 'extensionless ones'}", 1)
        raise CliError(f"cannot write {path}: OpenCV's Motion-JPEG writer refused it", 1)
    return writer


def cmd_demo(args: argparse.Namespace) -> int:
    out_w, out_h = args.size
    engine = shared_engine(args)
    info = engine.info()
    if args.output:
        check_writable(Path(args.output), "out.avi")
    frames, what, cap, fps = _demo_frames(args)
    try:
        writer = _video_writer(args.output, (out_w, out_h), fps) if args.output else None
    except CliError:
        if cap is not None:
            cap.release()
        raise
    print(f"{PROG} demo: {args.frames} frames of {what} -> {out_w}x{out_h} through cv2.resize")
    print(f"  on the {describe_engine(info)}")
    print(f"  ({info['why']})")
    pynq_cv.reset_stats()
    side = max(args.frames // 4, 1)
    tty = sys.stderr.isatty()
    resize_seconds = baseline_seconds = 0.0
    done = extra = 0
    cv2_resize = cv2.resize  # OpenCV's own, for the baseline on the same frames
    pynq_cv.patch()
    started = time.perf_counter()
    try:
        for index, frame in enumerate(frames):
            t0 = time.perf_counter()
            small = cv2.resize(frame, (out_w, out_h))
            t1 = time.perf_counter()
            cv2_resize(frame, (out_w, out_h))
            resize_seconds += t1 - t0
            baseline_seconds += time.perf_counter() - t1
            if writer is not None:
                writer.write(small)
            done += 1
            if index % side == 0:
                # the demo's own calls the PL does not take, so that the fallback reasons show
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                cv2.resize(gray, (out_w, out_h))  # one channel
                cv2.resize(frame, (out_w // 4, out_h // 4), interpolation=cv2.INTER_AREA)
                cv2.resize(frame, (321, 241))  # 321 * 241 * 3 bytes: not a multiple of 4
                extra += 3
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
    print(f"  the clip's frames  {done}: {stats['pl']} on the PL, {stats['cpu'] - extra} on "
          "the CPU")
    print(f"  the demo's own     {extra} on the CPU, to show fallback reasons: a gray copy, "
          f"INTER_AREA and 321x241, on one frame in {side}")
    print(f"fallback reasons     {format_counts(stats['fallback'])}")
    print(f"faults               {format_counts(stats['faults'])}")
    print(f"wall time            {wall:.2f} s for {done} frames: {done / wall:.1f} fps "
          "(making the frames and the cv2 baseline included)")
    print(f"inside cv2.resize    {resize_seconds:.2f} s: "
          f"{resize_seconds / done * 1e3:.2f} ms per frame (patched: pynq_cv)")
    print(f"cv2 baseline         {baseline_seconds:.2f} s: "
          f"{baseline_seconds / done * 1e3:.2f} ms per frame (OpenCV's own cv2.resize, "
          "INTER_LINEAR, the same frames on this CPU)")
    if stats["pl"]:
        board = stats["board_seconds"]
        print(f"modelled board time  {board:.3f} s on the PL: "
              f"{board / stats['pl'] * 1e3:.2f} ms per frame, {stats['pl'] / board:.1f} fps "
              "(copies, cache upkeep and the IP's cycles)")
        if info["backend"] == "emulator":
            print("                     (the emulator runs as fast as this host allows; "
                  "a board takes the modelled time)")
        print(f"copies               in {stats['copies_in']}, out {stats['copies_out']}, "
              f"{stats['bytes_moved'] / 1e6:.1f} MB moved through the DMA")
    info_now = pynq_cv.info()
    for line in describe_plans(info_now):
        print(line)
    if info_now.get("plans") and not stats["pl"]:
        print("  (the board's cost model says cv2.resize is faster for these frames, so they "
              "ran there; --policy pl sends them to the PL anyway; for a stream, "
              "PYNQ_CV_POLICY=offload PYNQ_CV_FPS=N frees CPU when the PL keeps up with N fps)")
    if writer is not None:
        print(f"wrote                {args.output} ({fps:g} fps"
              f"{', as the source' if cap is not None else ''})")
    pynq_cv.close()
    return 0
