"""``BufferPool``: contiguous buffers reused per (shape, dtype), under a byte budget.

Buffers that the DMA can reach come from pynq's ``allocate`` (physically contiguous CMA
memory). That memory is scarce (about 128 MB on a Pynq-Z1/Z2, shared with every other
program on the board), allocating it costs milliseconds, and a buffer that is never freed
stays lost until a reboot. So the pool allocates a buffer once per (shape, dtype), hands it
out again and again, keeps the total under a budget by freeing the least recently used idle
buffers, and frees everything at ``close()``.

A frame never waits for memory: when the budget or the CMA is full the pool raises
``PoolExhausted`` at once, and the caller computes the frame on the CPU instead. Only
``lend`` may wait, briefly, for frames in flight to give budget back.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from math import prod
from operator import index
from typing import Any

import numpy as np

from .errors import PynqCvError

__all__ = ["DEFAULT_BUDGET_BYTES", "BufferPool", "PoolClosed", "PoolExhausted"]

DEFAULT_BUDGET_BYTES = 64 * 2**20
"""Half of a Pynq-Z2's 128 MiB CMA. The other half stays for other users of the board's
contiguous memory (other overlays' drivers, other processes, the driver's scratch buffer) and
for fragmentation: a contiguous allocation fails well before the CMA is 100% used, and a
failure there hurts everyone on the board, so the pool should fail first, politely. 64 MiB is
still plenty: a 4K input and its 1080p output are 31 MB, a 1080p frame and its half 7.8 MB,
so the pipelined path (two frames) of 1080p plus a few lent buffers and a second resolution
fit; 4K pipelined needs a larger budget. Boards with more CMA can pass a larger budget."""

_Key = tuple[tuple[int, ...], np.dtype, "bool | None"]  # shape, dtype, cacheable


class PoolExhausted(PynqCvError):
    """No buffer for this frame; the frame falls back to the CPU.

    ``reason`` says which limit was hit: ``"budget"`` (the pool's own byte budget is held
    by buffers in use, or the buffer is larger than the whole budget) or ``"cma"`` (pynq's
    ``allocate`` raised ``RuntimeError``/``MemoryError``, and again after every idle buffer
    was freed -- no retry when none was idle: the board's contiguous memory is exhausted;
    the original error is chained as ``__cause__``). Dispatch counts the two apart
    ("pool_budget" / "cma_exhausted").
    """

    def __init__(
        self, reason: str, shape: tuple[int, ...], dtype: np.dtype, nbytes: int,
        budget_bytes: int, in_use_bytes: int, detail: str = "",
    ) -> None:
        self.reason = reason
        self.shape = shape
        self.dtype = dtype
        self.nbytes = nbytes
        self.budget_bytes = budget_bytes
        self.in_use_bytes = in_use_bytes
        what = "contiguous memory (CMA) exhausted" if reason == "cma" else "pool budget exhausted"
        message = (
            f"{what}: buffer {shape} {dtype} needs {nbytes} bytes; "
            f"budget {budget_bytes} bytes, {in_use_bytes} bytes in use"
        )
        super().__init__(f"{message}; {detail}" if detail else message)


class PoolClosed(PynqCvError):
    """The pool was closed: it hands out no more buffers."""


class _Entry:
    """One live buffer: the array pynq gave us, its pool key and size, and who holds it.

    ``holder`` is the single source of truth (None: idle); the indexes (``_out``, the idle
    buckets, the LRU) follow it, each step idempotent, so a transition cut short by an
    interrupt is completed by retrying it (``release_held``) and never hands out a buffer
    twice."""

    __slots__ = ("buf", "ident", "key", "nbytes", "lent", "holder", "freed")

    def __init__(self, buf: Any, key: _Key, nbytes: int, holder: Any = None) -> None:
        self.buf = buf
        self.ident = id(buf)  # unique while the entry (holding buf) lives
        self.key = key
        self.nbytes = nbytes
        self.lent = False
        self.holder = holder
        self.freed = False


class _Anonymous:
    """The holder of a buffer checked out without one (``acquire(shape)``)."""

    __slots__ = ()


_DTYPES: dict[Any, np.dtype] = {}  # dtype-like -> np.dtype: np.dtype() and isinstance are slow


def _as_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    try:
        if len(_DTYPES) < 256:
            _DTYPES[dtype] = dt
    except TypeError:  # unhashable dtype-like, e.g. a list of fields
        pass
    return dt


def _as_shape(shape: Any) -> tuple[int, ...]:
    if hasattr(shape, "__iter__"):
        return tuple(index(n) for n in shape)
    return (index(shape),)


class BufferPool:
    """Contiguous buffers reused per (shape, dtype), with a byte budget and LRU eviction.

    ``allocate(shape, dtype)`` is pynq's ``allocate`` (or the emulator's): it returns an
    ndarray subclass with ``freebuffer()`` and ``physical_address``. Nothing is allocated
    at construction; the first ``acquire`` of a shape allocates, later ones reuse.

    The budget counts every live buffer, idle or in use (see ``DEFAULT_BUDGET_BYTES`` for
    why 64 MiB). A buffer is either *idle* (in the pool, reusable, evictable) or *in use*
    (handed out by ``acquire``/``lend`` and not yet given back); it is never handed to two
    holders at once. All state sits behind one lock, so any number of threads may acquire
    and release; ``allocate`` itself runs outside the lock (it takes milliseconds on a
    board), with its bytes reserved against the budget meanwhile.

    Interrupts: every critical section is one line (``with lock: return step()``), so an
    exception (Ctrl-C) never lands between the lock's acquisition and its release; a state
    change cut short is completed by ``release_held(holder)``, which is idempotent.
    """

    def __init__(
        self,
        allocate: Callable[[tuple[int, ...], np.dtype], np.ndarray],
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        can_free: bool = True,
    ) -> None:
        """``can_free=False``: ``freebuffer()`` gives nothing back (pynq 2.7), so the pool
        never evicts -- a full budget raises ``PoolExhausted`` instead of leaking CMA."""
        if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, int):
            raise TypeError(f"budget_bytes must be an int, got {budget_bytes!r}")
        if budget_bytes <= 0:
            raise ValueError(f"budget_bytes must be positive, got {budget_bytes}")
        self._allocate = allocate
        self.budget_bytes = int(budget_bytes)
        self.can_free = can_free
        self._lock = threading.Lock()
        self._live: dict[int, _Entry] = {}  # id(buffer) -> entry, every buffer not yet freed
        self._out: dict[int, _Entry] = {}  # in use (acquired or lent)
        self._idle: dict[_Key, dict[int, _Entry]] = {}  # per key, insertion order: MRU last
        self._lru: OrderedDict[int, _Entry] = OrderedDict()  # every idle buffer, LRU first
        self._reserved: dict[int, tuple[Any, int]] = {}  # allocations under way: holder, bytes
        self._closed = False
        self._peak_bytes = 0
        self._allocations = 0
        self._allocate_failures = 0
        self._evictions = 0
        self._frees = 0

    def _locked(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run ``step(*args)`` under the lock. One line on purpose: no interrupt can land
        between taking the lock and giving it back (see the class docstring)."""
        with self._lock: return step(*args)  # noqa: E701

    # -- checking out and in ------------------------------------------------------------------

    def acquire(
        self, shape: Any, dtype: Any = np.uint8, cacheable: bool | None = None,
        holder: Any = None,
    ) -> Any:
        """A buffer of exactly ``shape`` and ``dtype``, for the caller alone until ``release``.

        ``cacheable`` (None: the allocator's default) is passed to ``allocate`` and is part of
        the key: an input buffer the DMA reads and an output buffer the CPU reads may want
        different kinds (``costs.roles``).

        An idle buffer of that key is reused (the most recently used one, the likeliest to
        be warm in cache); otherwise one is allocated, after evicting idle buffers (least
        recently used first, freed on the spot) if the budget needs room. Raises
        ``PoolExhausted`` (never waits) and ``PoolClosed`` after ``close()``. ``holder``
        (any object) lets ``release_held(holder)`` give back everything it holds at once.
        """
        try:
            dt = _DTYPES[dtype]
        except (KeyError, TypeError):
            dt = _as_dtype(dtype)
        key = (shape if type(shape) is tuple else _as_shape(shape), dt, cacheable)
        if holder is None:
            holder = _Anonymous()
        found = self._locked(self._take_idle, key, holder)
        if found is not None:
            return found
        return self._allocate_new(key, holder)

    def release(self, buffer: Any) -> None:
        """Give a buffer from ``acquire``/``lend`` back (a view of it is accepted too).

        It becomes idle and reusable; after ``close()`` it is freed instead. Raises
        ``ValueError`` if it is not checked out (never acquired, or already released).
        """
        self._locked(self._release_buffer, buffer, False)

    def release_held(self, holder: Any) -> int:
        """Give back every buffer ``holder`` holds (none: nothing happens); idempotent."""
        return self._locked(self._release_holder, holder)

    @contextmanager
    def lease(
        self, shape: Any, dtype: Any = np.uint8, cacheable: bool | None = None
    ) -> Iterator[Any]:
        """``with pool.lease(shape, dtype) as buf:`` -- ``acquire`` now, ``release`` on exit."""
        buf = self.acquire(shape, dtype, cacheable)
        try:
            yield buf
        finally:
            self.release(buf)

    def lend(
        self, shape: Any, dtype: Any = np.uint8, cacheable: bool | None = None,
        wait: float = 0.0,
    ) -> Any:
        """A buffer for the user to fill in place (zero copy: decode a camera frame into it).

        Same as ``acquire``, but meant to leave the library: it counts as in use, is never
        evicted or reused, until ``give_back(buf)``. A frame that lives in it is recognised
        by ``owns`` and goes to the PL without a copy.

        The one place the pool waits: a frame has the CPU to fall back to, a lend has
        nothing, so when frames in flight hold the budget a lend polls for up to ``wait``
        seconds for them to give it back (they do when they finish) before it raises
        ``PoolExhausted``. It raises at once when waiting cannot help: no frame holds
        anything, lent buffers alone leave no room, or (a pool that cannot free) no frame
        holds a buffer of this very shape and kind.
        """
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait < 1e9:
            raise ValueError(f"wait must be a number of seconds >= 0, got {wait!r}")
        deadline = time.monotonic() + wait
        pause = 0.0005
        while True:
            try:
                return self._lend_now(shape, dtype, cacheable)
            except PoolExhausted as exc:
                key = (exc.shape, exc.dtype, cacheable)
                if exc.reason != "budget" or not self._locked(self._frames_hold_room, key,
                                                              exc.nbytes):
                    raise
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.01)

    def _lend_now(self, shape: Any, dtype: Any, cacheable: bool | None) -> Any:
        holder = _Anonymous()
        try:  # an interrupt before the caller has the buffer gives it back
            buf = self.acquire(shape, dtype, cacheable, holder)
            entry = self._out.get(id(buf))
            if entry is not None and entry.holder is holder:
                entry.lent = True
            return buf
        except BaseException:
            self.release_held(holder)
            raise

    def give_back(self, buffer: Any) -> None:
        """Return a buffer from ``lend``: the very object lent, once (identity is checked).

        A second ``give_back`` of it, an array this pool did not lend, or a view of a lent
        buffer raise ``ValueError`` (naming which); after ``close()`` the buffer is freed.
        """
        self._locked(self._release_buffer, buffer, True)

    # -- zero copy ------------------------------------------------------------------------------

    def root_of(self, array: Any) -> Any:
        """The live pool buffer that ``array`` is or views into, else ``None``.

        The rule: follow ``array``, ``array.base``, ``array.base.base``... and look each
        object up (by identity) among the buffers this pool allocated and has not freed.
        Numpy points every slice, reshape or ``.view()`` at its memory owner through
        ``base``, and pynq's buffers sit on a non-array memory object, so any view of a
        pool buffer leads back to it in a step or two. Copies, and arrays built from the
        raw memory some other way (``np.frombuffer``, ``__array_interface__``), do not.
        (A buffer class made as ``storage_ndarray.view(Sub)`` would lose plain views such
        as ``np.asarray(buf)``: numpy collapses their ``base`` past it to the storage.)
        No lock: one dict lookup per step, atomic under the GIL.
        """
        live = self._live
        obj = array
        while obj is not None:
            entry = live.get(id(obj))
            if entry is not None and entry.buf is obj:
                return obj
            obj = getattr(obj, "base", None)
        return None

    def owns(self, array: Any) -> bool:
        """True if ``array`` is, or is a view into, a buffer of this pool not yet freed.

        See ``root_of`` for the rule. A buffer counts whether idle or in use, so an array
        kept after ``release``/``give_back`` still "belongs" until it is evicted.
        """
        return self.root_of(array) is not None

    def kind_of(self, array: Any) -> bool | None:
        """The ``cacheable`` this pool allocated ``array``'s buffer with (``array`` or a view
        of it); None for an array the pool did not make, or one made with pynq's default."""
        root = self.root_of(array)
        entry = self._live.get(id(root)) if root is not None else None
        return None if entry is None else entry.key[2]

    def is_lent(self, array: Any) -> bool:
        """True if ``array`` is a buffer this pool lent and that was not given back."""
        entry = self._out.get(id(array))
        return entry is not None and entry.buf is array and entry.lent

    def address_of(self, array: Any) -> int | None:
        """The bus address of ``array``'s first element, if it lives in a pool buffer.

        Works for plain-ndarray views too (``np.asarray(buf)[10:]``), which have no
        ``physical_address`` attribute of their own. ``None`` if the pool does not own it.
        """
        root = self.root_of(array)
        if root is None:
            return None
        offset = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        return int(root.physical_address) + offset

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Free every idle buffer now, and each buffer in use when it is released.

        Afterwards ``acquire`` and ``lend`` raise ``PoolClosed``. Idempotent.
        """
        self._locked(self._close)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> BufferPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- introspection --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Bytes and counts: live (idle + in use), peak, allocations, evictions, frees.

        ``allocations`` counts ``allocate`` calls that returned a buffer (so ``allocations -
        frees == buffers``), ``allocate_failures`` those that raised; ``evictions`` counts
        idle buffers freed to make room (budget or CMA), ``frees`` every ``freebuffer()``.
        Bytes of an allocation under way count as live and in use.
        """
        return self._locked(self._stats)

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<BufferPool {s['buffers']} buffers, {s['in_use_bytes']}/{s['live_bytes']} bytes "
            f"in use, budget {s['budget_bytes']}{', closed' if s['closed'] else ''}>"
        )

    # -- inside (every _method below runs with self._lock held, except _allocate_new) ----------

    def _live_bytes(self) -> int:
        reserved = sum(nbytes for _, nbytes in self._reserved.values())
        return sum(e.nbytes for e in self._live.values()) + reserved

    def _in_use_bytes(self) -> int:
        reserved = sum(nbytes for _, nbytes in self._reserved.values())
        return sum(e.nbytes for e in self._out.values()) + reserved

    def _frames_hold_room(self, key: _Key, nbytes: int) -> bool:
        """Can a lend of ``key`` succeed once the frames give back what they hold?"""
        held = [e for e in self._out.values() if not e.lent]
        if self._closed or not (held or self._reserved):
            return False  # nobody will give anything back
        if not self.can_free:  # nothing is ever freed: only a buffer of this key is reused
            return any(e.key == key for e in held)
        lent = sum(e.nbytes for e in self._out.values() if e.lent)
        return lent + nbytes <= self.budget_bytes

    def _stats(self) -> dict[str, Any]:
        live, in_use = self._live_bytes(), self._in_use_bytes()
        return {
            "budget_bytes": self.budget_bytes,
            "live_bytes": live,
            "peak_bytes": self._peak_bytes,
            "in_use_bytes": in_use,
            "idle_bytes": live - in_use,
            "buffers": len(self._live),
            "in_use": len(self._out),
            "lent": sum(entry.lent for entry in self._out.values()),
            "idle": len(self._lru),
            "allocations": self._allocations,
            "allocate_failures": self._allocate_failures,
            "evictions": self._evictions,
            "frees": self._frees,
            "closed": self._closed,
        }

    def _take_idle(self, key: _Key, holder: Any) -> Any:
        """An idle buffer of ``key`` checked out to ``holder``; else reserve room (None)."""
        if self._closed:
            raise PoolClosed("buffer pool is closed")
        bucket = self._idle.get(key)
        if bucket:
            entry = next(reversed(bucket.values()))  # most recently used
            entry.holder = holder  # the commit point: release_held(holder) finds it now
            self._out[entry.ident] = entry
            bucket.pop(entry.ident, None)
            self._lru.pop(entry.ident, None)
            return entry.buf
        self._reserve(key, holder)
        return None

    def _check_in(self, entry: _Entry, holder: Any) -> None:
        """``entry`` goes back from ``holder``: idle, or freed if the pool is closed."""
        if entry.holder is not holder:
            return  # done already (a retry), or checked out again since
        if self._closed:
            self._free(entry)
            self._out.pop(entry.ident, None)
            entry.lent = False
            entry.holder = None
            return
        bucket = self._idle.get(entry.key)
        if bucket is None:
            bucket = self._idle[entry.key] = {}
        bucket[entry.ident] = entry
        self._lru[entry.ident] = entry
        self._lru.move_to_end(entry.ident)
        self._out.pop(entry.ident, None)
        entry.lent = False
        entry.holder = None  # the commit point

    def _release_holder(self, holder: Any) -> int:
        held = [e for e in self._live.values() if e.holder is holder]
        for entry in held:
            self._check_in(entry, holder)
        self._reserved = {k: v for k, v in self._reserved.items() if v[0] is not holder}
        return len(held)

    def _release_buffer(self, buffer: Any, lent_only: bool) -> None:
        if lent_only:
            entry = self._live.get(id(buffer))
            if entry is None or entry.buf is not buffer:
                what = "a view of a pool buffer" if self.root_of(buffer) is not None else (
                    "an array this pool did not lend")
                raise ValueError(f"give_back of {what}: give back the very buffer lend() returned")
            if not entry.lent:
                state = "in use by a frame" if entry.holder is not None else "idle"
                raise ValueError(f"give_back of a buffer that is not lent (given back already? "
                                 f"it is {state})")
        else:
            entry = self._out.get(id(buffer))
            if entry is None or entry.buf is not buffer:
                root = self.root_of(buffer)
                entry = self._out.get(id(root)) if root is not None else None
                if entry is None:
                    what = "a view of an idle pool buffer" if root is not None else (
                        "not a pool buffer")
                    raise ValueError(f"release of a buffer that is not checked out ({what})")
        self._check_in(entry, entry.holder)

    def _close(self) -> None:
        self._closed = True
        for entry in [e for e in self._live.values() if e.holder is None]:
            self._free(entry)
        self._idle.clear()
        self._lru.clear()

    def _reserve(self, key: _Key, holder: Any) -> None:
        """Count a new buffer's bytes against the budget, evicting idle ones to make room."""
        shape, dtype, _ = key
        if any(index(n) < 0 for n in shape):  # index(): floats are no dimensions either
            raise ValueError(f"negative dimensions are not allowed: {shape}")
        nbytes = prod(index(n) for n in shape) * dtype.itemsize
        if nbytes > self.budget_bytes:
            raise self._exhausted("budget", key, nbytes, "larger than the whole budget")
        if self._in_use_bytes() + nbytes > self.budget_bytes:
            # Evicting would not help: keep the idle buffers for the frames that fit.
            raise self._exhausted("budget", key, nbytes, "buffers in use hold the budget")
        lru = self._lru
        live = self._live_bytes()
        if live + nbytes > self.budget_bytes and not self.can_free:
            raise self._exhausted(
                "budget", key, nbytes, "this pynq cannot free contiguous memory: no eviction"
            )
        while live + nbytes > self.budget_bytes and lru:
            entry = next(iter(lru.values()))
            self._evict(entry)
            live = self._live_bytes()
        self._reserved[id(holder)] = (holder, nbytes)
        self._peak_bytes = max(self._peak_bytes, live + nbytes)

    def _allocate_new(self, key: _Key, holder: Any) -> Any:
        """Call ``allocate`` (lock not held) for reserved bytes; on failure free idle, retry."""
        shape, dtype, cacheable = key
        kind = {} if cacheable is None else {"cacheable": cacheable}
        buf = None
        try:
            try:
                buf = self._allocate(shape, dtype, **kind)
            except (RuntimeError, MemoryError) as first:
                freed, error = self._locked(self._after_failure, key, first, holder)
                if not freed:  # nothing changed: the same call would fail the same way
                    raise error from first
                try:
                    buf = self._allocate(shape, dtype, **kind)
                except (RuntimeError, MemoryError) as second:
                    _, error = self._locked(self._after_failure, key, second, holder, freed)
                    raise error from second
            return self._locked(self._register, buf, key, holder)
        except BaseException:
            self._locked(self._unreserve, holder, buf)
            raise

    def _after_failure(
        self, key: _Key, exc: BaseException, holder: Any, freed_before: int = -1
    ) -> tuple[int, PoolExhausted]:
        self._allocate_failures += 1
        freed = len(self._lru)
        while self._lru:
            self._evict(next(iter(self._lru.values())))
        nbytes = self._reserved.get(id(holder), (None, 0))[1]
        if freed_before >= 0:
            detail = f"allocate failed after freeing {freed_before} idle buffers: {exc}"
        else:
            detail = f"allocate failed: {exc}"
        return freed, self._exhausted("cma", key, nbytes, detail, nbytes)

    def _register(self, buf: Any, key: _Key, holder: Any) -> Any:
        nbytes = self._reserved.get(id(holder), (None, 0))[1]
        entry = _Entry(buf, key, nbytes, holder)
        self._live[entry.ident] = entry
        self._out[entry.ident] = entry
        self._reserved.pop(id(holder), None)
        self._allocations += 1
        return buf

    def _unreserve(self, holder: Any, buf: Any) -> None:
        """An allocation given up: its reservation goes, and a buffer it got is freed."""
        self._reserved.pop(id(holder), None)
        if buf is not None and id(buf) not in self._live:
            buf.freebuffer()

    def _evict(self, entry: _Entry) -> None:
        """Free an idle buffer to make room."""
        bucket = self._idle.get(entry.key)
        if bucket is not None:
            bucket.pop(entry.ident, None)
            if not bucket:  # forget shapes no longer pooled: a long run may see many
                del self._idle[entry.key]
        self._lru.pop(entry.ident, None)
        self._evictions += 1
        self._free(entry)

    def _free(self, entry: _Entry) -> None:
        """Give a buffer's memory back, now, once; then forget it."""
        if not entry.freed:
            entry.freed = entry.buf.freebuffer() or True
            self._frees += 1
        self._live.pop(entry.ident, None)

    def _exhausted(
        self, reason: str, key: _Key, nbytes: int, detail: str, reserved: int = 0
    ) -> PoolExhausted:
        """The error for ``key``; ``reserved``: this request's own bytes, not "in use" yet."""
        in_use = self._in_use_bytes() - reserved
        return PoolExhausted(reason, key[0], key[1], nbytes, self.budget_bytes, in_use, detail)
