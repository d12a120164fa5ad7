"""ExCNet (Zhang et al., ACM MM 2019) as a grid engine: zero-shot S-curves, warm-started per frame.

Per frame, :class:`~streamfix.engines.excnet_net.CurveEstimator` fits the S-curve amounts to the
thumbnail's luminance by test-time optimisation, starting from the previous frame's network and
optimiser state (so a steady video needs 0–2 steps per frame; the first frame and the first
frame after a scene cut get a larger budget). The curve then becomes a grid analytically — a
curve is a grid constant in space, and the grid's luma axis carries it directly:

* *luminance restoration*: in luma bin ``k`` (centre ``y_k``) the output luma is the curve's
  tangent ``S(y_k) + S'(y_k)·(Y − y_k)``; trilinear interpolation between bins blends
  neighbouring tangents, which follows the smooth curve closely with 32 bins;
* *chrominance adjustment*: the colour difference ``p − Y`` is scaled by ``s · S(y_k) / y_k``
  (the luminance gain, times a saturation factor ``s``), so colours keep their ratios as
  shadows are lifted and highlights compressed (Mantiuk et al. 2009's colour correction for tone
  mapping, linearised per bin).

Per bin the 3×4 affine is therefore ``A = s·g·I + (S' − s·g)·1·wᵀ``, offset ``S − S'·y_k``, with
``g = S/y_k`` and ``w`` the BT.709 luma weights. With ``grid = [D, Gh, Gw]`` and ``Gh·Gw > 1`` the
amounts are per cell (ExCNet's network gets a per-cell head; the block loss is evaluated with
each block's own curve, which it supports unchanged, plus a smoothness term across cells).
"""

from __future__ import annotations

from pathlib import Path

import torch

from streamfix.engines.excnet_net import PHI_MAX, CurveEstimator, FitResult, s_curve, s_curve_slope
from streamfix.engines.registry import Engine, EngineCard, register_engine
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.slicing import RGB_LUMA

#: default optimiser steps per frame after the first (``--excnet-iters``)
DEFAULT_ITERS = 4
#: optimiser steps allowed on the first frame and after a scene cut
DEFAULT_FIRST_ITERS = 100
#: later frames take a step only when the gradient exceeds this many times the first frame's
#: tolerance: a hold band, so that noise on a static scene does not nudge the curve every frame
#: (measured on phone scene 474: one such step brightened the output by 1 %)
HOLD_BAND = 3.0


def curve_grid(
    phi_s: torch.Tensor | float,
    phi_h: torch.Tensor | float,
    depth: int = 32,
    saturation: float = 1.0,
) -> BilateralGrid:
    """The grid applying the S-curve to luminance with chrominance adjustment.

    Args:
        phi_s, phi_h: shadow / highlight amounts: scalars (one curve: a ``(12, D, 1, 1)`` grid) or
            ``(Gh, Gw)`` maps (one curve per cell: a ``(12, D, Gh, Gw)`` grid).
        depth: luma bins D.
        saturation: ``s``; 1 keeps colour ratios, below 1 desaturates lifted tones.

    Returns:
        the grid (identity guide).

    Example:
        >>> g = curve_grid(0.0, 0.0, depth=8)          # zero amounts: the identity curve
        >>> bool(torch.allclose(g.coeffs, BilateralGrid.identity(8, 1, 1).coeffs, atol=1e-6))
        True
    """
    ps = torch.as_tensor(phi_s, dtype=torch.float32)
    ph = torch.as_tensor(phi_h, dtype=torch.float32)
    if ps.ndim == 0:
        ps, ph = ps.view(1, 1), ph.view(1, 1)
    gh, gw = ps.shape
    y = ((torch.arange(depth, dtype=torch.float32) + 0.5) / depth).view(depth, 1, 1)
    big_s = s_curve(y, ps[None], ph[None])  # (D, Gh, Gw)
    slope = s_curve_slope(y, ps[None], ph[None])
    gain = saturation * big_s / y
    w = torch.tensor(RGB_LUMA, dtype=torch.float32)
    coeffs = torch.empty(12, depth, gh, gw)
    for c in range(3):
        for j in range(3):
            coeffs[4 * c + j] = (gain if c == j else 0.0) + (slope - gain) * w[j]
        coeffs[4 * c + 3] = big_s - slope * y
    return BilateralGrid(coeffs)


@register_engine
class ExCNetEngine(Engine):
    """ExCNet's S-curve, fitted per frame by warm-started test-time optimisation.

    Card keys (``engines/excnet.toml``, section ``[excnet]``): ``iters``, ``first_iters``,
    ``lr``, ``saturation``, ``target``, ``pair_weight``, ``seed``.

    Attributes:
        history: the :class:`FitResult` of every frame so far (iterations, convergence, amounts).
    """

    name = "excnet"

    def __init__(self, card: EngineCard, weights: Path | None = None, device: str = "cpu") -> None:
        super().__init__(card, weights, "cpu")  # a few thousand FLOPs per step: the CPU is the place
        cfg = card.raw.get("excnet", {})
        d, gh, gw = card.grid
        self.depth = int(d)
        self.local = (int(gh), int(gw)) if gh * gw > 1 else None
        self.iters = int(cfg.get("iters", DEFAULT_ITERS))
        self.first_iters = int(cfg.get("first_iters", DEFAULT_FIRST_ITERS))
        self.saturation = float(cfg.get("saturation", 1.0))
        kw = {k: float(cfg[k]) for k in ("lr", "target", "pair_weight") if k in cfg}
        self.estimator = CurveEstimator(self.local, seed=int(cfg.get("seed", 0)), **kw)  # type: ignore[arg-type]
        self.history: list[FitResult] = []
        self._fresh = True

    def set_iterations(self, iters: int) -> None:
        """Optimiser steps allowed per frame after the first (``--excnet-iters``)."""
        if iters < 0:
            raise ValueError(f"ExCNet iterations must be ≥ 0, got {iters}")
        self.iters = int(iters)

    def scene_cut(self) -> None:
        """Called by the enhancer at a scene cut: the next frame gets the first frame's budget."""
        self._fresh = True

    def network(self) -> torch.nn.Module:
        return self.estimator.net

    def fit(self, thumb: Thumbnail) -> FitResult:
        """Run the test-time optimisation on one thumbnail (advances the warm start)."""
        fresh, self._fresh = self._fresh, False
        budget = self.first_iters if fresh else self.iters
        tol = None if fresh else self.estimator.tol * HOLD_BAND
        res = self.estimator.fit(thumb.luma, budget, tol)
        self.history.append(res)
        return res

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        res = self.fit(thumb)
        if res.local is not None:
            return curve_grid(res.local[0], res.local[1], self.depth, self.saturation)
        return curve_grid(res.phi_s, res.phi_h, self.depth, self.saturation)


__all__ = ["ExCNetEngine", "curve_grid", "PHI_MAX"]
