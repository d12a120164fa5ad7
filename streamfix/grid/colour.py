"""Colour algebra between YUV code values and normalised RGB, and grids rewritten for YUV planes.

A decoded frame arrives as Y, U, V planes of integer *code values* (8- or 16-bit containers,
limited or full range, BT.601/709/2020 matrix). The grid's transforms are defined on
gamma-encoded RGB in ``[0, 1]``. Because both YUV↔RGB and the grid's transforms are affine,
each cell's RGB transform ``A`` can be rewritten once per frame as a transform on code values,
``C = T⁻¹ · A · T`` (4×4 homogeneous, ``T`` maps ``[Y, U, V, 1]`` codes to ``[R, G, B, 1]``),
so the per-pixel kernel never converts colour spaces.

Example:
    >>> f = PlaneFormat(bit_depth=8, matrix="bt709", full_range=False)
    >>> t = f.code_to_rgb()
    >>> [round(float(v), 3) for v in t @ torch.tensor([235.0, 128.0, 128.0, 1.0], dtype=torch.float64)][:3]
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
import torch

#: (Kr, Kb) of the luma equation Y = Kr·R + (1 − Kr − Kb)·G + Kb·B
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class PlaneFormat:
    """How a frame's planes encode colour.

    Attributes:
        bit_depth: bits per sample (8 for yuv420p, 10 for yuv420p10le, …).
        matrix: one of :data:`MATRICES`.
        full_range: True for JPEG/full range (0…2^b−1), False for limited (16…235 at 8 bits).
        chroma_shift: ``(sy, sx)`` log2 subsampling of the chroma planes: (1, 1) for 4:2:0,
            (0, 1) for 4:2:2, (0, 0) for 4:4:4.
    """

    bit_depth: int = 8
    matrix: str = "bt709"
    full_range: bool = False
    chroma_shift: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        if self.matrix not in MATRICES:
            raise ValueError(f"unknown YUV matrix {self.matrix!r}; expected one of {sorted(MATRICES)}")

    @property
    def max_code(self) -> int:
        return (1 << self.bit_depth) - 1

    def luma_scale(self) -> tuple[float, float]:
        """``(offset, scale)`` with normalised luma = (Y − offset) / scale."""
        if self.full_range:
            return 0.0, float(self.max_code)
        k = float(1 << (self.bit_depth - 8))
        return 16.0 * k, 219.0 * k

    def chroma_scale(self) -> tuple[float, float]:
        """``(offset, scale)`` with normalised chroma Pb/Pr = (U − offset) / scale, in ``[-0.5, 0.5]``."""
        mid = float(1 << (self.bit_depth - 1))
        if self.full_range:
            return mid, float(self.max_code)
        return mid, 224.0 * float(1 << (self.bit_depth - 8))

    def code_to_rgb(self) -> torch.Tensor:
        """``(4, 4)`` float64 ``T`` with ``[R, G, B, 1] = T · [Y, U, V, 1]`` (codes → RGB in [0, 1])."""
        kr, kb = MATRICES[self.matrix]
        kg = 1.0 - kr - kb
        ypbpr_to_rgb = torch.tensor(
            [
                [1.0, 0.0, 2.0 * (1.0 - kr)],
                [1.0, -2.0 * (1.0 - kb) * kb / kg, -2.0 * (1.0 - kr) * kr / kg],
                [1.0, 2.0 * (1.0 - kb), 0.0],
            ],
            dtype=torch.float64,
        )
        yo, ys = self.luma_scale()
        co, cs = self.chroma_scale()
        norm = torch.tensor(
            [[1 / ys, 0, 0, -yo / ys], [0, 1 / cs, 0, -co / cs], [0, 0, 1 / cs, -co / cs], [0, 0, 0, 1]],
            dtype=torch.float64,
        )
        t = torch.eye(4, dtype=torch.float64)
        t[:3, :3] = ypbpr_to_rgb
        return t @ norm

    def rgb_to_code(self) -> torch.Tensor:
        """The inverse of :meth:`code_to_rgb`."""
        return torch.linalg.inv(self.code_to_rgb())


def affine_to_code_domain(coeffs: torch.Tensor, fmt: PlaneFormat) -> torch.Tensor:
    """Rewrite RGB-domain grid coefficients as YUV code-value transforms.

    Args:
        coeffs: ``(12, D, Gh, Gw)`` RGB-domain 3×4 affines (see ``BilateralGrid``).
        fmt: the planes' format.

    Returns:
        ``(12, D, Gh, Gw)`` float32 on the CPU: ``out[4*c + k]`` weighs input ``k ∈ (Y, U, V, 1)``
        (codes) in output plane ``c ∈ (Y, U, V)`` (codes). :func:`affine_to_code_cells` laid out
        for the device path and the reference slicer.
    """
    return torch.from_numpy(affine_to_code_cells(coeffs, fmt)).permute(3, 0, 1, 2).contiguous()


def affine_to_code_cells(coeffs: torch.Tensor, fmt: PlaneFormat) -> np.ndarray:
    """The grid's affines rewritten for YUV codes, cells last as the CPU kernels read them:
    ``(D, Gh, Gw, 12)`` float32, ``T⁻¹·[A; 0 0 0 1]·T`` per cell with ``T`` :meth:`PlaneFormat.code_to_rgb`,
    in one compiled loop over the cells (torch's small operators for the same cost ≈ 0.3 ms)."""
    _, d, h, w = coeffs.shape
    t, t_inv = (m.numpy() for m in _code_rgb_pair(fmt))
    a = np.ascontiguousarray(coeffs.detach().cpu().numpy(), dtype=np.float32).reshape(12, d * h * w)
    out = np.empty((d * h * w, 12), np.float32)
    _code_cells(a, t_inv, t, out)
    return out.reshape(d, h, w, 12)


@numba.njit(cache=True, nogil=True)
def _code_cells(a, t_inv, t, out):  # pragma: no cover - compiled
    """Per cell ``n``: ``out[n] = (T⁻¹[:3, :3]·A·T + T⁻¹[:3, 3]·T[3])`` flattened, ``A = a[:, n]`` as 3×4."""
    left = np.empty((3, 4))
    for n in range(a.shape[1]):
        for i in range(3):
            for k in range(4):
                left[i, k] = t_inv[i, 0] * a[k, n] + t_inv[i, 1] * a[4 + k, n] + t_inv[i, 2] * a[8 + k, n]
        for i in range(3):
            for j in range(4):
                v = t_inv[i, 3] * t[3, j]
                for k in range(4):
                    v += left[i, k] * t[k, j]
                out[n, 4 * i + j] = v


@functools.lru_cache(maxsize=32)
def _code_rgb_pair(fmt: PlaneFormat) -> tuple[torch.Tensor, torch.Tensor]:
    t = fmt.code_to_rgb()
    return t, torch.linalg.inv(t)


def depth_lut(guide: torch.Tensor, fmt: PlaneFormat, depth: int) -> torch.Tensor:
    """Depth coordinate of every luma code value, ready for the slicing kernels.

    Args:
        guide: ``(K,)`` guide curve in ``[0, 1]`` (see ``BilateralGrid.guide``).
        fmt: the planes' format (bit depth and range decide the normalisation).
        depth: the grid's number of luma bins ``D``.

    Returns:
        ``(2^bit_depth,)`` float32 in ``[0, D − 1]``: ``guide(ŷ)·D − ½`` clamped, with ŷ the
        normalised luma of the code value. Cell centres sit at integer coordinates.
    """
    from streamfix.grid.bilateral import interp1d

    yo, ys = fmt.luma_scale()
    codes = torch.arange(fmt.max_code + 1, dtype=torch.float32)
    luma = ((codes - yo) / ys).clamp(0.0, 1.0)
    return (interp1d(guide.to(torch.float32), luma) * depth - 0.5).clamp(0.0, depth - 1.0)
