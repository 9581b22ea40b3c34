"""Overlay descriptors: what each board's resizer overlay holds and takes.

One JSON file per board in ``overlays/`` (installed as package data ``pynq_cv.overlays``);
other packages add their own through the ``pynq_cv.overlays`` entry-point group (each entry
point loads to a path of a JSON file, or to a dict of the same form). The envelope of a
loaded overlay is checked against, and completed from, its ``ip_dict``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

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


def _parse(data: dict[str, Any], source: str) -> OverlayDescriptor:
    try:
        ips = data["ips"]

        def ip(key: str) -> IPDescriptor:
            d = ips[key]
            return IPDescriptor(
                name=d["name"],
                type=d.get("type", ""),
                base=int(str(d["base"]), 0),
                range=int(d.get("range", 65536)),
                parameters=dict(d.get("parameters", {})),
            )

        desc = OverlayDescriptor(
            name=data["name"],
            board=data["board"],
            build=str(data["build"]),
            bitstream=data.get("bitstream", "resizer.bit"),
            clock_hz=int(data.get("clock_hz", 100_000_000)),
            dma=ip("dma"),
            resizer=ip("resizer"),
            envelope=dict(data["envelope"]),
            source=source,
        )
        desc.dma_length_width  # noqa: B018 -- required key
    except (KeyError, TypeError, ValueError) as exc:
        raise DescriptorError(f"overlay descriptor {source}: missing or bad field {exc}") from exc
    return desc


def load_descriptor(path: str | Path) -> OverlayDescriptor:
    """Read one descriptor from a JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DescriptorError(f"cannot read overlay descriptor {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DescriptorError(f"overlay descriptor {path} is not JSON: {exc}") from exc
    return _parse(data, str(path))


def _shipped_dir() -> Any:
    """The installed package data; in a bare source checkout, the repo's ``overlays/``."""
    try:
        return resources.files("pynq_cv.overlays")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "overlays"


def available_descriptors() -> dict[str, OverlayDescriptor]:
    """Every known descriptor, by board name: shipped ones, then entry-point ones."""
    found: dict[str, OverlayDescriptor] = {}
    for item in sorted(_shipped_dir().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            desc = _parse(json.loads(item.read_text()), f"pynq_cv.overlays/{item.name}")
            found[desc.board] = desc
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        target = ep.load()
        desc = _parse(target, ep.name) if isinstance(target, dict) else load_descriptor(target)
        found[desc.board] = desc
    return found


def descriptor_for(board: str | None = None) -> OverlayDescriptor:
    """The descriptor of ``board`` (case-insensitive); default ``PYNQ_CV_BOARD``, else Pynq-Z2."""
    board = board or os.environ.get("PYNQ_CV_BOARD") or DEFAULT_BOARD
    known = available_descriptors()
    for name, desc in known.items():
        if name.lower() == board.lower() or desc.name.lower() == board.lower():
            return desc
    raise DescriptorError(f"no overlay descriptor for board {board!r}; known: {sorted(known)}")


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
