"""fork() while another thread builds and closes ``Resizer``s and changes logging levels
(the registry lock, ``rewatch_all``): every child's first frame, its own ``Resizer()``,
``use_backend()``, ``close()`` and a level change return in bounded time.
``PYNQ_CV_FORKS=200`` for the long run."""

from __future__ import annotations

import faulthandler
import logging
import os
import threading
import time
import warnings

import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")

FORKS = int(os.environ.get("PYNQ_CV_FORKS", "12"))
CHILD_SECONDS = 15.0  # generous for a loaded machine; a hang is forever
SRC = frame(24, 32, seed=3)
WANT = resize_exact(SRC, 12, 16)


def child(report: str) -> int:
    """In the child: an exit status (0: all done, exact, on the PL, in bounded time)."""
    with open(report, "w") as out:  # where a hang is, if there is one
        faulthandler.dump_traceback_later(CHILD_SECONDS - 5, file=out, exit=True)
        rz = pynq_cv.Resizer("emulator")
        if not np.array_equal(rz.resize(SRC, (16, 12)), WANT) or rz.stats.snapshot()["pl"] != 1:
            return 2
        logging.getLogger("pynq_cv").setLevel(logging.ERROR)  # rewatch_all
        default = pynq_cv.use_backend("emulator")
        if not np.array_equal(pynq_cv.resize(SRC, (16, 12)), WANT):
            return 3
        rz.close()
        default.close()
        faulthandler.cancel_dump_traceback_later()
    return 0


def test_forks_while_a_thread_builds_and_closes_resizers_never_hang_the_child(tmp_path):
    stop = threading.Event()
    logger = logging.getLogger("pynq_cv")
    level = logger.level

    def build() -> None:  # a Resizer registering itself, opening, closing: all the time
        while not stop.is_set():
            with pynq_cv.Resizer("emulator") as rz:
                rz.resize(SRC, (16, 12))

    def levels() -> None:  # every level change runs rewatch_all
        while not stop.is_set():
            logger.setLevel(logging.INFO)
            logger.setLevel(logging.WARNING)

    def register() -> None:  # construction alone: the registry lock taken most often
        while not stop.is_set():
            pynq_cv.Resizer("emulator")

    threads = [threading.Thread(target=build), threading.Thread(target=register),
               threading.Thread(target=levels)]
    for t in threads:
        t.start()
    statuses, took = [], []
    try:
        time.sleep(0.02)
        for k in range(FORKS):
            report = str(tmp_path / f"child{k}.txt")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads alive
                pid = os.fork()
            if pid == 0:  # the child: never return into pytest
                code = 1
                try:
                    code = child(report)
                finally:
                    os._exit(code)
            t0 = time.monotonic()
            end = t0 + CHILD_SECONDS
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    statuses.append(os.waitstatus_to_exitcode(status))
                    break
                if time.monotonic() > end:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    statuses.append("hung")
                    break
                time.sleep(0.002)
            took.append(time.monotonic() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        logger.setLevel(level)
    where = [open(tmp_path / f"child{k}.txt").read() for k, s in enumerate(statuses) if s]
    median = sorted(took)[len(took) // 2]
    print(f"{FORKS} forks: slowest child {max(took):.3f} s, median {median:.3f} s")
    assert statuses == [0] * FORKS, (statuses, where[:2])
