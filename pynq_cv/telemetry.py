"""Counters behind ``pynq_cv.stats()``: where frames ran, why some fell back, what it cost."""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable

from .log import logger

FOLD_AT = 65536  # fallback events kept unfolded at most (a few hundred KB)

FrameObserver = Callable[..., None]
"""Called once per frame in the resizing thread: (fallback reason or None for the PL,
modelled board seconds of the whole PL path, bytes moved through the DMA[, compare mode's
(max difference, differing pixels, pixels) for a PL frame]). Used by the per-call-site
profile."""

frame_observer: FrameObserver | None = None


EMULATOR_NOTICE = (
    "pynq_cv: frames for the PL run on pynq_cv's board emulator, not a PYNQ board: "
    "the IP's arithmetic, up to 1 apart from cv2.resize per pixel, and slower "
    "than cv2 on this machine; PYNQ_CV_BACKEND=cpu gives plain cv2.resize"
)
_emulator_noticed = False


def _notice_emulated() -> None:
    """The first emulated frame of the process: one WARNING through the ``pynq_cv`` logger
    (the application's handlers, else logging's last resort on stderr), never
    ``warnings.warn``, which ``-W error`` suites would turn into a failure."""
    global _emulator_noticed
    if not _emulator_noticed:
        _emulator_noticed = True
        logger.log(logging.WARNING, EMULATOR_NOTICE)


def observe(observer: FrameObserver | None) -> None:
    """Report every frame to ``observer`` (None: stop), from engines made from now on and
    from those told by ``resizer.rewatch_all()`` (engines watch only while asked)."""
    global frame_observer
    frame_observer = observer


class Stats:
    """Thread-safe counters; ``snapshot()`` (or calling the object: ``rz.stats()``, as
    ``pynq_cv.stats()`` for the shared engine) is a plain dict, ``reset()`` zeroes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cpu_events: deque[str] = deque()  # fallback reasons not yet folded in
        self.backend: str | None = None  # set when the engine opens ("cpu" if no PL path)
        self.emulated = False  # True when "pl" frames are computed by an emulator
        self.reset()

    def renew_lock(self) -> None:
        """In a forked child: a fresh lock (a parent's thread may have held this one)."""
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.cpu_events.clear()  # cleared, not replaced: hot paths hold its append
            self.pl = 0
            self.cpu = 0
            self.fallback: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.bytes_in = 0
            self.bytes_out = 0
            self.pl_seconds = 0.0
            self.board_seconds = 0.0
            self.copies_in = 0
            self.copies_out = 0
            self.recoveries: Counter[str] = Counter()
            self.compared = 0  # compare mode: PL frames also computed by cv2
            self.compare_max = 0
            self.compare_differing = 0  # pixels with any channel differing
            self.compare_pixels = 0

    def count_cpu(self, reason: str) -> None:
        """Hot path (every fallback frame): an atomic append, folded into counts later."""
        events = self.cpu_events
        events.append(reason)
        if len(events) > FOLD_AT:
            self.fold()

    def fold(self) -> None:
        """Move appended fallback events into the counters (popleft is atomic)."""
        with self._lock:
            events = self.cpu_events
            for _ in range(len(events)):
                reason = events.popleft()
                self.cpu += 1
                self.fallback[reason] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def count_recovery(self, how: str) -> None:
        with self._lock:
            self.recoveries[how] += 1

    def count_compare(self, max_diff: int, differing: int, pixels: int) -> None:
        with self._lock:
            self.compared += 1
            self.compare_max = max(self.compare_max, max_diff)
            self.compare_differing += differing
            self.compare_pixels += pixels

    def count_pl(
        self, bytes_in: int, bytes_out: int, seconds: float, board_seconds: float,
        copied_in: bool, copied_out: bool,
    ) -> None:
        if self.emulated and not _emulator_noticed:
            _notice_emulated()
        if self.cpu_events:
            self.fold()
        with self._lock:
            self.pl += 1
            self.bytes_in += bytes_in
            self.bytes_out += bytes_out
            self.pl_seconds += seconds
            self.board_seconds += board_seconds
            self.copies_in += copied_in
            self.copies_out += copied_out

    def __call__(self) -> dict[str, object]:
        """``rz.stats()``: the same plain dict as ``snapshot()``."""
        return self.snapshot()

    def snapshot(self) -> dict[str, object]:
        self.fold()
        with self._lock:
            return {
                "backend": self.backend,
                "pl": self.pl,
                "emulated": self.pl if self.emulated else 0,  # of "pl": computed by an emulator
                "cpu": self.cpu,
                "fallback": dict(self.fallback),
                "faults": dict(self.faults),
                "recoveries": dict(self.recoveries),
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "bytes_moved": self.bytes_in + self.bytes_out,
                "pl_seconds": self.pl_seconds,
                "board_seconds": self.board_seconds,
                "copies_in": self.copies_in,
                "copies_out": self.copies_out,
                "compare": {
                    "frames": self.compared,
                    "max_diff": self.compare_max,
                    "differing_share": self.compare_differing / self.compare_pixels
                    if self.compare_pixels else 0.0,
                },
            }
