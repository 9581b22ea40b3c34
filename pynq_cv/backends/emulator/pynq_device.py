"""pynq's own stack on the emulated board: a ``pynq.Device`` whose bus and memory it is.

On a board, pynq reaches the PL through its ``Device``: ``MMIO`` asks the active device to
``mmap`` a register window and reads/writes it word by word (item ``offset // 4``), and
``allocate`` asks it for contiguous buffers whose ``flush``/``invalidate`` call back into the
device. Everything above -- ``DefaultIP``, ``pynq.lib.dma.DMA`` with its checks, error
messages and busy loops -- is plain Python over those two hooks. So installing
``EmulatedPynqDevice`` as ``pynq.Device.active_device`` runs pynq's real drivers, unmodified,
against the emulated register files and the emulated non-coherent contiguous memory:

    with emulated_pynq_device(board) as device:
        dma = pynq.lib.dma.DMA(device.description("axi_dma_0"))
        resizer = pynq.DefaultIP(device.description("resize_accel_0"))
        buf = pynq.allocate((rows, cols, 3), np.uint8)   # a real PynqBuffer

The device also has a PL's bitstream side, so ``pynq.Overlay`` works on it: metadata from
pynq's own parser on the ``.hwh`` beside the ``.bit`` (or one generated from the
descriptor, ``hwh.py``), settable ``ip_dict``/``bitfile_name``/``timestamp`` (pynq 3.x/4.0
assign them; 2.7 reads them), a ``download`` that resets the emulated PL and takes the
new overlay's DMA length width, and (inside ``emulated_pynq_device``) pynq's ``Clocks``
replaced by one whose PL clock setting does nothing. ``pynq_cv.emulate`` builds on this.

``PynqStackBoard`` goes one step further: the bottom-layer surface of ARCHITECTURE.md
built from pynq's own ``DMA``, ``DefaultIP`` and ``allocate`` on such a device, so all of
pynq_cv runs over pynq's code as on a board image.

This is how the emulator is checked against the driver that runs on boards, and how
pynq_cv's driver is run on pynq's DMA object without a board. It uses only pynq's public
API (the ``Device`` hooks pynq's own device classes implement) and works with pynq 2.7 to
4.0: ``Device.__init__`` is not called (on 2.7 it starts a PL server thread), descriptions
are plain ``dict`` (2.7 insists) and carry ``device`` (3.1+ insists).

``pynq`` is imported only when a device is made: importing this module never imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import os
import tempfile
import weakref
from collections.abc import Iterator
from math import prod
from operator import index
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PynqStackBoard", "RegisterWindow", "emulated_pynq_device", "make_pynq_device"]

from .bus import RegisterWindow

# What every HelloWorld .hwh says of the resizer overlay's AXI DMA, for descriptors that
# leave it out: both channels present (pynq builds a channel only when c_include_* is 1).
_DMA_HWH_DEFAULTS = {"c_include_mm2s": "1", "c_include_s2mm": "1", "c_micro_dma": "0"}


class _Allocation:
    """pynq's ``pointer`` for one of our buffers: freeing it frees the emulated memory.

    A ``PynqBuffer`` that has ``memory``, a true ``pointer`` and ``return_to`` is freed by
    ``freebuffer()`` (and its ``__exit__``/``__del__``) as ``return_to.return_pointer(
    pointer)`` on every pynq version; the pointer stays true (freeing twice is harmless)
    so 3.x/4.0 never reach for the board-only ``munmap``, even when a garbage-collected
    cycle runs the finalizer before ``__del__``. Garbage collection frees it too.
    """

    def __init__(self, device: Any, backing: Any) -> None:
        self.device = device
        self.backing = backing  # the emulator's buffer holding the bytes
        self.owner: Any = None  # weakref to the PynqBuffer
        self.freed = False

    def free(self) -> None:
        if self.freed:
            return
        self.freed = True
        owner = self.owner() if self.owner is not None else None
        if owner is not None:
            owner.freed = True
        self.device._release(self)


def _version(pynq: Any) -> tuple[int, ...]:
    """pynq's version as numbers, e.g. (4, 0, 0); () if it does not say."""
    parts = []
    for part in str(getattr(pynq, "__version__", "")).split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _pynq() -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # off-board, pynq warns about the CPU architecture
        import pynq
    return pynq


_device_class: type | None = None

# What pynq keeps about the loaded bitstream on its Device (2.7 reads them from its PL
# server through read-only properties; 3.x/4.0 assign them): settable here on every version.
_PL_STATE = (
    "bitfile_name", "timestamp", "gpio_dict", "interrupt_pins", "interrupt_controllers",
    "hierarchy_dict", "mem_dict", "devicetree_dict",
)


def _pl_state(name: str) -> property:
    def get(self: Any) -> Any:
        return self._pl[name]

    def set(self: Any, value: Any) -> None:
        self._pl[name] = value

    return property(get, set, doc=f"pynq's ``Device.{name}`` of the emulated PL")


def _make_device_class() -> type:
    """``EmulatedPynqDevice``, a ``pynq.Device`` subclass (built on first use, pynq lazily)."""
    global _device_class
    if _device_class is not None:
        return _device_class
    pynq = _pynq()
    from pynq.buffer import PynqBuffer

    class EmulatedPynqDevice(pynq.Device):  # no _probe_: pynq never enumerates it
        """The emulated board as pynq sees a board: memory-mapped registers + CMA, and the
        bitstream side of a PL (metadata, download) for ``pynq.Overlay``."""

        def __init__(self, board: Any) -> None:
            # Not Device.__init__: on pynq 2.7 it starts a PL server thread.
            self.board = board
            self.tag = f"emulator:{board.descriptor.name}"
            self.name = self.tag
            self.parser = None
            self.capabilities = {"MEMORY_MAPPED": True}
            self.allocations: dict[int, _Allocation] = {}
            # pynq 3.1+ syncs through pyxrt's bo.sync() without offset or size, so a view's
            # flush/invalidate acts on the whole allocation; 2.7 and 3.0 pass the view's
            # offset and size to xclSyncBO. What matters is invalidate: it discards the
            # CPU's unflushed writes anywhere in the allocation. (A whole flush only writes
            # back lines the CPU dirtied, with the CPU's own data: modelled as the view's.)
            self.invalidates_whole_buffer = _version(pynq) >= (3, 1)
            self._windows = _ip_windows(board)
            self._ip_dict: dict[str, Any] | None = None
            # pynq knows of nothing on the PL until a download (or ``load``) says so
            self._pl: dict[str, Any] = dict.fromkeys(_PL_STATE)
            self._pl.update(
                gpio_dict={}, interrupt_pins={}, interrupt_controllers={},
                hierarchy_dict={}, mem_dict={}, devicetree_dict={},
            )
            self.downloads = 0  # bitstream downloads (each one a PL reset)
            self.monitor: Any = None  # sees every register access (the watchdog)
            self._generated: tempfile.TemporaryDirectory | None = None

        # -- the bus ---------------------------------------------------------------------

        def mmap(self, base_addr: int, length: int) -> RegisterWindow:
            """The register window pynq's ``MMIO`` reads and writes."""
            for _name, base, size, ip in self._windows:
                if base <= base_addr and base_addr + length <= base + size:
                    return RegisterWindow(
                        ip, base_addr, base_addr - base, length, self.monitor
                    )
            raise MemoryError(  # on a board: a bus error on first access
                f"no emulated IP maps [{base_addr:#x}, {base_addr + length:#x}); "
                f"IPs: {', '.join(f'{n} at {b:#x}' for n, b, _s, _i in self._windows)}"
            )

        @property
        def bus_accesses(self) -> int:
            """Register accesses so far on the emulated bus (a real device cannot count)."""
            return self.board.bus_accesses

        @property
        def ip_dict(self) -> dict[str, dict[str, Any]]:
            """The loaded overlay's ``ip_dict`` (pynq sets it from the ``.hwh``); before
            any, the descriptor's, every entry with ``device``."""
            if self._ip_dict is not None:
                return self._ip_dict
            return {name: self.description(name) for name in _source_ip_dict(self.board)}

        @ip_dict.setter
        def ip_dict(self, value: dict[str, dict[str, Any]]) -> None:
            self._ip_dict = value

        def description(self, name: str) -> dict[str, Any]:
            """The ``ip_dict`` entry pynq drivers are built from (a plain ``dict``)."""
            entry = _source_ip_dict(self.board).get(name)
            if entry is None:
                raise KeyError(f"no IP {name!r} in the emulated overlay")
            entry = dict(entry)
            params = dict(entry.get("parameters") or {})
            if "axi_dma" in str(entry.get("type", "")):
                for key, value in _DMA_HWH_DEFAULTS.items():
                    params.setdefault(key, value)
                    params.setdefault(key.upper(), value)
            entry["parameters"] = params
            entry.setdefault("interrupts", {})
            entry.setdefault("gpio", {})
            entry["device"] = self
            return entry

        # -- the bitstream: metadata and download ----------------------------------------

        def get_bitfile_metadata(self, bitfile_name: str, partial: bool = False) -> Any:
            """pynq's own parser on the ``.hwh`` beside the ``.bit``. With none there, as
            pynq on a board: no metadata (``base.bit`` alone is no resizer overlay) --
            except for the emulated board's own bitstream, whose ``.hwh`` is generated
            from its descriptor."""
            hwh = Path(bitfile_name).with_suffix(".hwh")
            if not hwh.is_file():
                if not _same_file(bitfile_name, self.board.bitstream):
                    raise RuntimeError(
                        f"Unable to find metadata for bitstream {bitfile_name} "
                        f"(no {hwh.name} beside it)"
                    )
                hwh = self._generated_hwh()
            return parse_hwh(hwh)

        def _generated_hwh(self) -> Path:
            from .hwh import generate_hwh

            if self._generated is None:
                self._generated = tempfile.TemporaryDirectory(prefix="pynq_cv-hwh-")
            path = Path(self._generated.name) / "resizer.hwh"
            if not path.is_file():
                path.write_text(generate_hwh(self.board.descriptor))
            return path

        def download(self, bitstream: Any, parser: Any = None) -> None:
            """Program the emulated PL: a PL reset of the IP, converters and DMA, with the
            new overlay's DMA length width; then pynq's bookkeeping (timestamp, dicts)."""
            if parser is None:
                parser = self.get_bitfile_metadata(bitstream.bitfile_name)
            self.board.overlay.download(parser.ip_dict)
            self.downloads += 1
            now = datetime.datetime.now()
            timestamp = (
                f"{now.year}/{now.month}/{now.day} {now.hour}:{now.minute}:{now.second}"
                f" +{now.microsecond}"
            )
            if not getattr(bitstream, "partial", False):
                bitstream.timestamp = timestamp
            self.reset(parser, timestamp, bitstream.bitfile_name)

        def load(self, bitfile_name: str) -> Any:
            """The PL already holds ``bitfile_name`` (programmed before this process): its
            metadata becomes the device's, and its DMA length width the emulated one's."""
            parser = self.get_bitfile_metadata(bitfile_name)
            self.board.overlay.load(parser.ip_dict)
            self.parser = parser
            self.reset(parser, None, str(bitfile_name))
            return parser

        def reset(
            self, parser: Any = None, timestamp: Any = None, bitfile_name: Any = None
        ) -> None:
            """pynq's ``Device.reset``: the dictionaries from ``parser``, then the names."""
            if parser is not None:
                self.ip_dict = parser.ip_dict
                self.gpio_dict = parser.gpio_dict
                self.interrupt_controllers = parser.interrupt_controllers
                self.interrupt_pins = parser.interrupt_pins
                self.hierarchy_dict = parser.hierarchy_dict
                self.mem_dict = parser.mem_dict
            if timestamp is not None:
                self.timestamp = timestamp
            if bitfile_name is not None:
                self.bitfile_name = bitfile_name

        def gen_cache(self, bitstream: Any, parser: Any = None) -> None:
            """Nothing to cache: there is no global PL state file off-board."""

        def shutdown(self) -> None:
            """No AXI shutdown managers in the resizer overlay."""

        # -- contiguous memory -----------------------------------------------------------

        def allocate(self, shape: Any, dtype: Any, **kwargs: Any) -> Any:
            """A ``PynqBuffer`` over emulated CMA, with the board's coherence.

            As pynq does, the ``PynqBuffer`` itself is always built non-coherent (its
            ``flush``/``invalidate`` always call the device). The memory under it follows
            ``cacheable`` as XRT maps it on a board: the default ``cacheable=0`` is
            write-combined, coherent with the DMA (flush and invalidate change nothing);
            ``cacheable=1`` goes through the CPU caches, stale until synced.
            """
            dtype = np.dtype(dtype)
            shape = tuple(index(n) for n in shape) if hasattr(shape, "__iter__") else (
                index(shape),
            )
            nbytes = prod(shape) * dtype.itemsize
            backing = self.board.allocate(
                (max(nbytes, 1),), np.uint8, cacheable=bool(kwargs.get("cacheable", 0))
            )
            handle = _Allocation(self, backing)
            buf = PynqBuffer(
                shape,
                dtype,
                buffer=_host_memory(backing),
                device=self,
                device_address=int(backing.physical_address),
                bo=handle,
                coherent=False,
            )
            buf.memory = self  # freebuffer() returns the pointer (see _Allocation)
            buf.pointer = handle
            buf.return_to = self
            handle.owner = weakref.ref(buf)
            weakref.finalize(buf, handle.free)
            self.allocations[id(handle)] = handle
            return buf

        def return_pointer(self, pointer: _Allocation) -> None:
            pointer.free()

        def _release(self, handle: _Allocation) -> None:
            self.allocations.pop(id(handle), None)
            handle.backing.freebuffer()

        def flush(self, bo: _Allocation, offset: int, ptr: int, size: int) -> None:
            """CPU -> device: write the cached bytes back to the emulated DDR."""
            bo.backing[offset : offset + size].flush()

        def invalidate(self, bo: _Allocation, offset: int, ptr: int, size: int) -> None:
            """Device -> CPU: drop the cached bytes, read what the DMA wrote."""
            if self.invalidates_whole_buffer:
                bo.backing.invalidate()
            else:
                bo.backing[offset : offset + size].invalidate()

        # -- the rest of pynq's Device surface that makes sense here ---------------------

        def close(self) -> None:
            """Nothing to close (pynq deprecates ``Device.close``)."""

        def __repr__(self) -> str:
            return f"<EmulatedPynqDevice {self.tag}>"

    for name in _PL_STATE:
        setattr(EmulatedPynqDevice, name, _pl_state(name))
    _device_class = EmulatedPynqDevice
    return EmulatedPynqDevice


def _same_file(a: Any, b: Any) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, TypeError):
        return False


def parse_hwh(hwh: str | os.PathLike[str]) -> Any:
    """pynq's own metadata parser on ``hwh`` (see ``_parse_hwh``); a file it cannot parse
    (truncated, not a ``.hwh``) raises ``ValueError`` naming the file."""
    try:
        return _parse_hwh(hwh)
    except Exception as exc:  # noqa: BLE001 -- pynq's parsers raise anything on bad XML
        raise ValueError(f"{hwh}: not a readable .hwh ({type(exc).__name__}: {exc})") from exc


def _parse_hwh(hwh: str | os.PathLike[str]) -> Any:
    """pynqmetadata's runtime parser on pynq 3.x and 4.0 (what ``EmbeddedDevice`` uses),
    the Zynq or Zynq UltraScale+ ``HWH`` class on 2.7 (by the design's architecture:
    off-board 2.7 picks by the host's CPU instead)."""
    pynq = _pynq()
    if _version(pynq) >= (3,):
        from pynqmetadata.frontends import Metadata
        from pynqmetadata.views.runtime import RuntimeMetadataParser

        return RuntimeMetadataParser(Metadata(input=str(hwh)))
    from xml.etree import ElementTree

    from pynq.pl_server import hwh_parser

    info = ElementTree.parse(str(hwh)).getroot().find("SYSTEMINFO")
    arch = info.get("ARCH", "") if info is not None else ""
    parser_class = hwh_parser._HWHZynq if arch == "zynq" else hwh_parser._HWHUltrascale
    return parser_class(hwh_name=str(hwh))


def _source_ip_dict(board: Any) -> dict[str, Any]:
    overlay = getattr(board, "overlay", None)
    ip_dict = getattr(overlay, "ip_dict", None)
    return ip_dict if ip_dict else board.descriptor.ip_dict()


def _ip_windows(board: Any) -> list[tuple[str, int, int, Any]]:
    """(name, base, range, register file) for each IP of the emulated overlay."""
    windows = []
    for name, entry in _source_ip_dict(board).items():
        ip = getattr(board.overlay, name)
        # The IP's bus port (each access lets the emulated data path catch up first), not
        # the emulator's own pynq-like MMIO: pynq's MMIO does the argument checks here.
        port = getattr(getattr(ip, "mmio", None), "registers", None)
        target = port if hasattr(port, "read") and hasattr(port, "write") else ip
        windows.append((name, int(entry["phys_addr"]), int(entry["addr_range"]), target))
    return windows


def _host_memory(backing: Any) -> Any:
    """The emulator buffer's CPU-side bytes as a non-array object, like a board's mapping.

    On a board ``PynqBuffer`` sits on XRT's mapped memory (a non-ndarray object), so numpy
    stops at the ``PynqBuffer`` when it collapses a view's ``base`` chain: any view of it
    -- even ``np.asarray(buf)[1:]`` -- leads back to it through ``.base``, which pynq_cv's
    pool relies on to recognise its buffers. Sitting on an ndarray would break that chain.
    """
    nbytes = int(backing.nbytes)
    memory = (ctypes.c_uint8 * nbytes).from_address(backing.__array_interface__["data"][0])
    memory.backing = backing  # the bytes live as long as any array over them
    return memory


class PynqStackBoard:
    """The bottom-layer surface (ARCHITECTURE.md) with pynq's own drivers on the emulator.

    ``overlay.<dma>`` is a real ``pynq.lib.dma.DMA``, ``overlay.<resizer>`` a real
    ``pynq.DefaultIP`` and ``allocate`` real ``pynq.allocate`` -- all on an
    ``EmulatedPynqDevice`` passed explicitly (the global ``pynq.Device.active_device`` is
    left alone). So the whole of pynq_cv above the board runs exactly the pynq code it
    runs on a board image, minus only the bitstream download.
    """

    name = "emulator+pynq"

    def __init__(self, board: Any = None, **options: Any) -> None:
        if board is None:
            from .board import EmulatedBoard

            board = EmulatedBoard(**options)
        self.emulator = board
        self.descriptor = board.descriptor
        self.device = make_pynq_device(board)
        pynq = _pynq()
        from pynq.lib.dma import DMA

        ip_dict = self.device.ip_dict
        dma, resizer = self.descriptor.dma.name, self.descriptor.resizer.name
        self.overlay = _Overlay(
            ip_dict, {dma: DMA(ip_dict[dma]), resizer: pynq.DefaultIP(ip_dict[resizer])}
        )
        self._pynq = pynq

    def allocate(self, shape: Any, dtype: Any, cacheable: bool = True) -> Any:
        return self._pynq.allocate(shape, dtype=dtype, target=self.device, cacheable=cacheable)

    def reset_pl(self) -> bool:
        return bool(self.emulator.reset_pl())

    def close(self) -> None:
        for handle in list(self.device.allocations.values()):
            handle.free()
        self.emulator.close()


class _Overlay:
    """``pynq.Overlay``'s surface: IPs by attribute, ``ip_dict``."""

    def __init__(self, ip_dict: dict[str, Any], ips: dict[str, Any]) -> None:
        self.ip_dict = ip_dict
        self.__dict__.update(ips)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"Could not find IP or hierarchy {name} in overlay")


def make_pynq_device(board: Any) -> Any:
    """An ``EmulatedPynqDevice`` for ``board`` (an ``EmulatedBoard``), not yet active."""
    return _make_device_class()(board)


class EmulatedClocks:
    """pynq's ``Clocks`` backend on the emulated board: the PL clock is what the descriptor
    says, and setting it (as every ``Overlay.download`` does) changes nothing off-board.
    Requests are kept in ``requested`` (clock index -> MHz or divisors)."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.requested: dict[int, Any] = {}

    def get_pl_clk(self, clk_idx: int) -> float:
        return self.board.descriptor.clock_hz / 1e6 if clk_idx == 0 else 0.0

    def set_pl_clk(
        self, clk_idx: int, div0: Any = None, div1: Any = None, clk_mhz: Any = None
    ) -> None:
        if clk_idx not in range(4):
            raise ValueError("Valid PL clock index is 0 - 3.")
        self.requested[clk_idx] = clk_mhz if clk_mhz is not None else (div0, div1)

    def get_cpu_mhz(self) -> float:
        return 650.0 if self.board.descriptor.dma.base < 0x8000_0000 else 1200.0


@contextlib.contextmanager
def emulated_pynq_device(board: Any) -> Iterator[Any]:
    """Make pynq's default device the emulated ``board`` for the ``with`` block.

    Inside, ``pynq.allocate``, ``MMIO``, ``DefaultIP``, ``pynq.lib.dma.DMA`` and
    ``pynq.Overlay`` built without an explicit device all reach the emulator, and pynq's
    ``Clocks`` is the emulated board's (PL clock setting does nothing). On exit the
    previous default device and clocks (or none: pynq probes again) are restored, and
    buffers still allocated are freed.
    """
    pynq = _pynq()
    try:
        from pynq.ps import Clocks
    except ImportError:  # a pynq without PS clocks (test doubles): nothing to stand in for
        Clocks = None
    device_cls = pynq.Device
    missing = object()
    previous = device_cls.__dict__.get("_active_device", missing)
    clocks_state = dict(vars(Clocks)) if Clocks is not None else {}
    device = make_pynq_device(board)
    device_cls.active_device = device
    if Clocks is not None:
        Clocks._real_instance = EmulatedClocks(board)
    try:
        yield device
    finally:
        if Clocks is not None:
            for name in ("_real_instance", "device"):  # Overlay() sets Clocks.device
                if name in clocks_state:
                    setattr(Clocks, name, clocks_state[name])
                else:
                    with contextlib.suppress(AttributeError):
                        delattr(Clocks, name)
        if previous is missing:
            with contextlib.suppress(AttributeError):
                del device_cls._active_device
        else:
            device_cls.active_device = previous
        for handle in list(device.allocations.values()):
            handle.free()
        if device._generated is not None:
            device._generated.cleanup()
