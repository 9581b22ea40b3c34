"""``pynq-cv emulate [--board B] [--pace] [--watchdog S] SCRIPT.py|NOTEBOOK.ipynb [args...]``.

Runs pynq code -- a script, or a notebook's code cells such as PYNQ-HelloWorld's
``resizer_pl`` -- with pynq's default device made an emulated board that holds the resizer
overlay (``pynq_cv.emulate``). Needs ``pynq`` installed (it never touches a real PL).
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
    em.add_argument("script", metavar="SCRIPT", help="a .py script or an .ipynb notebook")
    em.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    em.set_defaults(run=cmd_emulate)


def cmd_emulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not Path(args.script).is_file():
        raise CliError(f"no such file: {args.script}", 2)
    try:
        from pynq_cv.emulate import run_script_emulated

        run_script_emulated(args.script, args.args, board=args.board, pace=args.pace,
                            watchdog=args.watchdog)
    except ImportError as exc:
        raise CliError(f"pynq is needed to run pynq code on the emulator: {exc}", 1) from None
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
