"""Bilateral slicing with PyTorch ops: the device path (CUDA) and the reference for the CPU kernel.

Slicing looks up, for every full-resolution pixel, the grid's transform at its position and its
guide value (trilinear interpolation; cell centres at integer grid coordinates, borders
clamped) and applies it. These functions use 5-D ``grid_sample`` and run on any device; the
fused CPU kernels in :mod:`streamfix.grid.kernels` must agree with them to within one code value.

Planes (video): the luma output uses the Y row of the code-domain transforms at each luma pixel
(guide from that pixel's Y, chroma taken from its 2×2 block); each chroma output uses the U/V
rows at the block's centre with the guide from the block's mean Y (rounded to a code value).

Example:
    >>> import torch
    >>> from streamfix.grid.bilateral import BilateralGrid
    >>> rgb = torch.rand(3, 8, 12)
    >>> out = slice_rgb(rgb, BilateralGrid.identity(4, 2, 2))
    >>> bool(torch.allclose(out, rgb, atol=1e-5))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.colour import PlaneFormat, affine_to_code_domain, depth_lut

#: BT.709 luma weights used as the guide's input for packed RGB frames (images)
RGB_LUMA = (0.2126, 0.7152, 0.0722)


def _norm_coords(n: int, size: int, device: torch.device, centres: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised (align_corners=False) coordinates of pixel centres ``0…n−1`` of an axis of ``size``."""
    pos = torch.arange(n, device=device, dtype=torch.float32) if centres is None else centres
    return (pos + 0.5) / size * 2.0 - 1.0


def _sample(coeffs: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
    """Trilinear lookup. coeffs ``(C, D, Gh, Gw)``; xs ``(W,)``, ys ``(H,)`` normalised;
    zs ``(H, W)`` depth coordinates in cells. Returns ``(C, H, W)``."""
    d = coeffs.shape[1]
    h, w = zs.shape
    zn = (zs + 0.5) / d * 2.0 - 1.0
    coords = torch.stack(
        [xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w), zn], dim=-1
    ).view(1, 1, h, w, 3)
    out = F.grid_sample(coeffs[None], coords, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0]


def slice_rgb(rgb: torch.Tensor, grid: BilateralGrid) -> torch.Tensor:
    """Apply a grid to a packed RGB image.

    Args:
        rgb: ``(3, H, W)`` float in ``[0, 1]`` on any device.
        grid: the grid; its guide reads the BT.709 luma of ``rgb``.

    Returns:
        ``(3, H, W)`` float in ``[0, 1]``.
    """
    _, h, w = rgb.shape
    dev = rgb.device
    d = grid.shape[0]
    wts = torch.tensor(RGB_LUMA, device=dev, dtype=rgb.dtype).view(3, 1, 1)
    luma = (rgb * wts).sum(0).clamp(0, 1)
    from streamfix.grid.bilateral import interp1d

    zs = (interp1d(grid.guide_curve().to(dev), luma) * d - 0.5).clamp(0, d - 1)
    c = _sample(grid.coeffs.to(dev), _norm_coords(w, w, dev), _norm_coords(h, h, dev), zs)
    a = c.view(3, 4, h, w)
    return ((a[:, :3] * rgb[None]).sum(1) + a[:, 3]).clamp(0.0, 1.0)


def block_mean_luma(y: torch.Tensor, chroma_shift: tuple[int, int], chroma_size: tuple[int, int]) -> torch.Tensor:
    """Mean luma code of each chroma block, rounded half up (edges replicate). Returns int64 ``(Hc, Wc)``."""
    sy, sx = chroma_shift
    hc, wc = chroma_size
    fy, fx = 1 << sy, 1 << sx
    yy = y.to(torch.int64)
    ph, pw = hc * fy - yy.shape[0], wc * fx - yy.shape[1]
    if ph or pw:
        yy = F.pad(yy[None, None].float(), (0, pw, 0, ph), mode="replicate")[0, 0].to(torch.int64)
    n = fy * fx
    s = yy.view(hc, fy, wc, fx).sum(dim=(1, 3))
    return torch.div(s + n // 2, n, rounding_mode="floor")


def slice_planes(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, grid: BilateralGrid, fmt: PlaneFormat
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply a grid to YUV planes of code values (any device; the CUDA path of the pipeline).

    Args:
        y: ``(H, W)`` integer luma codes. u, v: ``(Hc, Wc)`` integer chroma codes.
        grid: the grid (RGB-domain transforms; rewritten for ``fmt`` here).
        fmt: bit depth, matrix, range and chroma subsampling of the planes.

    Returns:
        ``(y, u, v)`` output planes, int64 codes clamped to ``[0, 2^b − 1]``.
    """
    dev = y.device
    h, w = y.shape
    hc, wc = u.shape
    sy, sx = fmt.chroma_shift
    d = grid.shape[0]
    c = affine_to_code_domain(grid.coeffs, fmt).to(dev)
    lut = depth_lut(grid.guide_curve(), fmt, d).to(dev)
    top = fmt.max_code

    yl = y.to(torch.int64)
    uf, vf = u.to(torch.float32), v.to(torch.float32)
    cy = _sample(c[0:4], _norm_coords(w, w, dev), _norm_coords(h, h, dev), lut[yl])
    rows = torch.arange(h, device=dev) >> sy
    cols = torch.arange(w, device=dev) >> sx
    u_full, v_full = uf[rows][:, cols], vf[rows][:, cols]
    y_out = cy[0] * yl.float() + cy[1] * u_full + cy[2] * v_full + cy[3]

    ybar = block_mean_luma(y, fmt.chroma_shift, (hc, wc))
    xc = torch.arange(wc, device=dev, dtype=torch.float32) * (1 << sx) + ((1 << sx) - 1) / 2.0
    yc = torch.arange(hc, device=dev, dtype=torch.float32) * (1 << sy) + ((1 << sy) - 1) / 2.0
    cuv = _sample(c[4:12], _norm_coords(wc, w, dev, xc), _norm_coords(hc, h, dev, yc), lut[ybar])
    yb = ybar.float()
    u_out = cuv[0] * yb + cuv[1] * uf + cuv[2] * vf + cuv[3]
    v_out = cuv[4] * yb + cuv[5] * uf + cuv[6] * vf + cuv[7]

    def code(x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x + 0.5).clamp(0, top).to(torch.int64)

    return code(y_out), code(u_out), code(v_out)
