"""Picks the backend in one place and gives each its engine network and slicer.

``cpu``: the engine in PyTorch eager, slicing with the fused numba kernels on the planes.
``cuda``: the engine in PyTorch eager on the GPU; frames decoded by NVDEC stay in GPU memory and
are sliced there (:mod:`streamfix.gpu.frames`); software-decoded frames are uploaded, sliced on
the device (:mod:`streamfix.gpu.slicing`) and downloaded.
``tensorrt``: as ``cuda``, with the engine's network compiled by torch-tensorrt (fp16, static
thumbnail shape, cached on disk: :mod:`streamfix.gpu.trt`). Slicing stays outside TensorRT.
``auto``: ``tensorrt`` when torch-tensorrt imports and a GPU is present, else ``cuda`` with a GPU,
else ``cpu``; one informational line says which and why.

    >>> b = select_backend("cpu")
    >>> b.name, b.device
    ('cpu', 'cpu')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamfix.engines import Engine, create_engine
from streamfix.errors import StreamfixError, UsageError
from streamfix.events import Bus
from streamfix.gpu.probe import Probe, tensorrt_install_hint
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.grid.planes import Planes

#: what ``--backend`` accepts
BACKENDS = ("auto", "cpu", "cuda", "tensorrt")

#: kept for callers of the old ``--device`` vocabulary (it is a subset of :data:`BACKENDS`)
DEVICES = BACKENDS


@dataclass(frozen=True)
class Backend:
    """A resolved backend.

    Attributes:
        name: ``cpu`` | ``cuda`` | ``tensorrt``.
        device: the torch device the engine and slicing use: ``cpu`` or ``cuda``.
        gpu: the GPU's name, when there is one.
    """

    name: str
    device: str
    gpu: str | None = None

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"


def select_backend(requested: str, bus: Bus | None = None, probe: Probe | None = None) -> Backend:
    """Resolve ``auto|cpu|cuda|tensorrt`` to the backend that will run.

    Args:
        requested: the flag's value.
        bus: gets one info line when ``auto`` chose.
        probe: what the machine offers (tests pass a fake; default: look, lazily).

    Raises:
        UsageError: an unknown name.
        StreamfixError: ``cuda``/``tensorrt`` without a CUDA device, or ``tensorrt`` without
            torch-tensorrt (the message says what to install).
    """
    if requested not in BACKENDS:
        raise UsageError(f"unknown backend {requested!r}; expected one of {', '.join(BACKENDS)}")
    probe = probe or Probe()
    if requested == "cpu":
        return Backend("cpu", "cpu")
    if requested == "tensorrt":
        problem = probe.tensorrt_problem()
        if problem is not None:
            raise StreamfixError(f"--backend tensorrt: {problem}; {tensorrt_install_hint()}, or use --backend cuda")
    gpu = probe.cuda_device()
    if requested in ("cuda", "tensorrt"):
        if gpu is None:
            raise StreamfixError(f"--backend {requested}: no CUDA device is available (PyTorch sees none); "
                                 "use --backend cpu")
        return Backend(requested, "cuda", gpu)
    # auto
    if gpu is None:
        chosen, why = Backend("cpu", "cpu"), "no CUDA device found"
    else:
        problem = probe.tensorrt_problem()
        if problem is None:
            chosen, why = Backend("tensorrt", "cuda", gpu), f"{gpu}, torch-tensorrt {probe.tensorrt_version()}"
        else:
            chosen, why = Backend("cuda", "cuda", gpu), f"{gpu}; TensorRT not used: {problem}"
    if bus is not None:
        bus.info("backend", f"backend auto → {chosen.name} ({why})")
    return chosen


def select_device(requested: str, bus: Bus | None = None) -> str:
    """The torch device (``cpu``/``cuda``) of :func:`select_backend` (the older entry point)."""
    return select_backend(requested, bus).device


def create_backend_engine(name: str, weights: str | Path | None, backend: Backend, bus: Bus | None = None,
                          cache_dir: Path | None = None) -> Engine:
    """Build an engine for ``backend``: on its device, and with its network compiled for ``tensorrt``.

    The TensorRT engine for a thumbnail shape is built (or loaded from the cache) when the
    network first sees that shape; ``streamfix build-engines`` does it ahead of time.
    """
    engine = create_engine(name, weights, backend.device)
    if backend.name == "tensorrt":
        from streamfix.gpu.trt import install_tensorrt

        install_tensorrt(engine, bus=bus, cache_dir=cache_dir)
    return engine


def slice_into(planes: Planes, grid: BilateralGrid, out: Planes, device: str) -> None:
    """Slice ``grid`` over ``planes`` into ``out`` on ``device`` (``cpu``: the fused numba kernel;
    any other torch device: :func:`slice_into_torch`)."""
    if device == "cpu":
        slice_planes_cpu(planes, grid, out)
        return
    slice_into_torch(planes, grid, out, torch.device(device))


def slice_into_torch(planes: Planes, grid: BilateralGrid, out: Planes, device: torch.device) -> None:
    """Upload the planes to ``device``, slice there (:func:`streamfix.gpu.slicing.slice_planes_torch`),
    download into ``out``. The path of software-decoded frames on a GPU backend."""
    from streamfix.gpu.slicing import slice_planes_torch

    tensors = [torch.from_numpy(_torch_friendly(p)).to(device) for p in (planes.y, planes.u, planes.v)]
    results = slice_planes_torch(*tensors, grid, planes.fmt)
    for dst, src in zip((out.y, out.u, out.v), results, strict=True):
        dst[...] = src.cpu().numpy().view(dst.dtype)


def _torch_friendly(plane: np.ndarray) -> np.ndarray:
    """A contiguous array torch can wrap (uint16 planes as int16: codes stay below 2^15)."""
    a = np.ascontiguousarray(plane)
    return a.view(np.int16) if a.dtype == np.uint16 else a
