"""Real CUDA / NVDEC / NVML / TensorRT checks. They skip, with the reason, on machines without an NVIDIA GPU
(or without torch-tensorrt for the TensorRT ones) and run as they are on a GPU machine:

    pytest -q tests/test_cuda.py -rs

Their CPU twins (same code on CPU tensors, fakes for the device facts) are in test_device_path.py,
test_trt_cache.py and test_export_contract.py.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.events import Bus
from streamfix.gpu.probe import import_torch_tensorrt, nvenc_available
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.io.frames import planes_of
from streamfix.io.reader import VideoReader
from tests import media
from tests.test_grid import random_grid, random_planes

HAS_CUDA = torch.cuda.is_available()
cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device (PyTorch sees none): run on an NVIDIA GPU machine")
pytestmark = pytest.mark.cuda


def _trt_problem() -> str | None:
    if not HAS_CUDA:
        return "no CUDA device"
    return import_torch_tensorrt()[1]


tensorrt = pytest.mark.skipif(_trt_problem() is not None, reason=f"TensorRT not usable: {_trt_problem()}")

GPU = torch.device("cuda")


@pytest.fixture(scope="module")
def gpu_clips(tmp_path_factory) -> dict[str, media.MediaInfo]:
    """Clips NVDEC takes (HEVC needs at least 144x144): 8-bit H.264 and 10-bit HEVC, 320x240."""
    d = tmp_path_factory.mktemp("gpu_media")
    return {
        "h264": media.h264_clip(d, "h264.mp4", width=320, height=240, frames=12),
        "hevc10": media.hevc10_clip(d, "hevc10.mp4", width=320, height=240, frames=8),
    }


def software_frames(path: Path) -> list[av.VideoFrame]:
    with VideoReader(path) as r:
        return [f for f in r if isinstance(f, av.VideoFrame)]


@cuda
@pytest.mark.parametrize("dtype", [None, torch.float32], ids=["auto-fp16", "fp32"])
def test_cuda_slicing_matches_the_fused_cpu_kernel(dtype: torch.dtype | None) -> None:
    from streamfix.gpu.slicing import slice_planes_torch
    from streamfix.grid.colour import PlaneFormat

    fmt = PlaneFormat()
    planes = random_planes(1080, 1920, fmt, seed=4)
    grid = random_grid(seed=6)
    want = slice_planes_cpu(planes, grid)
    tensors = [torch.from_numpy(np.ascontiguousarray(p)).to(GPU) for p in (planes.y, planes.u, planes.v)]
    got = slice_planes_torch(*tensors, grid, fmt, dtype)
    for w, g in zip((want.y, want.u, want.v), got, strict=True):
        assert g.is_cuda and np.abs(w.astype(int) - g.cpu().numpy().astype(int)).max() <= 1


@cuda
@pytest.mark.parametrize("kind", ["h264", "hevc10"])
def test_nvdec_frames_stay_on_the_gpu_and_equal_software_decoding(gpu_clips, kind: str) -> None:
    from streamfix.gpu.frames import import_planes, storage_format

    clip = gpu_clips[kind]
    bus = Bus()
    with VideoReader(clip.path, hwaccel="cuda", bus=bus) as r:
        frames = [f for f in r if isinstance(f, av.VideoFrame)]
        assert r.hw_decoding is True, [e.message for e in bus.history]
    sw = software_frames(clip.path)
    assert len(frames) == len(sw) == clip.frames
    assert frames[0].format.name == "cuda"
    assert storage_format(frames[0]) == ("nv12" if kind == "h264" else "p010le")
    shift = 0 if kind == "h264" else 6
    for hw, s in zip(frames, sw, strict=True):
        y, uv = import_planes(hw, GPU)
        assert y.is_cuda and uv.shape[-1] == 2
        p = planes_of(s)
        assert np.array_equal((y.to(torch.int32) >> shift).cpu().numpy(), p.y)  # NVDEC is bit-exact
        assert np.array_equal((uv[..., 0].to(torch.int32) >> shift).cpu().numpy(), p.u)


@cuda
@pytest.mark.parametrize("kind", ["h264", "hevc10"])
def test_device_frame_path_on_the_gpu_matches_the_cpu_path(gpu_clips, tiny_sci_weights: Path, kind: str) -> None:
    from streamfix.gpu.frames import enhance_device_frame
    from streamfix.pipeline import enhance_frame

    clip = gpu_clips[kind]
    with VideoReader(clip.path, hwaccel="cuda") as r:
        hw = next(f for f in r if isinstance(f, av.VideoFrame))
        out = enhance_device_frame(Enhancer(create_engine("sci", tiny_sci_weights, "cuda"), "cuda"), hw)
    sw = software_frames(clip.path)[0]
    ref = enhance_frame(Enhancer(create_engine("sci", tiny_sci_weights)), sw)
    assert out is not None and out.format.name == ref.format.name
    tol = 2 if kind == "h264" else 8  # fp16 tables and a float thumbnail vs the CPU's
    a, b = planes_of(ref), planes_of(out)
    for x, y in ((a.y, b.y), (a.u, b.u), (a.v, b.v)):
        assert np.abs(x.astype(int) - y.astype(int)).max() <= tol


@cuda
def test_transcode_on_the_gpu_end_to_end(gpu_clips, tmp_path: Path) -> None:
    from streamfix.io.writer import EncodeOptions
    from streamfix.pipeline import transcode

    bus = Bus()
    out = tmp_path / "gpu.mp4"
    clip = gpu_clips["h264"]
    result = transcode(clip.path, out, Enhancer(create_engine("identity", None, "cuda"), "cuda"),
                       EncodeOptions(preset="ultrafast"), bus)
    assert result.frames == clip.frames and out.exists()
    assert not [e for e in bus.history if e.topic == "decode"], "NVDEC fell back to software"
    got = software_frames(out)
    assert len(got) == clip.frames


@cuda
def test_nvml_sees_the_gpu_and_nvenc_probe_is_consistent() -> None:
    from streamfix.telemetry import GpuSampler

    with GpuSampler(interval=0.05) as s:
        torch.randn(4096, 4096, device=GPU) @ torch.randn(4096, 4096, device=GPU)
        torch.cuda.synchronize()
    r = s.report()
    assert r["available"], r
    assert r["memory_total_mb"] > 1000 and r["gpu_util_pct"] is not None
    name = torch.cuda.get_device_name(0)
    if any(k in name for k in ("H100", "H200", "A100")):
        assert not nvenc_available("h264_nvenc")  # datacenter parts: NVDEC only
        assert r["nvenc_util_pct"] is None or r["nvenc_util_pct"]["max"] == 0


@cuda
def test_backend_cuda_resolves_here() -> None:
    from streamfix.backends import select_backend

    bus = Bus()
    b = select_backend("auto", bus)
    assert b.on_gpu and b.name in ("cuda", "tensorrt") and bus.history[0].message.startswith("backend auto → ")


@tensorrt
def test_tensorrt_compiles_sci_caches_and_matches_eager(tiny_sci_weights: Path, tmp_path: Path) -> None:
    from streamfix.gpu.trt import TorchTensorRTCompiler, forget_loaded, install_tensorrt

    x = torch.rand(1, 3, 144, 256, device=GPU) * 0.3
    bus = Bus()
    engine = create_engine("sci", tiny_sci_weights, "cuda")
    eager = engine.network()
    with torch.inference_mode():
        want = eager(x)
    wrapper = install_tensorrt(engine, bus, tmp_path, TorchTensorRTCompiler())
    with torch.inference_mode():
        got = engine.network()(x)
    assert [r.status for r in wrapper.records] == ["built"], [e.message for e in bus.history]
    assert (got - want).abs().max() < 1e-2
    forget_loaded()
    engine2 = create_engine("sci", tiny_sci_weights, "cuda")
    w2 = install_tensorrt(engine2, None, tmp_path, TorchTensorRTCompiler())
    with torch.inference_mode():
        again = engine2.network()(x)
    assert [r.status for r in w2.records] == ["hit"] and (again - got).abs().max() < 1e-3
    path = w2.records[0].path
    path.write_bytes(b"corrupt")
    forget_loaded()
    engine3 = create_engine("sci", tiny_sci_weights, "cuda")
    w3 = install_tensorrt(engine3, None, tmp_path, TorchTensorRTCompiler())
    with torch.inference_mode():
        engine3.network()(x)
    assert [r.status for r in w3.records] == ["rebuilt"]


@tensorrt
def test_tensorrt_backend_end_to_end(gpu_clips, tiny_sci_weights: Path, tmp_path: Path, monkeypatch) -> None:
    from streamfix.backends import create_backend_engine, select_backend
    from streamfix.io.writer import EncodeOptions
    from streamfix.pipeline import transcode

    monkeypatch.setenv("STREAMFIX_CACHE_DIR", str(tmp_path / "cache"))
    bus = Bus()
    backend = select_backend("tensorrt", bus)
    engine = create_backend_engine("sci", tiny_sci_weights, backend, bus)
    out = tmp_path / "trt.mp4"
    clip = gpu_clips["h264"]
    result = transcode(clip.path, out, Enhancer(engine, "cuda"), EncodeOptions(preset="ultrafast"), bus)
    assert result.frames == clip.frames
    assert any(e.topic == "tensorrt" and "built" in e.message for e in bus.history)
