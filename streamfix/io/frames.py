"""Decoded frames as plane views (no copies), and the formats the slicing kernels accept.

Example:
    >>> import av
    >>> f = av.VideoFrame(64, 48, "yuv420p")
    >>> p = planes_of(f)
    >>> p.y.shape, p.u.shape, p.fmt.chroma_shift
    ((48, 64), (24, 32), (1, 1))
"""

from __future__ import annotations

import av
import numpy as np

from streamfix.grid.colour import PlaneFormat
from streamfix.grid.planes import Planes

#: planar YUV formats the kernels read directly: name → (bit depth, (sy, sx), full range)
PLANAR: dict[str, tuple[int, tuple[int, int], bool]] = {
    "yuv420p": (8, (1, 1), False),
    "yuvj420p": (8, (1, 1), True),
    "yuv422p": (8, (0, 1), False),
    "yuvj422p": (8, (0, 1), True),
    "yuv444p": (8, (0, 0), False),
    "yuvj444p": (8, (0, 0), True),
    "yuv420p10le": (10, (1, 1), False),
    "yuv422p10le": (10, (0, 1), False),
    "yuv444p10le": (10, (0, 0), False),
    "yuv420p12le": (12, (1, 1), False),
    "yuv422p12le": (12, (0, 1), False),
    "yuv444p12le": (12, (0, 0), False),
}

#: av Colorspace values → matrix names (1 BT709, 5 BT470BG, 6 SMPTE170M, 9/10 BT2020)
_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 7: "bt709", 9: "bt2020", 10: "bt2020"}


def processing_format(pix_fmt: str, bits: int, width: int, height: int) -> str:
    """The planar format to process a decoded ``pix_fmt`` in: itself when the kernels read it,
    else the nearest planar YUV (gray and packed formats are converted once, on decode)."""
    if pix_fmt in PLANAR:
        return pix_fmt
    odd = width % 2 or height % 2
    base = "yuv444p" if odd else "yuv420p"
    return base if bits <= 8 else f"{base}10le"


def plane_format(frame: av.VideoFrame) -> PlaneFormat:
    """The colour interpretation of a planar YUV frame, from its format and tags.

    Untagged matrices follow the players' convention: BT.709 from 720 lines up, else BT.601.
    """
    bits, shift, full = PLANAR[frame.format.name]
    matrix = _MATRIX.get(int(frame.colorspace), "bt709" if frame.height >= 720 else "bt601")
    full = full or int(frame.color_range) == 2
    return PlaneFormat(bit_depth=bits, matrix=matrix, full_range=full, chroma_shift=shift)


def _view(plane: av.video.plane.VideoPlane, dtype: type) -> np.ndarray:
    item = np.dtype(dtype).itemsize
    buf = np.frombuffer(plane, dtype=dtype)
    return buf.reshape(plane.height, plane.line_size // item)[:, : plane.width]


def planes_of(frame: av.VideoFrame, fmt: PlaneFormat | None = None) -> Planes:
    """Zero-copy numpy views of a planar YUV frame's Y, U, V planes."""
    fmt = fmt or plane_format(frame)
    dtype = np.uint8 if fmt.bit_depth <= 8 else np.uint16
    y, u, v = (_view(p, dtype) for p in frame.planes[:3])
    return Planes(y, u, v, fmt)


def new_frame_like(frame: av.VideoFrame) -> av.VideoFrame:
    """A fresh frame of the same size and format carrying ``frame``'s timing and colour tags."""
    out = av.VideoFrame(frame.width, frame.height, frame.format.name)
    copy_frame_props(frame, out)
    return out


def copy_frame_props(src: av.VideoFrame, dst: av.VideoFrame) -> None:
    """Copy pts, time base and colour tags."""
    dst.pts = src.pts
    dst.time_base = src.time_base
    for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
        setattr(dst, attr, getattr(src, attr))
