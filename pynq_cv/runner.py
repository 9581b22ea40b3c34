"""Run an unmodified script or module with ``cv2.resize`` patched, as Python itself would.

``run_script`` is what ``pynq-cv run`` does, ``run_main`` what it and ``pynq-cv emulate``
share: ``sys.argv``, ``sys.path[0]`` and ``__main__`` as ``python script.py args`` (or
``python -m module args``) would set them; the exit code passed through (``sys.exit``
codes included); an uncaught exception reported through ``sys.excepthook`` without our
frames (nor runpy's) and exit code 1; an uncaught KeyboardInterrupt the same way and
``INTERRUPTED``, which ``finish`` turns into Python's own end: killed by SIGINT.
Before returning it waits for the script's non-daemon threads, as the interpreter would
before exiting, so their frames are still patched and profiled -- never for pynq_cv's own
threads, and the script's ``ThreadPoolExecutor``s are shut down as the interpreter shuts
them down at exit.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.machinery
import importlib.util
import io
import os
import runpy
import signal
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from . import dispatch, patching, telemetry
from .errors import PynqCvError
from .profile import CallSiteProfile

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_RUNPY = {os.path.abspath(runpy.__file__), "<frozen runpy>"}
_LIBRARY_ROOTS = tuple(
    os.path.abspath(root) + os.sep
    for root in {sysconfig.get_path(kind) for kind in ("stdlib", "platstdlib", "purelib",
                                                       "platlib")}
    if root
)
_THREAD_PREFIX = "pynq_cv"  # pynq_cv's threads are named so (e.g. the emulator's bands)

INTERRUPTED = -int(signal.SIGINT)  # as subprocess reports a process that SIGINT ended


class ScriptNotFound(PynqCvError):
    """The script file or module to run does not exist (``code``: Python's exit status)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def exit_code(code: Any) -> int:
    """The process exit status Python gives ``sys.exit(code)`` (printing a non-int code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


class Abandoned(int):
    """The script's exit status, after a Ctrl-C stopped the wait for its threads: Python
    then exits with that status without waiting any longer (``finish`` does the same)."""


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass


def finish(code: int) -> int:
    """End the process as Python ends after the script ended with ``code`` (a command's own
    process only): killed by SIGINT after an uncaught KeyboardInterrupt, at once (no
    more waiting for threads) after a Ctrl-C cut the wait for them; else the status."""
    if code == INTERRUPTED:
        return end_as_interrupted()
    if isinstance(code, Abandoned):
        _flush_std_streams()
        atexit._run_exitfuncs()
        _flush_std_streams()
        os._exit(int(code))
    return code


def end_as_interrupted() -> int:
    """End the process as Python ends after an uncaught KeyboardInterrupt: atexit handlers
    run, then SIGINT with its default action (a shell reports 130). Returns 130 where the
    signal cannot end the process."""
    _flush_std_streams()
    if os.name != "posix":
        return 130
    atexit._run_exitfuncs()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    return 130  # not reached: the default action ends the process


# -- tracebacks without our frames ----------------------------------------------------------


def _ours(filename: str) -> bool:
    """A frame of pynq_cv (or runpy's, which runs the script): not the script's."""
    if filename in _RUNPY:
        return True
    path = os.path.abspath(filename)
    return path in _RUNPY or path.startswith(_PACKAGE)


def _library(filename: str) -> bool:
    """A frame of the standard library or an installed package (which ours may call),
    including their generated code (``<frozen ...>``, numpy 1.21's ``<__array_function__
    internals>``); never code the script compiled itself (``<string>``, ``<stdin>``)."""
    if filename.startswith("<"):
        return filename not in ("<string>", "<stdin>")
    path = os.path.abspath(filename)
    return any(path.startswith(root) for root in _LIBRARY_ROOTS)


def _theirs(tb: TracebackType | None) -> TracebackType | None:
    """The traceback with our frames unlinked, and the library frames our code called:
    what Python shows when cv2.resize (a C function, no frames) raises, and when Ctrl-C
    lands while our code (or a wait of ours) runs. A callback of the script's, called
    from within, keeps its frames."""
    kept = []
    inside = False
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if _ours(filename):
            inside = True
        elif not (inside and _library(filename)):
            kept.append(tb)
            inside = False
        tb = tb.tb_next
    for i, this in enumerate(kept):
        this.tb_next = kept[i + 1] if i + 1 < len(kept) else None
    return kept[0] if kept else None


def strip_our_frames(exc: BaseException) -> BaseException:
    """``exc`` and the exceptions chained to it without our frames; an implicit context
    raised and handled entirely inside pynq_cv is dropped (it never reached the script)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = _theirs(current.__traceback__)
        context = current.__context__
        if (context is not None and current.__cause__ is None and not current.__suppress_context__
                and context.__traceback__ is not None and _theirs(context.__traceback__) is None):
            current.__context__ = None
        current = current.__cause__ or current.__context__
    return exc


def _report_uncaught(exc: BaseException) -> None:
    """The traceback Python prints for an uncaught exception: the script's frames only."""
    strip_our_frames(exc)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    sys.excepthook(type(exc), exc, exc.__traceback__)


@contextmanager
def _thread_tracebacks_as_theirs() -> Iterator[None]:
    """An exception escaping one of the script's threads is shown without our frames."""
    saved = threading.excepthook

    def hook(args: Any) -> None:
        if args.exc_value is not None:
            strip_our_frames(args.exc_value)
            args = threading.ExceptHookArgs(
                [args.exc_type, args.exc_value, args.exc_value.__traceback__, args.thread])
        saved(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        if threading.excepthook is hook:
            threading.excepthook = saved


# -- the script's threads -----------------------------------------------------------------


def _pynq_cv_thread(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    module = getattr(target, "__module__", None) or ""
    return thread.name.startswith(_THREAD_PREFIX) or module.split(".")[0] == "pynq_cv"


def _shut_down_executor_of(thread: threading.Thread) -> None:
    """Let a ThreadPoolExecutor worker end once its queue is done, as the interpreter's
    exit does for every executor (``shutdown(wait=False)`` on the worker's executor)."""
    from concurrent.futures import thread as futures_thread

    if getattr(thread, "_target", None) is not futures_thread._worker:
        return
    args = getattr(thread, "_args", ())
    executor = args[0]() if args and isinstance(args[0], weakref.ref) else None
    if executor is not None:
        executor.shutdown(wait=False)


def _wait_for_threads(before: set[threading.Thread]) -> None:
    """Join the script's non-daemon threads (started since ``before``, not pynq_cv's), as
    the interpreter joins them at exit (no deadline there either: alone it would wait as
    long)."""
    while True:
        alive = [t for t in threading.enumerate()
                 if t not in before and not t.daemon and t.is_alive()
                 and t is not threading.current_thread() and not _pynq_cv_thread(t)]
        if not alive:
            return
        for thread in alive:
            if "concurrent.futures" in sys.modules:
                _shut_down_executor_of(thread)
        for thread in alive:
            thread.join()


def _await_script_threads(before: set[threading.Thread]) -> bool:
    """``_wait_for_threads``; False if Ctrl-C cut it short, which Python reports (as an
    exception ignored at shutdown) and then stops waiting."""
    try:
        _wait_for_threads(before)
        return True
    except KeyboardInterrupt:
        print(f"Exception ignored in: {threading!r}\nKeyboardInterrupt: ", file=sys.stderr)
        return False


# -- running ------------------------------------------------------------------------------


@contextmanager
def _as_main(path: str) -> Iterator[dict[str, Any]]:
    """A fresh ``__main__`` module for the script file, as ``python path`` makes one
    (``__file__`` absolute; ``sys.argv[0]`` left as typed), in place until the end."""
    main = types.ModuleType("__main__")
    main.__file__ = os.path.abspath(path)
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", main.__file__)
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        yield main.__dict__
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _no_main_module(exc: ImportError) -> bool:
    """runpy's "can't find '__main__' module" for a directory or zip: nothing ran."""
    tb = exc.__traceback__
    while tb is not None:
        if not _ours(tb.tb_frame.f_code.co_filename):
            return False
        tb = tb.tb_next
    return str(exc).startswith("can't find '__main__' module")


def _run_path(target: str) -> None:
    """A directory or zip with ``__main__.py``, as ``python DIR`` runs it."""
    try:
        runpy.run_path(target, run_name="__main__")
    except ImportError as exc:
        if _no_main_module(exc):
            raise ScriptNotFound(
                f"can't find '__main__' module in {os.path.abspath(target)!r}", 1) from None
        raise


def _execute(target: str, module: bool, before: set[threading.Thread],
             cells: Sequence[str] | None) -> bool:
    """Run the script; False if a Ctrl-C cut short the wait for its threads."""
    if module:
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as exc:
            raise ScriptNotFound(f"no module named {target!r} ({exc})") from None
        if spec is None:
            raise ScriptNotFound(f"no module named {target!r}")
        runpy.run_module(target, run_name="__main__", alter_sys=True)
        return True
    if cells is not None:  # a notebook's code cells, in order, in one namespace
        path = os.path.abspath(target)
        with _as_main(target) as namespace:
            for number, code in enumerate(cells, 1):
                exec(compile(code, f"{path}[cell {number}]", "exec", dont_inherit=True),
                     namespace)
            return _await_script_threads(before)
    if os.path.isfile(target) and not target.endswith((".zip", ".pyz")):
        with io.open_code(os.path.abspath(target)) as file:
            source = file.read()
        code = compile(source, os.path.abspath(target), "exec", dont_inherit=True)
        with _as_main(target) as namespace:
            exec(code, namespace)
            return _await_script_threads(before)  # their __main__ is still in place
    _run_path(target)
    return True


def run_main(target: str, args: Sequence[str] = (), *, module: bool = False,
             cells: Sequence[str] | None = None,
             before: set[threading.Thread] | None = None) -> int:
    """Run ``target`` as ``python target args`` (``module``: ``python -m target args``;
    ``cells``: a notebook's code cells, run as one script named ``target``) and return the
    exit status Python would give, or ``INTERRUPTED`` after an uncaught KeyboardInterrupt
    (an ``Abandoned`` status when a Ctrl-C cut the wait for the script's threads short).

    Raises ``ScriptNotFound`` before running anything when there is nothing to run."""
    if not module and not os.path.exists(target):
        raise ScriptNotFound(f"no such file: {target}")
    before = set(threading.enumerate()) if before is None else before
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [target, *args]
    sys.path.insert(0, os.getcwd() if module else os.path.dirname(os.path.abspath(target)))
    try:
        with _thread_tracebacks_as_theirs():
            cut = False  # a Ctrl-C stopped the wait for the script's threads
            code = INTERRUPTED
            try:
                try:
                    cut = not _execute(target, module, before, cells)
                    code = 0
                except SystemExit as exc:
                    code = exit_code(exc.code)
                except KeyboardInterrupt as exc:
                    _report_uncaught(exc)
                    code = INTERRUPTED
                except ScriptNotFound:
                    raise
                except BaseException as exc:  # noqa: BLE001 -- reported as Python would
                    _report_uncaught(exc)
                    code = 1
            except KeyboardInterrupt:  # Ctrl-C while its end was handled: no more waiting
                cut = True
            cut = cut or not _await_script_threads(before)
        return Abandoned(code) if cut and code != INTERRUPTED else code
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        try:
            sys.stdout.flush()  # the script's output before our report on stderr
        except (OSError, ValueError):  # closed or broken by the script: nothing to keep
            pass


def run_script(target: str, args: Sequence[str] = (), *, module: bool = False,
               profile: CallSiteProfile | None = None) -> int:
    """Run ``target`` (a path, or a module name with ``module=True``) with ``args`` and
    ``cv2.resize`` patched (profiled into ``profile`` if given); returns its exit status
    (``INTERRUPTED`` after an uncaught KeyboardInterrupt), see ``run_main``."""
    if not module and not os.path.exists(target):
        raise ScriptNotFound(f"no such file: {target}")
    before = set(threading.enumerate())
    try:
        if profile is not None:  # a bad PYNQ_CV_BACKEND raises here, before the script
            telemetry.observe(profile.observe)
            dispatch.rewatch_all()
            patching.patch_with(profile.wrap(dispatch.resize))
        else:
            patching.patch()
        return run_main(target, args, module=module, before=before)
    finally:
        patching.unpatch()
        if profile is not None:
            telemetry.observe(None)
            dispatch.rewatch_all()


def exit_status(code: int) -> int:
    """``run_main``'s status as a command's exit status (``INTERRUPTED`` -> 130)."""
    return 128 + signal.SIGINT if code == INTERRUPTED else code


__all__ = ["INTERRUPTED", "Abandoned", "ScriptNotFound", "end_as_interrupted", "exit_code",
           "exit_status", "finish", "run_main", "run_script", "strip_our_frames"]
