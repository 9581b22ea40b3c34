"""``Engine``: what an open PL path holds -- the board, its envelope, its costs and plans,
the pool and the driver. Made by ``Resizer`` when it opens, closed once when it closes."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import calibration as calibration_mod
from .descriptors import OverlayDescriptor, loaded_length_width
from .driver import Deadlines, ResizeDriver
from .envelope import Envelope
from .planner import Planner
from .pool import BufferPool


class Engine:
    """What an open PL path holds: the board, its envelope, its costs and plans, the pool
    and the driver. ``interpolations``, ``channels``, ``dtype``: the envelope's cheapest
    facts, read by the plain path before anything else (``Resizer.resize``)."""

    def __init__(
        self, board: Any, budget_bytes: int | None, deadlines: Deadlines,
        policy: str | None = None, calibration_source: Any = None, backend: str = "emulator",
        planning: str | None = None, fps: float | None = None,
    ) -> None:
        desc: OverlayDescriptor = board.descriptor
        self.board = board
        self.descriptor = desc
        self.envelope = Envelope.from_descriptor(
            desc, loaded_length_width(desc, board.overlay.ip_dict)
        )
        self.interpolations = self.envelope.interpolations
        self.channels = self.envelope.channels
        self.dtype = self.envelope.dtype
        pool_args = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
        can_free = getattr(board, "frees_memory", True)  # False on pynq 2.7
        self.pool = BufferPool(board.allocate, can_free=can_free, **pool_args)
        self.driver = ResizeDriver(
            board.overlay,
            desc.dma.name,
            desc.resizer.name,
            clock_hz=desc.clock_hz,
            deadlines=deadlines,
            reset_pl=board.reset_pl,
            scratch=self._scratch,
            shared=getattr(board, "shared_ip", None),
        )
        self._scratch_buf: Any = None
        on_board = backend == "board"  # board default: calibration_kind
        costs, self.costs_origin = calibration_mod.costs_for(
            desc.board, "board" if on_board else "emulator", calibration_source,
            getattr(desc, "cpu_family", None),
        )
        # board default: planning (measured once per shape; an emulated board measures
        # the board it emulates, see calibration.plan_measurer)
        measure = planning == "measure" or (planning is None and on_board)
        self.planner = Planner(
            costs, desc.clock_hz, policy,
            measure=calibration_mod.plan_measurer(self) if measure else None, fps=fps,
        )

    def _scratch(self, nbytes: int) -> Any:
        """A receive buffer for output a stuck IP still owes (kept, freed at close)."""
        if self._scratch_buf is None or self._scratch_buf.nbytes < nbytes:
            if self._scratch_buf is not None:
                self._scratch_buf.freebuffer()
            self._scratch_buf = self.board.allocate((nbytes,), np.uint8)
        return self._scratch_buf[:nbytes]

    def close(self) -> None:
        """Idempotent: a second close (after an interrupted one) finishes the job."""
        self.driver.close()  # waits for a frame in the IP; later begin() calls are refused
        self.pool.close()
        scratch, self._scratch_buf = self._scratch_buf, None
        if scratch is not None:
            scratch.freebuffer()
        self.board.close()
