"""Slicing on any PyTorch device: the fused CPU kernel's maths as gathers on per-frame value tables.

A pixel's depth in the grid depends only on its luma code ``v``, so once per frame the grid is
interpolated along depth for every (cell, code) and folded into *value tables* — ``[c0·v + c3,
c1, c2]`` per output plane, exactly as :mod:`streamfix.grid.kernels` does on the CPU. Each pixel
then reads four table rows (its 2×2 neighbouring cells at its own code) and blends them
bilinearly: no 5-D ``grid_sample`` (which TensorRT lacks and which costs a 12-channel sample
per pixel), a few elementwise kernels per plane on a GPU.

Precision: the tables can be stored in float16 (half the bytes gathered per pixel). At 8 bits a
table value is at most a few hundred code values, where float16 still resolves 1/8 of a code,
and the final affine (``p0 + p1·U + p2·V``) and rounding are done in float32, so the result stays
within one code of the float32 path; above 8 bits the tables stay float32 (``dtype=None`` picks).

Inputs are planar (``slice_planes_torch``) or NV12/P010 with interleaved chroma as PyAV's DLPack
export lays it out, ``(Hc, Wc, 2)`` (``slice_nv12``).

Example:
    >>> import torch
    >>> from streamfix.grid.bilateral import BilateralGrid
    >>> from streamfix.grid.colour import PlaneFormat
    >>> y = torch.full((4, 6), 100, dtype=torch.uint8)
    >>> uv = torch.full((2, 3, 2), 128, dtype=torch.uint8)
    >>> oy, ou, ov = slice_nv12(y, uv, BilateralGrid.identity(8, 2, 2), PlaneFormat())
    >>> int(oy[0, 0]), int(ou[1, 2]), oy.dtype
    (100, 128, torch.uint8)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.colour import PlaneFormat, affine_to_code_domain, depth_lut
from streamfix.grid.slicing import block_mean_luma

Axis = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@functools.lru_cache(maxsize=64)
def axis_weights(n: int, size: int, cells: int, offset: float, step: int, device: torch.device) -> Axis:
    """Grid cells and weights along one axis, as the CPU kernel's ``_axis`` computes them.

    Sample ``i`` (0 ≤ i < n) sits at full-resolution position ``i·step + offset`` of an axis of
    ``size`` pixels; its grid coordinate is ``(pos + ½)·cells/size − ½`` clamped to ``[0, cells−1]``.

    Returns:
        ``(i0, i1, f)``: int64 ``(n,)`` lower and upper cell, float32 ``(n,)`` weight of ``i1``.
    """
    pos = torch.arange(n, dtype=torch.float64) * step + offset
    g = ((pos + 0.5) * cells / size - 0.5).clamp(0.0, cells - 1.0)
    i0 = g.floor().to(torch.int64)
    i1 = (i0 + 1).clamp(max=cells - 1)
    f = (g - i0.to(torch.float64)).to(torch.float32)
    return i0.to(device), i1.to(device), f.to(device)


@dataclass(frozen=True)
class ValueTables:
    """Per-frame tables, flattened for gathers: row ``(gy·Gw + gx)·V + v``.

    Attributes:
        luma: ``(Gh·Gw·V, 3)``: ``[c0·v + c3, c1, c2]`` of the Y output row at code ``v``.
        chroma: ``(Gh·Gw·V, 6)``: the same for the U then the V output rows.
        grid_hw: ``(Gh, Gw)``. codes: ``V = 2^bit_depth``.
    """

    luma: torch.Tensor
    chroma: torch.Tensor
    grid_hw: tuple[int, int]
    codes: int


def table_dtype(fmt: PlaneFormat, device: torch.device) -> torch.dtype:
    """float16 where it is safe and pays (8-bit codes on a GPU), else float32."""
    return torch.float16 if device.type == "cuda" and fmt.bit_depth <= 8 else torch.float32


def value_tables(grid: BilateralGrid, fmt: PlaneFormat, device: torch.device, dtype: torch.dtype) -> ValueTables:
    """Fold the grid's depth interpolation into per-code tables on ``device`` (once per frame)."""
    d, gh, gw = grid.shape
    c = affine_to_code_domain(grid.coeffs, fmt).to(device)  # (12, D, Gh, Gw), code-domain affines
    lut = depth_lut(grid.guide_curve(), fmt, d).to(device)  # (V,) depth coordinate per luma code
    z0 = lut.floor().to(torch.int64)
    z1 = (z0 + 1).clamp(max=d - 1)
    wz = (lut - z0.to(lut.dtype)).view(1, 1, -1, 1)
    cz = c.permute(2, 3, 1, 0)  # (Gh, Gw, D, 12)
    cv = torch.lerp(cz[:, :, z0], cz[:, :, z1], wz)  # (Gh, Gw, V, 12)
    v = torch.arange(lut.shape[0], device=device, dtype=torch.float32).view(1, 1, -1)
    luma = torch.stack([cv[..., 0] * v + cv[..., 3], cv[..., 1], cv[..., 2]], dim=-1)
    chroma = torch.stack([cv[..., 4] * v + cv[..., 7], cv[..., 5], cv[..., 6],
                          cv[..., 8] * v + cv[..., 11], cv[..., 9], cv[..., 10]], dim=-1)
    return ValueTables(luma.reshape(-1, 3).to(dtype).contiguous(), chroma.reshape(-1, 6).to(dtype).contiguous(),
                       (gh, gw), int(lut.shape[0]))


def _lookup(table: torch.Tensor, gw: int, codes_n: int, codes: torch.Tensor, rows: Axis, cols: Axis) -> torch.Tensor:
    """Bilinear blend of the four neighbouring cells' table rows at each sample's code.

    Args:
        table: ``(Gh·Gw·V, K)``. codes: ``(h, w)`` int64 codes. rows / cols: :func:`axis_weights`
            for the ``h`` rows and ``w`` columns.

    Returns:
        ``(h, w, K)`` in the table's dtype.
    """
    y0, y1, wy = rows
    x0, x1, wx = cols
    stride = gw * codes_n
    c0 = (x0 * codes_n).view(1, -1)
    c1 = (x1 * codes_n).view(1, -1)
    wxk = wx.view(1, -1, 1).to(table.dtype)
    top_base = codes + (y0 * stride).view(-1, 1)
    top = torch.lerp(table[top_base + c0], table[top_base + c1], wxk)
    del top_base
    bot_base = codes + (y1 * stride).view(-1, 1)
    bot = torch.lerp(table[bot_base + c0], table[bot_base + c1], wxk)
    del bot_base
    return torch.lerp(top, bot, wy.view(-1, 1, 1).to(table.dtype))


def _out_dtype(fmt: PlaneFormat) -> torch.dtype:
    return torch.uint8 if fmt.bit_depth <= 8 else torch.int16 if fmt.bit_depth <= 15 else torch.int32


def _codes(x: torch.Tensor, top: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.floor(x + 0.5).clamp_(0, top).to(dtype)


def slice_planes_torch(
    y: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    grid: BilateralGrid,
    fmt: PlaneFormat,
    dtype: torch.dtype | None = None,
    tables: ValueTables | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply a grid to YUV planes of code values on their device.

    Args:
        y: ``(H, W)`` integer luma codes (uint8, uint16, int16/32/64; strided views are fine).
        u, v: ``(Hc, Wc)`` chroma codes, ``Hc = ceil(H / 2^sy)``, ``Wc = ceil(W / 2^sx)``.
        grid: RGB-domain grid (rewritten for ``fmt`` here, or pass ``tables``).
        fmt: bit depth, matrix, range and subsampling of the planes.
        dtype: value-table dtype (None: :func:`table_dtype`).
        tables: precomputed :func:`value_tables` (then ``grid`` and ``dtype`` are not used).

    Returns:
        ``(y, u, v)`` output codes clamped to ``[0, 2^b − 1]``: uint8 at 8 bits, int16 up to 15.
    """
    dev = y.device
    h, w = y.shape
    hc, wc = u.shape
    sy, sx = fmt.chroma_shift
    if (hc, wc) != (-(-h // (1 << sy)), -(-w // (1 << sx))) or v.shape != u.shape:
        raise ValueError(f"chroma planes {tuple(u.shape)}/{tuple(v.shape)} do not match luma {h}x{w} "
                         f"with subsampling {fmt.chroma_shift}")
    if tables is None:
        tables = value_tables(grid, fmt, dev, dtype or table_dtype(fmt, dev))
    gh, gw = tables.grid_hw
    nv = tables.codes
    top = fmt.max_code
    out_dt = _out_dtype(fmt)
    fy, fx = 1 << sy, 1 << sx

    yl = y.to(torch.int64)
    uf = u.to(torch.float32)
    vf = v.to(torch.float32)

    # luma: each pixel at its own position and code; chroma from its block (nearest)
    p = _lookup(tables.luma, gw, nv, yl, axis_weights(h, h, gh, 0.0, 1, dev), axis_weights(w, w, gw, 0.0, 1, dev))
    rows = torch.arange(h, device=dev) >> sy
    cols = torch.arange(w, device=dev) >> sx
    acc = p[..., 0].float()
    acc += p[..., 1].float() * uf.index_select(0, rows).index_select(1, cols)
    acc += p[..., 2].float() * vf.index_select(0, rows).index_select(1, cols)
    del p
    y_out = _codes(acc, top, out_dt)
    del acc

    # chroma: at the block's centre, code = the block's mean luma (rounded half up, edges replicate)
    ybar = block_mean_luma(yl, fmt.chroma_shift, (hc, wc))
    q = _lookup(tables.chroma, gw, nv, ybar, axis_weights(hc, h, gh, (fy - 1) / 2.0, fy, dev),
                axis_weights(wc, w, gw, (fx - 1) / 2.0, fx, dev)).float()
    u_out = _codes(q[..., 0] + q[..., 1] * uf + q[..., 2] * vf, top, out_dt)
    v_out = _codes(q[..., 3] + q[..., 4] * uf + q[..., 5] * vf, top, out_dt)
    return y_out, u_out, v_out


def deinterleave_nv12(uv: torch.Tensor, luma_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of U and V from NV12/P010 interleaved chroma ``(Hc', Wc', 2)``.

    PyAV's DLPack export gives ``(H // 2, W // 2, 2)``; 4:2:0 needs ``ceil`` sizes, so for odd
    frame sides the last chroma row/column is replicated (a copy only in that case).
    """
    h, w = luma_hw
    hc, wc = -(-h // 2), -(-w // 2)
    if uv.ndim != 3 or uv.shape[2] != 2:
        raise ValueError(f"interleaved chroma must be (Hc, Wc, 2), got {tuple(uv.shape)}")
    if uv.shape[0] < hc or uv.shape[1] < wc:
        ri = torch.arange(hc, device=uv.device).clamp(max=uv.shape[0] - 1)
        ci = torch.arange(wc, device=uv.device).clamp(max=uv.shape[1] - 1)
        uv = uv.index_select(0, ri).index_select(1, ci)
    uv = uv[:hc, :wc]
    return uv[..., 0], uv[..., 1]


def slice_nv12(
    y: torch.Tensor,
    uv: torch.Tensor,
    grid: BilateralGrid,
    fmt: PlaneFormat,
    dtype: torch.dtype | None = None,
    sample_shift: int = 0,
    tables: ValueTables | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply a grid to an NV12 (or P010) frame: Y ``(H, W)`` and interleaved UV ``(Hc, Wc, 2)``.

    Args:
        y, uv: the two planes as DLPack hands them over (uint8, or uint16 for P010).
        fmt: the frame's format; must be 4:2:0 (``chroma_shift == (1, 1)``).
        sample_shift: how far samples sit above the LSB (P010 stores 10-bit codes << 6: 6).

    Returns:
        Planar ``(y, u, v)`` output codes (LSB-aligned), ready for a yuv420p / yuv420p10le frame.
    """
    if fmt.chroma_shift != (1, 1):
        raise ValueError(f"NV12/P010 is 4:2:0; got chroma shift {fmt.chroma_shift}")
    if sample_shift:
        y = y.to(torch.int32) >> sample_shift
        uv = uv.to(torch.int32) >> sample_shift
    u, v = deinterleave_nv12(uv, (int(y.shape[0]), int(y.shape[1])))
    return slice_planes_torch(y, u, v, grid, fmt, dtype, tables)
