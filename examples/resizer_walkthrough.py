"""PYNQ-HelloWorld's resizer notebook, step by step, with pynq_cv doing the board work.

    python examples/resizer_walkthrough.py                   # a generated 1920x1080 image
    python examples/resizer_walkthrough.py photo.jpg --ratio 2 --output small.png --show
    python examples/resizer_walkthrough.py --generate 3840x2160  # the notebook's 4K case
    python examples/resizer_walkthrough.py --short           # 640x360 -> 320x180 (CI)

The notebook loads the overlay, allocates contiguous buffers, copies a Pillow image in,
writes the IP's four size registers, starts the IP and both DMA channels, waits, and wraps
the output buffer in a Pillow image again; then it times the same resize on the PS with
Pillow. Here ``pynq_cv.Resizer`` does the overlay, buffers, registers and DMA (on a board
through ``pynq``, elsewhere on the board emulator), and the steps that remain are yours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import pynq_cv
from pynq_cv.cli import parse_size, synthetic_frame

# what the HelloWorld notebooks printed on a board (PL run_kernel + Image.fromarray; PS PIL)
NOTEBOOK_MS = {(3840, 2160): (247.0, 1020.0), (640, 360): (7.62, 24.5)}


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds over ``repeats`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def can_show() -> bool:
    """Whether Pillow's viewer can open a window (on Linux: an X or Wayland display)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def fail(message: str, code: int = 1) -> int:
    print(f"resizer_walkthrough: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="image to resize (default: generate one)")
    parser.add_argument("--generate", type=parse_size, default=(1920, 1080), metavar="WxH",
                        help="size of the generated image (default 1920x1080)")
    parser.add_argument("--ratio", type=float, default=2.0, help="resize factor (notebook: 2)")
    parser.add_argument("--output", help="where to save the resized image")
    parser.add_argument("--show", action="store_true", help="open both images in a viewer")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of each resize")
    parser.add_argument("--backend", help="board, emulator or cpu (default: auto)")
    parser.add_argument("--board", help="overlay descriptor, e.g. Pynq-Z2 (default) or KV260")
    parser.add_argument("--short", action="store_true", help="640x360 -> 320x180, 3 runs")
    args = parser.parse_args(argv)
    # the user's mistakes, each one line before any work
    if not 0 < args.ratio < float("inf"):
        return fail(f"--ratio {args.ratio:g}: must be a positive number", 2)
    if args.repeats < 1:
        return fail(f"--repeats {args.repeats}: must be at least 1", 2)
    if args.short:
        args.generate, args.repeats = (640, 360), 3
    out_path = Path(args.output or Path(tempfile.gettempdir()) / "pynq_cv_walkthrough.png")
    if out_path.is_dir():
        return fail(f"--output {out_path} is a directory; name a file, e.g. small.png", 2)
    if out_path.suffix.lower() not in Image.registered_extensions():
        return fail(f"--output {out_path}: Pillow writes no {out_path.suffix or 'extensionless'}"
                    " files; use e.g. .png or .jpg", 2)
    if args.show and not can_show():
        return fail("--show needs a display ($DISPLAY or $WAYLAND_DISPLAY is not set); "
                    "use --output to save the result instead", 2)
    if args.image:
        try:
            original = Image.open(args.image).convert("RGB")
        except OSError as exc:
            return fail(f"cannot read {args.image}: {exc.strerror or exc}")
    else:
        # synthetic_frame is BGR (OpenCV's order); Pillow wants RGB
        original = Image.fromarray(synthetic_frame(0, *args.generate)[:, :, ::-1])
    old_width, old_height = original.size
    new_width, new_height = int(old_width / args.ratio), int(old_height / args.ratio)
    if new_width < 1 or new_height < 1:
        return fail(f"--ratio {args.ratio:g} shrinks {old_width}x{old_height} to nothing", 2)
    options = {"board": args.board} if args.board else {}
    # policy="pl": this walkthrough shows the PL path whether or not it pays for this size
    # (the default policy would send a frame to cv2 when the board's cost model says so)
    try:
        resizer = pynq_cv.Resizer(args.backend, policy="pl", **options)  # a typo raises here
    except (pynq_cv.BackendUnavailable, pynq_cv.SettingError) as exc:
        return fail(str(exc), 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the line below says it once
            resizer.open()
    except pynq_cv.BackendUnavailable as exc:
        resizer.close()
        return fail(str(exc))

    print("1. Load an image with Pillow")
    if args.image:
        print(f"   {args.image}: {original.width}x{original.height}")
    else:
        print(f"   generated {original.width}x{original.height}")
    print(f"   target {new_width}x{new_height} (ratio {args.ratio:g})")

    with resizer:
        print("2. Open the resizer overlay")
        info = resizer.info()
        if "overlay" in info:
            print(f"   {info['backend']}: {info['overlay']} on {info['board']} "
                  f"({info['build']} build), bitstream {info['bitstream']}")
        print(f"   {info['why']}")

        print("3. Resize on the PL")
        # The IP passes the channels through in order, so Pillow's RGB goes in and comes out.
        pixels = np.asarray(original)
        resizer.resize(pixels, (new_width, new_height))  # plans the shape, allocates buffers
        stats0 = resizer.stats.snapshot()

        def on_pl() -> Image.Image:
            return Image.fromarray(resizer.resize(pixels, (new_width, new_height)))

        pl_seconds, resized = timed(on_pl, args.repeats)
        stats = resizer.stats.snapshot()
        pl_frames = stats["pl"] - stats0["pl"]
        if pl_frames:
            board = (stats["board_seconds"] - stats0["board_seconds"]) / pl_frames
            print(f"   {pl_frames} runs on the PL: {pl_seconds * 1e3:.2f} ms each here "
                  "(copy in, PL, copy out, Image.fromarray)")
            print(f"   modelled board time (copies, cache upkeep, IP): {board * 1e3:.2f} ms "
                  "per frame")
            if info["backend"] == "emulator":
                print("   (the emulator computes what the IP would, as fast as this host can)")
        else:
            reasons = ", ".join(stats["fallback"]) or "unknown"
            print(f"   the PL did not take this frame ({reasons}): cv2.resize computed it, "
                  f"{pl_seconds * 1e3:.2f} ms")
            if "dma_length" in reasons or "output_too_large" in reasons:
                print("   (a 2021-build overlay takes it: try --board KV260)")

    print("4. Save (and show) the result")
    try:
        resized.save(out_path)
    except (OSError, ValueError) as exc:  # no such directory, no permission, unknown extension
        return fail(f"cannot save {out_path}: {getattr(exc, 'strerror', None) or exc}")
    print(f"   {out_path}: {resized.width}x{resized.height}")
    if args.show:
        original.show()
        resized.show()

    print("5. The same resize on the PS (the CPU) with Pillow")
    ps_seconds, ps_image = timed(
        lambda: original.resize((new_width, new_height), Image.BILINEAR), args.repeats
    )
    print(f"   Pillow BILINEAR: {ps_seconds * 1e3:.2f} ms per frame")
    diff = np.abs(np.asarray(ps_image, np.int16) - np.asarray(resized, np.int16))
    print(f"   pixels vs the PL: max difference {int(diff.max())} (Pillow's downscaling "
          "filters over the whole footprint; the IP blends 2x2 neighbours)")

    notebook = NOTEBOOK_MS.get((old_width, old_height))
    if notebook and args.ratio == 2:
        print(f"   the HelloWorld notebooks printed PL {notebook[0]} ms, PS {notebook[1]} ms "
              "for this size on a board")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("resizer_walkthrough: interrupted", file=sys.stderr)
        sys.exit(130)
