"""A fault inside ``submit()`` (a frame over the pool budget, a DMA error at post, the turn
saying ``busy``) makes that frame a CPU frame, counted once, and gives back what it took
without giving the turn away: the engine's shared state (``_pending``) is only ever written
by whoever holds the turn. ``result()`` and ``stream()`` never raise ``PLFault``."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
from conftest import frame

from pynq_cv.backends.emulator.arith import resize_exact
from pynq_cv.dispatch import Resizer
from pynq_cv.errors import PLFault
from pynq_cv.turn import Turn

SMALL, BIG = frame(24, 32, seed=1), frame(160, 200, seed=2)
WANT_SMALL, WANT_BIG = resize_exact(SMALL, 12, 16), resize_exact(BIG, 80, 100)


class Watched(Resizer):
    """Records every write of ``_pending`` made while nobody holds the turn."""

    outside: list[str]

    @property
    def _pending(self):
        return self.__dict__.get("_pending_value")

    @_pending.setter
    def _pending(self, value):
        turn = self.__dict__.get("_turn")
        if "outside" in self.__dict__ and turn is not None and turn.holder() is None:
            self.outside.append(repr(value))
        self.__dict__["_pending_value"] = value


class SaysBusy(Turn):
    def __init__(self) -> None:
        super().__init__()
        self.armed = 0
        self.entries: list[object] = []

    def enter(self, ticket):
        self.entries.append(ticket)
        if self.armed:
            self.armed -= 1
            raise PLFault("busy", "injected")
        return super().enter(ticket)


def engine(**kwargs) -> Watched:
    rz = Watched("emulator", policy="pl", budget_bytes=100_000, **kwargs).open()  # BIG: over
    rz._turn = SaysBusy()
    rz.outside = []
    return rz


@pytest.mark.parametrize("fault", ["pool_budget", "dma_error", "busy_at_submit",
                                   "busy_at_result"])
def test_a_fault_in_submit_is_a_cpu_frame_and_the_turn_is_not_given_away(fault):
    rz = engine()
    faults = rz.engine.board.faults
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        first = rz.submit(SMALL, (16, 12))  # in the IP while the next one faults
        src, want = (BIG, WANT_BIG) if fault == "pool_budget" else (SMALL, WANT_SMALL)
        if fault == "dma_error":
            faults.dma_error("send")
        if fault == "busy_at_submit":
            rz._turn.armed = 1
        faulty = rz.submit(src, (want.shape[1], want.shape[0]))
        if fault == "busy_at_result":
            rz._turn.armed = 1
        last = rz.submit(SMALL, (16, 12))
        outs = [h.result() for h in (first, faulty, last)]
    for out, expected in zip(outs, [WANT_SMALL, want, WANT_SMALL], strict=True):
        np.testing.assert_array_equal(out, expected)
    s = rz.stats.snapshot()
    assert s["pl"] + s["cpu"] == 3, s
    assert sum(s["faults"].values()) >= 1, s
    assert rz.outside == [], "submit wrote the engine's state outside the turn"
    assert rz._turn.queued() == 0
    assert not rz.engine.driver.shared.lock.locked()
    rz.resize(SMALL, (16, 12))  # collects a frame a busy result() left to the turn
    assert rz.engine.pool.stats()["in_use"] == 0
    rz.close()


def test_busy_everywhere_in_a_stream_still_yields_every_frame_exact():
    rz = engine()
    rz._turn.armed = 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = list(rz.stream([SMALL] * 6, (16, 12)))
    assert len(outs) == 6 and all(np.array_equal(o, WANT_SMALL) for o in outs)
    s = rz.stats.snapshot()
    assert s["pl"] + s["cpu"] == 6 and s["faults"].get("busy") == 5, s
    rz.close()


def test_a_busy_result_and_a_turn_holder_settling_the_same_frame_count_it_once():
    """A result() told busy makes a CPU frame while another thread, holding the turn,
    collects the same frame: one value, counted once."""
    for _ in range(30):
        rz = engine()
        handle = rz.submit(SMALL, (16, 12))
        rz._turn.armed = 1
        go = threading.Barrier(2)

        def other(rz=rz, go=go) -> None:
            go.wait()
            rz.resize(SMALL, (16, 12))  # settles the submitted frame first

        t = threading.Thread(target=other)
        t.start()
        go.wait()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(handle.result(), WANT_SMALL)
        t.join(10)
        s = rz.stats.snapshot()
        assert s["pl"] + s["cpu"] == 2, s
        assert rz.engine.pool.stats()["in_use"] == 0 and rz._turn.queued() == 0
        rz.close()


def test_a_ctrl_c_while_waiting_for_the_turn_leaves_nothing_queued():
    turn = Turn()
    turn.enter("head")

    class Ticket:
        bound = 10.0

    waiting = Ticket()
    err: list[BaseException] = []

    def wait() -> None:
        try:
            turn.enter(waiting)
        except BaseException as exc:  # noqa: BLE001
            err.append(exc)

    import ctypes

    t = threading.Thread(target=wait)
    t.start()
    while turn.queued() < 2:
        pass
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident),
                                               ctypes.py_object(KeyboardInterrupt))
    turn.leave("head")  # wakes the waiter, which then meets the interrupt (or has met it)
    t.join(10)
    assert not t.is_alive()
    if err:
        assert isinstance(err[0], KeyboardInterrupt) and turn.queued() == 0
    else:  # it took the turn before the interrupt: it holds it
        assert turn.holder() is waiting
        turn.leave(waiting)
    assert turn.enter("next") and turn.holder() == "next" and turn.queued() == 1
