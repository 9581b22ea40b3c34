"""The emulator's band pool: a Ctrl-C while a frame's bands run leaves nothing held, every
band has stopped writing before the interrupt surfaces, and the pool keeps working."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
from conftest import frame

from pynq_cv.backends.emulator import arith


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM (POSIX)")
def test_an_interrupt_while_waiting_for_bands_waits_for_them_and_leaves_the_pool_working():
    finished = []

    def slow_band(index: int) -> None:
        time.sleep(0.2)
        finished.append(index)

    def interrupt(signum, frame_):  # noqa: ARG001 -- a Ctrl-C at a random instant
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        bands = [arith._submit(slow_band, i) for i in range(4)]
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            arith._wait_all(bands)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert sorted(finished) == [0, 1, 2, 3], "every band stopped writing first"
    assert all(band.fn is None for band in bands), "every band ran to its end"
    src = frame(1080, 1920, seed=3)  # several bands: the pool still runs frames
    assert np.array_equal(arith.resize_exact(src, 540, 960),
                          arith.resize_exact(src.copy(), 540, 960))
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("pynq_cv-ip"))


def test_a_bands_error_is_raised_after_every_band_finished():
    finished = []

    def band(index: int) -> None:
        if index == 1:
            raise ValueError("band 1 failed")
        time.sleep(0.05)
        finished.append(index)

    with pytest.raises(ValueError, match="band 1 failed"):
        arith._wait_all([arith._submit(band, i) for i in range(3)])
    assert sorted(finished) == [0, 2]
