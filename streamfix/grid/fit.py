"""Bilateral Guided Upsampling (Chen, Adams, Wadhwa 2016): lift any low-res operator into a grid.

Given a thumbnail ``x`` and an engine's output ``y = f(x)`` at the same size, find per grid cell
the 3×4 affine ``A`` that best maps ``x`` to ``y`` for the pixels that fall near that cell
(trilinear weights in position and guide), regularised towards the image's global affine fit
and towards neighbouring cells (BGU's smoothness term). The normal equations are accumulated in
one splat and solved with a few Gauss-Seidel sweeps over the cells' 4×4 systems: milliseconds on a CPU.

Example:
    >>> import torch
    >>> from streamfix.grid.bilateral import Thumbnail
    >>> x = torch.rand(3, 48, 64)
    >>> thumb = Thumbnail(x, x.mean(0))
    >>> grid = fit_grid(thumb, (x * 0.5).clamp(0, 1), shape=(4, 8, 8))
    >>> round(float(grid.coeffs[0].mean()), 2)   # the red→red gain
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from streamfix.grid.bilateral import N_COEFFS, BilateralGrid, Thumbnail, interp1d

#: default grid shape (luma bins, rows, columns)
GRID_SHAPE = (16, 16, 16)
#: Gauss-Seidel sweeps of a cold solve (from the global affine fit)
COLD_SWEEPS = 8
#: a warm-started solve stops when no coefficient moves by more than this in a sweep
WARM_TOL = 1e-2


#: the unique products a pixel adds to its cells' normal equations: the 10 of the symmetric
#: ``p pᵀ`` (p = (r, g, b, 1)) followed by the 12 of ``p qᵀ`` (q = target rgb), as (i, j) of p qᵀ
#: row-major: index 10 + 3·i + j
_XTX_PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
_N_MOMENTS = 22


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _add_moments(cell, wt, m):  # pragma: no cover - compiled
    """``cell += wt · m`` for the 22 moments, written out: with the moments in scalars (a tuple)
    and constant indices the compiler turns these into a few vector multiply-adds."""
    cell[0] += wt * m[0]
    cell[1] += wt * m[1]
    cell[2] += wt * m[2]
    cell[3] += wt * m[3]
    cell[4] += wt * m[4]
    cell[5] += wt * m[5]
    cell[6] += wt * m[6]
    cell[7] += wt * m[7]
    cell[8] += wt * m[8]
    cell[9] += wt * m[9]
    cell[10] += wt * m[10]
    cell[11] += wt * m[11]
    cell[12] += wt * m[12]
    cell[13] += wt * m[13]
    cell[14] += wt * m[14]
    cell[15] += wt * m[15]
    cell[16] += wt * m[16]
    cell[17] += wt * m[17]
    cell[18] += wt * m[18]
    cell[19] += wt * m[19]
    cell[20] += wt * m[20]
    cell[21] += wt * m[21]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _splat(x, q, gz, gh, gw, acc):  # pragma: no cover - compiled
    """Accumulate every pixel's 22 moments, trilinearly weighted, into its 8 cells' ``acc``."""
    _, h, w = x.shape
    d = acc.shape[0]
    xs0 = np.empty(w, np.int64)
    xs1 = np.empty(w, np.int64)
    xw = np.empty(w)
    for c in range(w):
        fx = min(max((c + 0.5) * gw / w - 0.5, 0.0), gw - 1.0)
        xs0[c] = int(fx)
        xs1[c] = min(xs0[c] + 1, gw - 1)
        xw[c] = fx - xs0[c]
    for r in range(h):
        fy = min(max((r + 0.5) * gh / h - 0.5, 0.0), gh - 1.0)
        y0 = int(fy)
        y1 = min(y0 + 1, gh - 1)
        wy = fy - y0
        for c in range(w):
            p0, p1, p2 = x[0, r, c], x[1, r, c], x[2, r, c]
            t0, t1, t2 = q[0, r, c], q[1, r, c], q[2, r, c]
            m = (p0 * p0, p0 * p1, p0 * p2, p0, p1 * p1, p1 * p2, p1, p2 * p2, p2, 1.0,
                 p0 * t0, p0 * t1, p0 * t2, p1 * t0, p1 * t1, p1 * t2, p2 * t0, p2 * t1, p2 * t2, t0, t1, t2)
            fz = gz[r, c]
            z0 = int(fz)
            z1 = min(z0 + 1, d - 1)
            wz = fz - z0
            x0, x1, wx = xs0[c], xs1[c], xw[c]
            a0, a1 = (1.0 - wz) * (1.0 - wy), (1.0 - wz) * wy
            a2, a3 = wz * (1.0 - wy), wz * wy
            _add_moments(acc[z0, y0, x0], a0 * (1.0 - wx), m)
            _add_moments(acc[z0, y0, x1], a0 * wx, m)
            _add_moments(acc[z0, y1, x0], a1 * (1.0 - wx), m)
            _add_moments(acc[z0, y1, x1], a1 * wx, m)
            _add_moments(acc[z1, y0, x0], a2 * (1.0 - wx), m)
            _add_moments(acc[z1, y0, x1], a2 * wx, m)
            _add_moments(acc[z1, y1, x0], a3 * (1.0 - wx), m)
            _add_moments(acc[z1, y1, x1], a3 * wx, m)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _solve(xtx, xty, glob, lam, mu, max_sweeps, tol, a):  # pragma: no cover - compiled
    """Gauss-Seidel sweeps of ``(XᵀX + (λ + μ·n)I)·A = XᵀY + λ·G + μ·Σ neighbours`` per cell,
    starting from ``a`` as given, until no coefficient moves by more than ``tol`` in a sweep
    (at most ``max_sweeps``). Each cell's 4×4 system is factored once (Cholesky).

    Returns the number of sweeps run."""
    d, gh, gw = xtx.shape[0], xtx.shape[1], xtx.shape[2]
    chol = np.zeros((d, gh, gw, 4, 4))
    for z in range(d):
        for y in range(gh):
            for x in range(gw):
                n = (z > 0) + (z < d - 1) + (y > 0) + (y < gh - 1) + (x > 0) + (x < gw - 1)
                m = xtx[z, y, x].copy()
                for i in range(4):
                    m[i, i] += lam + mu * n
                low = chol[z, y, x]
                for i in range(4):
                    for j in range(i + 1):
                        acc = m[i, j]
                        for k in range(j):
                            acc -= low[i, k] * low[j, k]
                        if i == j:
                            low[i, i] = np.sqrt(max(acc, 1e-12))
                        else:
                            low[i, j] = acc / low[j, j]
    rhs = np.empty((4, 3))
    tmp = np.empty((4, 3))
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        moved = 0.0
        for z in range(d):
            for y in range(gh):
                for x in range(gw):
                    for i in range(4):
                        for j in range(3):
                            acc = xty[z, y, x, i, j] + lam * glob[i, j]
                            nb = 0.0
                            if z > 0:
                                nb += a[z - 1, y, x, i, j]
                            if z < d - 1:
                                nb += a[z + 1, y, x, i, j]
                            if y > 0:
                                nb += a[z, y - 1, x, i, j]
                            if y < gh - 1:
                                nb += a[z, y + 1, x, i, j]
                            if x > 0:
                                nb += a[z, y, x - 1, i, j]
                            if x < gw - 1:
                                nb += a[z, y, x + 1, i, j]
                            rhs[i, j] = acc + mu * nb
                    low = chol[z, y, x]
                    for j in range(3):
                        for i in range(4):  # forward: L t = rhs
                            acc = rhs[i, j]
                            for k in range(i):
                                acc -= low[i, k] * tmp[k, j]
                            tmp[i, j] = acc / low[i, i]
                        for i in range(3, -1, -1):  # back: Lᵀ a = t
                            acc = tmp[i, j]
                            for k in range(i + 1, 4):
                                acc -= low[k, i] * a[z, y, x, k, j]
                            new = acc / low[i, i]
                            moved = max(moved, abs(new - a[z, y, x, i, j]))
                            a[z, y, x, i, j] = new
        if moved <= tol:
            break
    return sweeps


def normal_equations(thumb: Thumbnail, target: torch.Tensor, shape: tuple[int, int, int],
                     guide: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-cell normal equations ``XᵀX`` ``(D, Gh, Gw, 4, 4)`` and ``XᵀY`` ``(D, Gh, Gw, 4, 3)``
    (float64) of the trilinear-weighted least-squares fit of ``target`` from ``thumb.rgb``."""
    d, gh, gw = shape
    x = thumb.rgb.detach().to(torch.float64).cpu().numpy()
    q = target.detach().to(torch.float64).cpu().numpy()
    luma = thumb.luma if guide is None else interp1d(guide, thumb.luma)
    gz = np.clip(luma.detach().to(torch.float64).cpu().numpy() * d - 0.5, 0.0, d - 1.0)
    acc = np.zeros((d, gh, gw, _N_MOMENTS))
    _splat(x, q, gz, gh, gw, acc)
    xtx = np.empty((d, gh, gw, 4, 4))
    for k, (i, j) in enumerate(_XTX_PAIRS):
        xtx[..., i, j] = xtx[..., j, i] = acc[..., k]
    return xtx, np.ascontiguousarray(acc[..., 10:].reshape(d, gh, gw, 4, 3))


@dataclass
class FitResult:
    """A fitted grid and how the solve went."""

    grid: BilateralGrid
    solution: np.ndarray  # (D, Gh, Gw, 4, 3) float64, what a warm start continues from
    sweeps: int


def solve_grid(
    xtx: np.ndarray,
    xty: np.ndarray,
    guide: torch.Tensor | None = None,
    prior_weight: float = 1e-3,
    smoothness: float = 0.002,
    sweeps: int = COLD_SWEEPS,
    tol: float = 0.0,
    init: np.ndarray | None = None,
) -> FitResult:
    """Solve the coupled per-cell systems of :func:`normal_equations` for the grid.

    ``init`` (a previous :attr:`FitResult.solution` of the same shape) starts the sweeps there
    instead of at the global affine fit; ``tol`` stops them early once no coefficient moves by
    more than that in a sweep.
    """
    d, gh, gw = xtx.shape[:3]
    scale = float(xtx[..., 3, 3].sum()) / (d * gh * gw)  # mean pixel weight per cell
    glob = np.linalg.solve(xtx.sum((0, 1, 2)) + 1e-6 * scale * np.eye(4), xty.sum((0, 1, 2)))  # (4, 3)
    if init is not None and init.shape == (d, gh, gw, 4, 3):
        a = init.copy()
    else:
        a = np.empty((d, gh, gw, 4, 3))
        a[...] = glob
    done = _solve(xtx, xty, glob, prior_weight * scale, smoothness * scale, sweeps, tol, a)
    coeffs = torch.from_numpy(a.swapaxes(-1, -2).reshape(d, gh, gw, N_COEFFS)).permute(3, 0, 1, 2)
    return FitResult(BilateralGrid(coeffs.to(torch.float32).contiguous(), guide), a, int(done))


def fit_grid(
    thumb: Thumbnail,
    target: torch.Tensor,
    shape: tuple[int, int, int] = GRID_SHAPE,
    guide: torch.Tensor | None = None,
    prior_weight: float = 1e-3,
    smoothness: float = 0.002,
    sweeps: int = COLD_SWEEPS,
) -> BilateralGrid:
    """Fit a grid that maps ``thumb.rgb`` to ``target``.

    Args:
        thumb: the engine's input; ``thumb.luma`` through ``guide`` picks each pixel's bin.
        target: ``(3, h, w)`` float in ``[0, 1]``, the engine's output at thumbnail size.
        shape: ``(D, Gh, Gw)``.
        guide: ``(K,)`` guide curve; None is the identity.
        prior_weight: pull of each cell towards the global affine fit, relative to the mean
            number of pixels per cell (keeps empty cells defined).
        smoothness: pull of each cell towards its 6 neighbours, relative likewise.
        sweeps: Gauss-Seidel sweeps of the coupled system.

    Returns:
        The fitted :class:`BilateralGrid` (coefficients on the CPU, float32).
    """
    xtx, xty = normal_equations(thumb, target, shape, guide)
    return solve_grid(xtx, xty, guide, prior_weight, smoothness, sweeps).grid


class GridFitter:
    """BGU fitting for a sequence of frames: each solve starts from the previous frame's solution.

    Consecutive frames change little, so a warm-started Gauss-Seidel solve reaches in a few
    sweeps what a cold one reaches in :data:`COLD_SWEEPS`: sweeps stop once no coefficient moves
    by more than ``tol``, after at most ``COLD_SWEEPS``. :meth:`reset` (at a scene cut, or
    before an unrelated image) makes the next solve cold.

    Example:
        >>> import torch
        >>> x = torch.rand(3, 36, 64)
        >>> fitter = GridFitter((8, 8, 8))
        >>> a = fitter.fit(Thumbnail(x, x.mean(0)), x * 0.5)
        >>> b = fitter.fit(Thumbnail(x, x.mean(0)), x * 0.5)   # same frame again: converged at once
        >>> fitter.last_sweeps
        1
    """

    def __init__(self, shape: tuple[int, int, int] = GRID_SHAPE, prior_weight: float = 1e-3,
                 smoothness: float = 0.002, sweeps: int = COLD_SWEEPS, tol: float = WARM_TOL) -> None:
        self.shape = shape
        self.prior_weight = prior_weight
        self.smoothness = smoothness
        self.sweeps = sweeps
        self.tol = tol
        self._solution: np.ndarray | None = None
        self.last_sweeps = 0

    def reset(self) -> None:
        """Forget the previous solution: the next :meth:`fit` starts from the global fit."""
        self._solution = None

    def fit(self, thumb: Thumbnail, target: torch.Tensor, guide: torch.Tensor | None = None) -> BilateralGrid:
        """Fit ``target`` from ``thumb`` (as :func:`fit_grid`), warm-started when it can be."""
        xtx, xty = normal_equations(thumb, target, self.shape, guide)
        warm = self._solution is not None
        res = solve_grid(xtx, xty, guide, self.prior_weight, self.smoothness, self.sweeps,
                         self.tol if warm else 0.0, self._solution)
        self._solution = res.solution
        self.last_sweeps = res.sweeps
        return res.grid
