"""fork() while another thread builds and closes ``Resizer``s and changes logging levels
(the registry lock, ``rewatch_all``): every child's first frame, its own ``Resizer()``,
``use_backend()``, ``close()`` and a level change return in bounded time.
``PYNQ_CV_FORKS=200`` for the long run."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import pytest
from conftest import frame
from forking import in_child, reports

import pynq_cv
from pynq_cv.backends.emulator.arith import resize_exact

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")

FORKS = int(os.environ.get("PYNQ_CV_FORKS", "12"))
CHILD_SECONDS = 15.0  # generous for a loaded machine; a hang is forever
SRC = frame(24, 32, seed=3)
WANT = resize_exact(SRC, 12, 16)


def child() -> int:
    """In the child: an exit status (0: all done, exact, on the PL)."""
    rz = pynq_cv.Resizer("emulator")
    if not np.array_equal(rz.resize(SRC, (16, 12)), WANT) or rz.stats.snapshot()["pl"] != 1:
        return 2
    logging.getLogger("pynq_cv").setLevel(logging.ERROR)  # rewatch_all
    default = pynq_cv.use_backend("emulator")
    if not np.array_equal(pynq_cv.resize(SRC, (16, 12)), WANT):
        return 3
    rz.close()
    default.close()
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
            t0 = time.monotonic()
            statuses.append(in_child(child, CHILD_SECONDS, tmp_path / f"child{k}.txt"))
            took.append(time.monotonic() - t0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        logger.setLevel(level)
    median = sorted(took)[len(took) // 2]
    print(f"{FORKS} forks: slowest child {max(took):.3f} s, median {median:.3f} s")
    assert statuses == [0] * FORKS, (statuses, reports(statuses, tmp_path)[:2])
