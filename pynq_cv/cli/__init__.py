"""``pynq-cv``: the command line -- demo, info, resize, verify, bench, run.

    pynq-cv demo                      a short clip through the patched cv2.resize, then telemetry
    pynq-cv info                      backend and why, overlay, bitstream, envelope, versions
    pynq-cv resize IN OUT --size WxH  one image file through pynq_cv.resize
    pynq-cv verify                    PL output against the IP's exact arithmetic and cv2
    pynq-cv bench [--short]           the benchmarks of a source checkout
    pynq-cv run [--profile] script.py an unmodified script with cv2.resize patched
    pynq-cv plan --input WxH          the routing map of a board (modelled), by output size

The library never prints; this package does, one module per command (``common`` holds what
they share). A user's mistake (a missing file, a bad size, an unknown backend) is one line on
stderr starting with ``pynq-cv: error:`` and a non-zero exit code, never a traceback. The
synthetic clip helpers (``synthetic_frame``, ``write_synthetic_clip``) are shared with the
examples.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import pynq_cv
from pynq_cv.backends.board import BITSTREAM_ENV
from pynq_cv.cli.bench import benchmarks_dir, cmd_bench, format_table
from pynq_cv.cli.calibrate import cmd_calibrate
from pynq_cv.cli.common import (
    INTERPOLATIONS,
    PROG,
    CliError,
    Parser,
    join_negative_sizes,
    open_capture,
    parse_count,
    parse_scale,
    parse_size,
    parse_size_pair,
    synthetic_frame,
    synthetic_frames,
    write_synthetic_clip,
)
from pynq_cv.cli.demo import cmd_demo
from pynq_cv.cli.doctor import add_parser as add_doctor_parser
from pynq_cv.cli.emulate import add_parser as add_emulate_parser
from pynq_cv.cli.info import cmd_info, versions
from pynq_cv.cli.plan import add_parser as add_plan_parser
from pynq_cv.cli.resize import cmd_resize, read_image, write_image
from pynq_cv.cli.run import add_parser as add_run_parser
from pynq_cv.cli.run import protect_command
from pynq_cv.cli.verify import cmd_verify, exact_model, pattern_frame
from pynq_cv.errors import SettingError
from pynq_cv.runner import exit_status, finish

__all__ = [
    "INTERPOLATIONS", "PROG", "CliError", "benchmarks_dir", "build_parser", "exact_model",
    "format_table", "main", "open_capture", "parse_count", "parse_scale", "parse_size",
    "parse_size_pair", "pattern_frame", "read_image", "synthetic_frame", "synthetic_frames",
    "versions", "write_image", "write_synthetic_clip",
]

# -- the parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="cv2.resize on the PYNQ PL resizer (or its emulator): demo and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {pynq_cv.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    engine = Parser(add_help=False)
    group = engine.add_argument_group("backend")
    group.add_argument("--backend", metavar="NAME",
                       help="board, emulator, cpu or an entry-point backend "
                            "(default: $PYNQ_CV_BACKEND, else the board if found, else the "
                            "emulator)")
    group.add_argument("--board", metavar="NAME",
                       help="board whose overlay descriptor to use, e.g. Pynq-Z2, KV260 "
                            "(default: $PYNQ_CV_BOARD or $BOARD, else Pynq-Z2)")
    group.add_argument("--policy", metavar="NAME", type=str.lower,
                       choices=pynq_cv.planner.POLICIES,
                       help="which eligible frames go to the PL: "
                            f"{', '.join(pynq_cv.planner.POLICIES)} "
                            "(default: $PYNQ_CV_POLICY, else auto)")
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
    rs.add_argument("--compare", metavar="DIFF.png",
                    help="also write a picture: this result | cv2's | the difference")
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
    verify.add_argument("--save", metavar="DIR",
                        help="write a PNG per case: PL | cv2 | difference amplified")
    verify.set_defaults(run=cmd_verify)

    cal = sub.add_parser("calibrate", parents=[engine],
                         help="measure this machine's cost constants into a calibration file",
                         description="Time copies by cacheability, flush, invalidate, a register "
                                     "access and cv2.resize, and write a calibration file that "
                                     "later runs load (on the emulator: the host's costs).")
    cal.add_argument("--output", metavar="FILE.json",
                     help="where to write (default: $PYNQ_CV_CALIBRATION, else "
                          "~/.config/pynq_cv/calibration.json)")
    cal.add_argument("--quick", action="store_true", help="small frames, one repeat")
    cal.set_defaults(run=cmd_calibrate)

    bench = sub.add_parser("bench", help="run the benchmarks of a source checkout",
                           description="Run benchmarks/bench_*.py (each exposes run(short)).")
    bench.add_argument("names", nargs="*", metavar="NAME",
                       help="benchmarks to run, e.g. pipeline fallback (default: all)")
    bench.add_argument("--short", action="store_true", help="few iterations")
    bench.add_argument("--dir", metavar="PATH", help="where the benchmarks are")
    bench.set_defaults(run=cmd_bench)

    add_run_parser(sub)
    add_emulate_parser(sub)
    add_plan_parser(sub)
    add_doctor_parser(sub, [engine])
    return parser


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                  line: Any = None) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    entry = argv is None  # the process's own command line (not a caller's list)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            argv = list(sys.argv[1:] if argv is None else argv)
            # run: the script's own arguments reach it untouched
            argv = protect_command(argv) if argv[:1] == ["run"] else join_negative_sizes(argv)
            args = parser.parse_args(argv)
            if getattr(args, "run", None) is None:
                parser.print_help(sys.stderr)
                return 2
            code = args.run(args)  # run/emulate: the process ends as Python's would
            return finish(code) if entry else exit_status(code)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except SettingError as exc:  # e.g. PYNQ_CV_POLICY=fastest: one line naming it
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # a size too large for this machine's free memory
        print(f"{PROG}: error: not enough memory: {exc}", file=sys.stderr)
        return 1
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
