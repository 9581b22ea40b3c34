"""The emulated board's AXI-Lite bus as pynq's ``MMIO`` sees it: a ``RegisterWindow`` of
32-bit words, what ``Device.mmap`` hands back, each access reaching an emulated register
file with its side effects."""

from __future__ import annotations

from operator import index
from typing import Any

import numpy as np

__all__ = ["WORD", "RegisterWindow"]

WORD = 4


class RegisterWindow:
    """What pynq's ``MMIO`` gets from ``Device.mmap``: 32-bit words of one IP's registers.

    ``MMIO.read`` does ``int(array[offset >> 2])`` and ``MMIO.write`` does
    ``array[offset >> 2] = np.uint32(value)``; this forwards both to the emulated IP's
    register file (its ``read(offset)`` / ``write(offset, int)``), so every bus access has
    its side effects (a LENGTH write starts a transfer, reading ap_done clears it).
    ``register_map`` binds to it as to a board's mapping: ``view("u4")`` and word slices
    give windows onto the same registers. ``monitor`` (optional) sees every access: the
    watchdog of ``pynq_cv.emulate``.
    """

    __slots__ = ("_ip", "_offset", "_words", "_monitor", "base", "length")

    def __init__(
        self, ip: Any, base: int, offset: int, length: int, monitor: Any = None
    ) -> None:
        self._ip = ip
        self._offset = offset  # of this window's first word inside the IP's register space
        self._words = length // WORD
        self._monitor = monitor
        self.base = base
        self.length = length

    def __len__(self) -> int:
        return self._words

    def view(self, dtype: Any = None) -> RegisterWindow:
        """The window itself: it is 32-bit words already (all pynq's register maps ask)."""
        if dtype is not None and np.dtype(dtype) != np.uint32:
            raise TypeError(f"emulated registers are 32-bit words, not {np.dtype(dtype)}")
        return self

    def _window(self, item: slice) -> RegisterWindow:
        start, stop, step = item.indices(self._words)
        if step != 1:
            raise IndexError("register windows take contiguous word slices only")
        stop = max(start, stop)
        return RegisterWindow(
            self._ip, self.base + start * WORD, self._offset + start * WORD,
            (stop - start) * WORD, self._monitor,
        )

    def _address(self, item: Any) -> int:
        i = index(item)  # numpy and Python ints
        if i < 0:
            i += self._words
        if not 0 <= i < self._words:
            raise IndexError(
                f"word {item} outside the {self.length}-byte window at {self.base:#x}"
            )
        return self._offset + i * WORD

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            return self._window(item)
        offset = self._address(item)
        value = self._ip.read(offset) & 0xFFFFFFFF
        if self._monitor is not None:
            self._monitor.read(self.base - self._offset + offset, value)
        return np.uint32(value)

    def __setitem__(self, item: Any, value: Any) -> None:
        if isinstance(item, slice):
            window = self._window(item)
            values = np.broadcast_to(np.asarray(value), (window._words,))
            for i, word in enumerate(values):
                window[i] = word
            return
        offset = self._address(item)
        if self._monitor is not None:
            self._monitor.wrote(self.base - self._offset + offset)
        self._ip.write(offset, int(value) & 0xFFFFFFFF)

    def __repr__(self) -> str:
        return f"<RegisterWindow {self.length} bytes at {self.base:#x}>"
