"""Overlay descriptors: what each board's resizer overlay holds and takes.

One JSON file per board in ``overlays/`` (installed as package data ``pynq_cv.overlays``);
other packages add their own through the ``pynq_cv.overlays`` entry-point group (each entry
point loads to a path of a JSON file, or to a dict of the same form). The envelope of a
loaded overlay is checked against, and completed from, its ``ip_dict``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import stat
import warnings
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import cv2

from .errors import SettingError

ENTRY_POINT_GROUP = "pynq_cv.overlays"
DEFAULT_BOARD = "Pynq-Z2"


class DescriptorError(ValueError):
    """A descriptor is missing, malformed, or does not match the loaded overlay."""


@dataclass(frozen=True)
class IPDescriptor:
    name: str
    type: str
    base: int
    range: int
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OverlayDescriptor:
    name: str
    board: str
    build: str
    bitstream: str
    clock_hz: int
    dma: IPDescriptor
    resizer: IPDescriptor
    envelope: dict[str, Any]
    source: str = ""
    cpu_family: str = ""  # "zynq7000" | "zynqmp": the cost profile of a board pynq_cv lacks

    @property
    def dma_length_width(self) -> int:
        return int(self.dma.parameters["c_sg_length_width"])

    def ip_dict(self) -> dict[str, dict[str, Any]]:
        """The ``ip_dict`` a pynq ``Overlay`` built from this overlay's ``.hwh`` would show."""
        out = {}
        for ip in (self.dma, self.resizer):
            params = {}
            for key, value in ip.parameters.items():
                params[key.lower()] = str(value)
                params[key.upper()] = str(value)
            out[ip.name] = {
                "fullpath": ip.name,
                "type": ip.type,
                "phys_addr": ip.base,
                "addr_range": ip.range,
                "parameters": params,
                "registers": {},
                "interrupts": {},
                "gpio": {},
                "state": None,
            }
        return out


def _field(source: str, name: str, problem: str) -> DescriptorError:
    return DescriptorError(f"overlay descriptor {source}: missing or bad field {name!r}: {problem}")


def _text(data: dict[str, Any], key: str, source: str, where: str = "", default: Any = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise _field(source, where + key, f"must be a non-empty string, got {value!r}")
    return value


def _integer(value: Any, name: str, source: str, low: int, high: int | None = None) -> int:
    """An int (or a string of one, e.g. "0xA0000000") within [low, high]."""
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise _field(source, name, f"must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _field(source, name, f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise _field(source, name, f"must be {span}, got {value}")
    return value


def _check_envelope(env: Any, source: str) -> dict[str, Any]:
    """Types and ranges of the envelope fields ``envelope.Envelope`` reads."""
    if not isinstance(env, dict):
        raise _field(source, "envelope", f"must be an object, got {env!r}")
    for key in ("max_in", "max_out"):
        pair = env.get(key)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _field(source, f"envelope.{key}", f"must be [rows, cols], got {pair!r}")
        for n in pair:
            _integer(n, f"envelope.{key}", source, 1)
    names = env.get("interpolations")
    if not isinstance(names, (list, tuple)) or not names or not all(
        isinstance(n, str) and n.startswith("INTER_") and hasattr(cv2, n) for n in names
    ):
        raise _field(source, "envelope.interpolations",
                     f"must list cv2 INTER_* names, got {names!r}")
    _integer(env.get("channels", 3), "envelope.channels", source, 1, 4)
    _integer(env.get("min_in_rows", 2), "envelope.min_in_rows", source, 1)
    _integer(env.get("byte_multiple", 4), "envelope.byte_multiple", source, 1)
    if env.get("dtype", "uint8") != "uint8":
        raise _field(source, "envelope.dtype", f"must be 'uint8', got {env.get('dtype')!r}")
    down = env.get("max_downscale")
    if down is not None and (
        isinstance(down, bool) or not isinstance(down, (int, float)) or not down > 0
        or down == float("inf")
    ):
        raise _field(source, "envelope.max_downscale",
                     f"must be null or a finite number > 0, got {down!r}")
    return dict(env)


def _parse(data: Any, source: str) -> OverlayDescriptor:
    """A descriptor from its JSON form, every field checked (type, range): a bad one raises
    ``DescriptorError`` naming the field, here at load, never later inside a frame."""
    if not isinstance(data, dict):
        raise DescriptorError(f"overlay descriptor {source}: must be a JSON object")
    ips = data.get("ips")
    if not isinstance(ips, dict):
        raise _field(source, "ips", f"must be an object with 'dma' and 'resizer', got {ips!r}")

    def ip(key: str) -> IPDescriptor:
        d = ips.get(key)
        where = f"ips.{key}."
        if not isinstance(d, dict):
            raise _field(source, f"ips.{key}", f"must be an object, got {d!r}")
        params = d.get("parameters", {})
        if not isinstance(params, dict):
            raise _field(source, where + "parameters", f"must be an object, got {params!r}")
        return IPDescriptor(
            name=_text(d, "name", source, where),
            type=str(d.get("type", "")),
            base=_integer(d.get("base"), where + "base", source, 0),
            range=_integer(d.get("range", 65536), where + "range", source, 1),
            parameters=dict(params),
        )

    desc = OverlayDescriptor(
        name=_text(data, "name", source),
        board=_text(data, "board", source),
        build=_text({"build": str(data["build"])} if "build" in data else {}, "build", source),
        bitstream=_text(data, "bitstream", source, default="resizer.bit"),
        clock_hz=_integer(data.get("clock_hz", 100_000_000), "clock_hz", source, 1),
        dma=ip("dma"),
        resizer=ip("resizer"),
        envelope=_check_envelope(data.get("envelope"), source),
        source=source,
        cpu_family=_cpu_family(data.get("cpu_family", ""), source),
    )
    if desc.dma.name == desc.resizer.name:
        raise _field(source, "ips.resizer.name",
                     f"must differ from the DMA's name, both are {desc.dma.name!r}")
    _integer(desc.dma.parameters.get("c_sg_length_width"),
             "ips.dma.parameters.c_sg_length_width", source, 8, 26)
    return desc


# the CPU families a descriptor may name (``cpu_family``), and what each name means; the
# cost profiles (costs.py, ``overlays/costs/*.json``) are per family
FAMILY_ALIASES = {
    "zynq7000": "zynq7000", "zynq-7000": "zynq7000", "zynq": "zynq7000", "cortex-a9": "zynq7000",
    "zynqmp": "zynqmp", "zynq-ultrascale+": "zynqmp", "zynqus+": "zynqmp", "mpsoc": "zynqmp",
    "cortex-a53": "zynqmp",
}


def _cpu_family(value: Any, source: str) -> str:
    """The optional ``cpu_family`` (which cost profile an unshipped board takes)."""
    if value in ("", None):
        return ""
    if not isinstance(value, str) or value.strip().lower() not in FAMILY_ALIASES:
        raise _field(source, "cpu_family", f"must be 'zynq7000' or 'zynqmp', got {value!r}")
    return FAMILY_ALIASES[value.strip().lower()]


def load_descriptor(path: str | Path) -> OverlayDescriptor:
    """Read one descriptor from a JSON file (a regular file: a FIFO or a device is refused
    without being opened, so a bad path never hangs)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise DescriptorError(f"cannot read overlay descriptor {path}: {exc}") from exc
    if not stat.S_ISREG(mode):
        raise DescriptorError(f"overlay descriptor {path} is not a regular file")
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DescriptorError(f"cannot read overlay descriptor {path}: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DescriptorError(f"overlay descriptor {path} is not JSON: {exc}") from exc
    return _parse(data, str(path))


def shipped_dir() -> Any:
    """The installed package data (descriptors, and ``costs/`` for costs.py); in a bare
    source checkout, the repo's ``overlays/``."""
    try:
        return resources.files("pynq_cv.overlays")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "overlays"


_shipped_dir = shipped_dir  # its old name


def available_descriptors() -> dict[str, OverlayDescriptor]:
    """Every known descriptor, by board name: shipped ones, then entry-point ones."""
    found: dict[str, OverlayDescriptor] = {}
    for item in sorted(shipped_dir().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            desc = _parse(json.loads(item.read_text()), f"pynq_cv.overlays/{item.name}")
            found[desc.board] = desc
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:  # another package's descriptor: a bad one is skipped, never breaks the others
            target = ep.load()
            desc = _parse(target, ep.name) if isinstance(target, dict) else load_descriptor(target)
        except Exception as exc:  # noqa: BLE001 -- any failure of a third-party entry point
            _warn_skipped(ep.name, exc)
            continue
        found[desc.board] = desc
    return found


_skipped: set[str] = set()


def _warn_skipped(name: str, exc: Exception) -> None:
    """One warning per bad entry point (and per process), naming it and the problem."""
    if name not in _skipped:
        _skipped.add(name)
        message = f"overlay descriptor entry point {name!r} skipped: {exc}"
        try:
            warnings.warn(f"pynq_cv: {message}", RuntimeWarning, stacklevel=3)
        except Warning:  # -W error: never let the news of a skipped board break the others
            logging.getLogger("pynq_cv").warning("%s", message)  # the record names pynq_cv


def descriptor_for(board: str | None = None) -> OverlayDescriptor:
    """The descriptor of ``board`` (case-insensitive); default ``PYNQ_CV_BOARD``, else Pynq-Z2."""
    board = board or os.environ.get("PYNQ_CV_BOARD") or DEFAULT_BOARD
    known = available_descriptors()
    for name, desc in known.items():
        if name.lower() == board.lower() or desc.name.lower() == board.lower():
            return desc
    near = difflib.get_close_matches(board.lower(), [n.lower() for n in known], n=1)
    hint = next((f"; did you mean {n!r}?" for n in known if near and n.lower() == near[0]), "")
    raise DescriptorError(
        f"no overlay descriptor for board {board!r}; known: {', '.join(sorted(known))}{hint}"
    )


def check_board_name(board: str | None = None) -> None:
    """A board named in the call or ``PYNQ_CV_BOARD`` must have a descriptor: a typo raises
    ``SettingError`` at construction (one line, "did you mean"), not "no PL" at the first
    frame. ``BOARD`` (a PYNQ image's own) is not checked: an image of a board pynq_cv does
    not describe runs cv2, as on any machine without the resizer."""
    name = board or os.environ.get("PYNQ_CV_BOARD", "").strip()
    if not name:
        return
    try:
        descriptor_for(name)
    except DescriptorError as exc:
        source = "board=" if board else "PYNQ_CV_BOARD"
        raise SettingError(f"{exc} (from {source})") from None


def ip_dict_mismatches(desc: OverlayDescriptor, ip_dict: dict[str, Any]) -> list[str]:
    """What differs between a descriptor and a loaded overlay's ``ip_dict`` (empty: match)."""
    problems = []
    for ip in (desc.dma, desc.resizer):
        entry = ip_dict.get(ip.name)
        if entry is None:
            problems.append(f"IP {ip.name!r} is not in the overlay")
            continue
        if ip.type and entry.get("type") and entry["type"] != ip.type:
            problems.append(f"{ip.name} type is {entry['type']!r}, descriptor says {ip.type!r}")
        addr = entry.get("phys_addr")
        if addr is not None and int(addr) != ip.base:
            problems.append(f"{ip.name} is at {int(addr):#x}, descriptor says {ip.base:#x}")
    dma_entry = ip_dict.get(desc.dma.name) or {}
    params = dma_entry.get("parameters") or {}
    if dma_entry and "c_sg_length_width" not in params and "C_SG_LENGTH_WIDTH" not in params:
        problems.append(f"{desc.dma.name} has no c_sg_length_width parameter")
    return problems


def loaded_length_width(desc: OverlayDescriptor, ip_dict: dict[str, Any]) -> int:
    """The DMA length width of the overlay actually loaded (its ip_dict wins)."""
    params = (ip_dict.get(desc.dma.name) or {}).get("parameters") or {}
    value = params.get("c_sg_length_width", params.get("C_SG_LENGTH_WIDTH"))
    return int(value) if value is not None else desc.dma_length_width
