"""One lock order (resizer.py's docstring): close() and the first submit() of an engine not
yet opened never wait for each other in a cycle, whatever the interleaving."""

from __future__ import annotations

import threading
import time

import numpy as np
from conftest import frame

import pynq_cv
from pynq_cv.dispatch import CV2_RESIZE


class PausingLock:
    """A lock that pauses whoever takes it in the thread named ``closer`` while held, so
    that another thread runs in between (the interleaving that once deadlocked)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken_by_closer = threading.Event()

    def acquire(self, *args, **kwargs):
        got = self._lock.acquire(*args, **kwargs)
        if got and threading.current_thread().name == "closer":
            self.taken_by_closer.set()
            time.sleep(0.2)
        return got

    def release(self):
        self._lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def test_close_while_the_first_submit_opens_the_engine_never_deadlocks():
    src = frame(40, 60)
    for _ in range(3):
        rz = pynq_cv.Resizer("emulator")
        rz._open_lock = PausingLock()
        results = []
        closer = threading.Thread(target=rz.close, name="closer", daemon=True)
        submitter = threading.Thread(
            target=lambda rz=rz, results=results: results.append(
                rz.submit(src, (30, 20)).result()
            ),
            daemon=True,
        )
        closer.start()
        assert rz._open_lock.taken_by_closer.wait(5)
        submitter.start()
        closer.join(5)
        submitter.join(5)
        assert not closer.is_alive() and not submitter.is_alive(), "deadlock"
        # closed first: the frame ran on the CPU, exactly as cv2 computes it
        np.testing.assert_array_equal(results[0], CV2_RESIZE(src, (30, 20)))
        assert rz.engine is None


def test_close_and_submit_from_many_threads_always_finish():
    src = frame(40, 60)
    for _ in range(10):
        rz = pynq_cv.Resizer("emulator")
        errors = []

        def work(rz=rz, errors=errors):
            try:
                for _ in range(3):
                    out = rz.submit(src, (30, 20)).result()
                    assert out.shape == (20, 30, 3)
            except Exception as exc:  # noqa: BLE001 -- reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, daemon=True) for _ in range(3)]
        threads.append(threading.Thread(target=rz.close, daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not any(t.is_alive() for t in threads), "deadlock"
        assert errors == []
        rz.close()
