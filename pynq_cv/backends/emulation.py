"""Which ``pynq_cv.emulate()`` block this process is in: inside one, the emulated board's PL
is "the machine's PL" for the board backend, as ``/sys/class/fpga_manager`` is on a board.

A fact of the bottom layer, kept below both its reader (``backends/board.py``) and its
writer (``emulate.py``, which builds on the emulator and the runner above the engine)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the emulations entered in this process, innermost last (see ``active_emulation``)
_active: list[Emulation] = []


@dataclass
class Emulation:
    """What ``emulate()`` gives the ``with`` block."""

    bitstream: str  # the .bit to hand pynq.Overlay (a .hwh sits beside it)
    board: Any  # the EmulatedBoard (memory, faults, frames, modelled time)
    device: Any  # the pynq.Device pynq now uses by default

    @property
    def hwh(self) -> str:
        return str(Path(self.bitstream).with_suffix(".hwh"))


def active_emulation() -> Emulation | None:
    """The innermost ``emulate()`` block this process is in (None outside): its PL is
    "the machine's PL" for the board backend, as ``/sys/class/fpga_manager`` is on a board."""
    return _active[-1] if _active else None


@contextlib.contextmanager
def entered(emulation: Emulation) -> Iterator[Emulation]:
    """``emulation`` is the innermost one for the ``with`` block."""
    _active.append(emulation)
    try:
        yield emulation
    finally:
        _active.remove(emulation)
