"""Temporal propagation of grids (ExCNet's idea, generalised): works on grids and thumbnails only.

Each frame's grid Γt is blended with the previous output grid Γ't−1:
``Γ't = (1 − s)·Γt + s·Γ't−1`` with ``s`` the strength; at a scene cut, detected as a large
distance between the luma histograms of consecutive thumbnails, ``s`` drops to 0 so the new
scene gets its own grid at once.

Example:
    >>> import torch
    >>> from streamfix.grid.bilateral import BilateralGrid, Thumbnail
    >>> prop = TemporalFilter(strength=0.5)
    >>> t = Thumbnail(torch.zeros(3, 8, 8), torch.full((8, 8), 0.5))
    >>> g0 = BilateralGrid.identity(2, 2, 2)
    >>> g1 = BilateralGrid(g0.coeffs * 3)
    >>> round(float(prop.update(g0, t).grid.coeffs[0, 0, 0, 0]), 2)
    1.0
    >>> round(float(prop.update(g1, t).grid.coeffs[0, 0, 0, 0]), 2)
    2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from streamfix.grid.bilateral import BilateralGrid, Thumbnail

#: histogram bins of the scene-cut detector
CUT_BINS = 32
#: total-variation distance between consecutive luma histograms above which a cut is declared
CUT_THRESHOLD = 0.4


def luma_histogram(luma: torch.Tensor, bins: int = CUT_BINS) -> torch.Tensor:
    """Normalised histogram ``(bins,)`` (sums to 1) of a luma map with values in ``[0, 1]``."""
    h = torch.histc(luma.float().clamp(0, 1), bins=bins, min=0.0, max=1.0)
    return h / h.sum().clamp(min=1.0)


def histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total-variation distance ``½·Σ|a − b|`` of two normalised histograms, in ``[0, 1]``."""
    return 0.5 * float((a - b).abs().sum())


class SceneCutDetector:
    """Declares a cut when consecutive thumbnails' luma histograms differ by more than a threshold.

    The histogram is smoothed over neighbouring bins first, so a global brightness drift of a
    few percent (auto exposure, a slow pan) moves mass between adjacent bins without a cut,
    while a change of scene rearranges the whole distribution.
    """

    def __init__(self, threshold: float = CUT_THRESHOLD, bins: int = CUT_BINS) -> None:
        self.threshold = threshold
        self.bins = bins
        self._prev: torch.Tensor | None = None
        self.last_distance = 0.0

    def reset(self) -> None:
        self._prev = None

    def __call__(self, thumb: Thumbnail) -> bool:
        """True when ``thumb`` starts a new scene (the first frame is not a cut)."""
        h = luma_histogram(thumb.luma, self.bins)
        h = torch.nn.functional.avg_pool1d(h.view(1, 1, -1), 3, stride=1, padding=1, count_include_pad=False)
        h = h.view(-1) / h.sum()
        prev, self._prev = self._prev, h
        if prev is None:
            self.last_distance = 0.0
            return False
        self.last_distance = histogram_distance(h, prev)
        return self.last_distance > self.threshold


@dataclass(frozen=True)
class TemporalStep:
    """What :meth:`TemporalFilter.update` decided for one frame."""

    grid: BilateralGrid
    scene_cut: bool
    distance: float


class TemporalFilter:
    """Carries the grid from frame to frame; resets at scene cuts.

    Args:
        strength: weight of the previous output grid, in ``[0, 1)``; 0 turns blending off.
        detector: the scene-cut detector (a fresh :class:`SceneCutDetector` by default).
    """

    def __init__(self, strength: float = 0.6, detector: SceneCutDetector | None = None) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {strength}")
        self.strength = strength
        self.detector = detector or SceneCutDetector()
        self._prev: BilateralGrid | None = None
        self.cuts = 0

    def reset(self) -> None:
        self._prev = None
        self.detector.reset()

    def update(self, grid: BilateralGrid, thumb: Thumbnail) -> TemporalStep:
        """Blend ``grid`` (this frame's engine output) with the history; returns the grid to slice."""
        cut = self.detector(thumb)
        if cut:
            self.cuts += 1
        if self._prev is None or cut or self.strength == 0.0 or self._prev.shape != grid.shape:
            out = grid
        else:
            out = grid.blend(self._prev, 1.0 - self.strength)
        self._prev = out
        return TemporalStep(out, cut, self.detector.last_distance)
