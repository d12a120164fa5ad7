"""GPU telemetry through NVML (nvidia-ml-py, module ``pynvml``): sampled in the background during a run.

A :class:`GpuSampler` reads, every ``interval`` seconds on its own thread, the GPU's utilisation,
memory, power and NVDEC / NVENC utilisation, and summarises them (mean / p95 / max) in a
JSON-friendly dict — the ``gpu`` field of ``streamfix bench``'s report and the GPU lines of
``streamfix enhance --stats``. Without an NVIDIA driver ``nvmlInit`` raises ``pynvml.NVMLError``
(``NVML Shared Library Not Found``): the report then says ``{"available": False, "reason": …}``.
Figures a GPU does not support (NVENC on an H100) are None and listed under ``unsupported``.

    >>> with GpuSampler(interval=0.05, nvml=None) as s:
    ...     pass
    >>> r = s.report()
    >>> r["available"] in (True, False)
    True
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

#: sampled figures: report name → unit
METRICS = {
    "gpu_util_pct": "%",
    "mem_util_pct": "%",
    "memory_used_mb": "MB",
    "power_w": "W",
    "nvdec_util_pct": "%",
    "nvenc_util_pct": "%",
}


def _load_nvml() -> ModuleType:
    import pynvml

    return pynvml


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass
class GpuSampler:
    """Background NVML sampler for one GPU.

    Args:
        interval: seconds between samples (NVML's own utilisation window is ~1/6–1 s).
        index: the CUDA device index to watch (matched to NVML by PCI bus id when PyTorch can
            tell it, else used as the NVML index).
        nvml: the ``pynvml`` module, or a stand-in with the same functions (tests); None: import it.
    """

    interval: float = 0.5
    index: int = 0
    nvml: ModuleType | None = None
    samples: list[dict[str, float | None]] = field(default_factory=list)
    error: str | None = None
    name: str | None = None
    memory_total_mb: float | None = None
    unsupported: set[str] = field(default_factory=set)
    _handle: Any = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _energy0: float | None = None
    _energy_j: float | None = None
    _t0: float = 0.0
    _t1: float = 0.0

    # -- life -------------------------------------------------------------------------------
    def start(self) -> GpuSampler:
        """Initialise NVML and start sampling; on failure record why and sample nothing."""
        self._t0 = time.perf_counter()
        try:
            nv = self.nvml if self.nvml is not None else _load_nvml()
            self.nvml = nv
            nv.nvmlInit()
        except Exception as e:  # noqa: BLE001 - pynvml.NVMLError (no driver), ImportError
            self.error = _reason(e)
            return self
        try:
            self._handle = self._find_handle(nv)
            self.name = _text(nv.nvmlDeviceGetName(self._handle))
            self.memory_total_mb = nv.nvmlDeviceGetMemoryInfo(self._handle).total / 2**20
        except Exception as e:  # noqa: BLE001 - an NVML without this device
            self.error = _reason(e)
            self._shutdown()
            return self
        self._energy0 = self._energy()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="sf-nvml", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Stop sampling (one last sample) and return :meth:`report`."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self._sample()
            e1 = self._energy()
            if e1 is not None and self._energy0 is not None:
                self._energy_j = (e1 - self._energy0) / 1000.0
            self._shutdown()
        self._t1 = time.perf_counter()
        return self.report()

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sampling ---------------------------------------------------------------------------
    def _find_handle(self, nv: ModuleType) -> Any:
        bus_id = _cuda_pci_bus_id(self.index)
        if bus_id is not None:
            try:
                return nv.nvmlDeviceGetHandleByPciBusId(bus_id)
            except Exception:  # noqa: BLE001 - fall back to the index
                pass
        return nv.nvmlDeviceGetHandleByIndex(self.index)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _read(self, metric: str, fn: Any) -> float | None:
        if metric in self.unsupported:
            return None
        try:
            return float(fn())
        except Exception:  # noqa: BLE001 - NVMLError_NotSupported and friends
            self.unsupported.add(metric)
            return None

    def _sample(self) -> None:
        nv, h = self.nvml, self._handle
        if nv is None or h is None:
            return
        util: dict[str, Any] = {}

        def rates(field_name: str) -> float:
            if "u" not in util:
                util["u"] = nv.nvmlDeviceGetUtilizationRates(h)
            return getattr(util["u"], field_name)

        self.samples.append({
            "t": time.perf_counter() - self._t0,
            "gpu_util_pct": self._read("gpu_util_pct", lambda: rates("gpu")),
            "mem_util_pct": self._read("mem_util_pct", lambda: rates("memory")),
            "memory_used_mb": self._read("memory_used_mb", lambda: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20),
            "power_w": self._read("power_w", lambda: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
            "nvdec_util_pct": self._read("nvdec_util_pct", lambda: nv.nvmlDeviceGetDecoderUtilization(h)[0]),
            "nvenc_util_pct": self._read("nvenc_util_pct", lambda: nv.nvmlDeviceGetEncoderUtilization(h)[0]),
        })

    def _energy(self) -> float | None:
        """Total energy since the driver loaded, mJ (Volta and later), or None."""
        return self._read("energy", lambda: self.nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def _shutdown(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.nvml.nvmlShutdown()

    # -- results ----------------------------------------------------------------------------
    def report(self, frames: int | None = None) -> dict[str, Any]:
        """The summary: ``available`` and ``reason``, or the GPU's name and per-metric figures.

        Args:
            frames: frames processed while sampling (adds ``energy_j_per_frame``).
        """
        if self.error is not None or self.name is None:
            return {"available": False, "reason": self.error or "not sampled"}
        out: dict[str, Any] = {
            "available": True,
            "name": self.name,
            "index": self.index,
            "samples": len(self.samples),
            "interval_s": self.interval,
            "seconds": round((self._t1 or time.perf_counter()) - self._t0, 3),
            "memory_total_mb": self.memory_total_mb,
        }
        for metric in METRICS:
            vals = [s[metric] for s in self.samples if s.get(metric) is not None]
            out[metric] = _summary(vals) if vals else None
        out["energy_j"] = self._energy_j
        if frames and self._energy_j is not None:
            out["energy_j_per_frame"] = self._energy_j / frames
        out["unsupported"] = sorted(self.unsupported)
        return out


def _summary(vals: list[float]) -> dict[str, float]:
    a = np.asarray(vals, dtype=np.float64)
    return {"mean": round(float(a.mean()), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "max": round(float(a.max()), 2)}


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _cuda_pci_bus_id(index: int) -> str | None:
    """``domain:bus:device.0`` of CUDA device ``index`` as NVML spells it, when PyTorch can tell."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        p = torch.cuda.get_device_properties(index)
        return f"{getattr(p, 'pci_domain_id', 0):08X}:{p.pci_bus_id:02X}:{getattr(p, 'pci_device_id', 0):02X}.0"
    except Exception:  # noqa: BLE001 - older torch without the fields
        return None


def format_gpu(report: dict[str, Any] | None) -> str:
    """One line for people: ``GPU: <name>: util …`` or ``GPU: none (<reason>)``."""
    if not report or not report.get("available"):
        reason = (report or {}).get("reason", "no NVIDIA GPU/NVML")
        return f"GPU: none ({reason})"

    def fig(metric: str, unit: str, label: str) -> str:
        s = report.get(metric)
        if not s:
            return f"{label} n/a"
        return f"{label} {s['mean']:.0f}{unit} (p95 {s['p95']:.0f}, max {s['max']:.0f})"

    mem = report.get("memory_used_mb")
    mem_txt = (f"memory {mem['max'] / 1024:.1f}/{(report.get('memory_total_mb') or 0) / 1024:.0f} GB"
               if mem else "memory n/a")
    parts = [fig("gpu_util_pct", "%", "util"), mem_txt, fig("power_w", " W", "power"),
             fig("nvdec_util_pct", "%", "NVDEC"), fig("nvenc_util_pct", "%", "NVENC")]
    energy = report.get("energy_j_per_frame")
    if energy is not None:
        parts.append(f"{energy:.2f} J/frame")
    return f"GPU: {report['name']}: " + ", ".join(parts) + f" ({report['samples']} samples)"
