"""A plain OpenCV video loop, routed by one line: ``pynq_cv.patch()``.

    python examples/video_loop.py                     # a generated clip, written to a temp dir
    python examples/video_loop.py clip.mp4 -o small.avi --size 640x360
    python examples/video_loop.py 0 --frames 300      # camera 0
    python examples/video_loop.py --zero-copy         # capture straight into PL buffers
    python examples/video_loop.py --short             # a few small frames (CI)

The loop itself is ordinary OpenCV: ``VideoCapture`` -> ``cv2.resize`` -> ``VideoWriter``.
After ``pynq_cv.patch()`` every ``cv2.resize`` of a BGR frame with INTER_LINEAR may run on
the PL resizer (on a PYNQ board; elsewhere on the bundled emulator) -- where the board's
cost model says the PL pays (``--policy pl`` forces it) -- and anything else on cv2.

``--zero-copy`` shows the pattern that saves the copy of each frame into DMA memory: borrow a
buffer from the engine's pool, let ``cap.read(image=buf)`` decode into it, and resize that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

import pynq_cv
from pynq_cv.cli import parse_size, write_synthetic_clip
from pynq_cv.opencv_log import opencv_quiet


def open_source(source: str | None, workdir: Path, frames: int, size: tuple[int, int]):
    """A VideoCapture of a camera index, a file, or (None) a clip generated here."""
    if source is None:
        source = str(write_synthetic_clip(workdir / "input.avi", frames, *size))
        print(f"generated {frames} frames of {size[0]}x{size[1]} in {source}")
    with opencv_quiet():  # our one line says it; OpenCV's own lines would bury it
        cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        sys.exit(f"video_loop: cannot open {source}")
    return cap


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="video file or camera index (default: generate)")
    parser.add_argument("-o", "--output", help="output video (default: a temp dir's output.avi)")
    parser.add_argument("--size", type=parse_size, default=(960, 540), help="output WxH")
    parser.add_argument("--frames", type=int, default=150,
                        help="at most this many frames (default: 150)")
    parser.add_argument("--input-size", type=parse_size, default=(1920, 1080),
                        help="size of the generated clip")
    parser.add_argument("--zero-copy", action="store_true",
                        help="decode into buffers lent by the PL engine (no copy in)")
    parser.add_argument("--backend", help="board, emulator or cpu (default: auto)")
    parser.add_argument("--board", help="board model, e.g. Pynq-Z2, KV260 (default: "
                                        "$PYNQ_CV_BOARD, else Pynq-Z2)")
    parser.add_argument("--policy", help="auto, latency, offload, pl or cpu: which eligible "
                                         "frames go to the PL (default: auto)")
    parser.add_argument("--short", action="store_true", help="12 frames of 640x360 -> 320x180")
    args = parser.parse_args(argv)
    if args.short:
        args.frames, args.input_size, args.size = 12, (640, 360), (320, 180)
    try:
        # the engine behind the patched cv2.resize
        options = {"board": args.board} if args.board else {}
        resizer = pynq_cv.use_backend(args.backend, policy=args.policy, **options)
    except (pynq_cv.BackendUnavailable, pynq_cv.SettingError) as exc:  # e.g. a typo
        sys.exit(f"video_loop: {exc}")

    with tempfile.TemporaryDirectory(prefix="pynq_cv_video_") as tmp:
        workdir = Path(tmp)
        cap = open_source(args.source, workdir, args.frames, args.input_size)
        out_path = Path(args.output) if args.output else workdir / "output.avi"
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        with opencv_quiet():
            writer = cv2.VideoWriter(
                str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), fps, args.size
            )
        if not writer.isOpened():
            cap.release()
            sys.exit(f"video_loop: cannot write {out_path}")

        pynq_cv.patch()
        lent = None
        if args.zero_copy:
            width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            try:
                lent = resizer.lend((height, width, 3))  # lives in DMA-able memory
            except pynq_cv.BackendUnavailable as exc:
                print(f"no zero copy here ({exc}); reading into ordinary arrays")

        count = 0
        interrupted = False
        started = time.perf_counter()
        try:
            while count < args.frames:
                if lent is not None:
                    ok, frame = cap.read(image=lent)  # decoded straight into the PL buffer
                else:
                    ok, frame = cap.read()
                if not ok:
                    break
                small = cv2.resize(frame, args.size)  # the PL, when the frame qualifies
                writer.write(small)
                count += 1
        except KeyboardInterrupt:  # Ctrl-C: stop, say what was done, exit 130
            interrupted = True
            print(f"interrupted after {count} frames")
        finally:
            elapsed = time.perf_counter() - started
            pynq_cv.unpatch()
            cap.release()
            writer.release()
            if lent is not None:
                resizer.give_back(lent)

        stats = pynq_cv.stats()
        print(f"{count} frames -> {args.size[0]}x{args.size[1]} in {elapsed:.2f} s: "
              f"{count / max(elapsed, 1e-9):.1f} fps (capture, resize and encode)")
        reasons = ", ".join(f"{k} {v}" for k, v in stats["fallback"].items())
        print(f"backend {resizer.backend}: {stats['pl']} frames on the PL, {stats['cpu']} on "
              f"the CPU" + (f" (fallback: {reasons})" if reasons else ""))
        print(f"copies into PL buffers: {stats['copies_in']} of {stats['pl']}"
              + (" (zero copy)" if lent is not None else ""))
        if stats["pl"]:
            print(f"modelled board time {stats['board_seconds'] / stats['pl'] * 1e3:.2f} ms "
                  "per frame")
        print(f"wrote {out_path}" + ("" if args.output else " (temporary, removed on exit)"))
        pynq_cv.close()
    if interrupted:
        return 130
    return 0 if count else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the loop started: nothing to summarise
        print("video_loop: interrupted", file=sys.stderr)
        sys.exit(130)
