"""``pynq-cv calibrate``: measure this machine's cost constants and save them for later runs."""

from __future__ import annotations

import argparse
import warnings

from pynq_cv import calibration
from pynq_cv.backends.select import requested_backend
from pynq_cv.cli.common import PROG, CliError, backend_options, checked_backend
from pynq_cv.errors import BackendUnavailable
from pynq_cv.resizer import Resizer


def cmd_calibrate(args: argparse.Namespace) -> int:
    backend = checked_backend(args)
    if requested_backend(backend) == "cpu":  # --backend cpu or PYNQ_CV_BACKEND=cpu
        raise CliError("calibrate measures the PL path's costs, and the cpu backend has no PL "
                       "path: use --backend board on a board (or emulator for this host's)")
    options = backend_options(args)
    rows, cols, repeat = (270, 480, 1) if args.quick else (1080, 1920, 5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a PL that will not open: the error says it once
            data = calibration.measure(
                backend, options.get("board"), rows, cols, repeat, resizer=Resizer
            )
        path = calibration.write(data, args.output)
    except BackendUnavailable as exc:  # e.g. --backend board off a board
        raise CliError(f"cannot calibrate: {exc}", 1) from None
    except OSError as exc:
        raise CliError(f"cannot write the calibration file: {exc}", 1) from None
    print(f"{PROG} calibrate: {data['backend']} {data['board']} ({data['family']}), "
          f"{rows}p frames, best of {repeat}")
    print(f"  {data['note']}")
    for name, c in data["constants"].items():
        print(f"  {name:<28} {c['value']:.4g}")
    for name, value in data["checks"].items():
        print(f"  check: {name} = {value * 1e3:.2f} ms")
    print(f"wrote {path}")
    if data["backend"] == "board":  # not a default: says what the file will do
        print(f"  later runs on a {data['family']} board load it by default "
              "(`pynq-cv info` shows which constants are in force)")
    else:
        print(f"  it describes this host, not a {data['board']}: engines load it only when "
              f"asked, with PYNQ_CV_CALIBRATION={path} or Resizer(calibration=...)")
    print(f"  to undo: rm {path}  (or PYNQ_CV_CALIBRATION=none to ignore every calibration)")
    return 0
