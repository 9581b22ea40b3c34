"""``pynq-cv emulate [--board B] [--pace] [--watchdog S] [--directory DIR] SCRIPT [args...]``.

``SCRIPT``: a ``.py`` file or an ``.ipynb`` notebook.

Runs pynq code -- a script, or a notebook's code cells such as PYNQ-HelloWorld's
``resizer_pl`` -- with pynq's default device made an emulated board that holds the resizer
overlay (``pynq_cv.emulate``), as ``python script.py`` would run it: the script's exit
status, its tracebacks without pynq_cv's frames, its threads awaited. Needs ``pynq``
installed (it never touches a real PL).
"""

from __future__ import annotations

import argparse
from typing import Any

from pynq_cv.cli.common import CliError, parse_scale


def add_parser(sub: Any) -> None:
    em = sub.add_parser(
        "emulate", help="run pynq code (a script or notebook) on the emulated board",
        description="Run a script or a notebook's code cells with pynq's device emulated: "
                    "pynq.Overlay('resizer.bit'), allocate, the DMA and the resizer IP work "
                    "as on the board, computed by the emulator. Needs pynq installed.",
    )
    em.add_argument("--board", default="Pynq-Z2", metavar="NAME",
                    help="board to emulate (default Pynq-Z2)")
    em.add_argument("--pace", action="store_true",
                    help="pynq's waits take the modelled board time")
    em.add_argument("--watchdog", type=parse_scale, metavar="SECONDS",
                    help="explain a wait a board would hang in, after SECONDS")
    em.add_argument("--directory", metavar="DIR",
                    help="where the overlay's resizer.bit and .hwh are found or written for "
                         "the run (default: the script's or notebook's own folder, so "
                         "Overlay('resizer.bit') resolves there; files written are removed)")
    em.add_argument("script", metavar="SCRIPT", help="a .py script or an .ipynb notebook")
    em.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    em.set_defaults(run=cmd_emulate)


def cmd_emulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not Path(args.script).is_file():
        raise CliError(f"no such file: {args.script}", 2)
    if args.directory is not None and not Path(args.directory).is_dir():
        raise CliError(f"no such directory: {args.directory}", 2)
    from pynq_cv.emulate import PynqMissing, run_emulated
    from pynq_cv.errors import PynqCvError

    try:
        return run_emulated(args.script, args.args, board=args.board, pace=args.pace,
                            watchdog=args.watchdog, directory=args.directory)
    except PynqMissing as exc:  # only pynq itself: the script's own errors are its own
        raise CliError(f"pynq is needed to run pynq code on the emulator: {exc}", 1) from None
    except (ValueError, PynqCvError) as exc:  # an unreadable notebook, an unknown board
        raise CliError(str(exc), getattr(exc, "code", 2)) from None
