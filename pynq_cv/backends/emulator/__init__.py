"""The board emulator: a PYNQ board with the resizer overlay, register level, in software.

Layers, bottom up: ``memory`` (CMA and non-coherent buffers), ``dma`` (AXI DMA registers
and pynq's DMA driver), ``resize_ip`` (the IP's registers and streams; pixels from
``arith``), ``overlay`` (the block design's data path and ``pynq.Overlay``'s surface),
``faults`` (fault injection), ``board`` (``EmulatedBoard``, the entry point).
"""

from .board import EmulatedBoard
from .dma import AxiDmaRegisters, EmulatedDMA, EmulatedIP
from .faults import Faults
from .memory import ContiguousMemory, EmulatedBuffer
from .overlay import EmulatedOverlay, StreamPath
from .resize_ip import ResizeIP

__all__ = [
    "AxiDmaRegisters",
    "ContiguousMemory",
    "EmulatedBoard",
    "EmulatedBuffer",
    "EmulatedDMA",
    "EmulatedIP",
    "EmulatedOverlay",
    "Faults",
    "ResizeIP",
    "StreamPath",
]
