"""The IP's exact arithmetic moved to the core (``pynq_cv.arith``): the fault fallback,
``verify`` and compare mode use it on a real board too. This name stays importable, and is
the very same module object (``sys.modules`` alias), so its state is one state."""

from __future__ import annotations

import sys

from ... import arith as _arith

sys.modules[__name__] = _arith
