"""Picks the device in one place and gives each backend its slicer.

``cpu``: the engine in PyTorch eager, slicing with the fused numba kernels on the planes.
``cuda``: the engine and slicing (PyTorch ops, :func:`streamfix.grid.slicing.slice_planes`) on the GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from streamfix.errors import StreamfixError, UsageError
from streamfix.events import Bus
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import slice_planes

DEVICES = ("auto", "cpu", "cuda")


def select_device(requested: str, bus: Bus | None = None) -> str:
    """Resolve ``auto|cpu|cuda`` to the device that will run; says which when it chose."""
    if requested not in DEVICES:
        raise UsageError(f"unknown device {requested!r}; expected one of {', '.join(DEVICES)}")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise StreamfixError("--device cuda: no CUDA device is available (PyTorch sees none); use --device cpu")
    device = "cuda" if requested == "cuda" or (requested == "auto" and has_cuda) else "cpu"
    if requested == "auto" and bus is not None:
        why = torch.cuda.get_device_name(0) if device == "cuda" else "no CUDA device found"
        bus.info("device", f"device auto → {device} ({why})")
    return device


def slice_into(planes: Planes, grid: BilateralGrid, out: Planes, device: str) -> None:
    """Slice ``grid`` over ``planes`` into ``out`` on ``device`` (``cpu`` fused kernel, else torch)."""
    if device == "cpu":
        slice_planes_cpu(planes, grid, out)
        return
    dt = torch.int32
    tensors = [torch.from_numpy(np.ascontiguousarray(p).astype(np.int32)).to(device, dt)
               for p in (planes.y, planes.u, planes.v)]
    results = slice_planes(*tensors, grid, planes.fmt)
    for dst, src in zip((out.y, out.u, out.v), results, strict=True):
        dst[...] = src.to("cpu").numpy().astype(dst.dtype)
