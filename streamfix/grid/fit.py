"""Bilateral Guided Upsampling (Chen, Adams, Wadhwa 2016): lift any low-res operator into a grid.

Given a thumbnail ``x`` and an engine's output ``y = f(x)`` at the same size, find per grid cell
the 3×4 affine ``A`` that best maps ``x`` to ``y`` for the pixels that fall near that cell
(trilinear weights in position and guide), regularised towards the image's global affine fit
and towards neighbouring cells (BGU's smoothness term). The normal equations are accumulated in
one splat and solved with a few Jacobi sweeps of batched 4×4 systems: milliseconds on a CPU.

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

import torch

from streamfix.grid.bilateral import N_COEFFS, BilateralGrid, Thumbnail, interp1d

#: default grid shape (luma bins, rows, columns)
GRID_SHAPE = (16, 16, 16)


def _axis_weights(n: int, cells: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = ((torch.arange(n, dtype=torch.float32) + 0.5) * cells / n - 0.5).clamp(0, cells - 1)
    i0 = g.floor().long().clamp(max=cells - 1)
    i1 = (i0 + 1).clamp(max=cells - 1)
    return i0, i1, g - i0


def fit_grid(
    thumb: Thumbnail,
    target: torch.Tensor,
    shape: tuple[int, int, int] = GRID_SHAPE,
    guide: torch.Tensor | None = None,
    prior_weight: float = 1e-3,
    smoothness: float = 0.002,
    sweeps: int = 20,
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
        sweeps: Jacobi sweeps of the coupled system.

    Returns:
        The fitted :class:`BilateralGrid` (coefficients on the CPU, float32).
    """
    d, gh, gw = shape
    x = thumb.rgb.to(torch.float64)
    q = target.to(torch.float64)
    _, h, w = x.shape
    luma = thumb.luma if guide is None else interp1d(guide, thumb.luma)
    gz = (luma.to(torch.float64) * d - 0.5).clamp(0, d - 1).reshape(-1)
    z0 = gz.floor().long().clamp(max=d - 1)
    z1 = (z0 + 1).clamp(max=d - 1)
    wz = gz - z0
    y0, y1, wy = _axis_weights(h, gh)
    x0, x1, wx = _axis_weights(w, gw)
    yy0, yy1, wyy = (t.view(h, 1).expand(h, w).reshape(-1) for t in (y0, y1, wy.double()))
    xx0, xx1, wxx = (t.view(1, w).expand(h, w).reshape(-1) for t in (x0, x1, wx.double()))

    p = torch.cat([x.reshape(3, -1), torch.ones(1, h * w, dtype=torch.float64)]).T  # (N, 4)
    qq = q.reshape(3, -1).T  # (N, 3)
    ptp = (p[:, :, None] * p[:, None, :]).reshape(-1, 16)
    ptq = (p[:, :, None] * qq[:, None, :]).reshape(-1, 12)
    cells = d * gh * gw
    xtx = torch.zeros(cells, 16, dtype=torch.float64)
    xty = torch.zeros(cells, 12, dtype=torch.float64)
    for zi, zw in ((z0, 1 - wz), (z1, wz)):
        for yi, yw in ((yy0, 1 - wyy), (yy1, wyy)):
            for xi, xw in ((xx0, 1 - wxx), (xx1, wxx)):
                wgt = (zw * yw * xw)[:, None]
                idx = (zi * gh + yi) * gw + xi
                xtx.index_add_(0, idx, ptp * wgt)
                xty.index_add_(0, idx, ptq * wgt)

    xtx = xtx.view(d, gh, gw, 4, 4)
    xty = xty.view(d, gh, gw, 4, 3)
    scale = h * w / cells
    eye = torch.eye(4, dtype=torch.float64)
    glob = torch.linalg.solve(xtx.sum((0, 1, 2)) + 1e-6 * scale * eye, xty.sum((0, 1, 2)))  # (4, 3)
    lam, mu = prior_weight * scale, smoothness * scale
    ones = torch.ones(d, gh, gw, dtype=torch.float64)
    count = _neighbour_sum(ones[..., None, None]).squeeze(-1).squeeze(-1)
    system = xtx + (lam + mu * count)[..., None, None] * eye
    inv = torch.linalg.inv(system)
    rhs0 = xty + lam * glob
    a = glob.expand(d, gh, gw, 4, 3)
    for _ in range(sweeps):
        a = inv @ (rhs0 + mu * _neighbour_sum(a))
    coeffs = a.transpose(-1, -2).reshape(d, gh, gw, N_COEFFS).permute(3, 0, 1, 2)
    return BilateralGrid(coeffs.to(torch.float32).contiguous(), guide)


def _neighbour_sum(a: torch.Tensor) -> torch.Tensor:
    """Sum over the 6-neighbourhood in (D, Gh, Gw) of a ``(D, Gh, Gw, …)`` tensor (zero outside)."""
    out = torch.zeros_like(a)
    for dim in range(3):
        n = a.shape[dim]
        if n < 2:
            continue
        lo = a.narrow(dim, 0, n - 1)
        hi = a.narrow(dim, 1, n - 1)
        out.narrow(dim, 1, n - 1).add_(lo)
        out.narrow(dim, 0, n - 1).add_(hi)
    return out
