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
WARM_TOL = 2e-3
#: per-cell models: a 3×4 affine, or a gain and an offset shared by the three channels
MODELS = ("affine", "gain")
#: what the gain model's prior and smoothness act on (:func:`solve_gain`)
REGULARISE = ("coefficients", "output")


#: the unique products a pixel adds to its cells' normal equations: the 10 of the symmetric
#: ``p pᵀ`` (p = (r, g, b, 1)) followed by the 12 of ``p qᵀ`` (q = target rgb), as (i, j) of p qᵀ
#: row-major: index 10 + 3·i + j
_XTX_PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
_N_MOMENTS = 22


@numba.njit(cache=True, nogil=True)
def _cell_axis(n, cells):  # pragma: no cover - compiled
    """For each of ``n`` pixels along an axis: the two cells it splats into and the second's weight."""
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    wt = np.empty(n)
    for i in range(n):
        f = min(max((i + 0.5) * cells / n - 0.5, 0.0), cells - 1.0)
        lo[i] = int(f)
        hi[i] = min(lo[i] + 1, cells - 1)
        wt[i] = f - lo[i]
    return lo, hi, wt


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
def _add_row(row, acc, y0, y1, wy):  # pragma: no cover - compiled
    """Add one thumbnail row's splat ``row (D, Gw, M)`` into grid rows ``y0`` and ``y1`` of ``acc``
    ``(D, Gh, Gw, M)`` with weights ``1 − wy`` and ``wy``."""
    d, gw, m = row.shape
    for z in range(d):
        for g in range(gw):
            for k in range(m):
                v = row[z, g, k]
                acc[z, y0, g, k] += (1.0 - wy) * v
                acc[z, y1, g, k] += wy * v


@numba.njit(cache=True, nogil=True, fastmath=True)
def _splat(x, q, gz, gh, gw, acc):  # pragma: no cover - compiled
    """Accumulate every pixel's 22 moments, trilinearly weighted, into its 8 cells' ``acc``:
    separably, as :func:`_splat_pixels`."""
    _, h, w = x.shape
    d = acc.shape[0]
    xs0, xs1, xw = _cell_axis(w, gw)
    ys0, ys1, yw = _cell_axis(h, gh)
    row = np.zeros((d, gw, acc.shape[3]))
    for r in range(h):
        row[:] = 0.0
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
            _add_moments(row[z0, x0], (1.0 - wz) * (1.0 - wx), m)
            _add_moments(row[z0, x1], (1.0 - wz) * wx, m)
            _add_moments(row[z1, x0], wz * (1.0 - wx), m)
            _add_moments(row[z1, x1], wz * wx, m)
        _add_row(row, acc, ys0[r], ys1[r], yw[r])


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


#: moments of the gain model per cell: Σ_c x_c², Σ_c x_c, Σ_c 1, Σ_c x_c·y_c, Σ_c y_c
_N_GAIN_MOMENTS = 5


@numba.njit(cache=True, nogil=True, fastmath=True)
def _splat_gain(x, q, gz, gh, gw, acc):  # pragma: no cover - compiled
    """As :func:`_splat` for the gain model ``y_c = a·x_c + b`` (one gain and offset for all channels).
    Separably, as :func:`_splat_pixels`: each row into its (depth, column) cells, then the row's
    sums into the two grid rows around it."""
    _, h, w = x.shape
    d = acc.shape[0]
    xs0, xs1, xw = _cell_axis(w, gw)
    ys0, ys1, yw = _cell_axis(h, gh)
    row = np.zeros((d, gw, _N_GAIN_MOMENTS))
    for r in range(h):
        row[:] = 0.0
        for c in range(w):
            p0, p1, p2 = x[0, r, c], x[1, r, c], x[2, r, c]
            t0, t1, t2 = q[0, r, c], q[1, r, c], q[2, r, c]
            m0 = p0 * p0 + p1 * p1 + p2 * p2
            m1 = p0 + p1 + p2
            m3 = p0 * t0 + p1 * t1 + p2 * t2
            m4 = t0 + t1 + t2
            fz = gz[r, c]
            z0 = int(fz)
            z1 = min(z0 + 1, d - 1)
            wz = fz - z0
            x0, x1, wx = xs0[c], xs1[c], xw[c]
            for k in range(4):
                zi, wzk = (z1, wz) if k & 2 else (z0, 1.0 - wz)
                xi, wxk = (x1, wx) if k & 1 else (x0, 1.0 - wx)
                wt = wzk * wxk
                cell = row[zi, xi]
                cell[0] += wt * m0
                cell[1] += wt * m1
                cell[2] += wt * 3.0
                cell[3] += wt * m3
                cell[4] += wt * m4
        _add_row(row, acc, ys0[r], ys1[r], yw[r])


@numba.njit(cache=True, nogil=True, fastmath=True)
def _solve_gain(acc, glob, lam, mu, ka, max_sweeps, tol, a):  # pragma: no cover - compiled
    """Gauss-Seidel sweeps for the gain model: per cell the 2×2 system of ``(a, b)`` with the same
    prior (λ towards the global fit) and smoothness (μ towards the 6 neighbours) as :func:`_solve`.
    ``acc`` counts each pixel three times (once per channel), so λ and μ are scaled likewise; the
    gain's terms are further multiplied by ``ka`` (see :func:`solve_gain`).
    Returns the number of sweeps run."""
    d, gh, gw = acc.shape[0], acc.shape[1], acc.shape[2]
    sweeps = 0
    while sweeps < max_sweeps:
        sweeps += 1
        moved = 0.0
        for z in range(d):
            for y in range(gh):
                for x in range(gw):
                    n = (z > 0) + (z < d - 1) + (y > 0) + (y < gh - 1) + (x > 0) + (x < gw - 1)
                    reg = lam + mu * n
                    m = acc[z, y, x]
                    r0 = m[3] + ka * lam * glob[0]
                    r1 = m[4] + lam * glob[1]
                    for j in range(2):
                        nb = 0.0
                        if z > 0:
                            nb += a[z - 1, y, x, j]
                        if z < d - 1:
                            nb += a[z + 1, y, x, j]
                        if y > 0:
                            nb += a[z, y - 1, x, j]
                        if y < gh - 1:
                            nb += a[z, y + 1, x, j]
                        if x > 0:
                            nb += a[z, y, x - 1, j]
                        if x < gw - 1:
                            nb += a[z, y, x + 1, j]
                        if j == 0:
                            r0 += ka * mu * nb
                        else:
                            r1 += mu * nb
                    s00 = m[0] + ka * reg
                    s01 = m[1]
                    s11 = m[2] + reg
                    det = s00 * s11 - s01 * s01
                    g = (s11 * r0 - s01 * r1) / det
                    b = (s00 * r1 - s01 * r0) / det
                    moved = max(moved, abs(g - a[z, y, x, 0]), abs(b - a[z, y, x, 1]))
                    a[z, y, x, 0] = g
                    a[z, y, x, 1] = b
        if moved <= tol:
            break
    return sweeps


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _add4(cell, wt, p0, p1, p2):  # pragma: no cover - compiled
    cell[0] += wt * p0
    cell[1] += wt * p1
    cell[2] += wt * p2
    cell[3] += wt


@numba.njit(cache=True, nogil=True, fastmath=True)
def _splat_pixels(x, gz, gh, gw, acc):  # pragma: no cover - compiled
    """Trilinear splat of every pixel's ``(r, g, b, 1)`` into its 8 cells. Separably where the
    depth is a grid's (each row into its 4 (depth, column) cells of a row buffer, then the row into
    the two grid rows around it: half the scattered additions, into a buffer that stays in L1);
    directly where it is fine (:class:`LumaMoments`' 256 bins), whose row buffer would cost more to
    flush than it saves."""
    _, h, w = x.shape
    d = acc.shape[0]
    xs0, xs1, xw = _cell_axis(w, gw)
    ys0, ys1, yw = _cell_axis(h, gh)
    separable = d * gw <= 2 * w  # the row flush (2·d·gw·4 additions) against 4·4 saved per pixel
    row = np.zeros((d if separable else 1, gw, 4))
    for r in range(h):
        y0, y1, wy = ys0[r], ys1[r], yw[r]
        row[:] = 0.0
        for c in range(w):
            x0, x1, wx = xs0[c], xs1[c], xw[c]
            fz = gz[r, c]
            z0 = int(fz)
            z1 = min(z0 + 1, d - 1)
            wz = fz - z0
            p0, p1, p2 = x[0, r, c], x[1, r, c], x[2, r, c]
            if separable:
                _add4(row[z0, x0], (1.0 - wz) * (1.0 - wx), p0, p1, p2)
                _add4(row[z0, x1], (1.0 - wz) * wx, p0, p1, p2)
                _add4(row[z1, x0], wz * (1.0 - wx), p0, p1, p2)
                _add4(row[z1, x1], wz * wx, p0, p1, p2)
            else:
                a0, a1 = (1.0 - wz) * (1.0 - wy), (1.0 - wz) * wy
                a2, a3 = wz * (1.0 - wy), wz * wy
                _add4(acc[z0, y0, x0], a0 * (1.0 - wx), p0, p1, p2)
                _add4(acc[z0, y0, x1], a0 * wx, p0, p1, p2)
                _add4(acc[z0, y1, x0], a1 * (1.0 - wx), p0, p1, p2)
                _add4(acc[z0, y1, x1], a1 * wx, p0, p1, p2)
                _add4(acc[z1, y0, x0], a2 * (1.0 - wx), p0, p1, p2)
                _add4(acc[z1, y0, x1], a2 * wx, p0, p1, p2)
                _add4(acc[z1, y1, x0], a3 * (1.0 - wx), p0, p1, p2)
                _add4(acc[z1, y1, x1], a3 * wx, p0, p1, p2)
        if separable:
            _add_row(row, acc, y0, y1, wy)


def pixel_moments(thumb: Thumbnail, shape: tuple[int, int, int], guide: torch.Tensor | None = None) -> np.ndarray:
    """Per cell the trilinear-weighted sums of ``(r, g, b, 1)`` over the thumbnail, ``(D, Gh, Gw, 4)``:
    with them the mean of *any* grid's output on this thumbnail (before clipping) is one dot
    product, ``Σ_cells A·m / N`` — slicing is linear in the coefficients."""
    d, gh, gw = shape
    x, gz = _thumb_inputs(thumb, d, guide)
    acc = np.zeros((d, gh, gw, 4))
    _splat_pixels(x, gz, gh, gw, acc)
    return acc


@numba.njit(cache=True, nogil=True, fastmath=True)
def _bins_to_depth(acc, z, out):  # pragma: no cover - compiled
    """``out[d] = Σ_b w(d, b)·acc[b]``, each bin split between the two depth cells around its
    coordinate ``z[b]`` (a sparse contraction: no BLAS call, whose worker threads would spin on
    the cores the codecs need)."""
    d = out.shape[0]
    for b in range(acc.shape[0]):
        z0 = int(z[b])
        z1 = min(z0 + 1, d - 1)
        wz = z[b] - z0
        src = acc[b]
        lo = out[z0]
        hi = out[z1]
        for i in range(src.shape[0]):
            lo[i] += (1.0 - wz) * src[i]
            hi[i] += wz * src[i]


#: luma bins of :class:`LumaMoments`
MOMENT_BINS = 256


class LumaMoments:
    """The thumbnail's pixel moments per grid cell for *any* guide curve, from one splat.

    Per spatial cell and luma bin the weighted sums of ``(r, g, b, 1)``; a guide then maps each
    bin's luma to its depth in the grid, which turns them into the per-cell moments ``(D, Gh, Gw,
    4)`` — the trilinear-weighted sums slicing would use — by one small contraction. With them the
    mean of any grid's output on this thumbnail (before clipping) is a dot product: slicing is
    linear in the coefficients. Exact where a pixel's depth weights are linear in its luma between
    two bin centres (everywhere but the bins holding a cell boundary or a guide knot): with 256
    bins the mean output of BacklitNet's grids on its own thumbnails is within 3e-5 (relative) of
    slicing them (tests/test_temporal.py holds it to 1e-3 on random grids and guides).

    Args:
        thumb: the thumbnail.
        rows, cols: the grid's cell counts.
        bins: luma bins.
    """

    def __init__(self, thumb: Thumbnail, rows: int, cols: int, bins: int = MOMENT_BINS) -> None:
        self.rows, self.cols, self.bins = rows, cols, bins
        x = thumb.rgb.detach().to(torch.float64).cpu().numpy()
        luma = thumb.luma.detach().to(torch.float64).cpu().numpy()
        self._acc = np.zeros((bins, rows, cols, 4))
        # bilinear in position, linear in luma between the two nearest bin centres
        _splat_pixels(x, np.clip(luma, 0.0, 1.0) * (bins - 1), rows, cols, self._acc)

    def for_grid(self, shape: tuple[int, int, int], guide: torch.Tensor | None = None) -> np.ndarray:
        """``(D, Gh, Gw, 4)`` moments for a grid of ``shape`` sliced with ``guide`` (None: identity)."""
        d, gh, gw = shape
        if (gh, gw) != (self.rows, self.cols):
            raise ValueError(f"moments were splatted for {self.rows}×{self.cols} cells, not {gh}×{gw}")
        centres = torch.linspace(0.0, 1.0, self.bins, dtype=torch.float64)
        g = centres if guide is None else interp1d(guide.detach().to(torch.float64).cpu(), centres)
        z = np.clip(g.numpy() * d - 0.5, 0.0, d - 1.0)
        out = np.zeros((d, gh * gw * 4))
        _bins_to_depth(self._acc.reshape(self.bins, -1), z, out)
        return out.reshape(d, gh, gw, 4)


def _thumb_inputs(thumb: Thumbnail, d: int, guide: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
    """float64 input rgb and each pixel's depth coordinate."""
    x = thumb.rgb.detach().to(torch.float64).cpu().numpy()
    luma = thumb.luma if guide is None else interp1d(guide, thumb.luma)
    gz = np.clip(luma.detach().to(torch.float64).cpu().numpy() * d - 0.5, 0.0, d - 1.0)
    return x, gz


def _fit_inputs(thumb: Thumbnail, target: torch.Tensor, d: int,
                guide: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 input rgb, target rgb and each pixel's depth coordinate."""
    x, gz = _thumb_inputs(thumb, d, guide)
    return x, target.detach().to(torch.float64).cpu().numpy(), gz


def normal_equations(thumb: Thumbnail, target: torch.Tensor, shape: tuple[int, int, int],
                     guide: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The per-cell normal equations ``XᵀX`` ``(D, Gh, Gw, 4, 4)`` and ``XᵀY`` ``(D, Gh, Gw, 4, 3)``
    (float64) of the trilinear-weighted least-squares fit of ``target`` from ``thumb.rgb``."""
    d, gh, gw = shape
    x, q, gz = _fit_inputs(thumb, target, d, guide)
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


def gain_moments(thumb: Thumbnail, target: torch.Tensor, shape: tuple[int, int, int],
                 guide: torch.Tensor | None = None) -> np.ndarray:
    """The per-cell moments ``(D, Gh, Gw, 5)`` of the gain model (see :func:`_splat_gain`)."""
    d, gh, gw = shape
    x, q, gz = _fit_inputs(thumb, target, d, guide)
    acc = np.zeros((d, gh, gw, _N_GAIN_MOMENTS))
    _splat_gain(x, q, gz, gh, gw, acc)
    return acc


def solve_gain(
    acc: np.ndarray,
    guide: torch.Tensor | None = None,
    prior_weight: float = 1e-3,
    smoothness: float = 0.002,
    sweeps: int = COLD_SWEEPS,
    tol: float = 0.0,
    init: np.ndarray | None = None,
    regularise: str = "coefficients",
) -> FitResult:
    """Solve the gain model for every cell: ``A = a·I``, offset ``b`` on all three channels (a grid
    that changes brightness, not hue or saturation; its slicing takes the cheap neutral path).

    ``regularise``: ``coefficients`` pulls gains and offsets alike, per pixel; ``output`` weighs
    the gains' pulls by the frame's mean square input, so that what is smoothed and held towards
    the global fit is the cells' *output* (a gain difference Δa moves the output by Δa·x). With
    ``coefficients`` a dark frame's gains (mean x² ≈ 1e-5 in a near-black frame) are set by the
    regularisation alone, which left a fit of SCI 7–16 % darker than the network on such frames."""
    if regularise not in REGULARISE:
        raise ValueError(f"unknown regularisation {regularise!r}; use one of {', '.join(REGULARISE)}")
    d, gh, gw = acc.shape[:3]
    scale = float(acc[..., 2].sum()) / (d * gh * gw)  # mean channel-weighted pixel count per cell
    tot = acc.sum((0, 1, 2))
    m = np.array([[tot[0], tot[1]], [tot[1], tot[2]]]) + 1e-6 * scale * np.eye(2)
    glob = np.linalg.solve(m, np.array([tot[3], tot[4]]))
    if init is not None and init.shape == (d, gh, gw, 2):
        a = init.copy()
    else:
        a = np.empty((d, gh, gw, 2))
        a[...] = glob
    ka = 1.0
    if regularise == "output":  # mean square input per channel-weighted pixel, floored at one code²
        ka = max(float(acc[..., 0].sum()) / max(float(acc[..., 2].sum()), 1e-12), (1.0 / 255.0) ** 2)
    done = _solve_gain(acc, glob, prior_weight * scale, smoothness * scale, ka, sweeps, tol, a)
    coeffs = torch.zeros(N_COEFFS, d, gh, gw, dtype=torch.float64)
    gain, offset = torch.from_numpy(a[..., 0]), torch.from_numpy(a[..., 1])
    for c in range(3):
        coeffs[4 * c + c] = gain
        coeffs[4 * c + 3] = offset
    return FitResult(BilateralGrid(coeffs.to(torch.float32).contiguous(), guide), a, int(done))


def _fit(model: str, thumb: Thumbnail, target: torch.Tensor, shape: tuple[int, int, int],
         guide: torch.Tensor | None, prior_weight: float, smoothness: float, sweeps: int, tol: float,
         init: np.ndarray | None, regularise: str = "coefficients") -> FitResult:
    if model == "gain":
        acc = gain_moments(thumb, target, shape, guide)
        return solve_gain(acc, guide, prior_weight, smoothness, sweeps, tol, init, regularise)
    if model == "affine":
        xtx, xty = normal_equations(thumb, target, shape, guide)
        return solve_grid(xtx, xty, guide, prior_weight, smoothness, sweeps, tol, init)
    raise ValueError(f"unknown fit model {model!r}; use one of {', '.join(MODELS)}")


def fit_grid(
    thumb: Thumbnail,
    target: torch.Tensor,
    shape: tuple[int, int, int] = GRID_SHAPE,
    guide: torch.Tensor | None = None,
    prior_weight: float = 1e-3,
    smoothness: float = 0.002,
    sweeps: int = COLD_SWEEPS,
    model: str = "affine",
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
        model: ``affine`` (a 3×4 transform per cell) or ``gain`` (one gain and one offset per
            cell for all channels: for engines that only change brightness; slices faster).

    Returns:
        The fitted :class:`BilateralGrid` (coefficients on the CPU, float32).
    """
    return _fit(model, thumb, target, shape, guide, prior_weight, smoothness, sweeps, 0.0, None).grid


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
                 smoothness: float = 0.002, sweeps: int = COLD_SWEEPS, tol: float = WARM_TOL,
                 model: str = "affine", regularise: str = "coefficients") -> None:
        if model not in MODELS:
            raise ValueError(f"unknown fit model {model!r}; use one of {', '.join(MODELS)}")
        if regularise not in REGULARISE:
            raise ValueError(f"unknown regularisation {regularise!r}; use one of {', '.join(REGULARISE)}")
        if regularise != "coefficients" and model != "gain":
            raise ValueError(f"regularise = {regularise!r} is implemented for the gain model only")
        self.model = model
        self.regularise = regularise
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
        warm = self._solution is not None
        res = _fit(self.model, thumb, target, self.shape, guide, self.prior_weight, self.smoothness,
                   self.sweeps, self.tol if warm else 0.0, self._solution, self.regularise)
        self._solution = res.solution
        self.last_sweeps = res.sweeps
        return res.grid
