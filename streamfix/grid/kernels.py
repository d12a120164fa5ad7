"""Fused CPU slicing kernels (numba): one pass over the planes, no float copy of the frame.

Each kernel reads integer planes, looks up the grid trilinearly and writes integer planes, in
parallel over rows. Per output row the grid is first interpolated along y (a ``(D, Gw, k)``
table), so each pixel blends only 4 corners (x, depth). The math is that of
:func:`streamfix.grid.slicing.slice_planes` / :func:`~streamfix.grid.slicing.slice_rgb`, which the
tests hold these kernels to within one code value.

Example:
    >>> import numpy as np
    >>> from streamfix.grid.bilateral import BilateralGrid
    >>> from streamfix.grid.colour import PlaneFormat
    >>> from streamfix.grid.planes import Planes
    >>> p = Planes(np.full((4, 6), 100, np.uint8), np.full((2, 3), 128, np.uint8),
    ...            np.full((2, 3), 128, np.uint8), PlaneFormat())
    >>> out = slice_planes_cpu(p, BilateralGrid.identity(8, 2, 2))
    >>> int(out.y[0, 0]), int(out.u[1, 2])
    (100, 128)
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from streamfix.grid.bilateral import BilateralGrid, interp1d
from streamfix.grid.colour import PlaneFormat, affine_to_code_domain, depth_lut
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import RGB_LUMA


@numba.njit(cache=True, inline="always")
def _axis(size: int, cells: int, centre_offset: float, step: int, i: int) -> tuple[int, int, float]:
    g = ((i * step + centre_offset) + 0.5) * cells / size - 0.5
    if g < 0.0:
        g = 0.0
    if g > cells - 1:
        g = cells - 1.0
    i0 = int(g)
    i1 = min(i0 + 1, cells - 1)
    return i0, i1, g - i0


@numba.njit(cache=True, inline="always")
def _split_depth(gz: float, d: int) -> tuple[int, int, float]:
    z0 = int(gz)
    z1 = min(z0 + 1, d - 1)
    return z0, z1, gz - z0


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _luma_kernel(y, u, v, out, c, lut_z0, lut_wz, sy, sx, top):  # pragma: no cover - compiled
    h, w = y.shape
    d, gh, gw = c.shape[0], c.shape[1], c.shape[2]
    x0 = np.empty(w, np.int32)
    x1 = np.empty(w, np.int32)
    wx = np.empty(w, np.float32)
    for x in range(w):
        a, b, f = _axis(w, gw, 0.0, 1, x)
        x0[x], x1[x], wx[x] = a * 4, b * 4, f
    zstride = gw * 4
    ftop = np.float32(top)
    one = np.float32(1.0)
    for r in numba.prange(h):
        y0, y1, wy = _axis(h, gh, 0.0, 1, r)
        row = np.empty(d * zstride + zstride, np.float32)
        for z in range(d):
            for g in range(gw):
                for k in range(4):
                    row[z * zstride + g * 4 + k] = c[z, y0, g, k] * (1.0 - wy) + c[z, y1, g, k] * wy
        # one extra depth slice equal to the last, so z0 + 1 never needs a clamp
        for i in range(zstride):
            row[d * zstride + i] = row[(d - 1) * zstride + i]
        rc = r >> sy
        yrow = y[r]
        urow = u[rc]
        vrow = v[rc]
        orow = out[r]
        for x in range(w):
            yv = yrow[x]
            lo_base = lut_z0[yv]
            wz = lut_wz[yv]
            f = wx[x]
            ia = lo_base + x0[x]
            ib = lo_base + x1[x]
            ja = ia + zstride
            jb = ib + zstride
            f0 = (one - f) * (one - wz)
            f1 = f * (one - wz)
            f2 = (one - f) * wz
            f3 = f * wz
            c0 = f0 * row[ia] + f1 * row[ib] + f2 * row[ja] + f3 * row[jb]
            c1 = f0 * row[ia + 1] + f1 * row[ib + 1] + f2 * row[ja + 1] + f3 * row[jb + 1]
            c2 = f0 * row[ia + 2] + f1 * row[ib + 2] + f2 * row[ja + 2] + f3 * row[jb + 2]
            c3 = f0 * row[ia + 3] + f1 * row[ib + 3] + f2 * row[ja + 3] + f3 * row[jb + 3]
            acc = c0 * np.float32(yv) + c1 * np.float32(urow[x >> sx]) + c2 * np.float32(vrow[x >> sx]) + c3
            orow[x] = np.int32(min(max(acc + np.float32(0.5), np.float32(0.0)), ftop))


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _chroma_kernel(y, u, v, out_u, out_v, c, lut_z0, lut_wz, sy, sx, top):  # pragma: no cover - compiled
    h, w = y.shape
    hc, wc = u.shape
    d, gh, gw = c.shape[0], c.shape[1], c.shape[2]
    fy, fx = 1 << sy, 1 << sx
    n = fy * fx
    half = n // 2
    zstride = gw * 8
    ftop = np.float32(top)
    one = np.float32(1.0)
    ca = np.empty(wc, np.int32)
    cb = np.empty(wc, np.int32)
    cf = np.empty(wc, np.float32)
    # luma columns of each chroma block, clamped at the right edge (odd widths)
    lx = np.empty((wc, fx), np.int32)
    for j in range(wc):
        a, b, f = _axis(w, gw, (fx - 1) / 2.0, fx, j)
        ca[j], cb[j], cf[j] = a * 8, b * 8, f
        for dx in range(fx):
            lx[j, dx] = min(j * fx + dx, w - 1)
    for r in numba.prange(hc):
        y0, y1, wy = _axis(h, gh, (fy - 1) / 2.0, fy, r)
        row = np.empty(d * zstride + zstride, np.float32)
        for z in range(d):
            for g in range(gw):
                for k in range(8):
                    row[z * zstride + g * 8 + k] = c[z, y0, g, 4 + k] * (1.0 - wy) + c[z, y1, g, 4 + k] * wy
        for i in range(zstride):
            row[d * zstride + i] = row[(d - 1) * zstride + i]
        ra = r * fy
        rb = min(ra + fy - 1, h - 1)
        ya = y[ra]
        yb_row = y[rb]
        urow = u[r]
        vrow = v[r]
        ourow = out_u[r]
        ovrow = out_v[r]
        for j in range(wc):
            s = 0
            for dx in range(fx):
                s += np.int32(ya[lx[j, dx]])
                if fy > 1:
                    s += np.int32(yb_row[lx[j, dx]])
            yb = (s + half) // n
            wz = lut_wz[yb]
            f = cf[j]
            ia = lut_z0[yb] + ca[j]
            ib = lut_z0[yb] + cb[j]
            ja = ia + zstride
            jb = ib + zstride
            f0 = (one - f) * (one - wz)
            f1 = f * (one - wz)
            f2 = (one - f) * wz
            f3 = f * wz
            uu = np.float32(urow[j])
            vv = np.float32(vrow[j])
            ybf = np.float32(yb)
            u0 = f0 * row[ia] + f1 * row[ib] + f2 * row[ja] + f3 * row[jb]
            u1 = f0 * row[ia + 1] + f1 * row[ib + 1] + f2 * row[ja + 1] + f3 * row[jb + 1]
            u2 = f0 * row[ia + 2] + f1 * row[ib + 2] + f2 * row[ja + 2] + f3 * row[jb + 2]
            u3 = f0 * row[ia + 3] + f1 * row[ib + 3] + f2 * row[ja + 3] + f3 * row[jb + 3]
            v0 = f0 * row[ia + 4] + f1 * row[ib + 4] + f2 * row[ja + 4] + f3 * row[jb + 4]
            v1 = f0 * row[ia + 5] + f1 * row[ib + 5] + f2 * row[ja + 5] + f3 * row[jb + 5]
            v2 = f0 * row[ia + 6] + f1 * row[ib + 6] + f2 * row[ja + 6] + f3 * row[jb + 6]
            v3 = f0 * row[ia + 7] + f1 * row[ib + 7] + f2 * row[ja + 7] + f3 * row[jb + 7]
            ou = u0 * ybf + u1 * uu + u2 * vv + u3
            ov = v0 * ybf + v1 * uu + v2 * vv + v3
            ourow[j] = np.int32(min(max(ou + np.float32(0.5), np.float32(0.0)), ftop))
            ovrow[j] = np.int32(min(max(ov + np.float32(0.5), np.float32(0.0)), ftop))


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _rgb_kernel(src, out, c, lut, kr, kg, kb):  # pragma: no cover - compiled
    h, w, _ = src.shape
    d, gh, gw = c.shape[0], c.shape[1], c.shape[2]
    nl = lut.shape[0] - 1
    for r in numba.prange(h):
        y0, y1, wy = _axis(h, gh, 0.0, 1, r)
        row = np.empty((d, gw, 12), np.float32)
        for z in range(d):
            for g in range(gw):
                for k in range(12):
                    row[z, g, k] = c[z, y0, g, k] * (1.0 - wy) + c[z, y1, g, k] * wy
        cc = np.empty(12, np.float32)
        for x in range(w):
            a, b, f = _axis(w, gw, 0.0, 1, x)
            rv = np.float32(src[r, x, 0]) / 255.0
            gv = np.float32(src[r, x, 1]) / 255.0
            bv = np.float32(src[r, x, 2]) / 255.0
            lum = kr * rv + kg * gv + kb * bv
            lum = min(max(lum, 0.0), 1.0) * nl
            i0 = min(int(lum), nl - 1)
            t = lum - i0
            gz = lut[i0] * (1.0 - t) + lut[i0 + 1] * t
            z0, z1, wz = _split_depth(gz, d)
            for k in range(12):
                lo = row[z0, a, k] * (1.0 - f) + row[z0, b, k] * f
                hi = row[z1, a, k] * (1.0 - f) + row[z1, b, k] * f
                cc[k] = lo * (1.0 - wz) + hi * wz
            for ch in range(3):
                o = cc[4 * ch] * rv + cc[4 * ch + 1] * gv + cc[4 * ch + 2] * bv + cc[4 * ch + 3]
                o = min(max(o, 0.0), 1.0) * 255.0 + 0.5
                out[r, x, ch] = int(o)


def _cells_last(coeffs: torch.Tensor) -> np.ndarray:
    """``(12, D, Gh, Gw)`` → contiguous float32 ``(D, Gh, Gw, 12)``."""
    return np.ascontiguousarray(coeffs.permute(1, 2, 3, 0).numpy(), dtype=np.float32)


def slice_planes_cpu(planes: Planes, grid: BilateralGrid, out: Planes | None = None) -> Planes:
    """Apply ``grid`` to YUV ``planes`` in one fused pass; writes into ``out`` (allocated if None).

    Args:
        planes: input planes (uint8 or uint16 codes; views with strides are fine).
        grid: RGB-domain grid; rewritten for ``planes.fmt`` once per call (microseconds).
        out: planes of the same shapes to write into, e.g. views of an encoder frame's buffers.

    Returns:
        ``out``.
    """
    fmt: PlaneFormat = planes.fmt
    if out is None:
        out = Planes.empty_like(planes)
    d = grid.shape[0]
    c = _cells_last(affine_to_code_domain(grid.coeffs, fmt))
    lutz = depth_lut(grid.guide_curve(), fmt, d).numpy()
    z0 = np.floor(lutz).astype(np.int32)
    lut_z0 = z0 * (c.shape[2] * 4)
    lut_wz = (lutz - z0).astype(np.float32)
    sy, sx = fmt.chroma_shift
    _luma_kernel(planes.y, planes.u, planes.v, out.y, c, lut_z0, lut_wz, sy, sx, fmt.max_code)
    _chroma_kernel(planes.y, planes.u, planes.v, out.u, out.v, c, lut_z0 * 2, lut_wz, sy, sx, fmt.max_code)
    return out


def slice_rgb_cpu(rgb: np.ndarray, grid: BilateralGrid, out: np.ndarray | None = None) -> np.ndarray:
    """Apply ``grid`` to a packed ``(H, W, 3)`` uint8 RGB image in one fused pass.

    Returns:
        ``(H, W, 3)`` uint8, the same as ``to_uint8(slice_rgb(rgb / 255))`` to within one code.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if out is None:
        out = np.empty_like(rgb)
    d = grid.shape[0]
    c = _cells_last(grid.coeffs)
    lut = (interp1d(grid.guide_curve(), torch.linspace(0, 1, 1024)) * d - 0.5).clamp(0, d - 1)
    _rgb_kernel(rgb, out, c, lut.numpy().astype(np.float32), *RGB_LUMA)
    return out
