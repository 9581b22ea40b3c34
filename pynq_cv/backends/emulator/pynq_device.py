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

``PynqStackBoard`` goes one step further: the bottom-layer surface of ARCHITECTURE.md
built from pynq's own ``DMA``, ``DefaultIP`` and ``allocate`` on such a device, so all of
pynq_cv runs over pynq's code as on a board image (only the bitstream download is missing).

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
import weakref
from collections.abc import Iterator
from math import prod
from operator import index
from typing import Any

import numpy as np

__all__ = ["PynqStackBoard", "RegisterWindow", "emulated_pynq_device", "make_pynq_device"]

WORD = 4

# What every HelloWorld .hwh says of the resizer overlay's AXI DMA, for descriptors that
# leave it out: both channels present (pynq builds a channel only when c_include_* is 1).
_DMA_HWH_DEFAULTS = {"c_include_mm2s": "1", "c_include_s2mm": "1", "c_micro_dma": "0"}


class RegisterWindow:
    """What pynq's ``MMIO`` gets from ``Device.mmap``: 32-bit words of one IP's registers.

    ``MMIO.read`` does ``int(array[offset >> 2])`` and ``MMIO.write`` does
    ``array[offset >> 2] = np.uint32(value)``; this forwards both to the emulated IP's
    register file (its ``read(offset)`` / ``write(offset, int)``), so every bus access has
    its side effects (a LENGTH write starts a transfer, reading ap_done clears it).
    """

    __slots__ = ("_ip", "_offset", "_words", "base", "length")

    def __init__(self, ip: Any, base: int, offset: int, length: int) -> None:
        self._ip = ip
        self._offset = offset  # of this window's first word inside the IP's register space
        self._words = length // WORD
        self.base = base
        self.length = length

    def __len__(self) -> int:
        return self._words

    def _address(self, item: Any) -> int:
        i = index(item)  # numpy and Python ints; slices are not a bus access
        if i < 0:
            i += self._words
        if not 0 <= i < self._words:
            raise IndexError(
                f"word {item} outside the {self.length}-byte window at {self.base:#x}"
            )
        return self._offset + i * WORD

    def __getitem__(self, item: Any) -> np.uint32:
        return np.uint32(self._ip.read(self._address(item)) & 0xFFFFFFFF)

    def __setitem__(self, item: Any, value: Any) -> None:
        self._ip.write(self._address(item), int(value) & 0xFFFFFFFF)

    def __repr__(self) -> str:
        return f"<RegisterWindow {self.length} bytes at {self.base:#x}>"


class _Allocation:
    """pynq's ``pointer`` for one of our buffers: freeing it frees the emulated memory.

    A ``PynqBuffer`` that has ``memory``, a true ``pointer`` and ``return_to`` is freed by
    ``freebuffer()`` (and its ``__exit__``/``__del__``) as ``return_to.return_pointer(
    pointer)`` on every pynq version; marking the buffer ``freed`` keeps 3.x/4.0 from then
    reaching for the board-only ``munmap``. Garbage collection frees it too (a finalizer).
    """

    def __init__(self, device: Any, backing: Any) -> None:
        self.device = device
        self.backing = backing  # the emulator's buffer holding the bytes
        self.owner: Any = None  # weakref to the PynqBuffer
        self.freed = False

    def __bool__(self) -> bool:
        return not self.freed

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


def _make_device_class() -> type:
    """``EmulatedPynqDevice``, a ``pynq.Device`` subclass (built on first use, pynq lazily)."""
    global _device_class
    if _device_class is not None:
        return _device_class
    pynq = _pynq()
    from pynq.buffer import PynqBuffer

    class EmulatedPynqDevice(pynq.Device):  # no _probe_: pynq never enumerates it
        """The emulated board as pynq sees a board: memory-mapped registers + CMA."""

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

        # -- the bus ---------------------------------------------------------------------

        def mmap(self, base_addr: int, length: int) -> RegisterWindow:
            """The register window pynq's ``MMIO`` reads and writes."""
            for _name, base, size, ip in self._windows:
                if base <= base_addr and base_addr + length <= base + size:
                    return RegisterWindow(ip, base_addr, base_addr - base, length)
            raise MemoryError(  # on a board: a bus error on first access
                f"no emulated IP maps [{base_addr:#x}, {base_addr + length:#x}); "
                f"IPs: {', '.join(f'{n} at {b:#x}' for n, b, _s, _i in self._windows)}"
            )

        @property
        def ip_dict(self) -> dict[str, dict[str, Any]]:
            """The overlay's ``ip_dict`` as pynq builds it: every entry with ``device``."""
            return {name: self.description(name) for name in _source_ip_dict(self.board)}

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

        # -- contiguous memory -----------------------------------------------------------

        def allocate(self, shape: Any, dtype: Any, **kwargs: Any) -> Any:
            """A ``PynqBuffer`` over emulated CMA, non-coherent like every board buffer.

            ``cacheable`` and ``target`` (pynq's keywords) change nothing: pynq builds
            every buffer non-coherent, so flush/invalidate always really sync.
            """
            dtype = np.dtype(dtype)
            shape = tuple(index(n) for n in shape) if hasattr(shape, "__iter__") else (
                index(shape),
            )
            nbytes = prod(shape) * dtype.itemsize
            backing = self.board.allocate((max(nbytes, 1),), np.uint8)
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

    _device_class = EmulatedPynqDevice
    return EmulatedPynqDevice


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


@contextlib.contextmanager
def emulated_pynq_device(board: Any) -> Iterator[Any]:
    """Make pynq's default device the emulated ``board`` for the ``with`` block.

    Inside, ``pynq.allocate``, ``MMIO``, ``DefaultIP`` and ``pynq.lib.dma.DMA`` built
    without an explicit device all reach the emulator. On exit the previous default (or
    none: pynq probes again) is restored, and buffers still allocated are freed.
    """
    pynq = _pynq()
    device_cls = pynq.Device
    missing = object()
    previous = device_cls.__dict__.get("_active_device", missing)
    device = make_pynq_device(board)
    device_cls.active_device = device
    try:
        yield device
    finally:
        if previous is missing:
            with contextlib.suppress(AttributeError):
                del device_cls._active_device
        else:
            device_cls.active_device = previous
        for handle in list(device.allocations.values()):
            handle.free()
