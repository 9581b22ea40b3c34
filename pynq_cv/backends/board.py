"""The real board: ``pynq`` imported lazily, the HelloWorld resizer overlay loaded on demand.

Nothing is programmed at import: ``PynqBoard()`` is built when the first eligible frame
arrives (or when asked). A good citizen on a shared board, it first takes the PL's
inter-process lock (``pl_lock``), then looks at what the PL holds (``pynq.PL.bitfile_name``,
read before any ``Overlay`` is built: on pynq >= 3 building one changes it) and only then
loads: the resizer already there is attached without a download; another design is never
overwritten unless asked (``reprogram=True`` / ``PYNQ_CV_REPROGRAM=1``); an overlay the
user loaded (``overlay=``) is used as it is. Only a bitstream pynq_cv downloaded itself is
ever downloaded again by recovery.
"""

from __future__ import annotations

import dataclasses
import filecmp
import importlib.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from ..descriptors import OverlayDescriptor, descriptor_for, ip_dict_mismatches
from ..driver import SharedIP
from ..errors import BackendUnavailable
from ..pl_lock import PLLock
from ..settings import env_flag
from .emulation import active_emulation

BITSTREAM_ENV = "PYNQ_CV_BITSTREAM"
BOARD_ENV = "PYNQ_CV_BOARD"
REPROGRAM_ENV = "PYNQ_CV_REPROGRAM"
FPGA_MANAGER = Path("/sys/class/fpga_manager/fpga0")  # the Zynq's PL, as Linux shows it
PL_LOCK_KEY = "pl-fpga0"  # one PL per Zynq / Zynq MPSoC: one lock, whatever is loaded on it


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


def emulated_pl() -> bool:
    """Inside ``pynq_cv.emulate()``: the emulated board's PL is this machine's PL."""
    return active_emulation() is not None


def fpga_manager_present(path: Path | None = None) -> bool:
    """Linux shows a PL (``FPGA_MANAGER``, or ``path``): this is a Zynq board, pynq or not."""
    return (path or FPGA_MANAGER).exists()


def machine_has_pl() -> bool:
    """On a PYNQ board: ``pynq`` imports and the machine has a PL (Linux's fpga_manager, or a
    device in pynq's list), or inside ``emulate()``. Off a board the emulator may stand in;
    on one, never."""
    if emulated_pl():  # board default: backend_choice (the emulated board is the board)
        return True
    try:
        pynq = _import_pynq()
    except BackendUnavailable:
        return False
    if fpga_manager_present():
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No devices found" off-board
            return len(pynq.Device.devices) > 0
    except Exception:  # noqa: BLE001 -- a pynq that cannot list devices has none for us
        return False


def loaded_bitstream(pynq: Any) -> str | None:
    """What the PL holds according to pynq (None: nothing known, or pynq cannot say)."""
    return _read_pl(pynq)[0]


def _read_pl(pynq: Any) -> tuple[str | None, Exception | None]:
    """(what pynq says the PL holds, or None; the error if pynq could not say)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = pynq.PL.bitfile_name
    except Exception as exc:  # noqa: BLE001 -- off-board pynq raises 'No Devices Found' here
        return None, exc
    return (str(name) if name else None), None


def same_bitstream(loaded: str, path: Path) -> bool:
    """``loaded`` (pynq's record) is ``path``: the same file, or a byte-identical copy."""
    other = Path(loaded)
    try:
        return other.resolve() == path.resolve() or (
            other.is_file() and filecmp.cmp(other, path, shallow=False)
        )
    except OSError:
        return False


def _wants_reprogram(reprogram: bool | None) -> bool:
    if reprogram is not None:
        return bool(reprogram)
    return env_flag(REPROGRAM_ENV)  # validated at Resizer(): a typo never turns the PL off


def _import_pynq() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pynq
    except ImportError as exc:
        raise BackendUnavailable(f"pynq is not importable ({exc})") from exc
    return pynq


def located(
    desc: OverlayDescriptor, ip_dict: dict[str, Any], dma_name: str | None = None,
    resizer_name: str | None = None,
) -> OverlayDescriptor:
    """The descriptor where the loaded overlay puts its IPs: the names given (a user's own
    design), and each IP's address and range from ``ip_dict`` -- as pynq's drivers take
    them on a board. An IP missing from ``ip_dict`` keeps the descriptor's (and is then
    named by ``ip_dict_mismatches``)."""
    def place(ip: Any, name: str | None) -> Any:
        name = name or ip.name
        entry = ip_dict.get(name) or {}
        addr, span = entry.get("phys_addr"), entry.get("addr_range")
        return dataclasses.replace(
            ip, name=name, base=ip.base if addr is None else int(addr),
            range=ip.range if not span else int(span),
        )

    return dataclasses.replace(
        desc, dma=place(desc.dma, dma_name), resizer=place(desc.resizer, resizer_name)
    )


_shared: dict[str, PynqBoard] = {}
_users: dict[str, int] = {}
_shared_lock = threading.Lock()


def _forget_shared_after_fork() -> None:
    """A forked child must not reuse its parent's board (and so skip the PL lock)."""
    global _shared, _users, _shared_lock
    _inherited.extend(_shared.values())  # never closed here: they are the parent's
    _shared, _users, _shared_lock = {}, {}, threading.Lock()


_inherited: list[PynqBoard] = []
_downloaded_here: set[str] = set()  # bitstreams this process downloaded (recovery may reload)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_shared_after_fork)


def _shared_key(options: dict[str, Any]) -> str:
    overlay = options.get("overlay")
    if overlay is not None:
        name = getattr(overlay, "bitfile_name", None)
        return str(Path(name).resolve()) if name else f"overlay-{id(overlay)}"
    path, _ = find_bitstream(options.get("bitstream"))
    return str(path.resolve()) if path is not None else ""


def open_shared(**options: Any) -> PynqBoard:
    """One ``PynqBoard`` per process: two engines on one board would load the bitstream
    twice (resetting a frame in flight) and interleave their register writes; a different
    bitstream would reprogram the PL under the first one. Each open is matched by one
    ``close()``; the last one lets go of the PL's inter-process lock."""
    key = _shared_key(options)
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
            board.shared_key = key
            _shared[key] = board
        _users[key] = _users.get(key, 0) + 1
        return board


def _close_shared(board: PynqBoard) -> bool:
    """One user of a shared board is done; True when it was the last (or not shared)."""
    key = getattr(board, "shared_key", None)
    with _shared_lock:
        if key is None or _shared.get(key) is not board:
            return True
        _users[key] -= 1
        if _users[key] > 0:
            return False
        del _shared[key], _users[key]
        return True


class PynqBoard:
    """The resizer overlay on a real PYNQ board, through the real ``pynq`` package.

    ``shared_ip`` (lock, dirty flag, owed bytes) is shared by every engine's driver on it.
    ``downloaded`` says whether this process programmed the PL (only then may recovery
    reprogram it).
    """

    name = "board"

    def __init__(
        self,
        bitstream: str | os.PathLike[str] | None = None,
        board: str | None = None,
        descriptor: OverlayDescriptor | None = None,
        *,
        overlay: Any = None,
        reprogram: bool | None = None,
        wait_for_pl: float = 0.0,
        dma_name: str | None = None,
        resizer_name: str | None = None,
    ) -> None:
        pynq = _import_pynq()
        self.descriptor = descriptor or descriptor_for(board_name(board))
        # pynq's device is the emulated one: frames are the IP's arithmetic on the host,
        # and measuring must measure the board emulated, not this host
        self.emulated = emulated_pl()  # not a default: which device this is
        self.downloaded = False
        self.shared_key: str | None = None
        if overlay is None:
            path, how = find_bitstream(bitstream)
            if path is None:
                raise BackendUnavailable(how)
            self.bitstream: Any = path
            self.bitstream_origin = how
        else:
            self.bitstream = getattr(overlay, "bitfile_name", None) or "given"
            self.bitstream_origin = "given overlay (used as loaded, never downloaded)"
        # off a board there is no PL to share (and pynq cannot open one): no lock there
        self._lock = (  # board default: pl_lock
            PLLock(PL_LOCK_KEY).acquire(wait_for_pl) if machine_has_pl() else None
        )
        try:
            if overlay is None:
                overlay = self._load(pynq, self.bitstream, _wants_reprogram(reprogram))
            self.overlay = overlay
            self.descriptor = located(self.descriptor, overlay.ip_dict, dma_name, resizer_name)
            problems = ip_dict_mismatches(self.descriptor, overlay.ip_dict)
            if problems:
                raise BackendUnavailable(
                    f"overlay ({self.bitstream}) does not match descriptor "
                    f"{self.descriptor.name}: " + "; ".join(problems),
                    on_board=True,
                )
        except BaseException:
            self._release_lock()
            raise
        self._pynq = pynq
        self.shared_ip = SharedIP()
        # pynq 2.7's freebuffer() frees nothing for ordinary buffers: never evict there
        major = str(getattr(pynq, "__version__", "3")).split(".")[0]
        self.frees_memory = not major.isdigit() or int(major) >= 3

    def _load(self, pynq: Any, path: Path, reprogram: bool) -> Any:
        """Look at the PL, then attach (the resizer is there), refuse (another design is
        there), or download (nothing known is there, or ``reprogram``)."""
        loaded, error = _read_pl(pynq)  # before Overlay(): on pynq >= 3 that changes it
        download = True
        if error is not None and self._lock is not None and not reprogram:
            raise BackendUnavailable(  # on a board, and pynq cannot say what the PL holds
                f"pynq cannot say what the PL holds ({error}); not programming it blind "
                f"(Resizer(reprogram=True) or {REPROGRAM_ENV}=1 loads {path} anyway)",
                on_board=True, reason="pl_state_unknown",
            )
        if loaded and same_bitstream(loaded, path):
            download = False
            self.bitstream_origin += "; already on the PL: attached without downloading"
            self.downloaded = str(path.resolve()) in _downloaded_here  # by an earlier open
        elif loaded and not reprogram:
            raise BackendUnavailable(
                f"the PL holds {loaded}, not the resizer {path}: not reprogramming it "
                f"(Resizer(reprogram=True) or {REPROGRAM_ENV}=1 replaces it)",
                on_board=True, reason="pl_holds_other_overlay", details={"pl_holds": loaded},
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pynq warns once before 'No Devices Found'
                overlay = pynq.Overlay(str(path), download=download)
        except Exception as exc:  # noqa: BLE001 -- whatever pynq raises, the PL is unavailable
            raise BackendUnavailable(f"pynq cannot load {path}: {exc}", on_board=True) from exc
        if download:
            self.downloaded = True
            _downloaded_here.add(str(path.resolve()))
        return overlay

    @property
    def bus_accesses(self) -> int | None:
        """Register accesses so far when pynq's device is the emulated one; None on a board,
        where nothing counts them."""
        return getattr(getattr(self.overlay, "device", None), "bus_accesses", None)

    def allocate(self, shape: tuple[int, ...], dtype: Any, cacheable: bool = True) -> Any:
        """Always an explicit ``cacheable=``: pynq's default (False) maps buffers uncached or
        write-combined on a board, where CPU reads crawl (~64 MB/s on Zynq-7000); the planner
        picks the kind per role (``costs.roles``)."""
        return self._pynq.allocate(shape, dtype=dtype, cacheable=cacheable)

    def reaches(self, array: Any) -> bool:
        """``array`` is pynq's own buffer (``pynq.allocate``'d, or a view of one) on the
        device this overlay's DMA reads: a frame the pool did not make (the user's, a
        decoder's, another overlay's) goes to the PL without a copy. pynq's DMA flushes
        it before sending. Anything else (no device known, another device): copied."""
        buffer_class = getattr(getattr(self._pynq, "buffer", None), "PynqBuffer", None)
        device = getattr(self.overlay, "device", None)
        return (
            buffer_class is not None and isinstance(array, buffer_class)
            and device is not None and getattr(array, "device", None) is device
            and getattr(array, "device_address", None) is not None
        )

    def reset_pl(self) -> bool:
        """Reload the bitstream (resets the IP, the width converters and the DMA) -- only
        one this process downloaded: someone else's design is never reprogrammed."""
        if not self.downloaded:
            return False
        self.overlay.download()
        return True

    def close(self) -> None:
        """The overlay stays loaded (other programs may use it); buffers belong to the pool.
        The last engine on the board lets go of the PL's inter-process lock."""
        if _close_shared(self):
            self._release_lock()

    def _release_lock(self) -> None:
        lock, self._lock = getattr(self, "_lock", None), None
        if lock is not None:
            lock.release()
