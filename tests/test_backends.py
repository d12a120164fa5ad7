"""Backend selection (auto | cpu | cuda | tensorrt) with fake machines, and the one-line fallbacks/errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamfix.backends import create_backend_engine, select_backend
from streamfix.errors import StreamfixError, UsageError
from streamfix.events import Bus
from streamfix.gpu.probe import Probe, import_torch_tensorrt, tensorrt_install_hint

H100 = "NVIDIA H100 80GB HBM3"
NO_TRT = "torch-tensorrt is not installed"


def infos(bus: Bus) -> list[str]:
    return [e.message for e in bus.history if e.kind == "info"]


@pytest.mark.parametrize(
    ("gpu", "trt_error", "want", "says"),
    [
        (H100, None, ("tensorrt", "cuda"), "backend auto → tensorrt (NVIDIA H100 80GB HBM3, torch-tensorrt 2.13.0)"),
        (H100, NO_TRT, ("cuda", "cuda"), "backend auto → cuda (NVIDIA H100 80GB HBM3; TensorRT not used: "
                                         "torch-tensorrt is not installed)"),
        (None, None, ("cpu", "cpu"), "backend auto → cpu (no CUDA device found)"),
        (None, NO_TRT, ("cpu", "cpu"), "backend auto → cpu (no CUDA device found)"),
    ],
)
def test_auto_picks_tensorrt_then_cuda_then_cpu_and_says_so(gpu, trt_error, want, says) -> None:
    bus = Bus()
    b = select_backend("auto", bus, Probe(cuda_name=gpu, tensorrt_error=trt_error, trt_version="2.13.0"))
    assert (b.name, b.device) == want
    assert infos(bus) == [says]


def test_auto_does_not_import_torch_tensorrt_without_a_gpu() -> None:
    class Watch(Probe):
        def tensorrt_problem(self) -> str | None:
            raise AssertionError("probed TensorRT although no GPU is present")

    assert select_backend("auto", None, Watch(cuda_name=None)).name == "cpu"


def test_explicit_backends() -> None:
    assert select_backend("cpu", None, Probe(cuda_name=H100, tensorrt_error=None)).device == "cpu"
    assert select_backend("cuda", None, Probe(cuda_name=H100, tensorrt_error=NO_TRT)).gpu == H100
    b = select_backend("tensorrt", None, Probe(cuda_name=H100, tensorrt_error=None))
    assert (b.name, b.device, b.on_gpu) == ("tensorrt", "cuda", True)


def test_explicit_backend_errors_are_one_line() -> None:
    with pytest.raises(StreamfixError) as e:
        select_backend("tensorrt", None, Probe(cuda_name=H100, tensorrt_error=NO_TRT))
    msg = str(e.value)
    assert "\n" not in msg and "streamfix[tensorrt]" in msg and "pypi.nvidia.com" in msg and "--backend cuda" in msg
    assert e.value.exit_code == 1
    with pytest.raises(StreamfixError, match="no CUDA device"):
        select_backend("tensorrt", None, Probe(cuda_name=None, tensorrt_error=None))
    with pytest.raises(StreamfixError, match="no CUDA device is available"):
        select_backend("cuda", None, Probe(cuda_name=None))
    with pytest.raises(UsageError):
        select_backend("opencl")


def test_real_probe_here_reports_what_is_missing() -> None:
    """On this machine (no GPU, no torch-tensorrt) the real probe answers without raising."""
    module, problem = import_torch_tensorrt()
    if module is not None:
        pytest.skip("torch-tensorrt is importable here")
    assert problem and "\n" not in problem
    assert "streamfix[tensorrt]" in tensorrt_install_hint()


def test_tensorrt_backend_on_an_engine_without_network_runs_it_as_is() -> None:
    """identity has no network: nothing to compile, one line, the engine is unchanged."""
    from streamfix.backends import Backend

    bus = Bus()
    engine = create_backend_engine("identity", None, Backend("tensorrt", "cpu", "fake"), bus)
    assert engine.network() is None
    assert any("has no network" in m for m in infos(bus))


def test_cli_backend_errors_and_device_alias(cli, clips, tmp_path: Path) -> None:
    src = clips.audio.path
    r = cli("enhance", "-i", src, "-o", tmp_path / "a.mp4", "--backend", "tensorrt", "--engine", "identity", "-q")
    if import_torch_tensorrt()[0] is None:
        assert r.rc == 1
        assert "streamfix[tensorrt]" in r.one_error()
    r = cli("enhance", "-i", src, "-o", tmp_path / "b.mp4", "--backend", "cuda", "--engine", "identity", "-q")
    if not _has_cuda():
        assert r.rc == 1 and "no CUDA device" in r.one_error()
    r = cli("enhance", "-i", src, "-o", tmp_path / "c.mp4", "--backend", "cpu", "--device", "cpu")
    assert r.rc == 2 and "not allowed with argument" in r.one_error()
    r = cli("enhance", "-i", src, "-o", tmp_path / "d.mp4", "--device", "cpu", "--engine", "identity", "-q",
            "--preset", "ultrafast")
    assert r.rc == 0, r.err


def test_cli_auto_codec_and_stats(cli, clips, tmp_path: Path) -> None:
    r = cli("enhance", "-i", clips.audio.path, "-o", tmp_path / "s.mp4", "--engine", "identity", "--codec", "auto",
            "--stats", "--preset", "ultrafast", "-q")
    assert r.rc == 0, r.err
    if not _has_cuda():
        assert "streamfix: info: backend auto → cpu (no CUDA device found)" in r.err
        assert "streamfix: info: --codec auto → libx264 (the backend runs on the CPU)" in r.err
        assert "GPU: none (" in r.out
    assert "stats (" in r.out and "slice" in r.out and "latency" in r.out


def test_cli_build_engines_without_tensorrt(cli) -> None:
    if import_torch_tensorrt()[0] is not None:
        pytest.skip("torch-tensorrt is importable here")
    r = cli("build-engines", "--engine", "sci")
    assert r.rc == 1 and "build-engines needs TensorRT" in r.one_error()
    r = cli("build-engines", "--engine", "sci", "--engine", "identity", "--weights", "x.safetensors")
    assert r.rc == 2 and "--weights needs exactly one --engine" in r.one_error()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
