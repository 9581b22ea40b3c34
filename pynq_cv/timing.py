"""The resizer IP's cycle model, shared by the emulator (pacing) and the driver (deadlines).

RTL simulation of the 2020 build fits ``R*C + 11*R + 2.3*C + 230`` cycles within 2%, with
R = max(in rows, out rows) and C = max(in cols, out cols): one pixel per clock plus a small
per-row and per-frame cost. The 32-bit DMA moves 4 bytes per clock each way, faster than the
IP's 3 bytes per clock, so the IP sets the pace.
"""

from __future__ import annotations

DEFAULT_CLOCK_HZ = 100_000_000


def frame_cycles(in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> int:
    """Modelled clock cycles for one frame through the IP."""
    r = max(in_rows, out_rows)
    c = max(in_cols, out_cols)
    return r * c + 11 * r + (23 * c) // 10 + 230


def frame_seconds(
    in_rows: int, in_cols: int, out_rows: int, out_cols: int, clock_hz: int = DEFAULT_CLOCK_HZ
) -> float:
    """Modelled board time for one frame, in seconds."""
    return frame_cycles(in_rows, in_cols, out_rows, out_cols) / clock_hz


def floor_seconds(
    in_rows: int, in_cols: int, out_rows: int, out_cols: int, clock_hz: int = DEFAULT_CLOCK_HZ
) -> float:
    """The IP's floor: max(in pixels, out pixels) at one pixel per clock."""
    return max(in_rows * in_cols, out_rows * out_cols) / clock_hz
