"""Run an unmodified script or module with ``cv2.resize`` patched, as Python itself would.

``run_script`` is what ``pynq-cv run`` does: ``sys.argv``, ``sys.path[0]`` and ``__main__``
as ``python script.py args`` (or ``python -m module args``) would set them; the exit code
passed through (``sys.exit`` codes included); an uncaught exception reported through
``sys.excepthook`` without our frames and exit code 1; Ctrl-C as a KeyboardInterrupt
traceback and 130 (what a shell reports for Python killed by SIGINT). Before returning it
waits for the script's non-daemon threads, as the interpreter would before exiting, so their
frames are still patched and profiled.
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import io
import os
import runpy
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import dispatch, patching, telemetry
from .errors import PynqCvError
from .profile import CallSiteProfile

_OUR_FILES = {os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>"}


class ScriptNotFound(PynqCvError):
    """The script file or module to run does not exist."""


def exit_code(code: Any) -> int:
    """The process exit status Python gives ``sys.exit(code)`` (printing a non-int code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _report_uncaught(exc: BaseException) -> None:
    """The traceback Python prints for an uncaught exception, starting in the script."""
    tb = exc.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in _OUR_FILES
        or os.path.abspath(tb.tb_frame.f_code.co_filename) in _OUR_FILES
    ):
        tb = tb.tb_next
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    sys.excepthook(type(exc), exc.with_traceback(tb), tb)


def _wait_for_threads(before: set[threading.Thread]) -> None:
    """Join the non-daemon threads started since ``before``, as the interpreter joins a
    script's threads at exit (no deadline there either: alone it would wait as long)."""
    while True:
        alive = [t for t in threading.enumerate()
                 if t not in before and not t.daemon and t.is_alive()
                 and t is not threading.current_thread()]
        if not alive:
            return
        for thread in alive:
            thread.join()


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


def _execute(target: str, module: bool, before: set[threading.Thread]) -> None:
    if module:
        try:
            spec = importlib.util.find_spec(target)
        except (ImportError, ValueError) as exc:
            raise ScriptNotFound(f"no module named {target!r} ({exc})") from None
        if spec is None:
            raise ScriptNotFound(f"no module named {target!r}")
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif os.path.isfile(target) and not target.endswith((".zip", ".pyz")):
        with io.open_code(os.path.abspath(target)) as file:
            source = file.read()
        code = compile(source, os.path.abspath(target), "exec", dont_inherit=True)
        with _as_main(target) as namespace:
            exec(code, namespace)
            _wait_for_threads(before)  # the script's threads still see their __main__
    else:  # a directory or zip with __main__.py
        runpy.run_path(target, run_name="__main__")


def run_script(target: str, args: Sequence[str] = (), *, module: bool = False,
               profile: CallSiteProfile | None = None) -> int:
    """Run ``target`` (a path, or a module name with ``module=True``) with ``args`` and
    ``cv2.resize`` patched (profiled into ``profile`` if given); returns its exit code.

    Raises ``ScriptNotFound`` before running anything when there is nothing to run."""
    if not module and not os.path.exists(target):
        raise ScriptNotFound(f"no such file: {target}")
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    before = set(threading.enumerate())
    try:
        if profile is not None:  # a bad PYNQ_CV_BACKEND raises here, before the script
            telemetry.observe(profile.observe)
            dispatch.rewatch_all()
            patching.patch_with(profile.wrap(dispatch.resize))
        else:
            patching.patch()
        sys.argv = [target, *args]
        sys.path.insert(0, os.getcwd() if module else os.path.dirname(os.path.abspath(target)))
        try:
            _execute(target, module, before)
            code = 0
        except SystemExit as exc:
            code = exit_code(exc.code)
        except KeyboardInterrupt as exc:
            _report_uncaught(exc)
            code = 130
        except ScriptNotFound:
            raise
        except BaseException as exc:  # noqa: BLE001 -- reported as Python would, exit 1
            _report_uncaught(exc)
            code = 1
        try:
            _wait_for_threads(before)
        except KeyboardInterrupt:
            code = 130
        return code
    finally:
        patching.unpatch()
        if profile is not None:
            telemetry.observe(None)
            dispatch.rewatch_all()
        sys.argv = saved_argv
        sys.path[:] = saved_path
        try:
            sys.stdout.flush()  # the script's output before our report on stderr
        except (OSError, ValueError):  # closed or broken by the script: nothing to keep
            pass
