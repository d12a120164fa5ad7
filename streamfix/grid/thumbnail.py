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

import cv2
import numba
import numpy as np
import torch

from streamfix.grid.bilateral import Thumbnail
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import RGB_LUMA

#: default long side of a thumbnail, in pixels
THUMBNAIL_LONG_SIDE = 256


def thumbnail_size(height: int, width: int, long_side: int = THUMBNAIL_LONG_SIDE) -> tuple[int, int]:
    """``(h, w)`` keeping the aspect ratio with the long side at most ``long_side`` (never upscales)."""
    scale = min(1.0, long_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _box_mean(plane, k):  # pragma: no cover - compiled
    """Mean of each k×k block (float32); the last rows/columns that do not fill a block are dropped.

    Rows are first summed down each column (a contiguous, vectorisable loop), then across."""
    h, w = plane.shape[0] // k, plane.shape[1] // k
    out = np.empty((h, w), np.float32)
    cols = np.empty(w * k, np.uint32)
    scale = np.float32(1.0 / (k * k))
    for i in range(h):
        cols[:] = 0
        for r in range(i * k, i * k + k):
            row = plane[r]
            for c in range(w * k):
                cols[c] += row[c]
        for j in range(w):
            s = np.uint32(0)
            for c in range(j * k, j * k + k):
                s += cols[c]
            out[i, j] = s * scale
    return out


def _shrink(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average a plane down to ``size`` (float32 codes): a one-pass k×k box mean with the
    largest whole factor, then OpenCV's area resize of the small remainder — about 5× cheaper
    than one fractional INTER_AREA pass over the full plane (up to k−1 edge pixels are dropped)."""
    h, w = size
    k = min(plane.shape[0] // h, plane.shape[1] // w)
    small = _box_mean(plane, k) if k >= 2 else plane.astype(np.float32)
    if small.shape[:2] == (h, w):
        return small
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)


def thumbnail_from_planes(planes: Planes, long_side: int = THUMBNAIL_LONG_SIDE) -> Thumbnail:
    """Area-downsample each plane, then convert the small YUV image to RGB.

    Args:
        planes: the frame (any supported bit depth, range, matrix and subsampling).
        long_side: the thumbnail's long side in pixels.

    Returns:
        A :class:`Thumbnail`; ``luma`` is the normalised Y the full-resolution guide also reads.
    """
    size = thumbnail_size(*planes.size, long_side)
    yuv = np.stack([_shrink(p, size) for p in (planes.y, planes.u, planes.v)])  # float32 already
    t = planes.fmt.code_to_rgb().to(torch.float32)
    codes = torch.from_numpy(yuv)
    rgb = torch.einsum("ij,jhw->ihw", t[:3, :3], codes) + t[:3, 3].view(3, 1, 1)
    yo, ys = planes.fmt.luma_scale()
    luma = ((codes[0] - yo) / ys).clamp(0.0, 1.0)
    return Thumbnail(rgb.clamp(0.0, 1.0).contiguous(), luma)


def thumbnail_from_rgb(rgb: np.ndarray, long_side: int = THUMBNAIL_LONG_SIDE) -> Thumbnail:
    """Thumbnail of a packed ``(H, W, 3)`` uint8 RGB image; the guide reads its BT.709 luma."""
    size = thumbnail_size(rgb.shape[0], rgb.shape[1], long_side)
    small = torch.from_numpy(cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    small = small.permute(2, 0, 1).to(torch.float32) / 255.0
    wts = torch.tensor(RGB_LUMA).view(3, 1, 1)
    return Thumbnail(small.contiguous(), (small * wts).sum(0).clamp(0.0, 1.0))
