"""GPU telemetry: the NVML sampler with a fake NVML, and the report when there is no GPU (this machine)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from streamfix.telemetry import GpuSampler, format_gpu


class NVMLError(Exception):
    pass


class FakeNVML:
    """The pynvml functions the sampler uses; an H100-like GPU: NVDEC yes, NVENC not supported."""

    def __init__(self) -> None:
        self.t = 0
        self.shut = False
        self.energy_mj = 1_000_000

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetHandleByPciBusId(self, bus: str) -> str:
        raise NVMLError("not found")

    def nvmlDeviceGetName(self, h: str) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, h: str) -> SimpleNamespace:
        return SimpleNamespace(total=80 * 2**30, used=(2 + self.t % 2) * 2**30, free=0)

    def nvmlDeviceGetUtilizationRates(self, h: str) -> SimpleNamespace:
        self.t += 1
        return SimpleNamespace(gpu=40 + 10 * (self.t % 3), memory=20)

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        return 250_000  # mW

    def nvmlDeviceGetDecoderUtilization(self, h: str) -> tuple[int, int]:
        return 35, 167000

    def nvmlDeviceGetEncoderUtilization(self, h: str) -> tuple[int, int]:
        raise NVMLError("Not Supported")

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        self.energy_mj += 500_000
        return self.energy_mj


def test_sampler_summarises_a_run_and_marks_what_the_gpu_lacks() -> None:
    nv = FakeNVML()
    with GpuSampler(interval=0.01, nvml=nv) as s:
        time.sleep(0.06)
    r = s.report(frames=10)
    assert r["available"] and r["name"] == "NVIDIA H100 80GB HBM3" and r["samples"] >= 3
    assert 40 <= r["gpu_util_pct"]["mean"] <= 60 and r["gpu_util_pct"]["max"] <= 60
    assert r["power_w"] == {"mean": 250.0, "p95": 250.0, "max": 250.0}
    assert r["nvdec_util_pct"]["mean"] == 35 and r["nvenc_util_pct"] is None
    assert r["unsupported"] == ["nvenc_util_pct"]
    assert r["memory_total_mb"] == 80 * 1024 and r["memory_used_mb"]["max"] == 3 * 1024
    assert r["energy_j"] == 500.0 and r["energy_j_per_frame"] == 50.0
    assert nv.shut
    line = format_gpu(r)
    assert line.startswith("GPU: NVIDIA H100 80GB HBM3: util ") and "NVENC n/a" in line and "NVDEC 35%" in line


def test_no_nvml_means_an_explicit_absence() -> None:
    class Broken:
        def nvmlInit(self) -> None:
            raise NVMLError("NVML Shared Library Not Found")

    s = GpuSampler(nvml=Broken()).start()
    assert s.stop() == {"available": False, "reason": "NVML Shared Library Not Found"}
    assert format_gpu(s.report()) == "GPU: none (NVML Shared Library Not Found)"
    assert format_gpu(None) == "GPU: none (no NVIDIA GPU/NVML)"


def test_real_nvml_here() -> None:
    """With the real pynvml: on a machine without a driver the report says why; never raises."""
    s = GpuSampler(interval=0.01).start()
    r = s.stop()
    if r["available"]:
        pytest.skip(f"an NVIDIA GPU is present: {r['name']}")
    assert r["reason"] and "\n" not in r["reason"]
