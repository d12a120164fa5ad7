"""Fused CPU slicing kernels (numba): one pass over the planes, no float copy of the frame.

Each kernel reads integer planes, looks up the grid trilinearly and writes integer planes, in
parallel over rows. Because a pixel's depth in the grid depends only on its luma code ``v``, the
depth interpolation is done once per frame for every (cell, v) — value tables holding ``[c0·v + c3,
c1, c2]`` per output plane — and once per output row the tables are interpolated along y, for the
codes that row holds; each pixel then reads two table entries (its two grid columns) and blends
them. Neutral grids (:func:`is_neutral`: luma mapped by itself, U and V scaled alike around their
midpoint — SCI's gain fits, ExCNet's curves) need one value per (cell, v) instead of three: their
kernels read one table pair per sample. The per-sample lookups run eight samples at a time
(:mod:`streamfix.grid.simd`: LLVM masked gathers, which the auto-vectoriser does not emit); the
scalar loops finish each row's tail. The math is that of
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

import functools

import numba
import numpy as np
import torch

from streamfix.grid.bilateral import BilateralGrid, interp1d
from streamfix.grid.colour import PlaneFormat, affine_to_code_cells, depth_lut
from streamfix.grid.planes import Planes
from streamfix.grid.simd import LANES, affine_luma8, affine_luma8_half, neutral_chroma8, neutral_luma8
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
def _value_tables(c, lut_z0, lut_wz, luma, chroma):  # pragma: no cover - compiled
    """Per grid cell (row, column) and luma code ``v``: the cell's transforms at depth z(v), folded
    into ``[c0·v + c3, c1, c2]`` for the luma plane (``luma``, 3 per code) and for U and V
    (``chroma[0]``, ``chroma[1]``); the luma term and offset then need no per-pixel multiply.
    Written out in scalars: small per-code arrays would cost more than the arithmetic."""
    d, gh, gw = c.shape[0], c.shape[1], c.shape[2]
    nv = lut_z0.shape[0]
    for gy in numba.prange(gh):
        for g in range(gw):
            lrow = luma[gy, g]
            urow = chroma[0, gy, g]
            vrow = chroma[1, gy, g]
            for v in range(nv):
                z0 = lut_z0[v]
                z1 = min(z0 + 1, d - 1)
                wz = lut_wz[v]
                vf = np.float32(v)
                a = c[z0, gy, g]
                b = c[z1, gy, g]
                e0, e1 = a[0] + (b[0] - a[0]) * wz, a[1] + (b[1] - a[1]) * wz
                e2, e3 = a[2] + (b[2] - a[2]) * wz, a[3] + (b[3] - a[3]) * wz
                e4, e5 = a[4] + (b[4] - a[4]) * wz, a[5] + (b[5] - a[5]) * wz
                e6, e7 = a[6] + (b[6] - a[6]) * wz, a[7] + (b[7] - a[7]) * wz
                e8, e9 = a[8] + (b[8] - a[8]) * wz, a[9] + (b[9] - a[9]) * wz
                e10, e11 = a[10] + (b[10] - a[10]) * wz, a[11] + (b[11] - a[11]) * wz
                lrow[v, 0], lrow[v, 1], lrow[v, 2] = e0 * vf + e3, e1, e2
                urow[v, 0], urow[v, 1], urow[v, 2] = e4 * vf + e7, e5, e6
                vrow[v, 0], vrow[v, 1], vrow[v, 2] = e8 * vf + e11, e9, e10


@numba.njit(fastmath=True, nogil=True, cache=True)
def _lerp_codes(tables, y0, y1, wy, lo, hi):  # pragma: no cover - compiled
    """``tables[y0] + (tables[y1] − tables[y0])·wy`` for tables ``(Gh, Gw, V, k)``, flattened to
    ``(Gw·V·k,)``, for the codes ``lo … hi`` only: the ones the row being sliced holds (a row
    rarely spans all of them); the other entries are left unset. Each column's run of codes is
    one contiguous, vectorisable slice."""
    gw, nv, k = tables.shape[1], tables.shape[2], tables.shape[3]
    n = gw * nv * k
    t0 = tables[y0].reshape(n)
    t1 = tables[y1].reshape(n)
    row = np.empty(n, np.float32)
    wyf = np.float32(wy)
    a, b = lo * k, (hi + 1) * k
    for g in range(gw):
        at = g * nv * k
        r = row[at + a : at + b]
        s0 = t0[at + a : at + b]
        s1 = t1[at + a : at + b]
        for i in range(b - a):
            r[i] = s0[i] + (s1[i] - s0[i]) * wyf
    return row


@numba.njit(fastmath=True, nogil=True, cache=True, inline="always")
def _code_range(codes):  # pragma: no cover - compiled
    """Smallest and largest code of a row."""
    lo = codes[0]
    hi = codes[0]
    for x in range(codes.shape[0]):
        lo = min(lo, codes[x])
        hi = max(hi, codes[x])
    return np.int64(lo), np.int64(hi)


@numba.njit(cache=True)
def _column_axis(w, gw, centre_offset, step, n, stride):  # pragma: no cover - compiled
    """Per sample ``j < n``: table offsets ``a·stride``, ``b·stride`` of its two grid columns and
    the right one's weight (int32/float32, as the 8-lane bodies read them)."""
    xa = np.empty(n, np.int32)
    xb = np.empty(n, np.int32)
    wx = np.empty(n, np.float32)
    for j in range(n):
        a, b, f = _axis(w, gw, centre_offset, step, j)
        xa[j], xb[j], wx[j] = a * stride, b * stride, f
    return xa, xb, wx


@numba.njit(cache=True, fastmath=True, inline="always")
def _affine_sample(row, a, b, f, code, u, v, top):  # pragma: no cover - compiled
    """One sample of a general grid (the scalar form of the 8-lane bodies): the 3-per-code tables
    at columns ``a``, ``b`` (offsets) blended by ``f``, applied to ``(code, u, v)``, rounded and clamped."""
    iv = np.int64(code) * 3
    ia = a + iv
    ib = b + iv
    p0 = row[ia] + (row[ib] - row[ia]) * f
    p1 = row[ia + 1] + (row[ib + 1] - row[ia + 1]) * f
    p2 = row[ia + 2] + (row[ib + 2] - row[ia + 2]) * f
    acc = p0 + p1 * np.float32(u) + p2 * np.float32(v)
    return np.int32(min(max(acc + np.float32(0.5), np.float32(0.0)), top))


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _luma_kernel(y, u, v, out, tables, sy, sx, top):  # pragma: no cover - compiled
    h, w = y.shape
    gh, gw, nv, k = tables.shape[0], tables.shape[1], tables.shape[2], tables.shape[3]
    xa, xb, wx = _column_axis(w, gw, 0.0, 1, w, nv * k)
    ftop = np.float32(top)
    wv = w - w % LANES if sx <= 1 else 0  # the 8-lane bodies know 4:4:4 and 2× subsampled rows
    for r in numba.prange(h):
        y0, y1, wy = _axis(h, gh, 0.0, 1, r)
        # this row's tables: the grid interpolated along y once (for the row's codes), then 2 lookups per pixel and term
        yrow = y[r]
        row = _lerp_codes(tables, y0, y1, wy, *_code_range(yrow))
        rc = r >> sy
        urow = u[rc]
        vrow = v[rc]
        orow = out[r]
        if sx == 1:
            for x in range(0, wv, LANES):
                affine_luma8_half(row, yrow, urow, vrow, xa, xb, wx, orow, x, ftop)
        else:
            for x in range(0, wv, LANES):
                affine_luma8(row, yrow, urow, vrow, xa, xb, wx, orow, x, ftop)
        for x in range(wv, w):
            orow[x] = _affine_sample(row, xa[x], xb[x], wx[x], yrow[x], urow[x >> sx], vrow[x >> sx], ftop)


@numba.njit(fastmath=True, nogil=True, cache=True, inline="always")
def _block_luma_row(y, r, sy, sx, orow):  # pragma: no cover - compiled
    """Row ``r`` of :func:`_block_luma` into ``orow``."""
    h, w = y.shape
    wc = orow.shape[0]
    fy, fx = 1 << sy, 1 << sx
    shift = sy + sx
    half = (1 << shift) >> 1
    ra = y[min(r * fy, h - 1)]
    rb = y[min(r * fy + fy - 1, h - 1)]
    if fx == 1:
        for j in range(wc):
            orow[j] = (np.int32(ra[j]) + np.int32(rb[j]) + half) >> shift if fy > 1 else ra[j]
    elif w >= 2 * wc:  # the common case, no odd right edge: a branch-free, vectorisable loop
        for j in range(wc):
            s = np.int32(ra[2 * j]) + np.int32(ra[2 * j + 1])
            if fy > 1:
                s += np.int32(rb[2 * j]) + np.int32(rb[2 * j + 1])
            orow[j] = (s + half) >> shift
    else:
        for j in range(wc):
            x1 = min(2 * j + 1, w - 1)
            s = np.int32(ra[2 * j]) + np.int32(ra[x1])
            if fy > 1:
                s += np.int32(rb[2 * j]) + np.int32(rb[x1])
            orow[j] = (s + half) >> shift


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _block_luma(y, sy, sx, out):  # pragma: no cover - compiled
    """Rounded mean luma code of each chroma sample's ``2^sy × 2^sx`` block (edge pixels repeat
    where the luma plane has an odd size): the code that picks the sample's depth in the grid."""
    for r in numba.prange(out.shape[0]):
        _block_luma_row(y, r, sy, sx, out[r])


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _chroma_kernel(yb, u, v, out_u, out_v, tables, h, w, sy, sx, top):  # pragma: no cover - compiled
    """``yb``: :func:`_block_luma` of the frame; ``h, w``: the luma plane's size; ``tables``: U's
    and V's value tables, done one after the other so that one row's tables stay in L1."""
    hc, wc = u.shape
    gh, gw, nv, k = tables.shape[1], tables.shape[2], tables.shape[3], tables.shape[4]
    fy, fx = 1 << sy, 1 << sx
    ftop = np.float32(top)
    ca, cb, cf = _column_axis(w, gw, (fx - 1) / 2.0, fx, wc, nv * k)
    wv = wc - wc % LANES
    for r in numba.prange(hc):
        y0, y1, wy = _axis(h, gh, (fy - 1) / 2.0, fy, r)
        ybr = yb[r]
        lo, hi = _code_range(ybr)
        urow = u[r]
        vrow = v[r]
        for p in range(2):
            row = _lerp_codes(tables[p], y0, y1, wy, lo, hi)
            orow = out_u[r] if p == 0 else out_v[r]
            for j in range(0, wv, LANES):  # the luma body: same math, chroma at the sample's own index
                affine_luma8(row, ybr, urow, vrow, ca, cb, cf, orow, j, ftop)
            for j in range(wv, wc):
                orow[j] = _affine_sample(row, ca[j], cb[j], cf[j], ybr[j], urow[j], vrow[j], ftop)


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _neutral_tables(c, lut_z0, lut_wz, luma, gain):  # pragma: no cover - compiled
    """Value tables of a neutral grid (see :func:`is_neutral`): per cell and luma code ``v`` the
    output luma code ``c0·v + c3`` and the chroma gain ``c5`` (the same for U and V)."""
    d, gh, gw = c.shape[0], c.shape[1], c.shape[2]
    nv = lut_z0.shape[0]
    for gy in numba.prange(gh):
        for g in range(gw):
            lrow = luma[gy, g]
            grow = gain[gy, g]
            for v in range(nv):
                z0 = lut_z0[v]
                z1 = min(z0 + 1, d - 1)
                wz = lut_wz[v]
                a = c[z0, gy, g]
                b = c[z1, gy, g]
                e0, e3 = a[0] + (b[0] - a[0]) * wz, a[3] + (b[3] - a[3]) * wz
                lrow[v] = e0 * np.float32(v) + e3
                grow[v] = a[5] + (b[5] - a[5]) * wz


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _neutral_luma_kernel(y, out, tables, top):  # pragma: no cover - compiled
    """Luma of a neutral grid: one table lookup pair per pixel, no chroma term."""
    h, w = y.shape
    gh, gw, nv = tables.shape[0], tables.shape[1], tables.shape[2]
    xa, xb, wx = _column_axis(w, gw, 0.0, 1, w, nv)
    ftop = np.float32(top)
    cells = tables.reshape(gh, gw, nv, 1)
    wv = w - w % LANES
    for r in numba.prange(h):
        y0, y1, wy = _axis(h, gh, 0.0, 1, r)
        yrow = y[r]
        row = _lerp_codes(cells, y0, y1, wy, *_code_range(yrow))
        orow = out[r]
        for x in range(0, wv, LANES):
            neutral_luma8(row, yrow, xa, xb, wx, orow, x, ftop)
        for x in range(wv, w):
            iv = np.int64(yrow[x])
            pa = row[xa[x] + iv]
            acc = pa + (row[xb[x] + iv] - pa) * wx[x]
            orow[x] = np.int32(min(max(acc + np.float32(0.5), np.float32(0.0)), ftop))


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _neutral_chroma_kernel(y, u, v, out_u, out_v, tables, sy, sx, mid, top):  # pragma: no cover - compiled
    """Chroma of a neutral grid: ``mid + g·(U − mid)`` with one gain lookup pair per sample, the
    gain's depth picked by the sample's block luma (:func:`_block_luma`, made row by row here)."""
    h, w = y.shape
    hc, wc = u.shape
    gh, gw, nv = tables.shape[0], tables.shape[1], tables.shape[2]
    fy, fx = 1 << sy, 1 << sx
    ftop = np.float32(top)
    fmid = np.float32(mid)
    ca, cb, cf = _column_axis(w, gw, (fx - 1) / 2.0, fx, wc, nv)
    cells = tables.reshape(gh, gw, nv, 1)
    wv = wc - wc % LANES
    for r in numba.prange(hc):
        y0, y1, wy = _axis(h, gh, (fy - 1) / 2.0, fy, r)
        ybr = np.empty(wc, y.dtype)
        _block_luma_row(y, r, sy, sx, ybr)
        row = _lerp_codes(cells, y0, y1, wy, *_code_range(ybr))
        urow = u[r]
        vrow = v[r]
        ourow = out_u[r]
        ovrow = out_v[r]
        for j in range(0, wv, LANES):
            neutral_chroma8(row, ybr, ca, cb, cf, urow, vrow, ourow, ovrow, j, fmid, ftop)
        for j in range(wv, wc):
            iv = np.int64(ybr[j])
            ga = row[ca[j] + iv]
            g = ga + (row[cb[j] + iv] - ga) * cf[j]
            ou = fmid + g * (np.float32(urow[j]) - fmid)
            ov = fmid + g * (np.float32(vrow[j]) - fmid)
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


def _depth_split(guide: torch.Tensor | None, fmt: PlaneFormat, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Per luma code its grid depth (:func:`depth_lut`) split into the lower bin (int32) and the
    upper bin's weight (float32), as the value-table kernels read them."""
    lutz = depth_lut(guide if guide is not None else torch.linspace(0.0, 1.0, 2), fmt, d).numpy()
    z0 = np.floor(lutz).astype(np.int32)
    return z0, (lutz - z0).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _identity_depth(fmt: PlaneFormat, d: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_depth_split` of the identity guide (SCI's and ExCNet's grids), made once per format."""
    return _depth_split(None, fmt, d)


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
    if any(p.strides[1] != p.itemsize for p in (out.y, out.u, out.v)):
        raise ValueError("output planes need contiguous rows (the 8-lane bodies write runs of a row)")
    if any(p.strides[1] != p.itemsize for p in (planes.y, planes.u, planes.v)):
        planes = Planes(*(np.ascontiguousarray(p) for p in (planes.y, planes.u, planes.v)), fmt)
    d, gh, gw = grid.shape
    c = affine_to_code_cells(grid.coeffs, fmt)
    z0, wz = _depth_split(grid.guide, fmt, d) if grid.guide is not None else _identity_depth(fmt, d)
    sy, sx = fmt.chroma_shift
    h, w = planes.y.shape
    if _is_neutral_code(c, fmt):
        luma_tables = np.empty((gh, gw, z0.shape[0]), np.float32)
        gain_tables = np.empty((gh, gw, z0.shape[0]), np.float32)
        _neutral_tables(c, z0, wz, luma_tables, gain_tables)
        _neutral_luma_kernel(planes.y, out.y, luma_tables, fmt.max_code)
        mid = fmt.chroma_scale()[0]
        _neutral_chroma_kernel(planes.y, planes.u, planes.v, out.u, out.v, gain_tables, sy, sx, mid, fmt.max_code)
        return out
    luma_tables = np.empty((gh, gw, z0.shape[0], 3), np.float32)
    chroma_tables = np.empty((2, gh, gw, z0.shape[0], 3), np.float32)
    _value_tables(c, z0, wz, luma_tables, chroma_tables)
    yb = np.empty(planes.u.shape, planes.y.dtype)
    _block_luma(planes.y, sy, sx, yb)
    _luma_kernel(planes.y, planes.u, planes.v, out.y, luma_tables, sy, sx, fmt.max_code)
    _chroma_kernel(yb, planes.u, planes.v, out.u, out.v, chroma_tables, h, w, sy, sx, fmt.max_code)
    return out


def is_neutral(grid: BilateralGrid, fmt: PlaneFormat | None = None) -> bool:
    """True when, in ``fmt``'s YUV code domain, every cell maps luma by itself and scales U and V
    alike around their midpoint: brightness and saturation change, hue does not mix with luma.
    Gain-model fits (``a·I`` plus a grey offset), ExCNet's curves, the identity and blends of
    them are such grids; :func:`slice_planes_cpu` slices them with one table lookup per sample
    instead of three."""
    fmt = fmt or PlaneFormat()
    return _is_neutral_code(affine_to_code_cells(grid.coeffs, fmt), fmt)


def _is_neutral_code(c: np.ndarray, fmt: PlaneFormat, tol: float = 1e-5) -> bool:
    """:func:`is_neutral` on code-domain cells ``(D, Gh, Gw, 12)``; ``tol`` on the cross weights
    (≤ 0.04 code at 12 bits), and a hundredth of a code on the chroma offsets."""
    mid = fmt.chroma_scale()[0]
    cross = np.abs(c[..., [1, 2, 4, 6, 8, 9]]).max()
    gain_u, gain_v = c[..., 5], c[..., 10]
    return bool(
        cross <= tol
        and np.abs(gain_u - gain_v).max() <= tol
        and np.abs(c[..., 7] - mid * (1.0 - gain_u)).max() <= 0.01
        and np.abs(c[..., 11] - mid * (1.0 - gain_v)).max() <= 0.01
    )


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
