"""The bilateral grid: the contract between engines and everything downstream.

A grid holds, per spatial cell and luma bin, a 3×4 affine colour transform that maps an input
RGB pixel ``p`` (gamma-encoded, in ``[0, 1]``) to ``A · [r, g, b, 1]``. A full-resolution pixel
picks its cell by position and its bin by the *guide*: a 1-D curve of its normalised luma.

Example:
    >>> g = BilateralGrid.identity(depth=8, height=16, width=16)
    >>> tuple(g.coeffs.shape)
    (12, 8, 16, 16)
    >>> float(g.blend(g, 0.5).coeffs.sum()) == float(g.coeffs.sum())
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: number of coefficients per cell: a 3×4 affine, row-major (output channel, then r, g, b, 1)
N_COEFFS = 12

_IDENTITY_AFFINE = torch.tensor([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=torch.float32)


@dataclass(frozen=True)
class Thumbnail:
    """The low-resolution view of a frame an engine works on.

    Attributes:
        rgb: ``(3, h, w)`` float32 in ``[0, 1]``, gamma-encoded RGB.
        luma: ``(h, w)`` float32 in ``[0, 1]``: the frame's own normalised Y (the same values
            the full-resolution guide reads), so a fit on the thumbnail and the slice agree.
    """

    rgb: torch.Tensor
    luma: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        """``(h, w)``."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])


@dataclass(frozen=True)
class BilateralGrid:
    """Affine colour transforms on a (luma bin × rows × columns) lattice plus a luma guide.

    Attributes:
        coeffs: ``(12, D, Gh, Gw)`` float32; ``coeffs[4*c + k]`` is the weight of input
            ``k ∈ (r, g, b, 1)`` in output channel ``c``.
        guide: ``(K,)`` float32 in ``[0, 1]``, K ≥ 2: a piecewise-linear curve sampled at
            ``K`` uniform luma positions; a pixel of normalised luma ``y`` falls at depth
            coordinate ``guide(y)``. ``None`` is the identity curve.
    """

    coeffs: torch.Tensor
    guide: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.coeffs.ndim != 4 or self.coeffs.shape[0] != N_COEFFS:
            raise ValueError(f"grid coeffs must be (12, D, Gh, Gw), got {tuple(self.coeffs.shape)}")
        if self.guide is not None and (self.guide.ndim != 1 or self.guide.shape[0] < 2):
            raise ValueError(f"guide must be a (K>=2,) curve, got {tuple(self.guide.shape)}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(D, Gh, Gw)``."""
        _, d, h, w = self.coeffs.shape
        return int(d), int(h), int(w)

    @classmethod
    def identity(cls, depth: int = 8, height: int = 16, width: int = 16) -> BilateralGrid:
        """The grid that leaves every pixel unchanged."""
        coeffs = _IDENTITY_AFFINE.view(N_COEFFS, 1, 1, 1).expand(N_COEFFS, depth, height, width)
        return cls(coeffs.contiguous())

    def is_identity(self) -> bool:
        """Every cell is the identity transform (whatever the guide): the grid changes nothing."""
        ident = _IDENTITY_AFFINE.to(self.coeffs.device, self.coeffs.dtype).view(N_COEFFS, 1, 1, 1)
        return bool(torch.equal(self.coeffs, ident.expand_as(self.coeffs)))

    def guide_curve(self, knots: int = 2) -> torch.Tensor:
        """The guide as a ``(K,)`` tensor, materialising the identity curve when ``guide`` is None."""
        if self.guide is not None:
            return self.guide
        return torch.linspace(0.0, 1.0, knots)

    def blend(self, other: BilateralGrid, weight: float) -> BilateralGrid:
        """``weight · self + (1 − weight) · other`` (coefficients and guide), same shapes."""
        if self.coeffs.shape != other.coeffs.shape:
            raise ValueError(f"cannot blend grids of shapes {self.shape} and {other.shape}")
        coeffs = torch.lerp(other.coeffs, self.coeffs, float(weight))
        guide = None
        if self.guide is not None or other.guide is not None:
            k = max(len(self.guide_curve()), len(other.guide_curve()))
            a, b = _resample_curve(self.guide_curve(k), k), _resample_curve(other.guide_curve(k), k)
            guide = torch.lerp(b, a, float(weight))
        return BilateralGrid(coeffs, guide)

    def with_strength(self, strength: float) -> BilateralGrid:
        """Scale the enhancement: 0 is the identity, 1 the grid itself (the guide is kept)."""
        if strength >= 1.0:
            return self
        ident = BilateralGrid.identity(*self.shape)
        coeffs = torch.lerp(ident.coeffs, self.coeffs, float(strength))
        return BilateralGrid(coeffs, self.guide)


def _resample_curve(curve: torch.Tensor, knots: int) -> torch.Tensor:
    if curve.shape[0] == knots:
        return curve
    x = torch.linspace(0.0, 1.0, knots)
    return interp1d(curve, x)


def interp1d(curve: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Evaluate the uniform-knot piecewise-linear ``curve`` (K,) at ``x`` in ``[0, 1]`` (any shape)."""
    k = curve.shape[0]
    pos = x.clamp(0.0, 1.0) * (k - 1)
    i0 = pos.floor().clamp(max=k - 2).long()
    w = pos - i0.to(pos.dtype)
    return curve[i0] * (1 - w) + curve[i0 + 1] * w
