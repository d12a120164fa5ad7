"""The GPU path's code on CPU tensors: device slicing vs the fused CPU kernel, NV12/P010 via DLPack,
the device thumbnail, the whole device-frame enhancement, and the decoder's hardware fallbacks."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from streamfix.backends import slice_into_torch
from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.events import Bus
from streamfix.gpu.frames import (
    device_layout,
    download_frame,
    enhance_device_frame,
    import_planes,
    resample_matrix,
    thumbnail_torch,
)
from streamfix.gpu.slicing import deinterleave_nv12, slice_nv12, slice_planes_torch, table_dtype
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.colour import PlaneFormat
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import slice_planes
from streamfix.grid.thumbnail import thumbnail_from_planes
from streamfix.io.frames import planes_of
from streamfix.io.reader import VideoReader
from streamfix.pipeline import enhance_frame, transcode
from streamfix.synth import backlit_frame
from tests.test_grid import FORMATS, random_grid, random_planes

CPU = torch.device("cpu")


def as_tensors(planes: Planes) -> list[torch.Tensor]:
    out = []
    for p in (planes.y, planes.u, planes.v):
        a = np.ascontiguousarray(p)
        out.append(torch.from_numpy(a.view(np.int16) if a.dtype == np.uint16 else a))
    return out


def max_diff(a: np.ndarray, b: torch.Tensor | np.ndarray) -> int:
    b = b.numpy() if isinstance(b, torch.Tensor) else b
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("size", [(72, 128), (45, 67), (1, 1)])
def test_device_slicing_matches_the_fused_cpu_kernel(fmt: PlaneFormat, dtype: torch.dtype, size) -> None:
    """The CUDA slicing code on CPU tensors, fp32 and fp16 value tables, vs the numba kernel."""
    planes = random_planes(*size, fmt, seed=7)
    grid = random_grid(seed=3)
    want = slice_planes_cpu(planes, grid)
    got = slice_planes_torch(*as_tensors(planes), grid, fmt, dtype)
    tol = 1 << (fmt.bit_depth - 8)  # one 8-bit step, as the kernel is held to the reference
    for w, g in zip((want.y, want.u, want.v), got, strict=True):
        assert g.shape == w.shape
        assert max_diff(w, g) <= (1 if dtype == torch.float32 else tol)
    if dtype == torch.float16 and fmt.bit_depth == 8 and size[0] > 1:
        # fp16 tables at 8 bits: at most one code, and rarely
        assert np.mean(want.y != got[0].numpy()) < 0.05


def test_device_slicing_matches_the_grid_sample_reference() -> None:
    fmt = PlaneFormat(8, "bt709", False, (1, 1))
    planes = random_planes(40, 72, fmt, seed=2)
    grid = random_grid(seed=9)
    ref = slice_planes(*(torch.from_numpy(p.astype(np.int64)) for p in (planes.y, planes.u, planes.v)), grid, fmt)
    got = slice_planes_torch(*as_tensors(planes), grid, fmt, torch.float32)
    for r, g in zip(ref, got, strict=True):
        assert max_diff(r.numpy(), g) <= 1


def test_auto_table_dtype_is_fp16_only_on_gpu_at_8_bits() -> None:
    assert table_dtype(PlaneFormat(8), torch.device("cuda")) == torch.float16
    assert table_dtype(PlaneFormat(10), torch.device("cuda")) == torch.float32
    assert table_dtype(PlaneFormat(8), CPU) == torch.float32


def nv12_frame(w: int, h: int, t: float = 0.2, fmt: str = "nv12") -> tuple[av.VideoFrame, av.VideoFrame]:
    """A synthetic backlit frame as ``fmt`` and as the planar format the CPU path reads."""
    rgb = backlit_frame(w, h, t)
    planar = "yuv420p" if fmt == "nv12" else "yuv420p10le"
    base = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=planar)
    two = base.reformat(format=fmt)
    for f in (base, two):
        f.pts, f.time_base = 7, Fraction(1, 30)
    return two, base


def test_dlpack_planes_of_nv12_and_p010() -> None:
    """PyAV exports NV12 as Y (H, W) + UV (H/2, W/2, 2) and P010 as uint16 with samples << 6."""
    nv, planar = nv12_frame(64, 48)
    y, uv = import_planes(nv, CPU)
    p = planes_of(planar)
    assert y.shape == (48, 64) and uv.shape == (24, 32, 2)
    assert np.array_equal(y.numpy(), p.y) and np.array_equal(uv[..., 0].numpy(), p.u)
    assert np.array_equal(uv[..., 1].numpy(), p.v)
    p10, planar10 = nv12_frame(64, 48, fmt="p010le")
    y, uv = import_planes(p10, CPU)
    assert y.dtype == torch.uint16
    assert np.array_equal((y.to(torch.int32) >> 6).numpy(), planes_of(planar10).y)
    assert device_layout(nv) == "nv12" and device_layout(p10) == "p010le" and device_layout(planar) is None


@pytest.mark.parametrize("fmt", ["nv12", "p010le"])
def test_nv12_slicing_equals_the_planar_path(fmt: str) -> None:
    two, planar = nv12_frame(96, 54, fmt=fmt)
    p = planes_of(planar)
    grid = random_grid(seed=5)
    y, uv = import_planes(two, CPU)
    got = slice_nv12(y, uv, grid, p.fmt, torch.float32, sample_shift=6 if fmt == "p010le" else 0)
    want = slice_planes_torch(*as_tensors(p), grid, p.fmt, torch.float32)
    for w, g in zip(want, got, strict=True):
        assert torch.equal(w, g)


def test_nv12_odd_sides_replicate_the_last_chroma_row_and_column() -> None:
    uv = torch.arange(2 * 3 * 2, dtype=torch.uint8).view(2, 3, 2)  # DLPack gives floor(H/2) x floor(W/2)
    u, v = deinterleave_nv12(uv, (5, 7))
    assert u.shape == (3, 4) and torch.equal(u[2], u[1]) and torch.equal(u[:, 3], u[:, 2])
    assert torch.equal(v[:2, :3], uv[..., 1])


def test_resample_matrix_rows_sum_to_one_and_area_averages() -> None:
    for n_out, n_in in [(144, 1080), (256, 1920), (100, 60), (7, 7), (3, 10)]:
        m = resample_matrix(n_out, n_in, CPU)
        assert m.shape == (n_out, n_in) and torch.allclose(m.sum(1), torch.ones(n_out), atol=1e-5)
    assert torch.allclose(resample_matrix(2, 4, CPU), torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]))


def test_device_thumbnail_is_the_area_average_of_each_plane() -> None:
    """Exactly OpenCV's INTER_AREA (on float planes) per plane, then the same colour conversion."""
    import cv2

    _, planar = nv12_frame(640, 360)
    p = planes_of(planar)
    dev = thumbnail_torch(*as_tensors(p), p.fmt, 256)
    assert dev.size == (144, 256)
    yuv = np.stack([cv2.resize(np.ascontiguousarray(a).astype(np.float32), (256, 144), interpolation=cv2.INTER_AREA)
                    for a in (p.y, p.u, p.v)])
    t = p.fmt.code_to_rgb().float()
    rgb = (torch.einsum("ij,jhw->ihw", t[:3, :3], torch.from_numpy(yuv)) + t[:3, 3].view(3, 1, 1)).clamp(0, 1)
    assert (dev.rgb - rgb).abs().max() < 1e-4
    # the CPU thumbnail takes the same weights in one numba pass
    cpu = thumbnail_from_planes(p, 256)
    assert cpu.size == dev.size and (dev.rgb - cpu.rgb).abs().max() < 1e-4
    assert (dev.luma - cpu.luma).abs().max() < 1e-4


@pytest.mark.parametrize("engine", ["identity", "sci"])
def test_device_frame_path_matches_the_cpu_path(engine: str, tiny_sci_weights: Path) -> None:
    """NV12 in → thumbnail, engine, slicing on the (CPU) device → one download into yuv420p."""
    nv, planar = nv12_frame(160, 90)
    weights = tiny_sci_weights if engine == "sci" else None
    cpu_out = enhance_frame(Enhancer(create_engine(engine, weights)), planar)
    dev_enh = Enhancer(create_engine(engine, weights))
    dev_out = enhance_device_frame(dev_enh, nv)
    assert dev_out is not None and dev_out.format.name == "yuv420p"
    assert (dev_out.pts, dev_out.time_base, dev_out.colorspace) == (7, Fraction(1, 30), planar.colorspace)
    a, b = planes_of(cpu_out), planes_of(dev_out)
    for x, y in ((a.y, b.y), (a.u, b.u), (a.v, b.v)):
        assert max_diff(x, y) <= 1  # the grids come from thumbnails that differ by OpenCV's rounding
    assert set(dev_enh.clock.ms) >= {"thumbnail", "engine", "temporal", "slice"}
    if engine == "sci":
        assert np.abs(b.y.astype(int) - planes_of(planar).y).mean() > 1  # it did enhance


def test_device_frame_path_10_bit() -> None:
    p10, planar10 = nv12_frame(96, 54, fmt="p010le")
    grid_engine = create_engine("identity")
    out = enhance_device_frame(Enhancer(grid_engine), p10)
    assert out is not None and out.format.name == "yuv420p10le"
    assert max_diff(planes_of(planar10).y, planes_of(out).y) <= 4


def test_frames_the_device_path_does_not_take_are_declined_once() -> None:
    bus = Bus()
    enh = Enhancer(create_engine("identity"))
    odd = av.VideoFrame(67, 45, "nv12")
    planar = av.VideoFrame(64, 48, "yuv422p")
    assert enhance_device_frame(enh, odd, bus) is None
    assert enhance_device_frame(enh, odd, bus) is None
    assert enhance_device_frame(enh, planar, bus) is None
    lines = [e.message for e in bus.history]
    assert len(lines) == 2 and "nv12 67x45 frames are not taken on the device" in lines[0]
    assert download_frame(planar) is planar  # software frames need no download


def test_slice_into_torch_writes_the_encoder_planes() -> None:
    for fmt in (PlaneFormat(8), PlaneFormat(10, "bt2020")):
        planes = random_planes(30, 44, fmt, seed=1)
        out = Planes.empty_like(planes)
        slice_into_torch(planes, random_grid(seed=1), out, CPU)
        want = slice_planes_cpu(planes, random_grid(seed=1))
        assert out.y.dtype == planes.y.dtype and max_diff(want.y, out.y) <= 1 and max_diff(want.v, out.v) <= 1


# -- decoding: hardware requested where there is none ------------------------------------------


def test_reader_falls_back_to_software_with_one_line(clips) -> None:
    bus = Bus()
    src = clips.audio
    with VideoReader(src.path, hwaccel="cuda", bus=bus) as r:
        frames = [f for f in r if isinstance(f, av.VideoFrame)]
    with VideoReader(src.path) as r:
        plain = [f for f in r if isinstance(f, av.VideoFrame)]
    assert len(frames) == len(plain) and all(f.format.name != "cuda" for f in frames)
    if not torch.cuda.is_available():
        assert [e.message for e in bus.history] == [
            "hardware decoding (cuda) is not available here (Operation not permitted); decoding h264 in software"
        ]


def test_reader_reports_a_stream_the_hardware_decoder_hands_back(clips) -> None:
    """``allow_software_fallback``: the decoder may return software frames; said once, frames still flow."""
    bus = Bus()
    with VideoReader(clips.audio.path, bus=bus) as r:
        r.hwaccel, r.hw_decoding = "cuda", None  # as if NVDEC had opened
        n = sum(isinstance(f, av.VideoFrame) for f in r)
    assert n == clips.audio.frames and r.hw_decoding is False
    [line] = [e.message for e in bus.history]
    assert line.startswith("the cuda decoder cannot decode this stream (h264 ")
    assert line.endswith(", yuv420p); decoding it in software")


def test_reader_without_a_hardware_decoder_for_the_codec(clips, monkeypatch) -> None:
    """A hwaccel context that did not attach (no NVDEC decoder for the codec) keeps software decoding."""
    import streamfix.io.reader as reader_mod

    real_open = av.open

    def fake_open(path, mode="r", **kw):
        kw.pop("hwaccel", None)  # opens fine, but without a hardware context
        return real_open(path, mode, **kw)

    monkeypatch.setattr(reader_mod.av, "open", fake_open)
    bus = Bus()
    with VideoReader(clips.ffv1_odd.path, hwaccel="cuda", bus=bus) as r:
        n = sum(isinstance(f, av.VideoFrame) for f in r)
    assert n == clips.ffv1_odd.frames
    assert [e.message for e in bus.history] == ["the cuda decoder has no support for ffv1; decoding it in software"]


def test_transcode_asks_for_nvdec_and_still_works_without(clips, tmp_path: Path) -> None:
    from streamfix.io.writer import EncodeOptions

    bus = Bus()
    out = tmp_path / "o.mp4"
    result = transcode(clips.audio.path, out, Enhancer(create_engine("identity")),
                       EncodeOptions(preset="ultrafast"), bus, hwaccel="cuda")
    assert result.frames == clips.audio.frames and out.exists()
    if not torch.cuda.is_available():
        assert any("decoding h264 in software" in e.message for e in bus.history)


def test_identity_grid_on_device_keeps_the_frame_within_one_code() -> None:
    nv, planar = nv12_frame(128, 72)
    y, uv = import_planes(nv, CPU)
    p = planes_of(planar)
    oy, ou, ov = slice_nv12(y, uv, BilateralGrid.identity(8, 16, 16), p.fmt, torch.float16)
    for a, b in ((p.y, oy), (p.u, ou), (p.v, ov)):
        assert max_diff(a, b) <= 1


def test_device_path_denoises_like_the_cpu_path(tiny_sci_weights: Path) -> None:
    """Noisy NV12 frames through the device path (on CPU tensors here) with the temporal denoiser:
    the same output as the CPU path within two codes (the paths' grids differ by a code from
    their thumbnails' rounding, and each denoiser carries its own rounded history), and steadier
    than without the denoiser."""
    from streamfix.denoise import TemporalDenoiser
    from streamfix.temporal import TemporalFilter

    rng = np.random.default_rng(0)
    base = backlit_frame(160, 90, 0.2).astype(np.float64)
    pairs = []
    for _ in range(6):
        rgb = np.clip(np.rint(base + rng.normal(0, 4.0, base.shape)), 0, 255).astype(np.uint8)
        planar = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        nv = planar.reformat(format="nv12")
        for f in (planar, nv):
            f.pts, f.time_base = len(pairs), Fraction(1, 30)
        pairs.append((nv, planar))

    def enhancer(denoise: bool) -> Enhancer:
        return Enhancer(create_engine("sci", tiny_sci_weights), temporal=TemporalFilter(),
                        denoiser=TemporalDenoiser() if denoise else None)

    cpu, dev, plain = enhancer(True), enhancer(True), enhancer(False)
    ys: dict[str, list[np.ndarray]] = {"cpu": [], "dev": [], "plain": []}
    for nv, planar in pairs:
        a = planes_of(enhance_frame(cpu, planar))
        out = enhance_device_frame(dev, nv)
        assert out is not None
        b = planes_of(out)
        for x, y in ((a.y, b.y), (a.u, b.u), (a.v, b.v)):
            assert max_diff(x, y) <= 2 and np.abs(x.astype(int) - y).mean() < 0.05
        ys["cpu"].append(a.y.astype(float))
        ys["dev"].append(b.y.astype(float))
        ys["plain"].append(planes_of(enhance_device_frame(plain, nv)).y.astype(float))
    assert len(dev.clock.ms["denoise"]) == 6
    step = {k: float(np.abs(np.diff(np.array(v[2:]), axis=0)).mean()) for k, v in ys.items()}
    assert step["dev"] < 0.7 * step["plain"], step
