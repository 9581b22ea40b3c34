"""What each path costs on the board: the PL path (copies, cache maintenance, registers, the
IP's cycles) and ``cv2.resize`` on the board's own CPU.

The constants come per CPU family (``overlays/costs/*.json``, next to the descriptors), each
with the source it was taken from and its range (low, taken, high, each end with its own
source): the evidence is a range, and a decision that flips inside it is reported as
uncertain (``corner()``). A calibration file (``pynq-cv calibrate``) or explicit overrides
replace them one by one (a measured value is a point), and every constant remembers where
its value came from. A board without a shipped profile gets its CPU family's
(``family_for``). All of it is arithmetic on those constants: nothing here times anything.

    PL latency = copy in + flush + IP + invalidate + copy out + per-frame driver overhead
    PL CPU     = latency - IP        (the driver sleeps through the IP's modelled time)
    cv2 wall   = input bytes / area rate        (exact 2x: cv2's INTER_AREA fast path)
               | output bytes x bilinear cost   (every other INTER_LINEAR size pair)
    cv2 CPU    = wall x cv2's threads

A buffer the CPU reaches uncached (pynq's ``cacheable=False``: write-combined under XRT)
needs no flush or invalidate, takes writes at about cached speed, and is slow to read; a
cacheable one is fast both ways but needs the cache maintenance. ``roles()`` picks each
pool buffer's kind from these numbers.
"""

from __future__ import annotations

import json
import math
import platform
import re
from dataclasses import dataclass, field, replace
from typing import Any

from . import timing
from .descriptors import FAMILY_ALIASES, shipped_dir

# name -> (unit, what it is); the profiles must give every one of them
CONSTANTS: dict[str, tuple[str, str]] = {
    "memcpy_bytes_per_s": ("B/s", "np.copyto between cacheable buffers"),
    "wc_write_bytes_per_s": ("B/s", "copy into a non-cacheable (write-combined) buffer"),
    "uncached_read_bytes_per_s": ("B/s", "copy out of a non-cacheable buffer"),
    "flush_s_per_byte": ("s/B", "flush (clean) of a cacheable buffer before the DMA reads"),
    "invalidate_s_per_byte": ("s/B", "invalidate of a cacheable buffer after the DMA wrote"),
    "register_access_s": ("s", "one MMIO register read or write from Python"),
    "register_accesses": ("count", "register accesses of one frame's driver sequence"),
    "frame_python_s": ("s", "Python work of one PL frame besides copies and registers"),
    "cv2_area2x_bytes_per_s": ("B/s", "cv2.resize input bytes/s on an exact 2x downscale"),
    "cv2_bilinear_s_per_out_byte": ("s/B", "cv2.resize wall time per output byte, bilinear"),
    "cv2_call_s": ("s", "fixed cost of one cv2.resize call"),
    "cv2_threads": ("count", "threads cv2.resize keeps busy"),
}


# Constants whose higher value makes the PL look better against cv2 (faster copies, a slower
# cv2); for every other constant the lower value does. ``corner`` uses it.
PL_FAVOURED_HIGH = frozenset({
    "memcpy_bytes_per_s", "wc_write_bytes_per_s", "uncached_read_bytes_per_s",
    "cv2_bilinear_s_per_out_byte", "cv2_call_s", "cv2_threads",
})


@dataclass(frozen=True)
class Constant:
    value: float
    source: str  # where the number comes from (a publication, a calibration file, ...)
    origin: str = "published"  # "published" | "calibration" | "measured" | "override"
    low: float | None = None  # the evidence's range; None: a point (measured, given)
    high: float | None = None
    low_source: str = ""
    high_source: str = ""

    @property
    def span(self) -> tuple[float, float]:
        """(low, high): the value itself for a point."""
        low = self.value if self.low is None else self.low
        return low, self.value if self.high is None else self.high


@dataclass(frozen=True)
class BoardCosts:
    """One CPU family's constants, each with its source and origin."""

    family: str
    constants: dict[str, Constant]
    notes: str = ""
    machine: str = ""  # which machine these numbers describe (a board's model, a host, ...)

    def __getattr__(self, name: str) -> float:
        try:
            return self.__dict__["constants"][name].value
        except KeyError:
            raise AttributeError(name) from None

    def with_values(self, values: dict[str, Any], source: str, origin: str) -> BoardCosts:
        """A copy with some constants replaced (unknown names and bad values refused)."""
        merged = dict(self.constants)
        for name, value in values.items():
            if name not in CONSTANTS:
                raise ValueError(f"unknown cost constant {name!r}; known: {sorted(CONSTANTS)}")
            number = value["value"] if isinstance(value, dict) else value
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ValueError(f"cost constant {name!r} must be a number, got {number!r}")
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"cost constant {name!r} must be finite and >= 0: {number}")
            why = value.get("source", source) if isinstance(value, dict) else source
            merged[name] = Constant(float(number), why, origin)  # measured or given: a point
        return replace(self, constants=merged)

    def corner(self, favour: str) -> BoardCosts:
        """Every constant at the end of its range that favours ``favour`` ("pl" or "cpu"):
        the two extremes a decision is checked at (each cost is monotonic in each
        constant, so a decision that holds at both corners holds across the ranges)."""
        moved = {}
        for name, c in self.constants.items():
            low, high = c.span
            high_for_pl = name in PL_FAVOURED_HIGH
            moved[name] = replace(c, value=high if high_for_pl == (favour == "pl") else low)
        return replace(self, constants=moved)

    @property
    def has_ranges(self) -> bool:
        return any(c.span[0] != c.span[1] for c in self.constants.values())

    def describe(self) -> dict[str, dict[str, Any]]:
        """name -> value, unit, origin, source, range: what ``pynq-cv info`` prints."""
        out = {}
        for name, c in self.constants.items():
            entry = {"value": c.value, "unit": CONSTANTS[name][0], "origin": c.origin,
                     "source": c.source}
            if c.low is not None or c.high is not None:
                entry.update(low=c.span[0], high=c.span[1], low_source=c.low_source,
                             high_source=c.high_source)
            out[name] = entry
        return out


_PROFILES: dict[str, BoardCosts] = {}


def _profiles() -> dict[str, BoardCosts]:
    """Every shipped profile, keyed by the boards it covers (lower case)."""
    if not _PROFILES:
        # the installed package data, or the tree's overlays/ when run from a source tree
        for entry in shipped_dir().joinpath("costs").iterdir():
            if not entry.name.endswith(".json"):
                continue
            data = json.loads(entry.read_text(encoding="utf-8"))
            consts = {name: _published(entry.name, name, c)
                      for name, c in data["constants"].items()}
            missing = set(CONSTANTS) - set(consts)
            if missing:
                raise ValueError(f"{entry.name} lacks cost constants {sorted(missing)}")
            costs = BoardCosts(data["family"], consts, data.get("notes", ""))
            _PROFILES["family:" + data["family"]] = costs
            for board in data["boards"]:
                _PROFILES[board.lower()] = costs
    return _PROFILES


def _published(file: str, name: str, c: dict[str, Any]) -> Constant:
    """One shipped constant with its range (low <= taken <= high, each end with a source)."""
    value = float(c["value"])
    low, high = float(c.get("low", value)), float(c.get("high", value))
    if not low <= value <= high:
        raise ValueError(f"{file}: {name}: range [{low}, {high}] does not hold {value}")
    return Constant(value, c["source"], "published", low, high,
                    c.get("low_source", c["source"]), c.get("high_source", c["source"]))


FAMILIES = ("zynq7000", "zynqmp")
_FAMILY_ALIASES = FAMILY_ALIASES  # descriptors.py names the CPU families (its field)
# board names whose CPU family shows in the name (Xilinx and third-party boards)
_ZYNQMP_NAMES = re.compile(r"zcu1\d\d|zu\d|pynq-zu|kv2\d0|kr2\d0|k26|ultra96|rfsoc|ultrazed|"
                           r"genesys-zu|mpsoc")
_ZYNQ7000_NAMES = re.compile(r"pynq-z[12]\b|zybo|zedboard|zc70\d|7z0\d\d|cora-z7|arty-z7|"
                             r"ebaz|microzed|minized|picozed")
_MACHINES = {"aarch64": "zynqmp", "arm64": "zynqmp", "armv7l": "zynq7000", "armv7": "zynq7000",
             "armhf": "zynq7000"}


def family_for(board: str, cpu_family: str | None = None,
               machine: str | None = None) -> tuple[str | None, str]:
    """A board's CPU family and how it was found: its shipped profile, the descriptor's
    ``cpu_family`` field, its name, or the CPU this runs on (``platform.machine()``).
    (None, why) when nothing says."""
    profiles = _profiles()
    known = profiles.get(board.lower())
    if known is not None:
        return known.family, "shipped profile"
    if cpu_family:
        family = _FAMILY_ALIASES.get(cpu_family.strip().lower())
        if family is None:
            raise ValueError(f"unknown cpu_family {cpu_family!r} for board {board!r}; "
                             f"known: {FAMILIES}")
        return family, "the descriptor's cpu_family"
    name = board.lower()
    if _ZYNQMP_NAMES.search(name):
        return "zynqmp", f"the board name {board!r}"
    if _ZYNQ7000_NAMES.search(name):
        return "zynq7000", f"the board name {board!r}"
    machine = (machine if machine is not None else platform.machine()).lower()
    if machine in _MACHINES:
        return _MACHINES[machine], f"this CPU ({machine})"
    return None, f"no shipped profile, no cpu_family, and this CPU ({machine or '?'}) is no Zynq's"


UNKNOWN_FAMILY = "unknown"


def for_board(board: str, cpu_family: str | None = None) -> BoardCosts:
    """The published constants for a board's CPU (Zynq-7000 or Zynq UltraScale+); a board
    without a shipped profile gets its CPU family's (``family_for``). When nothing says which
    family, family ``unknown`` (the Zynq UltraScale+ numbers, for display): the planner then
    sends every eligible frame to the PL, as ``policy="pl"`` does, and says so."""
    profiles = _profiles()
    family, how = family_for(board, cpu_family)
    if family is None:
        base = profiles["family:zynqmp"]
        return replace(base, family=UNKNOWN_FAMILY, notes=how,
                       machine=f"{board} (no cost model: {how})")
    costs = profiles["family:" + family]
    via = "" if how == "shipped profile" else f", {family} by {how}"
    return replace(costs, machine=f"{board} (model: published {family} constants{via})")


# -- the two paths ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PathCost:
    """Modelled seconds of one frame on one path: wall-clock latency and CPU time."""

    latency: float
    cpu: float
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def ps_seconds(self) -> float:
        """The processing system's share (everything but the IP)."""
        return self.latency - self.parts.get("ip", 0.0)


def is_area_fast(sizes: tuple[int, int, int, int]) -> bool:
    """cv2.resize turns INTER_LINEAR into INTER_AREA's 2x2 path on an exact 2x downscale
    (opencv modules/imgproc/src/resize.cpp: ``is_area_fast && iscale_x == 2 && iscale_y == 2``)."""
    in_rows, in_cols, out_rows, out_cols = sizes
    return in_rows == 2 * out_rows and in_cols == 2 * out_cols


def cv2_cost(
    costs: BoardCosts, sizes: tuple[int, int, int, int], channels: int = 3,
    src_cacheable: bool = True,
) -> PathCost:
    """``cv2.resize(INTER_LINEAR)`` on the board's CPU."""
    in_bytes = sizes[0] * sizes[1] * channels
    out_bytes = sizes[2] * sizes[3] * channels
    if is_area_fast(sizes):
        work = in_bytes / costs.cv2_area2x_bytes_per_s
    else:
        work = out_bytes * costs.cv2_bilinear_s_per_out_byte
    if not src_cacheable:  # the source sits in uncached memory (a lent buffer): reads crawl
        work = max(work, in_bytes / costs.uncached_read_bytes_per_s)
    wall = costs.cv2_call_s + work
    return PathCost(wall, costs.cv2_call_s + work * costs.cv2_threads, {"cv2": wall})


def pl_cost(
    costs: BoardCosts, sizes: tuple[int, int, int, int], clock_hz: int, *,
    copy_in: bool = True, copy_out: bool = True, in_cacheable: bool = True,
    out_cacheable: bool = True, channels: int = 3,
) -> PathCost:
    """The PL path: copies (unless zero copy), cache maintenance by cacheability, registers,
    the IP's cycles (``timing.frame_seconds``) and the driver's Python."""
    in_bytes = sizes[0] * sizes[1] * channels
    out_bytes = sizes[2] * sizes[3] * channels
    parts: dict[str, float] = {}
    if copy_in:
        rate = costs.memcpy_bytes_per_s if in_cacheable else costs.wc_write_bytes_per_s
        parts["copy_in"] = in_bytes / rate
    parts["flush"] = in_bytes * costs.flush_s_per_byte if in_cacheable else 0.0
    parts["ip"] = timing.frame_seconds(*sizes, clock_hz=clock_hz)
    parts["invalidate"] = out_bytes * costs.invalidate_s_per_byte if out_cacheable else 0.0
    if copy_out:
        rate = costs.memcpy_bytes_per_s if out_cacheable else costs.uncached_read_bytes_per_s
        parts["copy_out"] = out_bytes / rate
    parts["driver"] = costs.frame_python_s + costs.register_accesses * costs.register_access_s
    latency = sum(parts.values())
    return PathCost(latency, latency - parts["ip"], parts)


def pipelined_period(pl: PathCost) -> float:
    """Seconds per frame of a pipelined PL loop: the IP works on frame N while the PS copies
    N+1 in and N-1 out, so the slower of the two sets the rate (``bench_pipeline``)."""
    ip = pl.parts.get("ip", 0.0)
    return max(ip, pl.latency - ip)


# Lent buffers (``Resizer.lend``) by role, on every board: a lent input is filled once by
# the CPU (a decoder writes each byte once: the write-combined case) and read by the DMA
# with no flush; a lent output is read by the CPU, for which uncached reads crawl.
LENT_CACHEABLE = {"input": False, "output": True}


def roles(costs: BoardCosts) -> tuple[bool, bool]:
    """(input cacheable?, output cacheable?) for pool buffers, cheapest per byte.

    Input: the CPU writes it once and the DMA reads it: cacheable costs a copy plus a flush,
    non-cacheable a write-combined copy. Output: the DMA writes it and the CPU reads it once:
    cacheable costs an invalidate plus a copy, non-cacheable an uncached read."""
    in_cached = 1 / costs.memcpy_bytes_per_s + costs.flush_s_per_byte
    in_wc = 1 / costs.wc_write_bytes_per_s
    out_cached = costs.invalidate_s_per_byte + 1 / costs.memcpy_bytes_per_s
    out_uncached = 1 / costs.uncached_read_bytes_per_s
    return in_cached < in_wc, out_cached <= out_uncached
