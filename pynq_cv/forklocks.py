"""Process-wide locks that a forked child gets anew.

A lock a parent's thread held at ``fork()`` stays held forever in the child (that thread
does not exist there). Every module-level lock of pynq_cv is made here, so one at-fork
handler renews them all and a test can check that none was missed
(``tests/test_fork_locks.py`` looks for locks in every module's state).
"""

from __future__ import annotations

import os
import sys
import threading

_registry: list[tuple[str, str]] = []  # (module, attribute) of every lock made here


def module_lock(module: str, attribute: str) -> threading.Lock:
    """A lock for ``module.attribute``; a forked child finds a fresh one there."""
    _registry.append((module, attribute))
    return threading.Lock()


def registered() -> list[tuple[str, str]]:
    return list(_registry)


def _renew_in_child() -> None:
    for module, attribute in _registry:
        owner = sys.modules.get(module)
        if owner is not None:
            setattr(owner, attribute, threading.Lock())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_in_child)
