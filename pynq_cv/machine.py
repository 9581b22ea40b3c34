"""What the machine a report describes holds: cv2's CPU baseline and threads, the kernel's
CMA, what the PL holds -- the facts a board owner attaches to an issue (``pynq-cv doctor``'s
first section), read without changing anything (cv2's thread setting is put back)."""

from __future__ import annotations

import re
from pathlib import Path

import cv2


def cv2_baseline() -> dict[str, str]:
    """cv2's CPU baseline and dispatched code paths, from its build information."""
    text = cv2.getBuildInformation()
    found = {}
    for name, key in (("baseline", "Baseline"), ("dispatched", "Dispatched code generation"),
                      ("parallel_framework", "Parallel framework")):
        match = re.search(rf"^\s*{key}:\s*(.*)$", text, re.MULTILINE)
        found[name] = match.group(1).strip() if match else "unknown"
    return found


def restore_cv2_threads(before: int) -> None:
    """cv2's thread count back to what it was: OpenCV's default setting (-1) when the count
    was the default one, else that count -- the doctor leaves no setting of its own behind."""
    cv2.setNumThreads(-1)
    if cv2.getNumThreads() != before:
        cv2.setNumThreads(before)


def cma_from_meminfo() -> dict[str, int] | None:
    """CmaTotal and CmaFree in bytes from /proc/meminfo (None where the kernel has no CMA)."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = {k: int(v) * 1024 for k, v in re.findall(r"^(Cma\w+):\s+(\d+) kB", text, re.M)}
    return found or None


def loaded_bitstream() -> str | None:
    """What pynq says the PL holds, read before anything is loaded (None if unknown)."""
    try:
        import pynq

        from .backends.board import loaded_bitstream as read_pl

        return read_pl(pynq)
    except Exception as exc:  # noqa: BLE001 -- an image without pynq, or a PL pynq cannot read
        return f"unknown ({type(exc).__name__}: {exc})"
