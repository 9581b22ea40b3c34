"""Contiguous (CMA) memory and the non-coherent buffers ``pynq.allocate`` hands out.

On a board, ``pynq.allocate`` returns an ndarray over physically contiguous memory that the
CPU reaches through its caches and the DMA reaches directly. The two views agree only after
``flush()`` (CPU -> memory, before the DMA reads) and ``invalidate()`` (memory -> CPU, after
the DMA wrote). The emulator keeps the two views apart on purpose:

- :class:`ContiguousMemory` is the device side: a first-fit, page-aligned allocator over
  the CMA's address range, with free-list coalescing and accounting, and the bytes of each
  live block (one zeroed array per block). Only live blocks hold host memory: a 32-bit
  process (the armhf CI job) can open engine after engine without reserving 128 MiB each.
- :class:`EmulatedBuffer` is the CPU side. A cacheable buffer (``cacheable=True``): the
  ndarray's own memory plays the CPU cache; ``flush()`` copies its bytes into the block,
  ``invalidate()`` copies them back, and a driver that skips either sees stale data here,
  as on a board. A non-cacheable buffer (``cacheable=False``, pynq's default): the ndarray
  *is* the block's bytes, as XRT maps such a buffer write-combined on a board, so CPU and
  DMA see each other's writes at once and flush/invalidate have nothing to do.

When the memory is exhausted, ``allocate`` raises what pynq 4.0.0 raises when XRT cannot
get a CMA buffer: ``RuntimeError("BO allocation failed: std::bad_alloc")`` (pynq 2.7-3.x
said ``RuntimeError("Allocate failed: 4294967295")``; both are plain ``RuntimeError``).
"""

from __future__ import annotations

import bisect
import threading
import warnings
import weakref
from typing import Any

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds  # numpy >= 2
except ImportError:  # numpy 1.x, as on every PYNQ board image
    from numpy import byte_bounds

PAGE = 4096
DEFAULT_SIZE = 128 << 20  # Pynq-Z1/Z2 images reserve 128 MiB of CMA
DEFAULT_BASE = 0x1000_0000

# What pynq 4.0.0 raises when XRT's buffer allocation fails (EmbeddedDevice.allocate_bo
# wraps pyxrt's std::bad_alloc, which pybind11 turns into MemoryError("std::bad_alloc")).
OOM_MESSAGE = "BO allocation failed: std::bad_alloc"


def out_of_memory() -> RuntimeError:
    """The exception pynq raises when contiguous memory cannot be allocated."""
    return RuntimeError(OOM_MESSAGE)


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


class ContiguousMemory:
    """The device side of CMA: a first-fit page allocator over ``[base, base + size)`` and
    the bytes of every live block.

    Blocks are page-aligned and a whole number of pages (at least one). Freed blocks merge
    with free neighbours, so a freed region is reusable as one piece; a freed block's bytes
    are gone (the DMA gets a decode error there, never its successor's bytes). Accounting:
    ``live_buffers``, ``live_bytes`` (bytes of CMA held, page-rounded), ``peak_bytes``,
    ``allocations``, ``frees``.
    """

    def __init__(
        self, size: int = DEFAULT_SIZE, base: int = DEFAULT_BASE, fail: Any = None
    ) -> None:
        if size <= 0 or size % PAGE:
            raise ValueError(f"memory size must be a positive multiple of {PAGE}, got {size}")
        if base < 0 or base % PAGE:
            raise ValueError(f"memory base must be page aligned, got {base:#x}")
        self.size = int(size)
        self.base = int(base)
        self._fail = fail  # callable -> bool: fault injection (allocation fails while True)
        # reentrant: a buffer's finalizer may free a block while this thread allocates
        self._lock = threading.RLock()
        self._free: list[list[int]] = [[0, self.size]]  # sorted [offset, length] holes
        # offset -> the device's bytes of every live block (its length is the block's)
        self._blocks: dict[int, np.ndarray] = {}
        self._starts: list[int] = []  # sorted offsets of live blocks (for address lookup)
        # offset -> root buffer, weakly: a buffer nobody holds is freed by its finalizer
        self._buffers: weakref.WeakValueDictionary[int, EmulatedBuffer] = (
            weakref.WeakValueDictionary()
        )
        self.live_bytes = 0
        self.peak_bytes = 0
        self.allocations = 0
        self.frees = 0
        self.failures = 0
        self.closed = False

    # -- accounting ------------------------------------------------------------------------

    @property
    def live_buffers(self) -> int:
        return len(self._blocks)

    @property
    def free_bytes(self) -> int:
        return self.size - self.live_bytes

    @property
    def largest_free(self) -> int:
        with self._lock:
            return max((hole[1] for hole in self._free), default=0)

    def stats(self) -> dict[str, int]:
        return {
            "size": self.size,
            "live_buffers": self.live_buffers,
            "live_bytes": self.live_bytes,
            "peak_bytes": self.peak_bytes,
            "allocations": self.allocations,
            "frees": self.frees,
            "failures": self.failures,
        }

    # -- allocation ------------------------------------------------------------------------

    def alloc_block(self, nbytes: int) -> int:
        """Reserve ``nbytes`` (rounded up to pages); returns the block's physical address."""
        length = max(PAGE, _round_up(int(nbytes), PAGE))
        with self._lock:
            if self.closed:
                raise RuntimeError("contiguous memory is closed")
            if self._fail is not None and self._fail():
                self.failures += 1
                raise out_of_memory()
            i = next((i for i, (_, hole) in enumerate(self._free) if hole >= length), None)
            if i is None:
                self.failures += 1
                raise out_of_memory()
            offset, hole = self._free[i]
            if hole == length:
                del self._free[i]
            else:
                self._free[i] = [offset + length, hole - length]
            # dma_alloc_coherent hands out zeroed pages; calloc commits them as touched
            self._blocks[offset] = np.zeros(length, dtype=np.uint8)
            bisect.insort(self._starts, offset)
            self.live_bytes += length
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
            self.allocations += 1
        return self.base + offset

    def free_block(self, address: int) -> bool:
        """Return a block to the free list (merging neighbours). False if it is not live."""
        offset = address - self.base
        with self._lock:
            block = self._blocks.pop(offset, None)
            if block is None:
                return False
            length = block.size
            del self._starts[bisect.bisect_left(self._starts, offset)]
            self._buffers.pop(offset, None)
            self.live_bytes -= length
            self.frees += 1
            holes = self._free
            i = bisect.bisect_left(holes, [offset, 0])
            holes.insert(i, [offset, length])
            if i + 1 < len(holes) and holes[i][0] + holes[i][1] == holes[i + 1][0]:
                holes[i][1] += holes.pop(i + 1)[1]
            if i > 0 and holes[i - 1][0] + holes[i - 1][1] == holes[i][0]:
                holes[i - 1][1] += holes.pop(i)[1]
        return True

    def allocate(
        self, shape: Any, dtype: Any = "u4", cacheable: bool = False, **_: Any
    ) -> EmulatedBuffer:
        """``pynq.allocate``: a zeroed :class:`EmulatedBuffer` of ``shape`` and ``dtype``;
        coherent with the DMA unless ``cacheable`` (as on a board)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        address = self.alloc_block(nbytes)
        with self._lock:  # a buffer is made on a live block, or not at all
            if self.closed:
                raise RuntimeError("contiguous memory is closed")
            device = self._blocks[address - self.base][:nbytes]
            buf = EmulatedBuffer._new(shape, dtype, self, address, device, bool(cacheable))
            self._buffers[address - self.base] = buf
        return buf

    def close(self) -> None:
        """Free every live block (their buffers become unusable for DMA)."""
        with self._lock:
            self.closed = True  # no new buffer from here on
            buffers = list(self._buffers.values())
        for buf in buffers:
            buf.freebuffer()
        for offset in list(self._blocks):
            self.free_block(self.base + offset)

    # -- what the DMA sees -----------------------------------------------------------------

    def window(self, address: int, nbytes: int) -> np.ndarray | None:
        """The device's bytes at ``[address, address + nbytes)`` if they lie inside one live
        block, else None.

        The DMA of the emulated board may only touch allocated memory: anything else (freed
        blocks, gaps, outside CMA, across two blocks) is a decode error here. On a board
        such an access would silently read or corrupt whatever lives there.
        """
        offset = address - self.base
        if offset < 0 or nbytes < 0:
            return None
        with self._lock:
            i = bisect.bisect_right(self._starts, offset) - 1
            if i < 0:
                return None
            start = self._starts[i]
            block = self._blocks[start]
            if offset + nbytes > start + block.size:
                return None
            return block[offset - start : offset - start + nbytes]

    def is_live(self, address: int) -> bool:
        return (address - self.base) in self._blocks


class EmulatedBuffer(np.ndarray):
    """``pynq.buffer.PynqBuffer``: an ndarray whose memory is the CPU's view.

    ``physical_address`` (= ``device_address``) is where the DMA finds it; a view or slice
    reports the address of its first element, like pynq. For a cacheable buffer
    ``flush()`` makes the CPU's writes visible to the device and ``invalidate()`` the
    device's writes visible to the CPU (for a view, over the byte span it covers); a
    non-cacheable one is coherent and needs neither.
    """

    # An allocated buffer (the "root") holds ``_memory``, ``_device`` (its block's bytes, as
    # the DMA sees them) and ``_host`` (the CPU's bytes: its own for a cacheable buffer, the
    # device's for a coherent one), both flat; a view holds ``_root``. The root does not
    # point at itself, so dropping the last reference frees it at once (no cycle to wait for).
    _memory: ContiguousMemory | None
    _root: EmulatedBuffer | None
    _host: np.ndarray | None
    _device: np.ndarray | None
    _cacheable: bool
    device_address: int | None
    freed: bool

    @classmethod
    def _new(
        cls,
        shape: Any,
        dtype: np.dtype,
        memory: ContiguousMemory,
        address: int,
        device: np.ndarray,
        cacheable: bool = True,
    ) -> EmulatedBuffer:
        shape = tuple(shape) if np.iterable(shape) else (shape,)
        # the CPU's cached copy, or the device's bytes themselves
        host = np.zeros(device.size, dtype=np.uint8) if cacheable else device
        self = host.view(dtype).reshape(shape).view(cls)  # host does not refer back: no cycle
        self._memory = memory
        self._root = None
        self._host = host
        self._device = device
        self._cacheable = cacheable
        self.device_address = address
        self.freed = False
        return self

    def __array_finalize__(self, obj: Any) -> None:
        self._memory = None
        self._host = None
        self._device = None
        self.freed = False
        root = obj if getattr(obj, "_host", None) is not None else getattr(obj, "_root", None)
        if root is None:
            self._root = None
            self.device_address = None
            return
        # A view shares the root's memory; a ufunc result or copy does not.
        delta = self._byte_offset_in(root)
        if delta is None:
            self._root = None
            self.device_address = None
        else:
            self._root = root
            self.device_address = root.device_address + delta

    def _byte_offset_in(self, root: EmulatedBuffer) -> int | None:
        host = root._host
        start = host.__array_interface__["data"][0]
        here = self.__array_interface__["data"][0]
        if self.size == 0:
            return here - start if start <= here <= start + host.size else None
        lo, hi = byte_bounds(self)
        if lo < start or hi > start + host.size:
            return None
        return here - start

    # -- pynq's surface --------------------------------------------------------------------

    @property
    def physical_address(self) -> int | None:
        return self.device_address

    @property
    def virtual_address(self) -> int:
        return self.__array_interface__["data"][0]

    @property
    def cacheable(self) -> bool:
        """Whether the CPU reaches this memory through its caches (``allocate``'s flag)."""
        root = self._root_buffer()
        return bool(root._cacheable) if root is not None else True

    @property
    def coherent(self) -> bool:
        """Whether CPU and DMA see each other's writes without flush/invalidate."""
        root = self._root_buffer()
        return root is not None and not root._cacheable

    def _root_buffer(self) -> EmulatedBuffer | None:
        return self if self._host is not None else self._root

    def _span(self) -> tuple[EmulatedBuffer, int, int]:
        """(root, first byte, end byte) of the root's memory this array covers."""
        root = self._root_buffer()
        if root is None:
            raise RuntimeError("array is not backed by contiguous memory (a copy, not a view)")
        if root.freed:
            raise RuntimeError("buffer has been freed (freebuffer() was called)")
        if self.size == 0:
            return root, 0, 0
        start = root._host.__array_interface__["data"][0]
        lo, hi = byte_bounds(self)
        return root, lo - start, hi - start

    def flush(self) -> None:
        """CPU -> device: copy the bytes this array covers into contiguous memory."""
        root, lo, hi = self._span()
        if not root._cacheable:
            return  # coherent: the CPU wrote the device's bytes directly
        root._device[lo:hi] = root._host[lo:hi]

    def invalidate(self) -> None:
        """Device -> CPU: copy contiguous memory back over the bytes this array covers."""
        root, lo, hi = self._span()
        if not root._cacheable:
            return  # coherent: the CPU reads the device's bytes directly
        root._host[lo:hi] = root._device[lo:hi]

    def sync_to_device(self) -> None:
        self.flush()

    def sync_from_device(self) -> None:
        self.invalidate()

    def freebuffer(self) -> None:
        """Give the contiguous memory back. On a view this does nothing (as in pynq 4.0)."""
        if self._host is None or self.freed:
            return
        self.freed = True
        memory = self._memory
        if memory is not None:
            memory.free_block(self.device_address)

    def close(self) -> None:
        warnings.warn(
            ".close no longer functional - use scopes to manage buffers",
            DeprecationWarning,
            stacklevel=2,
        )

    def __enter__(self) -> EmulatedBuffer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.freebuffer()

    def __del__(self) -> None:
        # pynq frees a buffer's memory when the array is garbage collected.
        try:
            self.freebuffer()
        except Exception:  # noqa: BLE001 -- never raise from a finalizer
            pass
