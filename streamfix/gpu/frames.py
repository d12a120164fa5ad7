"""Frames on the device: decoded planes as tensors (DLPack), thumbnail and slicing there, one download.

One NVDEC frame's journey (``frame.format.name == "cuda"``, planes in GPU memory)::

    NV12/P010 surface ──DLPack──► Y (H, W), UV (H/2, W/2, 2) tensors (no copy)
        ├─► thumbnail: area-resampling matmuls + YUV→RGB on the device → (3, h, w) to the engine
        └─► slicing (streamfix.gpu.slicing, value tables in fp16 at 8 bits) → planar Y, U, V
                └─► packed into one buffer ──one copy──► a yuv420p / yuv420p10le frame for the encoder

The same code runs on CPU tensors: a software ``nv12`` / ``p010le`` frame exports its planes
through DLPack too, which is how the tests exercise this path on machines without a GPU.

Frames this path does not take (other NVDEC output formats, odd sizes) are downloaded and go the
software way; :func:`enhance_device_frame` then returns None and says so once.

Example:
    >>> import av, numpy as np
    >>> from streamfix.engines import create_engine
    >>> from streamfix.enhancer import Enhancer
    >>> f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 90, np.uint8), format="rgb24").reformat(format="nv12")
    >>> out = enhance_device_frame(Enhancer(create_engine("identity")), f)
    >>> out.format.name, out.width, out.height
    ('yuv420p', 64, 48)
"""

from __future__ import annotations

import functools
import time
import weakref
from dataclasses import dataclass, field

import av
import numpy as np
import torch

from streamfix.enhancer import Enhancer
from streamfix.events import Bus
from streamfix.gpu.slicing import deinterleave_nv12, slice_nv12, table_dtype, value_tables
from streamfix.grid.bilateral import Thumbnail
from streamfix.grid.colour import PlaneFormat
from streamfix.grid.thumbnail import resample_weights, thumbnail_size
from streamfix.io.frames import _MATRIX, planes_of

#: two-plane formats the device path reads: name → (bit depth, how far samples sit above the LSB,
#: the planar format written for the encoder)
DEVICE_FORMATS: dict[str, tuple[int, int, str]] = {
    "nv12": (8, 0, "yuv420p"),
    "p010le": (10, 6, "yuv420p10le"),
}


def is_hw_frame(frame: av.VideoFrame) -> bool:
    """True for a frame whose planes live in GPU memory (NVDEC with ``is_hw_owned=True``)."""
    return frame.format.name == "cuda"


def storage_format(frame: av.VideoFrame) -> str:
    """The pixel layout of the planes: the software format behind a hardware frame, else the format."""
    if is_hw_frame(frame):
        sw = frame.sw_format
        return sw.name if sw is not None else "cuda"
    return frame.format.name


def device_layout(frame: av.VideoFrame) -> str | None:
    """The frame's format name if the device path takes it (NV12/P010, even sides), else None."""
    name = storage_format(frame)
    if name in DEVICE_FORMATS and frame.width % 2 == 0 and frame.height % 2 == 0:
        return name
    return None


def frame_plane_format(frame: av.VideoFrame, bit_depth: int) -> PlaneFormat:
    """Colour interpretation of a 4:2:0 two-plane frame (same rules as :func:`streamfix.io.frames.plane_format`)."""
    matrix = _MATRIX.get(int(frame.colorspace), "bt709" if frame.height >= 720 else "bt601")
    return PlaneFormat(bit_depth=bit_depth, matrix=matrix, full_range=int(frame.color_range) == 2,
                       chroma_shift=(1, 1))


def import_planes(frame: av.VideoFrame, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Y ``(H, W)`` and interleaved UV ``(H/2, W/2, 2)`` of an NV12/P010 frame as tensors on ``device``.

    GPU frames are wrapped without a copy. PyAV's ``__dlpack__`` refuses the stream handshake that
    ``torch.from_dlpack(plane)`` performs for CUDA producers ("pass stream=None and synchronize"),
    so the capsule is taken with ``stream=None`` after a device synchronisation and handed to
    torch as a capsule. CPU frames are wrapped likewise and moved to ``device`` if it differs.
    """
    if is_hw_frame(frame) and device.type == "cuda":
        torch.cuda.synchronize(device)
    y = torch.from_dlpack(frame.planes[0].__dlpack__())
    uv = torch.from_dlpack(frame.planes[1].__dlpack__())
    if y.device != device:
        y, uv = y.to(device), uv.to(device)
    return y, uv


@functools.lru_cache(maxsize=32)
def resample_matrix(n_out: int, n_in: int, device: torch.device) -> torch.Tensor:
    """``(n_out, n_in)`` float32 weights resampling one axis, as the CPU thumbnail's
    (:func:`streamfix.grid.thumbnail.resample_weights`): INTER_AREA when shrinking, linear when
    enlarging."""
    return torch.from_numpy(resample_weights(n_out, n_in)).to(torch.float32).to(device)


def shrink(plane: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a ``(h, w)`` plane of codes to ``size`` as float32 (two small matmuls)."""
    h, w = size
    p = plane.to(torch.float32)
    return resample_matrix(h, p.shape[0], p.device) @ p @ resample_matrix(w, p.shape[1], p.device).T


def thumbnail_torch(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, fmt: PlaneFormat,
                    long_side: int) -> Thumbnail:
    """The engine's thumbnail from planes on any device (the device twin of ``thumbnail_from_planes``).

    Args:
        y: ``(H, W)`` luma codes; u, v: chroma codes (any subsampling), LSB-aligned.
        fmt: the planes' format. long_side: the thumbnail's long side.

    Returns:
        A :class:`Thumbnail` on the planes' device: ``rgb (3, h, w)`` and ``luma (h, w)`` in ``[0, 1]``.
        The same weights as the CPU one's; they differ by float summation order only.
    """
    size = thumbnail_size(int(y.shape[0]), int(y.shape[1]), long_side)
    yuv = torch.stack([shrink(p, size) for p in (y, u, v)])
    t = fmt.code_to_rgb().to(torch.float32).to(y.device)
    rgb = torch.einsum("ij,jhw->ihw", t[:3, :3], yuv) + t[:3, 3].view(3, 1, 1)
    yo, ys = fmt.luma_scale()
    luma = ((yuv[0] - yo) / ys).clamp(0.0, 1.0)
    return Thumbnail(rgb.clamp(0.0, 1.0).contiguous(), luma)


@dataclass
class DevicePath:
    """Per-enhancer state of the device path: the device, staging buffers, notes already given."""

    device: torch.device
    bus: Bus | None = None
    dtype: torch.dtype | None = None
    _staging: dict[tuple[int, torch.dtype], torch.Tensor] = field(default_factory=dict)
    _noted: set[str] = field(default_factory=set)

    def note(self, key: str, message: str) -> None:
        """One informational line per kind of event and enhancer."""
        if key in self._noted:
            return
        self._noted.add(key)
        if self.bus is not None:
            self.bus.info("gpu", message)

    def staging(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        """A reusable host buffer of ``n`` elements (page-locked when the device is a GPU)."""
        buf = self._staging.get((n, dtype))
        if buf is None:
            buf = torch.empty(n, dtype=dtype, pin_memory=self.device.type == "cuda")
            self._staging = {(n, dtype): buf}  # one size at a time: a stream keeps its size
        return buf


_PATHS: weakref.WeakKeyDictionary[Enhancer, DevicePath] = weakref.WeakKeyDictionary()


def device_path(enhancer: Enhancer, bus: Bus | None = None) -> DevicePath:
    """The :class:`DevicePath` of ``enhancer`` (made on first use, on ``enhancer.device``)."""
    path = _PATHS.get(enhancer)
    if path is None:
        path = _PATHS[enhancer] = DevicePath(torch.device(enhancer.device))
    if bus is not None:
        path.bus = bus
    return path


def download_into(planes: tuple[torch.Tensor, ...], out: av.VideoFrame, fmt: PlaneFormat,
                  path: DevicePath) -> None:
    """Copy output planes into ``out``'s buffers: packed on the device, one device→host copy."""
    views = planes_of(out, fmt)
    dst = (views.y, views.u, views.v)
    np_dtype = views.y.dtype
    torch_dtype = torch.uint8 if np_dtype == np.uint8 else torch.int16
    flat = torch.cat([p.reshape(-1).to(torch_dtype) for p in planes])
    if flat.device.type == "cpu":
        host = flat
    else:
        host = path.staging(flat.numel(), torch_dtype)
        host.copy_(flat)
    arr = host.numpy().view(np_dtype)
    at = 0
    for d, p in zip(dst, planes, strict=True):
        n = p.numel()
        d[...] = arr[at:at + n].reshape(d.shape)
        at += n


def enhance_device_frame(enhancer: Enhancer, frame: av.VideoFrame, bus: Bus | None = None) -> av.VideoFrame | None:
    """Enhance an NV12/P010 frame on ``enhancer.device``; returns a new planar frame, or None when
    the frame is not one the device path takes (the caller then downloads it and goes the software way).

    Stage times land in ``enhancer.clock`` as on the CPU path: ``thumbnail`` (planes to tensors,
    shrink, colour, to the engine), ``engine`` / ``temporal`` (:meth:`Enhancer.grid_for`), ``slice``
    (tables, slicing and the download) and, with a denoiser, ``denoise`` (on the device, before the
    download).
    """
    path = device_path(enhancer, bus)
    layout = device_layout(frame)
    if layout is None:
        name = storage_format(frame)
        path.note(f"layout-{name}", f"{name} {frame.width}x{frame.height} frames are not taken on the device "
                  "(it reads even-sized nv12/p010le): downloading them and enhancing in software")
        return None
    bits, shift, out_name = DEVICE_FORMATS[layout]
    fmt = frame_plane_format(frame, bits)
    t0 = time.perf_counter()
    y, uv = import_planes(frame, path.device)
    if shift:
        y16 = y.to(torch.int32) >> shift
        uv16 = uv.to(torch.int32) >> shift
    else:
        y16, uv16 = y, uv
    thumb = thumbnail_torch(y16, uv16[..., 0], uv16[..., 1], fmt, enhancer.engine.card.thumbnail)
    # engines take thumbnails on the CPU (SCI's BGU fit is a CPU kernel): 2 small tensors, ~0.3 MB
    thumb = Thumbnail(thumb.rgb.cpu(), thumb.luma.cpu())
    enhancer.clock.add("thumbnail", time.perf_counter() - t0)
    grid = enhancer.grid_for(thumb)
    t1 = time.perf_counter()
    tables = value_tables(grid, fmt, path.device, path.dtype or table_dtype(fmt, path.device))
    planes = slice_nv12(y16, uv16, grid, fmt, tables=tables)
    sliced = time.perf_counter() - t1
    if enhancer.denoiser is not None:
        u_in, v_in = deinterleave_nv12(uv16, (frame.height, frame.width))
        planes = enhancer.denoise_tensors(grid, (y16, u_in, v_in), planes, bits)
    t2 = time.perf_counter()
    out = av.VideoFrame(frame.width, frame.height, out_name)
    copy_props(frame, out)
    download_into(planes, out, fmt, path)
    enhancer.clock.add("slice", sliced + time.perf_counter() - t2)
    return out


def download_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A software copy of a hardware frame (its own software format), timing and colour tags kept."""
    if not is_hw_frame(frame):
        return frame
    sw = frame.reformat(format=storage_format(frame))
    copy_props(frame, sw)
    return sw


def copy_props(src: av.VideoFrame, dst: av.VideoFrame) -> None:
    """pts, time base (when set) and colour tags, from ``src`` to ``dst``."""
    dst.pts = src.pts
    if src.time_base is not None:
        dst.time_base = src.time_base
    for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
        setattr(dst, attr, getattr(src, attr))
