"""Emulated CMA: page allocator, accounting, exhaustion, and non-coherent buffers."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from pynq_cv.backends.emulator import ContiguousMemory, EmulatedBoard, EmulatedBuffer
from pynq_cv.backends.emulator.memory import OOM_MESSAGE, PAGE

MiB = 1 << 20


def device_bytes(buf: EmulatedBuffer, nbytes: int | None = None) -> np.ndarray:
    """What the DMA would read at the buffer's address."""
    memory = (buf if buf._host is not None else buf._root)._memory
    return memory.window(buf.physical_address, buf.nbytes if nbytes is None else nbytes)


# -- allocator ----------------------------------------------------------------------------


def test_blocks_are_page_aligned_first_fit_from_the_base():
    memory = ContiguousMemory(1 * MiB, base=0x2000_0000)
    a = memory.allocate((10,), np.uint8)
    b = memory.allocate((PAGE + 1,), np.uint8)
    c = memory.allocate((3, 5), np.uint32)
    assert a.physical_address == 0x2000_0000
    assert b.physical_address == 0x2000_0000 + PAGE
    assert c.physical_address == 0x2000_0000 + 3 * PAGE
    assert all(x.physical_address % PAGE == 0 for x in (a, b, c))
    assert memory.live_bytes == 4 * PAGE  # page-rounded: what CMA really loses


def test_accounting_counts_live_peak_allocations_and_frees():
    memory = ContiguousMemory(1 * MiB)
    bufs = [memory.allocate((PAGE,), np.uint8) for _ in range(3)]
    assert (memory.live_buffers, memory.live_bytes, memory.allocations) == (3, 3 * PAGE, 3)
    bufs[0].freebuffer()
    bufs[0].freebuffer()  # idempotent
    assert (memory.live_buffers, memory.live_bytes, memory.frees) == (2, 2 * PAGE, 1)
    assert memory.peak_bytes == 3 * PAGE
    assert memory.stats()["peak_bytes"] == 3 * PAGE


def test_exhaustion_raises_pynqs_error_and_freeing_makes_room():
    memory = ContiguousMemory(4 * PAGE)
    a = memory.allocate((3 * PAGE,), np.uint8)
    with pytest.raises(RuntimeError) as info:
        memory.allocate((2 * PAGE,), np.uint8)
    assert type(info.value) is RuntimeError
    assert str(info.value) == OOM_MESSAGE == "BO allocation failed: std::bad_alloc"
    assert memory.failures == 1 and memory.live_buffers == 1
    a.freebuffer()
    assert memory.allocate((4 * PAGE,), np.uint8).physical_address == memory.base


def test_freed_neighbours_coalesce_into_one_reusable_hole():
    memory = ContiguousMemory(8 * PAGE)
    a, b, c, d = (memory.allocate((2 * PAGE,), np.uint8) for _ in range(4))
    b.freebuffer()
    c.freebuffer()  # merges with b's hole
    assert memory.largest_free == 4 * PAGE
    e = memory.allocate((4 * PAGE,), np.uint8)
    assert e.physical_address == b.physical_address
    a.freebuffer()
    d.freebuffer()
    e.freebuffer()  # everything merges back
    assert memory.largest_free == 8 * PAGE and memory.live_bytes == 0


def test_first_fit_takes_the_lowest_hole_that_fits():
    memory = ContiguousMemory(8 * PAGE)
    a = memory.allocate((PAGE,), np.uint8)
    _b = memory.allocate((PAGE,), np.uint8)
    c = memory.allocate((2 * PAGE,), np.uint8)
    _d = memory.allocate((PAGE,), np.uint8)
    a.freebuffer()
    c.freebuffer()
    assert memory.allocate((2 * PAGE,), np.uint8).physical_address == c.physical_address
    assert memory.allocate((PAGE,), np.uint8).physical_address == a.physical_address


def test_context_manager_and_garbage_collection_free_the_block():
    memory = ContiguousMemory(1 * MiB)
    with memory.allocate((100,), np.uint8) as buf:
        assert memory.live_buffers == 1
    assert buf.freed and memory.live_buffers == 0
    buf = memory.allocate((100,), np.uint8)
    view = buf[10:]
    del buf
    gc.collect()
    assert memory.live_buffers == 1  # a view keeps its buffer alive
    del view
    gc.collect()
    assert memory.live_buffers == 0


def test_freebuffer_on_a_view_does_nothing_like_pynq4():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((100,), np.uint8)
    buf[10:20].freebuffer()
    assert memory.live_buffers == 1 and not buf.freed


def test_close_frees_everything():
    memory = ContiguousMemory(1 * MiB)
    keep = [memory.allocate((PAGE,), np.uint8) for _ in range(3)]
    memory.close()
    assert memory.live_buffers == 0 and all(b.freed for b in keep)
    with pytest.raises(RuntimeError):
        memory.allocate((1,), np.uint8)


def test_only_live_blocks_hold_host_memory_so_many_boards_fit_a_32_bit_process():
    """Forty emulated Pynq-Z2 CMAs (128 MiB each, 5 GiB in all) open at once: a 32-bit
    process (CI's armhf job) has 3 GiB of address space, so the emulator must not reserve
    the CMA's size up front (one engine left for the garbage collector each reserved
    128 MiB, and the armhf suite ran out)."""
    memories = [ContiguousMemory() for _ in range(40)]
    assert memories[0].size == 128 * MiB
    bufs = [memory.allocate((PAGE,), np.uint8, cacheable=False) for memory in memories]
    for i, (memory, buf) in enumerate(zip(memories, bufs, strict=True)):
        buf[:] = i
        assert (memory.window(buf.physical_address, PAGE) == i).all()
        assert memory.window(buf.physical_address + PAGE, 1) is None  # nothing beyond
    for memory in memories:
        memory.close()


def test_cma_exhausted_fault_raises_pynqs_error_while_on():
    board = EmulatedBoard(cma_bytes=1 * MiB)
    board.faults.cma_exhausted(True)
    with pytest.raises(RuntimeError, match="^BO allocation failed: std::bad_alloc$"):
        board.allocate((16,), np.uint8)
    board.faults.cma_exhausted(False)
    board.allocate((16,), np.uint8)
    assert board.faults.injected["cma_exhausted"] == 1


# -- the PynqBuffer surface ---------------------------------------------------------------


def test_buffer_surface_matches_pynq():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((4, 6, 3), np.uint8)
    assert isinstance(buf, np.ndarray) and isinstance(buf, EmulatedBuffer)
    assert buf.physical_address == buf.device_address == memory.base
    assert buf.cacheable is False and buf.coherent is True  # pynq's default: cacheable=0
    assert memory.allocate((1,), np.uint8, cacheable=True).coherent is False
    assert buf[1].physical_address == memory.base + 18
    assert buf[1:, 2].physical_address == memory.base + 18 + 6
    assert buf.reshape(-1)[5:].physical_address == memory.base + 5
    assert buf[:, ::-1].physical_address == memory.base + 15  # first element, like pynq
    assert (buf + 1).physical_address is None  # new memory, not contiguous
    with pytest.warns(DeprecationWarning):
        buf.close()
    assert memory.allocate((3,), "u4").dtype == np.uint32  # pynq's default dtype


# -- cacheable buffers: non-coherent --------------------------------------------------------


def test_cpu_writes_reach_the_device_only_after_flush():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((64,), np.uint8, cacheable=True)
    buf[:] = 9
    assert not device_bytes(buf).any()  # stale: still in the "cache"
    buf.flush()
    assert (device_bytes(buf) == 9).all()
    buf[:] = 10
    buf.sync_to_device()
    assert (device_bytes(buf) == 10).all()


def test_device_writes_reach_the_cpu_only_after_invalidate():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((64,), np.uint8, cacheable=True)
    device_bytes(buf)[:] = 5
    assert not buf.any()
    buf.invalidate()
    assert (buf == 5).all()
    device_bytes(buf)[:] = 6
    buf.sync_from_device()
    assert (buf == 6).all()


def test_view_flush_and_invalidate_cover_only_the_views_byte_span():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((4, 4), np.uint8, cacheable=True)
    buf[:] = 1
    buf[1:3, 1:3].flush()  # span: bytes 5 .. 10 inclusive
    flat = device_bytes(buf)
    assert flat.tolist() == [0] * 5 + [1] * 6 + [0] * 5
    flat[:] = 7
    buf[3].invalidate()
    assert buf[3].tolist() == [7] * 4 and buf[:3].max() == 1


def test_flush_of_a_copy_or_a_freed_buffer_refuses():
    memory = ContiguousMemory(1 * MiB)
    buf = memory.allocate((8,), np.uint8)
    with pytest.raises(RuntimeError, match="not backed by contiguous memory"):
        (buf * 2).flush()
    buf.freebuffer()
    with pytest.raises(RuntimeError, match="freed"):
        buf.flush()


def test_fresh_buffers_are_zeroed_even_over_reused_memory():
    memory = ContiguousMemory(2 * PAGE)
    a = memory.allocate((PAGE,), np.uint8)
    a[:] = 3
    a.flush()
    a.freebuffer()
    b = memory.allocate((PAGE,), np.uint8)
    assert b.physical_address == a.physical_address
    assert not b.any() and not device_bytes(b).any()


def test_allocating_while_another_thread_closes_raises_pynqs_error_never_another():
    """close() lets go of the store: an allocation racing it gets the RuntimeError a
    closed memory gives (which the pool turns into a fallback), never a buffer on nothing."""
    seen = set()
    for trial in range(60):
        memory = ContiguousMemory(size=1 << 20)
        started = threading.Event()

        def allocate(memory=memory, started=started, cached=trial % 2 == 0) -> None:
            started.set()
            while True:
                try:
                    memory.allocate((4096,), np.uint8, cacheable=cached).freebuffer()
                except RuntimeError as exc:
                    seen.add(str(exc))
                    return
                except Exception as exc:  # noqa: BLE001 -- the test reports it
                    seen.add(f"{type(exc).__name__}: {exc}")
                    return

        worker = threading.Thread(target=allocate)
        worker.start()
        started.wait()
        memory.close()
        worker.join(10)
        assert not worker.is_alive()
    assert seen == {"contiguous memory is closed"}, seen
