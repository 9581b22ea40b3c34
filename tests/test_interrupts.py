"""Ctrl-C anywhere in the PL path: KeyboardInterrupt is raised at every line of dispatch,
pipeline, turn, driver and pool, and after every C call they make, in turn
(``sys.settrace``, ``sys.setprofile``) -- and at every line of the standard library's
threading code (``threading``, ``concurrent.futures``, ``queue``) they call, where CPython
also delivers signals (e.g. inside ``Condition.__enter__``, after its lock is taken) --
for ``resize``, ``submit``, ``stream``, ``lend`` and ``close``. Afterwards no lock is held,
no buffer is in use, every other call's frame is intact, and the next frame is exact on the
PL."""

from __future__ import annotations

import concurrent.futures._base
import concurrent.futures.thread
import queue
import sys
import threading
import warnings

import numpy as np
import pytest
from conftest import frame

import pynq_cv
from pynq_cv import dispatch, driver, pipeline, pool, resizer, turn
from pynq_cv import frame as frame_steps
from pynq_cv.backends.emulator.arith import resize_exact

TRACED = {m.__file__ for m in (dispatch, resizer, frame_steps, pipeline, turn, driver, pool)}
STDLIB = {m.__file__ for m in (threading, concurrent.futures._base,
                               concurrent.futures.thread, queue)}


def in_the_pl_path(frame_) -> bool:
    """A frame of the traced modules, or of the standard library called from them."""
    name = frame_.f_code.co_filename
    while name in STDLIB:
        frame_ = frame_.f_back
        if frame_ is None:
            return False
        name = frame_.f_code.co_filename
    return name in TRACED
SRC = [frame(24, 32, seed=s) for s in range(4)]
# Small frames need little CMA; op_close opens a board per interrupt point, and 128 MiB
# each would exhaust a 32-bit (armv7l) address space before the old ones are collected.
SMALL_CMA = 4 << 20
DSIZE = (16, 12)
WANT = [resize_exact(s, 12, 16) for s in SRC]


class Interrupt:
    """Raises KeyboardInterrupt at the ``at``-th point of the traced modules (once): every
    line, and just after every C call returns (where CPython also delivers a pending
    SIGINT); ``at=0`` only counts."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.lines = 0
        self.fired = False
        self.frames: set[str] = set()  # the files traced

    def __enter__(self) -> Interrupt:
        sys.setprofile(self._after_c_call)
        sys.settrace(self._call)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)
        sys.setprofile(None)

    def _after_c_call(self, frame_, event, arg):
        if event == "c_return" and in_the_pl_path(frame_):
            self._count(f"after {getattr(arg, '__name__', arg)}() at line {frame_.f_lineno}")

    def _call(self, frame_, event, arg):
        if in_the_pl_path(frame_):
            self.frames.add(frame_.f_code.co_filename)
            return self._line
        return None

    def _line(self, frame_, event, arg):
        if event == "line":
            self._count(f"line {frame_.f_lineno} of {frame_.f_code.co_name}")
        return self._line

    def _count(self, where: str) -> None:
        if not self.fired:
            self.lines += 1
            if self.lines == self.at:
                self.fired = True
                raise KeyboardInterrupt(where)


def op_resize(rz):
    np.testing.assert_array_equal(rz.resize(SRC[0], DSIZE), WANT[0])
    return []


def op_resize_beside_a_submitted_frame(rz):
    return [(rz.submit(SRC[1], DSIZE), WANT[1])], lambda: rz.resize(SRC[0], DSIZE)


def op_submit(rz):
    return [(rz.submit(SRC[1], DSIZE), WANT[1])], lambda: [(rz.submit(SRC[2], DSIZE), WANT[2])]


def op_stream(rz):
    outs = list(rz.stream(SRC[:3], DSIZE))
    for out, want in zip(outs, WANT[:3], strict=True):
        np.testing.assert_array_equal(out, want)
    return []


LENT: list = []  # what op_lend's caller got: its own to give back (again, if interrupted)


def op_lend(rz):
    buf = rz.lend(SRC[0].shape)
    LENT.append(buf)
    try:
        buf[:] = SRC[0]
        np.testing.assert_array_equal(rz.resize(buf, DSIZE), WANT[0])
    finally:
        rz.give_back(buf)
    return []


def op_close(rz):
    return [(rz.submit(SRC[1], DSIZE), WANT[1])], rz.close


def split(op, rz):
    """(frames submitted before the traced call, the traced call)."""
    if op in (op_resize, op_stream, op_lend):
        return [], lambda: op(rz)
    return op(rz)


def assert_clean(rz, handles, closing):
    """Other calls' frames intact; no turn, IP lock or buffer held; the PL works on."""
    for handle, want in handles:
        np.testing.assert_array_equal(handle.result(), want)
    if closing:
        engine = rz.engine
        rz.close()  # an interrupted close can be finished by calling it again
        assert rz.engine is None and engine is None or engine.board.memory.live_buffers == 0
        return
    engine = rz.engine
    while LENT:  # a give_back cut short by the interrupt: the caller gives it back again
        buf = LENT.pop()
        if engine.pool.is_lent(buf):
            rz.give_back(buf)
    before = rz.stats.snapshot()["pl"]
    np.testing.assert_array_equal(rz.resize(SRC[3], DSIZE), WANT[3])
    assert rz.stats.snapshot()["pl"] >= before + 1, "the next frame did not run on the PL"
    # (a frame an interrupted stream left in flight is collected by that next frame)
    assert rz._turn.queued() == 0, "a place in the turn was never given up"
    assert not engine.driver.shared.lock.locked(), "the IP lock is held"
    assert rz._pending is None or rz._pending.done()
    s = engine.pool.stats()
    assert s["in_use"] == 0 and s["in_use_bytes"] == 0, s


@pytest.mark.parametrize(
    "op",
    [op_resize, op_resize_beside_a_submitted_frame, op_submit, op_stream, op_lend, op_close],
)
def test_an_interrupt_at_any_line_leaves_nothing_held_and_the_pl_working(op):
    closing = op is op_close
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rz = pynq_cv.Resizer("emulator", cma_bytes=SMALL_CMA).open()
        for _ in range(2):  # the first round warms plans and buffers; the second counts
            handles, call = split(op, rz)
            with Interrupt(0) as count:
                result = call()
            for handle, want in handles + (result if isinstance(result, list) else []):
                np.testing.assert_array_equal(handle.result(), want)
            if closing:
                rz = pynq_cv.Resizer("emulator", cma_bytes=SMALL_CMA).open()
        assert count.lines > 20
        fired = 0
        for k in range(1, count.lines + 1):
            if rz is None:
                rz = pynq_cv.Resizer("emulator", cma_bytes=SMALL_CMA).open()
                rz.resize(SRC[0], DSIZE)  # warm, as when counting
            handles, call = split(op, rz)
            result, where = None, ""
            try:
                with Interrupt(k) as hit:
                    result = call()
            except KeyboardInterrupt as exc:
                where = str(exc)
            fired += hit.fired
            more = result if isinstance(result, list) else []
            try:
                assert_clean(rz, handles + more, closing)
            except AssertionError as exc:
                raise AssertionError(f"interrupt {k}/{count.lines} at {where}: {exc}") from exc
            if closing:
                rz = None
        assert fired >= count.lines * 0.9  # the call took (about) the same lines each time
        if rz is not None:
            rz.close()


class Interrupted(BaseException):
    """What our SIGINT handler raises (KeyboardInterrupt stays pytest's own)."""


def test_real_sigints_at_random_instants_never_leak_nor_hurt_other_threads():
    """SIGINT to the main thread while it streams and other threads resize on the same
    engine: the main thread sees only the interrupt, the others never an error."""
    import random
    import signal
    import threading
    import time

    rz = pynq_cv.Resizer("emulator", cma_bytes=SMALL_CMA).open()
    errors: list[str] = []
    stop = threading.Event()
    armed = threading.Event()

    def handler(signum, frame_):
        if armed.is_set():
            raise Interrupted

    def other(seed: int) -> None:
        src, want = SRC[seed], WANT[seed]
        while not stop.is_set():
            try:
                out = rz.resize(src, DSIZE)
                if not np.array_equal(out, want):
                    errors.append("wrong frame")
            except BaseException as exc:  # noqa: BLE001 -- the test reports it
                errors.append(repr(exc))

    previous = signal.signal(signal.SIGINT, handler)
    others = [threading.Thread(target=other, args=(s,)) for s in (2, 3)]
    for t in others:
        t.start()
    interrupted = 0
    rng = random.Random(14)
    main = threading.main_thread().ident
    try:
        for _ in range(60):
            timer = threading.Timer(rng.uniform(0, 0.004),
                                    lambda: signal.pthread_kill(main, signal.SIGINT))
            try:
                try:
                    armed.set()
                    timer.start()
                    for out, want in zip(rz.stream(SRC[:2] * 4, DSIZE), WANT[:2] * 4,
                                         strict=True):
                        np.testing.assert_array_equal(out, want)
                    timer.join()
                    time.sleep(0.001)
                finally:
                    armed.clear()
                    timer.join()
            except Interrupted:
                interrupted += 1
            timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
        for t in others:
            t.join(10)
    assert errors == []
    assert interrupted > 10  # the signals did land mid-stream
    np.testing.assert_array_equal(rz.resize(SRC[0], DSIZE), WANT[0])
    engine = rz.engine
    assert rz._turn.queued() == 0 and not engine.driver.shared.lock.locked()
    assert engine.pool.stats()["in_use"] == 0
    rz.close()
    assert engine.board.memory.live_buffers == 0
