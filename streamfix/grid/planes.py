"""Frames as the grid core sees them: YUV planes of code values, or packed RGB.

The I/O layer wraps decoder output in these without copying (numpy views of the codec's
buffers); the slicing kernels read them and write into planes the encoder will consume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamfix.grid.colour import PlaneFormat


@dataclass
class Planes:
    """One frame as planar YUV.

    Attributes:
        y: ``(H, W)`` uint8 or uint16 luma codes (may be a strided view).
        u, v: ``(ceil(H / 2^sy), ceil(W / 2^sx))`` chroma codes, same dtype.
        fmt: bit depth, matrix, range and chroma subsampling.
    """

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    fmt: PlaneFormat

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the luma plane."""
        return int(self.y.shape[0]), int(self.y.shape[1])

    @classmethod
    def empty_like(cls, other: Planes) -> Planes:
        """Fresh contiguous planes of the same shapes, dtype and format."""
        return cls(np.empty_like(other.y), np.empty_like(other.u), np.empty_like(other.v), other.fmt)
