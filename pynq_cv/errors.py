"""pynq_cv's own errors. cv2's errors stay cv2's: bad arguments raise ``cv2.error``."""

from __future__ import annotations

from typing import Any


class PynqCvError(Exception):
    """Base of pynq_cv's own errors."""


class SettingError(PynqCvError, ValueError):
    """A setting (argument or environment variable) has a value pynq_cv does not know; the
    message names the setting and the values it takes."""


class BackendUnavailable(PynqCvError):
    """The requested backend cannot be used here (the message says why).

    ``on_board`` is True when a bitstream was found or given but would not load or match
    its descriptor: a misconfigured board deserves a warning rather than a quiet fallback.
    ``reason`` is the fallback reason frames are counted under ("no_backend", or e.g.
    "pl_in_use", "pl_holds_other_overlay", "pl_state_unknown"); ``details`` goes into
    ``info()``."""

    def __init__(
        self, message: str, on_board: bool = False, *, reason: str = "no_backend",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.on_board = on_board
        self.reason = reason
        self.details = dict(details or {})


class PLFault(PynqCvError):
    """The PL path failed for one frame; the frame falls back to the CPU.

    ``kind`` names the fault for telemetry: "dma_error", "timeout", "short_transfer",
    "ip_stuck", "busy" (another frame held the IP past the deadline), "closed" (the engine
    was closed while the frame was prepared). ``recovery`` is what brought the hardware
    back ("dma_reset", "finish_frame", "pl_reset"), "failed", or "" when none was needed.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.recovery = ""


class FallbackError(PynqCvError):
    """Strict mode: a frame the PL was expected to take would have run on the CPU.

    ``reason`` is the fallback reason (a ``stats()["fallback"]`` key); the message says it
    in words. Raised instead of computing the frame with cv2, so a CI run fails loudly."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
