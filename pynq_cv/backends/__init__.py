"""The bottom layer: a real board through ``pynq``, or the emulator. See ``select``."""

from .select import BACKENDS_GROUP, available_backends, open_board

__all__ = ["BACKENDS_GROUP", "available_backends", "open_board"]
