"""``pynq-cv calibrate``: measure this machine's cost constants and save them for later runs."""

from __future__ import annotations

import argparse

from pynq_cv import calibration
from pynq_cv.cli.common import PROG, CliError, backend_options, checked_backend
from pynq_cv.resizer import Resizer


def cmd_calibrate(args: argparse.Namespace) -> int:
    backend = checked_backend(args)
    options = backend_options(args)
    rows, cols, repeat = (270, 480, 1) if args.quick else (1080, 1920, 5)
    try:
        data = calibration.measure(
            backend, options.get("board"), rows, cols, repeat, resizer=Resizer
        )
        path = calibration.write(data, args.output)
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
