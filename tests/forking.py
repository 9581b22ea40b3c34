"""Run a function in a forked child, in bounded time: the fork tests' one way to fork."""

from __future__ import annotations

import faulthandler
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path


def in_child(run: Callable[[], int], seconds: float, report: Path) -> int | str:
    """``run()``'s exit status in a forked child, or ``"hung"`` (killed after ``seconds``);
    a hung child writes where it hangs to ``report``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads alive
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            out = open(report, "w")  # noqa: SIM115 -- kept open until os._exit
            faulthandler.dump_traceback_later(max(1.0, seconds - 5), file=out, exit=True)
            code = run()
        finally:
            os._exit(code)
    end = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "hung"
        time.sleep(0.002)


def reports(statuses: list, folder: Path) -> list[str]:
    """What the children that failed wrote (where they hung)."""
    return [(folder / f"child{k}.txt").read_text() for k, s in enumerate(statuses) if s]
