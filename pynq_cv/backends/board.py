"""The real board: ``pynq`` imported lazily, the HelloWorld resizer overlay loaded on demand.

Nothing is programmed at import: ``PynqBoard()`` is built when the first eligible frame
arrives (or when asked), and loading the overlay is what programs the PL.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from ..descriptors import OverlayDescriptor, descriptor_for, ip_dict_mismatches
from ..driver import SharedIP
from ..errors import BackendUnavailable

BITSTREAM_ENV = "PYNQ_CV_BITSTREAM"
BOARD_ENV = "PYNQ_CV_BOARD"


def find_bitstream(explicit: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """Where the resizer bitstream is: (path or None, how it was found or why not)."""
    if explicit:
        path = Path(explicit)
        return (path, "given explicitly") if path.is_file() else (None, f"{path} does not exist")
    env = os.environ.get(BITSTREAM_ENV)
    if env:
        path = Path(env)
        if path.is_file():
            return path, f"from {BITSTREAM_ENV}"
        return None, f"{BITSTREAM_ENV}={env} does not exist"
    spec = importlib.util.find_spec("pynq_helloworld")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            hits = sorted(Path(root).rglob("resizer.bit"))
            if hits:
                return hits[0], "from the installed pynq-helloworld package"
    return None, (
        f"no bitstream: pass bitstream=, set {BITSTREAM_ENV}, or pip install pynq-helloworld"
    )


def board_name(explicit: str | None = None) -> str | None:
    """The board to describe: explicit, ``PYNQ_CV_BOARD``, or PYNQ images' own ``BOARD``."""
    return explicit or os.environ.get(BOARD_ENV) or os.environ.get("BOARD") or None


_shared: dict[str, PynqBoard] = {}
_shared_lock = threading.Lock()


def open_shared(**options: Any) -> PynqBoard:
    """One ``PynqBoard`` per process: two engines on one board would load the bitstream
    twice (resetting a frame in flight) and interleave their register writes; a different
    bitstream would reprogram the PL under the first one."""
    path, _ = find_bitstream(options.get("bitstream"))
    key = str(path.resolve()) if path is not None else ""
    with _shared_lock:
        board = _shared.get(key)
        if board is None:
            if _shared:  # the PL holds one bitstream: loading another would reprogram it
                raise BackendUnavailable(
                    f"{next(iter(_shared))} is already loaded in this process; "
                    f"not loading {key or 'another bitstream'} over it",
                    on_board=True,
                )
            board = PynqBoard(**options)
            _shared[key] = board
        return board


class PynqBoard:
    """The resizer overlay on a real PYNQ board, through the real ``pynq`` package.

    ``shared_ip`` (lock, dirty flag, owed bytes) is shared by every engine's driver on it.
    """

    name = "board"

    def __init__(
        self,
        bitstream: str | os.PathLike[str] | None = None,
        board: str | None = None,
        descriptor: OverlayDescriptor | None = None,
    ) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pynq
        except ImportError as exc:
            raise BackendUnavailable(f"pynq is not importable ({exc})") from exc
        path, how = find_bitstream(bitstream)
        if path is None:
            raise BackendUnavailable(how)
        self.descriptor = descriptor or descriptor_for(board_name(board))
        self.bitstream = path
        self.bitstream_origin = how
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pynq warns once before 'No Devices Found'
                self.overlay = pynq.Overlay(str(path))
        except Exception as exc:  # noqa: BLE001 -- whatever pynq raises, the PL is unavailable
            raise BackendUnavailable(f"pynq cannot load {path}: {exc}", on_board=True) from exc
        problems = ip_dict_mismatches(self.descriptor, self.overlay.ip_dict)
        if problems:
            raise BackendUnavailable(
                f"overlay {path} does not match descriptor {self.descriptor.name}: "
                + "; ".join(problems),
                on_board=True,
            )
        self._pynq = pynq
        self.shared_ip = SharedIP()
        # pynq 2.7's freebuffer() frees nothing for ordinary buffers: never evict there
        major = str(getattr(pynq, "__version__", "3")).split(".")[0]
        self.frees_memory = not major.isdigit() or int(major) >= 3

    def allocate(self, shape: tuple[int, ...], dtype: Any, cacheable: bool = True) -> Any:
        """Always an explicit ``cacheable=``: pynq's default (False) maps buffers uncached or
        write-combined on a board, where CPU reads crawl (~64 MB/s on Zynq-7000); the planner
        picks the kind per role (``costs.roles``)."""
        return self._pynq.allocate(shape, dtype=dtype, cacheable=cacheable)

    def reset_pl(self) -> bool:
        """Reload the bitstream: resets the IP, the width converters and the DMA."""
        self.overlay.download()
        return True

    def close(self) -> None:
        """The overlay stays loaded (other programs may use it); buffers belong to the pool."""
