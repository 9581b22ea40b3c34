"""Run pynq code -- notebooks, scripts, pynq_cv's board backend -- on the emulated board.

    with pynq_cv.emulate(board="Pynq-Z2") as emu:
        overlay = pynq.Overlay(emu.bitstream)       # pynq's own Overlay, download and all
        dma, resizer = overlay.axi_dma_0, overlay.resize_accel_0
        ...                                         # the HelloWorld notebook, unmodified

Inside, pynq's default device is an emulated PYNQ board with the resizer overlay: its
``Overlay`` parses the ``.hwh`` beside the ``.bit`` with pynq's own parser (one generated
from the board's descriptor when there is none), a download resets the emulated IP and DMA
as a bitstream load resets them, ``register_map`` binds, ``allocate`` gives contiguous
buffers (coherent unless ``cacheable=1``, as on a board) and pynq's ``DMA`` runs on the
emulated registers. Nothing of pynq is patched: the emulated board is a ``pynq.Device``.

The emulated board is the named board, as a PYNQ image makes it known: ``BOARD`` names it
(pynq images set it in the environment; ``PynqBoard`` picks its descriptor from it) and
``PYNQ_CV_BITSTREAM`` points at its resizer overlay (on an image: the installed
pynq-helloworld), both restored on exit. So pynq_cv's default backend choice, ``PynqBoard``,
the PL lock and measured planning run here as they run on that board.

``pynq`` is imported when the context is entered, never at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .backends.emulation import Emulation, active_emulation, entered
from .backends.emulator.watchdog import EmulatedHang

__all__ = ["EmulatedHang", "Emulation", "PynqMissing", "active_emulation", "emulate",
           "run_emulated", "run_script_emulated"]

@contextlib.contextmanager
def _board_identity(board: str, bitstream: str) -> Iterator[None]:
    """``BOARD`` and ``PYNQ_CV_BITSTREAM`` as on the board's PYNQ image; restored after."""
    saved = {name: os.environ.get(name) for name in ("BOARD", "PYNQ_CV_BITSTREAM")}
    os.environ["BOARD"] = board
    os.environ["PYNQ_CV_BITSTREAM"] = bitstream
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def emulate(
    board: str = "Pynq-Z2",
    hwh: str | os.PathLike[str] | None = None,
    pace: bool = False,
    watchdog: float | None = None,
    directory: str | os.PathLike[str] | None = None,
    loaded: bool = True,
) -> Iterator[Emulation]:
    """Make pynq's default device an emulated ``board`` with the resizer overlay loaded.

    ``hwh``: the overlay's ``.hwh`` (e.g. a board's real one, or a user's own build with
    the DMA and resizer at other addresses: emulated there); checked against ``board``
    first (``ValueError`` naming the file and the first mismatch); default: generated
    from the board's descriptor. It is what the emulated PL holds from the start, so
    ``Overlay(emu.bitstream, download=False)`` attaches to it, and its DMA length width
    is the emulated one. ``pace``: pynq's waits take the frame's modelled board time.
    ``watchdog``: seconds after which a wait that would hang a board raises
    ``EmulatedHang`` saying why (default: off -- pynq spins as on a board).
    ``directory``: where ``resizer.bit`` and ``resizer.hwh`` are written (default: a
    temporary directory, removed on exit); files already there are used as they are.
    ``loaded=False``: pynq reports nothing on the PL until something downloads (as after
    a boot into another design), so e.g. ``PynqBoard`` downloads it itself.
    """
    from .backends.emulator import EmulatedBoard
    from .backends.emulator.hwh import check_hwh, write_overlay
    from .backends.emulator.pynq_device import emulated_pynq_device, parse_hwh
    from .backends.emulator.watchdog import Watchdog
    from .descriptors import descriptor_for

    try:
        from .backends.emulator.pynq_device import _pynq

        _pynq()
    except ImportError as exc:
        raise ImportError(
            f"pynq_cv.emulate() runs pynq's own code on the emulator, and pynq is not "
            f"importable ({exc}): pip install pynq (or pynq_cv[board])"
        ) from exc
    descriptor = descriptor_for(board)
    scratch = None
    if directory is None:
        scratch = tempfile.mkdtemp(prefix="pynq_cv-emulate-")
        directory = scratch
    try:
        if hwh is not None:
            descriptor = check_hwh(hwh, descriptor, parse_hwh)  # at the addresses it gives
            Path(directory).mkdir(parents=True, exist_ok=True)
            target = Path(directory) / f"{Path(descriptor.bitstream).stem}.hwh"
            if target.exists() and not target.samefile(hwh):
                raise ValueError(f"{target} exists: not replacing it with {hwh}")
            if not target.exists():
                shutil.copyfile(hwh, target)
        bit = write_overlay(descriptor, directory)
        emulated = EmulatedBoard(descriptor=descriptor, pace=pace, bitstream=str(bit))
        try:
            with emulated_pynq_device(emulated) as device:
                if loaded:
                    device.load(str(bit))
                else:
                    emulated.overlay.erase()  # nothing answers until a download
                if watchdog is not None:
                    device.monitor = Watchdog(
                        watchdog, emulated.overlay.stall_reason, _register_names(device)
                    )
                emulation = Emulation(str(bit), emulated, device)
                with _board_identity(descriptor.board, str(bit)):
                    with entered(emulation):
                        yield emulation
        finally:
            emulated.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _register_names(device: Any) -> Any:
    """address -> "axi_dma_0 S2MM_DMASR (0x40400034)", from the loaded ip_dict."""

    def name_of(address: int) -> str:
        for ip, entry in device.ip_dict.items():
            base = entry.get("phys_addr")
            if base is None or not base <= address < base + int(entry.get("addr_range", 0)):
                continue
            for register, spec in (entry.get("registers") or {}).items():
                if spec.get("address_offset") == address - base:
                    return f"{ip} {register} ({address:#x})"
            return f"{ip} +{address - base:#x}"
        return f"{address:#x}"

    return name_of


class PynqMissing(ImportError):
    """``pynq`` does not import here, so no pynq code can run on the emulator."""


@contextlib.contextmanager
def _emulated_beside(path: Path, options: dict[str, Any]) -> Iterator[Emulation]:
    """``emulate(**options)`` with the overlay's files in the script's or notebook's own
    folder unless ``directory`` says otherwise -- where a board image has them, so a
    published notebook folder's relative ``Overlay("resizer.bit")`` resolves as it is.
    Files written there for the run are removed after it; files already there are used."""
    from .descriptors import descriptor_for

    given = options.get("directory")
    directory = Path(given) if given is not None else path.parent
    stem = Path(descriptor_for(options.get("board", "Pynq-Z2")).bitstream).stem
    ours = {directory / f"{stem}.bit", directory / f"{stem}.hwh"}
    present = {file for file in ours if file.exists()}
    try:
        with contextlib.ExitStack() as stack:
            try:
                emulation = stack.enter_context(emulate(**{**options, "directory": directory}))
            except ImportError as exc:
                raise PynqMissing(str(exc)) from None
            except PermissionError:  # a read-only folder: the files go to a temporary one
                if given is not None:
                    raise
                emulation = stack.enter_context(emulate(**{**options, "directory": None}))
            yield emulation
    finally:
        for file in ours - present:
            with contextlib.suppress(OSError):
                file.unlink()


def run_script_emulated(
    path: str | os.PathLike[str], argv: Sequence[str] = (), **options: Any
) -> dict[str, Any]:
    """Run a Python script or a notebook's code cells under :func:`emulate` (``options``).

    The script sees ``sys.argv == [path, *argv]``, its own directory first on ``sys.path``,
    and runs as ``__main__``; a notebook's code cells run in order in one namespace in the
    notebook's directory (as Jupyter runs them), IPython magics dropped (a ``%%timeit``
    cell runs once). The overlay's files go to ``directory`` (default: the script's own
    folder, see ``_emulated_beside``). Returns the script's globals; its exceptions
    propagate. ``run_emulated`` is the command's form (``pynq-cv emulate``).
    """
    path = Path(path).resolve()
    saved_argv, saved_path, saved_cwd = sys.argv, list(sys.path), os.getcwd()
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(path.parent))
    try:
        with _emulated_beside(path, options):
            if path.suffix == ".ipynb":
                os.chdir(path.parent)
                return _run_notebook(path)
            return runpy.run_path(str(path), run_name="__main__")
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path


def run_emulated(path: str | os.PathLike[str], argv: Sequence[str] = (), **options: Any) -> int:
    """``pynq-cv emulate``: run a script or notebook under :func:`emulate` as ``python
    script.py`` runs a script (``pynq_cv.runner.run_main``: exit status, tracebacks, the
    script's threads), overlay files as in ``run_script_emulated``. Raises
    ``PynqMissing`` (pynq does not import) or ``ValueError`` (an unreadable notebook)
    before running anything; returns the exit status (``runner.INTERRUPTED`` after an
    uncaught KeyboardInterrupt)."""
    from .runner import run_main

    target = Path(path)
    cells = None
    if target.suffix == ".ipynb":
        try:
            cells = notebook_code(target)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a readable notebook ({exc})") from None
    saved_cwd, resolved = os.getcwd(), target.resolve()
    before = set(threading.enumerate())
    with _emulated_beside(resolved, options):
        try:
            if cells is not None:  # Jupyter runs a notebook in its own folder
                os.chdir(resolved.parent)
                return run_main(str(resolved), argv, cells=cells, before=before)
            return run_main(str(target), argv, before=before)
        finally:
            os.chdir(saved_cwd)


def notebook_code(path: str | os.PathLike[str]) -> list[str]:
    """The code cells of a notebook as plain Python (line magics and shell lines dropped,
    a ``%%timeit`` cell's body kept; other cell magics are refused)."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        lines = (source if isinstance(source, str) else "".join(source)).splitlines()
        if lines and lines[0].startswith("%%"):
            magic = lines[0].split()[0]
            if magic != "%%timeit":
                raise ValueError(f"{path}: cell magic {magic} cannot run outside IPython")
            lines = lines[1:]
        cells.append("\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line for line in lines
        ))
    return cells


def _run_notebook(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
    for number, code in enumerate(notebook_code(path), 1):
        exec(compile(code, f"{path}[cell {number}]", "exec"), namespace)  # noqa: S102
    return namespace
