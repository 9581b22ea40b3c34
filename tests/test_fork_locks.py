"""Every lock in pynq_cv's module state is renewed in a forked child: the test finds them
all (each module's globals and the objects they hold), holds every one in a parent's
thread across ``fork()``, and the child must be able to take each at once. A lock added
later without renewal fails here, by name."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import threading

import pytest
from forking import in_child, reports

import pynq_cv
from pynq_cv import forklocks

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")

LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
CHILD_SECONDS = 20.0


def all_modules() -> list:
    pynq_cv.dispatch.default_resizer()  # module state that is made on first use
    names = [m.name for m in pkgutil.walk_packages(pynq_cv.__path__, "pynq_cv.")]
    out = []
    for name in names:
        if name.endswith("__main__"):  # running it is the CLI
            continue
        try:
            out.append(importlib.import_module(name))
        except ImportError:  # an optional dependency (pynq off a board): nothing to hold
            continue
    return out


def module_locks() -> dict[str, object]:
    """'module.attr' or 'module.attr.field' -> lock, for module globals and their fields
    (a Condition or Semaphore counts by the lock inside it)."""
    found: dict[str, object] = {}
    for module in all_modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, type) or getattr(value, "__name__", None) == getattr(
                    value, "__module__", 0):
                continue
            where = f"{module.__name__}.{name}"
            if isinstance(value, LOCK_TYPES):
                found[where] = value
                continue
            try:
                fields = vars(value)
            except TypeError:
                continue
            if isinstance(fields, dict) and not isinstance(value, type(module)):
                for field, inner in list(fields.items()):
                    if isinstance(inner, LOCK_TYPES):
                        found[f"{where}.{field}"] = inner
    return found


def resolve(where: str) -> object:
    parts = where.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable prefix is the module
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise LookupError(where)


def test_the_module_locks_are_made_by_the_registry():
    assert ("pynq_cv.resizer", "_resizers_lock") in forklocks.registered()
    assert ("pynq_cv.dispatch", "_default_lock") in forklocks.registered()


def test_every_module_lock_is_free_in_a_forked_child_even_if_held_at_fork(tmp_path):
    locks = module_locks()
    assert "pynq_cv.resizer._resizers_lock" in locks and len(locks) >= 5, sorted(locks)
    held, release, ready = [], threading.Event(), threading.Event()

    def hold() -> None:  # a parent thread holds every lock while the main thread forks
        for lock in locks.values():
            if lock.acquire(timeout=5):
                held.append(lock)
        ready.set()
        release.wait(30)
        for lock in held:
            lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(30)
    found = tmp_path / "stuck.json"

    def child() -> int:
        found.write_text(json.dumps(
            [where for where in locks if not resolve(where).acquire(timeout=1)]))
        return 0

    try:
        status = in_child(child, CHILD_SECONDS, tmp_path / "child0.txt")
    finally:
        release.set()
        holder.join(30)
    assert status == 0, reports([status], tmp_path)
    stuck = json.loads(found.read_text())
    assert stuck == [], f"held forever in a forked child (not renewed): {stuck}"
