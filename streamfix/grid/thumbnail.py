"""Thumbnails: the small RGB view an engine sees, made without converting the full frame.

For planes, Y, U and V are each area-downsampled to the thumbnail size and only the thumbnail
is converted to RGB, so the cost does not grow with a colour conversion of the frame.

Example:
    >>> import numpy as np
    >>> from streamfix.grid.colour import PlaneFormat
    >>> from streamfix.grid.planes import Planes
    >>> p = Planes(np.full((1080, 1920), 126, np.uint8), np.full((540, 960), 128, np.uint8),
    ...            np.full((540, 960), 128, np.uint8), PlaneFormat())
    >>> t = thumbnail_from_planes(p, 256)
    >>> t.size, round(float(t.luma.mean()), 3)
    ((144, 256), 0.502)
"""

from __future__ import annotations

import functools

import cv2
import numba
import numpy as np
import torch

from streamfix.grid.bilateral import Thumbnail
from streamfix.grid.colour import PlaneFormat
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import RGB_LUMA

#: default long side of a thumbnail, in pixels
THUMBNAIL_LONG_SIDE = 256


def thumbnail_size(height: int, width: int, long_side: int = THUMBNAIL_LONG_SIDE) -> tuple[int, int]:
    """``(h, w)`` keeping the aspect ratio with the long side at most ``long_side`` (never upscales)."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resample_weights(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` float64 weights resampling one axis, each row summing to 1: pixel-area
    averaging when shrinking (OpenCV's INTER_AREA: each output pixel averages the input it covers,
    fractional pixels at its edges weighted by their overlap), linear interpolation between pixel
    centres when enlarging (a chroma plane smaller than the thumbnail)."""
    if n_out == n_in:
        return np.eye(n_in)
    if n_out < n_in:
        s = n_in / n_out
        lo = np.arange(n_out, dtype=np.float64)[:, None] * s
        k = np.arange(n_in, dtype=np.float64)[None, :]
        return np.clip(np.minimum(lo + s, k + 1) - np.maximum(lo, k), 0.0, None) / s
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - (pos - i0))
    np.add.at(m, (np.arange(n_out), i1), pos - i0)
    return m


@functools.lru_cache(maxsize=32)
def _taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`resample_weights` as taps: per output index the first input index (int64) and
    ``span`` float32 weights from there (zero-padded; every window lies inside the input)."""
    m = resample_weights(n_out, n_in)
    nz = m != 0
    first = nz.argmax(1)
    last = n_in - 1 - nz[:, ::-1].argmax(1)
    span = int((last - first).max()) + 1
    start = np.minimum(first, n_in - span)
    idx = start[:, None] + np.arange(span)[None, :]
    return start.astype(np.int64), np.take_along_axis(m, idx, 1).astype(np.float32)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _resample_plane(plane, y0, yw, x0, xw, out):  # pragma: no cover - compiled
    """``out = Wy · plane · Wxᵀ`` (float32 codes) with both weight matrices given as taps: per
    output row, its input rows weighted into one row buffer (a contiguous, vectorisable loop that
    reads each input row about once), then that row's taps along x."""
    w_in = plane.shape[1]
    acc = np.empty(w_in, np.float32)
    for i in range(out.shape[0]):
        acc[:] = 0.0
        for t in range(yw.shape[1]):
            wt = yw[i, t]
            if wt != 0.0:
                row = plane[y0[i] + t]
                for c in range(w_in):
                    acc[c] += wt * np.float32(row[c])
        for j in range(out.shape[1]):
            s = np.float32(0.0)
            for t in range(xw.shape[1]):
                s += xw[j, t] * acc[x0[j] + t]
            out[i, j] = s


@numba.njit(cache=True, nogil=True, fastmath=True)
def _yuv_to_rgb(yuv, m, yo, ys, rgb, luma):  # pragma: no cover - compiled
    """``rgb = clamp(m[:3, :3] · yuv + m[:3, 3], 0, 1)`` and ``luma = clamp((Y − yo)/ys, 0, 1)``."""
    for i in range(yuv.shape[1]):
        for j in range(yuv.shape[2]):
            yv, uv, vv = yuv[0, i, j], yuv[1, i, j], yuv[2, i, j]
            rgb[0, i, j] = min(max(m[0, 0] * yv + m[0, 1] * uv + m[0, 2] * vv + m[0, 3], 0.0), 1.0)
            rgb[1, i, j] = min(max(m[1, 0] * yv + m[1, 1] * uv + m[1, 2] * vv + m[1, 3], 0.0), 1.0)
            rgb[2, i, j] = min(max(m[2, 0] * yv + m[2, 1] * uv + m[2, 2] * vv + m[2, 3], 0.0), 1.0)
            luma[i, j] = min(max((yv - yo) / ys, 0.0), 1.0)


@functools.lru_cache(maxsize=16)
def _code_to_rgb(fmt: PlaneFormat) -> np.ndarray:
    """``fmt``'s codes → RGB matrix (4, 4) as float32, made once per format."""
    return fmt.code_to_rgb().numpy().astype(np.float32)


def shrink_plane(plane: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Resample a ``(H, W)`` plane of codes (uint8/uint16, views fine) to ``size`` as float32
    codes, :func:`resample_weights` along both axes, in one pass over the plane with no float
    copy of it; into ``out`` (float32, ``size``) when given."""
    out = np.empty(size, np.float32) if out is None else out
    _resample_plane(plane, *_taps(size[0], plane.shape[0]), *_taps(size[1], plane.shape[1]), out)
    return out


def thumbnail_from_planes(planes: Planes, long_side: int = THUMBNAIL_LONG_SIDE) -> Thumbnail:
    """Area-downsample each plane, then convert the small YUV image to RGB.

    Args:
        planes: the frame (any supported bit depth, range, matrix and subsampling).
        long_side: the thumbnail's long side in pixels.

    Returns:
        A :class:`Thumbnail`; ``luma`` is the normalised Y the full-resolution guide also reads.
    """
    h, w = size = thumbnail_size(*planes.size, long_side)
    yuv = np.empty((3, h, w), np.float32)
    for k, p in enumerate((planes.y, planes.u, planes.v)):
        shrink_plane(p, size, yuv[k])
    rgb = np.empty((3, h, w), np.float32)
    luma = np.empty((h, w), np.float32)
    yo, ys = planes.fmt.luma_scale()
    _yuv_to_rgb(yuv, _code_to_rgb(planes.fmt), np.float32(yo), np.float32(ys), rgb, luma)
    return Thumbnail(torch.from_numpy(rgb), torch.from_numpy(luma))


def thumbnail_from_rgb(rgb: np.ndarray, long_side: int = THUMBNAIL_LONG_SIDE) -> Thumbnail:
    """Thumbnail of a packed ``(H, W, 3)`` uint8 RGB image; the guide reads its BT.709 luma."""
    size = thumbnail_size(rgb.shape[0], rgb.shape[1], long_side)
    small = torch.from_numpy(cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    small = small.permute(2, 0, 1).to(torch.float32) / 255.0
    wts = torch.tensor(RGB_LUMA).view(3, 1, 1)
    return Thumbnail(small.contiguous(), (small * wts).sum(0).clamp(0.0, 1.0))
