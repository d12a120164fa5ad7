"""What the machine offers, found out lazily: a CUDA device, torch-tensorrt, NVENC, the versions.

``import torch_tensorrt`` is slow and, without TensorRT's libraries, raises a plain ``Exception``
("Could not find libnvinfer…") rather than ImportError, so it is only tried when asked for and
any exception counts as "not usable". :class:`Probe` can be replaced by a fake in tests.

    >>> p = Probe(cuda_name=None, tensorrt_error="torch-tensorrt is not installed")
    >>> p.cuda_device() is None, p.tensorrt_problem()
    (True, 'torch-tensorrt is not installed')
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

#: where torch-tensorrt's TensorRT libraries come from (they are not on PyPI proper)
NVIDIA_INDEX = "https://pypi.nvidia.com"

_UNSET: Any = object()


def tensorrt_install_hint() -> str:
    """The one-line instruction for getting torch-tensorrt."""
    return (f"install it with: pip install 'streamfix[tensorrt]' --extra-index-url {NVIDIA_INDEX} "
            "(TensorRT's libraries come from NVIDIA's index; it must match your torch version)")


def import_torch_tensorrt() -> tuple[ModuleType | None, str | None]:
    """``(module, None)`` if torch-tensorrt imports, else ``(None, why)``.

    Never raises: a missing package gives "not installed", a broken one (no libnvinfer, a torch
    version mismatch) gives its own first line.
    """
    if importlib.util.find_spec("torch_tensorrt") is None:
        return None, "torch-tensorrt is not installed"
    try:
        module = importlib.import_module("torch_tensorrt")
    except Exception as e:  # noqa: BLE001 - it raises plain Exception without TensorRT's libraries
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return None, f"torch-tensorrt is installed but cannot be imported ({first[:200]})"
    return module, None


def tensorrt_version(trt_module: ModuleType | None = None) -> str:
    """TensorRT's version (``tensorrt.__version__`` or the installed distribution), or ``unknown``."""
    try:
        import tensorrt  # type: ignore[import-not-found]

        return str(tensorrt.__version__)
    except Exception:  # noqa: BLE001 - optional, and it may fail the same way torch-tensorrt does
        pass
    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu13-libs", "tensorrt-cu12-libs"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


@dataclass
class Probe:
    """Facts about the machine, each looked up once and only when asked for.

    Pass values to pin them (tests): ``cuda_name`` (None: no device), ``tensorrt_error``
    (None: torch-tensorrt usable), ``trt_version``.
    """

    cuda_name: str | None = _UNSET
    tensorrt_error: str | None = _UNSET
    trt_version: str | None = _UNSET
    _module: ModuleType | None = field(default=None, repr=False)

    def cuda_device(self) -> str | None:
        """The name of CUDA device 0 as PyTorch sees it, or None."""
        if self.cuda_name is _UNSET:
            self.cuda_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        return self.cuda_name

    def tensorrt_problem(self) -> str | None:
        """None if torch-tensorrt can be used, else why not (one line)."""
        if self.tensorrt_error is _UNSET:
            self._module, self.tensorrt_error = import_torch_tensorrt()
        return self.tensorrt_error

    def tensorrt_module(self) -> ModuleType | None:
        """The imported ``torch_tensorrt`` module (None when :meth:`tensorrt_problem` is not None)."""
        self.tensorrt_problem()
        return self._module

    def tensorrt_version(self) -> str:
        """torch-tensorrt's version (``unknown`` when it cannot be found)."""
        if self.trt_version is _UNSET:
            self.tensorrt_problem()
            self.trt_version = getattr(self._module, "__version__", None) or "unknown"
        return self.trt_version or "unknown"


def nvenc_available(codec: str = "h264_nvenc", width: int = 256, height: int = 144) -> bool:
    """Whether ``codec`` opens here (H100/H200/A100 have NVDEC but no NVENC; CPUs have neither)."""
    from streamfix.io.writer import encoder_opens

    return encoder_opens(codec, width, height)


def cuda_facts(index: int = 0) -> dict[str, Any]:
    """Name, compute capability, memory and PCI bus id of CUDA device ``index`` (empty without one)."""
    if not torch.cuda.is_available():
        return {}
    p = torch.cuda.get_device_properties(index)
    facts: dict[str, Any] = {
        "name": p.name,
        "capability": f"{p.major}.{p.minor}",
        "memory_gb": round(p.total_memory / 2**30, 1),
    }
    bus = getattr(p, "pci_bus_id", None)
    if bus is not None:
        facts["pci_bus_id"] = f"{getattr(p, 'pci_domain_id', 0):08x}:{bus:02x}:{getattr(p, 'pci_device_id', 0):02x}.0"
    return facts
