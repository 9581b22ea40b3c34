"""``pynq-cv run [--profile] [--json FILE] (script.py | -m module) [args...]``.

Runs an unmodified script with ``cv2.resize`` patched (see ``pynq_cv.runner``). With
``--profile`` (or ``--json``), at exit a table per call site of ``cv2.resize`` goes to
stderr -- the script's stdout stays exactly its own -- and ``--json`` writes the same rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pynq_cv
from pynq_cv.cli.common import PROG, CliError
from pynq_cv.cli.report import build, render
from pynq_cv.errors import BackendUnavailable
from pynq_cv.profile import CallSiteProfile
from pynq_cv.runner import ScriptNotFound, exit_status, run_script

_SHOW_WARNING = warnings.showwarning  # Python's, before the CLI's one-line form

_VALUED = {"--json"}  # run's own options that take a value


def protect_command(argv: Sequence[str]) -> list[str]:
    """``run``'s own options, then ``--`` before the script and its arguments, so that
    argparse never mistakes the script's options for ours."""
    argv = list(argv)
    if not argv or argv[0] != "run":
        return argv
    i = 1
    while i < len(argv):
        token = argv[i]
        if token == "--" or token in ("-h", "--help"):
            return argv
        if token == "-m":
            i += 2
            break
        if token in _VALUED:
            i += 2
        elif token.startswith("-") and token != "-":
            i += 1
        else:
            break
    return [*argv[:i], "--", *argv[i:]] if i <= len(argv) else argv


def add_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="run a script with cv2.resize patched (no code change)",
        description="Run an unmodified Python script (or -m module) with cv2.resize patched: "
                    "eligible frames go to the PL. sys.argv, __main__ and the exit code are "
                    "the script's own. The backend comes from $PYNQ_CV_BACKEND; strict and "
                    "compare modes from $PYNQ_CV_STRICT and $PYNQ_CV_COMPARE; logging from "
                    "$PYNQ_CV_LOG.",
        usage=f"{PROG} run [-h] [--profile] [--json FILE] (SCRIPT | -m MODULE) [ARGS ...]",
    )
    run.add_argument("--profile", action="store_true",
                     help="at exit, print a table per cv2.resize call site to stderr")
    run.add_argument("--json", metavar="FILE", help="write the per-call-site table as JSON "
                                                    "(implies --profile)")
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, like python -m")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="SCRIPT [ARGS ...]")
    run.set_defaults(run=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if args.module is None and not command:
        raise CliError("run needs a script (or -m MODULE) to run")
    target, rest = (args.module, command) if args.module is not None else (command[0], command[1:])
    json_path = Path(args.json) if args.json else None
    if json_path is not None and not json_path.resolve().parent.is_dir():
        raise CliError(f"no such directory: {json_path.parent}")
    profile = CallSiteProfile() if args.profile or json_path is not None else None
    started = time.perf_counter()  # the script's wall time, for the profile's totals
    with warnings.catch_warnings():
        warnings.showwarning = _SHOW_WARNING  # the script's warnings look as they would alone
        try:
            code = run_script(target, rest, module=args.module is not None, profile=profile)
        except ScriptNotFound as exc:
            raise CliError(str(exc), exc.code) from None
        except BackendUnavailable as exc:  # PYNQ_CV_BACKEND names no backend
            raise CliError(str(exc), 2) from None
    wall = time.perf_counter() - started
    if profile is not None:
        report = build(profile, wall, exit_status(code), [target, *rest],
                       args.module is not None)
        print(render(report), file=sys.stderr, flush=True)
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2) + "\n")
    else:
        emulated = pynq_cv.default_resizer().stats.snapshot()["emulated"]
        if emulated:
            print(f"{PROG} run: {emulated} cv2.resize frame{'s' if emulated != 1 else ''} ran "
                  "on the board emulator (PYNQ_CV_BACKEND=cpu for cv2.resize)", file=sys.stderr)
    pynq_cv.close()
    return code

