"""What the loaded overlay takes, and the reason a frame does not qualify.

Built from the overlay's descriptor and completed from its ``ip_dict`` (the DMA length
width of the bitstream actually loaded), never from constants in code.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .descriptors import OverlayDescriptor


@dataclass(frozen=True)
class Envelope:
    dtype: np.dtype
    channels: int
    interpolations: frozenset[int]
    min_in_rows: int
    max_in: tuple[int, int]  # rows, cols
    max_out: tuple[int, int]
    max_downscale: float | None  # None: not enforced by the IP
    byte_multiple: int
    max_transfer_bytes: int

    @classmethod
    def from_descriptor(
        cls, desc: OverlayDescriptor, length_width: int | None = None
    ) -> Envelope:
        env = desc.envelope
        width = desc.dma_length_width if length_width is None else length_width
        return cls(
            dtype=np.dtype(env.get("dtype", "uint8")),
            channels=int(env.get("channels", 3)),
            interpolations=frozenset(int(getattr(cv2, n)) for n in env["interpolations"]),
            min_in_rows=int(env.get("min_in_rows", 2)),
            max_in=(int(env["max_in"][0]), int(env["max_in"][1])),
            max_out=(int(env["max_out"][0]), int(env["max_out"][1])),
            max_downscale=env.get("max_downscale"),
            byte_multiple=int(env.get("byte_multiple", 4)),
            max_transfer_bytes=(1 << width) - 1,
        )

    def size_reason(self, in_rows: int, in_cols: int, out_rows: int, out_cols: int) -> str | None:
        """None if the PL takes this size pair, else a short reason (a telemetry key)."""
        if in_rows < self.min_in_rows:
            return "input_too_few_rows"
        if in_cols < 1 or out_rows < 1 or out_cols < 1:
            return "empty"
        if in_rows > self.max_in[0] or in_cols > self.max_in[1]:
            return "input_too_large"
        if out_rows > self.max_out[0] or out_cols > self.max_out[1]:
            return "output_too_large"
        if self.max_downscale is not None and (
            in_rows > out_rows * self.max_downscale or in_cols > out_cols * self.max_downscale
        ):
            return "downscale_too_large"
        in_bytes = in_rows * in_cols * self.channels
        out_bytes = out_rows * out_cols * self.channels
        if in_bytes % self.byte_multiple or out_bytes % self.byte_multiple:
            return "byte_count_not_multiple"
        if in_bytes > self.max_transfer_bytes or out_bytes > self.max_transfer_bytes:
            return "dma_length"
        return None

    def describe(self) -> dict[str, object]:
        """A plain summary for ``pynq-cv info``."""
        names = {v: k for k, v in vars(cv2).items() if k.startswith("INTER_")}
        return {
            "dtype": str(self.dtype),
            "channels": self.channels,
            "interpolations": sorted(names.get(i, str(i)) for i in self.interpolations),
            "min_in_rows": self.min_in_rows,
            # numbers, width first: the way the command line and cv2's dsize take sizes
            "max_in": {"width": self.max_in[1], "height": self.max_in[0]},
            "max_out": {"width": self.max_out[1], "height": self.max_out[0]},
            "max_downscale": self.max_downscale,
            "byte_multiple": self.byte_multiple,
            "max_transfer_bytes": self.max_transfer_bytes,
        }
