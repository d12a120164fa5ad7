"""The TensorRT engine cache and network wrapper, with fake compilers and fake device facts (no GPU needed).

What must hold: the same key reuses the cached file; a change of any key part builds another;
a corrupt or mismatching file is rebuilt; writes are atomic and locked; a failed build falls back
to the eager network with one line; dtypes are cast at the wrapper's edges.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from streamfix.engines import create_engine
from streamfix.events import Bus
from streamfix.gpu.trt import (
    CacheKey,
    CompiledNetwork,
    DeviceFacts,
    EngineCache,
    ExportCompiler,
    file_lock,
    forget_loaded,
    install_network,
    install_tensorrt,
    prebuild,
    weights_hash,
)

FACTS = DeviceFacts("NVIDIA H100 80GB HBM3", (9, 0), "2.13.0", "2.13.0", "11.0.0.1")
KEY = CacheKey.of("sci", "a" * 64, FACTS, (1, 3, 144, 256), torch.float16)


class Scale(nn.Module):
    """A tiny 'network': y = 2x (+ an int output to check it is not cast)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x * self.w, torch.zeros(1, dtype=torch.int64)


class FakeCompiler:
    """Counts builds and loads; 'compiles' by returning the module; files hold a marker + the weight."""

    name = "fake"
    device_type = None

    def __init__(self, facts: DeviceFacts = FACTS, fail: bool = False) -> None:
        self._facts = facts
        self.fail = fail
        self.builds = 0
        self.loads = 0
        self.seen_dtypes: list[torch.dtype] = []

    def facts(self, device: torch.device) -> DeviceFacts:
        return self._facts

    def compile(self, module: nn.Module, example: torch.Tensor) -> nn.Module:
        if self.fail:
            raise RuntimeError("no converter for aten::frobnicate\nsecond line")
        self.builds += 1
        self.seen_dtypes.append(example.dtype)
        return module

    def save(self, compiled: nn.Module, example: torch.Tensor, path: Path) -> None:
        path.write_text(json.dumps({"fake-engine": float(compiled.w.detach())}))

    def load(self, path: Path) -> nn.Module:
        data = json.loads(path.read_text())  # raises on a corrupt file
        self.loads += 1
        m = Scale()
        with torch.no_grad():
            m.w.fill_(data["fake-engine"])
        return m.half()


@pytest.fixture(autouse=True)
def _fresh_memory():
    forget_loaded()
    yield
    forget_loaded()


def get(cache: EngineCache, key: CacheKey, comp: FakeCompiler):
    ex = torch.zeros(key.shape)
    return cache.get(key, lambda: comp.compile(Scale(), ex), lambda m, p: comp.save(m, ex, p), comp.load)


def test_same_key_reuses_the_cached_file(tmp_path: Path) -> None:
    cache, comp = EngineCache(tmp_path), FakeCompiler()
    first = get(cache, KEY, comp)
    second = get(cache, KEY, comp)
    assert (first.status, second.status) == ("built", "hit")
    assert comp.builds == 1 and comp.loads == 1
    assert first.path == second.path == tmp_path / KEY.filename()
    assert json.loads(first.path.with_suffix(".json").read_text()) == KEY.as_dict()


@pytest.mark.parametrize("part", [f.name for f in dataclasses.fields(CacheKey)])
def test_a_change_of_any_key_part_builds_again(tmp_path: Path, part: str) -> None:
    changed = {
        "engine": "backlitnet", "weights": "b" * 64, "gpu": "NVIDIA H200", "capability": (8, 9),
        "torch": "2.14.1", "torch_tensorrt": "2.14.0", "tensorrt": "11.1.0", "shape": (1, 3, 256, 144),
        "dtype": "float32",
    }[part]
    other = dataclasses.replace(KEY, **{part: changed})
    assert other.digest() != KEY.digest() and other.filename() != KEY.filename()
    cache, comp = EngineCache(tmp_path), FakeCompiler()
    assert get(cache, KEY, comp).status == "built"
    assert get(cache, other, comp).status == "built"
    assert comp.builds == 2
    assert get(cache, KEY, comp).status == "hit" and get(cache, other, comp).status == "hit"


def test_corrupt_or_foreign_files_are_rebuilt(tmp_path: Path) -> None:
    cache, comp = EngineCache(tmp_path), FakeCompiler()
    path = get(cache, KEY, comp).path
    path.write_bytes(b"\x00garbage")  # torn / corrupt engine
    r = get(cache, KEY, comp)
    assert r.status == "rebuilt" and "could not be loaded" in r.note and comp.builds == 2
    assert get(cache, KEY, comp).status == "hit"
    path.with_suffix(".json").write_text(json.dumps({**KEY.as_dict(), "gpu": "someone else's"}))
    r = get(cache, KEY, comp)
    assert r.status == "rebuilt" and "expected key" in r.note and comp.builds == 3
    path.with_suffix(".json").unlink()  # a file without its sidecar is not trusted either
    assert get(cache, KEY, comp).status == "rebuilt"


def test_writes_are_atomic_and_a_failed_save_does_not_stop_the_run(tmp_path: Path) -> None:
    cache, comp = EngineCache(tmp_path), FakeCompiler()
    get(cache, KEY, comp)
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]

    def bad_save(m: nn.Module, p: Path) -> None:
        p.write_text("half")
        raise OSError("No space left on device")

    r = cache.get(dataclasses.replace(KEY, engine="other"), lambda: Scale(), bad_save, comp.load)
    assert r.status == "built" and "could not be cached" in r.note and isinstance(r.module, Scale)
    assert not (tmp_path / dataclasses.replace(KEY, engine="other").filename()).exists()
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_concurrent_builders_build_once(tmp_path: Path) -> None:
    cache, comp = EngineCache(tmp_path), FakeCompiler()
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(get(cache, KEY, comp).status)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["built", "hit", "hit", "hit"] and comp.builds == 1


def test_file_lock_times_out_with_one_line(tmp_path: Path) -> None:
    from streamfix.errors import StreamfixError

    lock = tmp_path / "x.lock"
    # flock is per open file description: a second open in the same process contends
    with file_lock(lock), pytest.raises(StreamfixError, match="timed out"), file_lock(lock, timeout=0.3):
        pass


def test_weights_hash_follows_the_tensors() -> None:
    a, b = Scale(), Scale()
    assert weights_hash(a) == weights_hash(b)
    with torch.no_grad():
        b.w.add_(1e-3)
    assert weights_hash(a) != weights_hash(b)


@torch.no_grad()
def test_wrapper_casts_compiles_per_shape_and_reuses(tmp_path: Path) -> None:
    comp = FakeCompiler()
    bus = Bus()
    net = CompiledNetwork(Scale(), "fake", comp, EngineCache(tmp_path), torch.float16, bus)
    x = torch.rand(1, 3, 8, 8)
    y, i = net(x)
    assert y.dtype == torch.float32 and i.dtype == torch.int64
    assert torch.allclose(y, 2 * x, atol=2e-3)
    net(torch.rand(1, 3, 8, 8))
    net(torch.rand(1, 3, 4, 8))
    assert comp.builds == 2 and comp.seen_dtypes == [torch.float16, torch.float16]
    assert [r.status for r in net.records] == ["built", "built"]
    lines = [e.message for e in bus.history]
    assert len(lines) == 2 and lines[0].startswith("fake engine fake 1x3x8x8 float16: built in ")
    # another wrapper (another engine instance) in the same process: memory; in a new process: the disk
    again = CompiledNetwork(Scale(), "fake", comp, EngineCache(tmp_path), torch.float16)
    again(x)
    assert again.records[-1].status == "memory"
    forget_loaded()
    fresh = CompiledNetwork(Scale(), "fake", comp, EngineCache(tmp_path), torch.float16)
    fresh(x)
    assert fresh.records[-1].status == "hit" and comp.builds == 2
    assert fresh.w is fresh.eager.w  # unknown attributes read through to the eager network


@torch.no_grad()
def test_a_failed_build_runs_the_network_eagerly_with_one_line(tmp_path: Path) -> None:
    bus = Bus()
    net = CompiledNetwork(Scale(), "fake", FakeCompiler(fail=True), EngineCache(tmp_path), torch.float16, bus)
    x = torch.rand(1, 3, 4, 4)
    for _ in range(3):
        y, _ = net(x)
        assert torch.equal(y, 2 * x)  # eager, full precision
    assert [e.message for e in bus.history] == [
        "fake could not build fake 1x3x4x4 float16 (RuntimeError: no converter for aten::frobnicate); "
        "running the network in PyTorch on cpu"
    ]


def test_calls_that_need_gradients_run_eagerly(tmp_path: Path) -> None:
    comp = FakeCompiler()
    net = CompiledNetwork(Scale(), "fake", comp, EngineCache(tmp_path), torch.float16)
    y, _ = net(torch.rand(1, 3, 4, 4, requires_grad=True))
    y.sum().backward()
    assert comp.builds == 0 and net.eager.w.grad is not None


def test_weights_changed_in_place_stop_the_compiled_network(tmp_path: Path) -> None:
    """Fine-tuning while running (``--adapt``) changes the weights: the stale engine must not run."""
    bus = Bus()
    comp = FakeCompiler()
    net = CompiledNetwork(Scale(), "fake", comp, EngineCache(tmp_path), torch.float16, bus)
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        net(x)
        net.eager.w.mul_(1.5)  # an optimiser step
        y, _ = net(x)
        net(x)
    assert torch.equal(y, 3 * x) and comp.builds == 1
    assert sum("weights changed while running" in e.message for e in bus.history) == 1


def test_engines_keeping_their_network_elsewhere_are_not_compiled() -> None:
    """A TensorRT compiler only takes networks on the GPU; ExCNet keeps (and trains) its own on the CPU."""

    class GpuOnly(FakeCompiler):
        device_type = "cuda"

    bus = Bus()
    engine = create_engine("identity")
    engine.network = lambda: Scale()  # a CPU network
    assert install_tensorrt(engine, bus, compiler=GpuOnly()) is None
    assert [e.message for e in bus.history] == ["engine identity runs its network on the CPU: not compiled"]
    bus = Bus()
    assert install_tensorrt(engine, bus, compiler=FakeCompiler()) is None  # not held in an attribute
    assert "does not keep its network in an attribute" in bus.history[0].message


def test_install_rebinds_every_attribute_holding_the_network(tiny_sci_weights: Path) -> None:
    engine = create_engine("sci", tiny_sci_weights)
    net = engine.network()
    wrapper = nn.Identity()
    assert install_network(engine, wrapper) == ["net"]
    assert engine.network() is wrapper and net is not wrapper


def test_export_compiler_round_trip_through_the_cache(tiny_sci_weights: Path, tmp_path: Path) -> None:
    """torch.export stands in for TensorRT: build, save, reload from disk, same numbers."""
    bus = Bus()
    engine = create_engine("sci", tiny_sci_weights)
    eager = engine.network()
    reports = prebuild(engine, [(1080, 1920), (2160, 3840)], bus, tmp_path, ExportCompiler(FACTS))
    assert [r.status for r in reports[0].records] == ["built"] and reports[1].note  # 4K: same thumbnail shape
    key = reports[0].records[0].key
    assert key.shape == (1, 3, 144, 256) and key.dtype == "float16" and key.gpu == FACTS.gpu
    forget_loaded()
    engine2 = create_engine("sci", tiny_sci_weights)
    again = prebuild(engine2, [(1080, 1920)], None, tmp_path, ExportCompiler(FACTS))
    assert [r.status for r in again[0].records] == ["hit"]
    x = torch.rand(1, 3, 144, 256) * 0.3
    with torch.inference_mode():
        assert (engine2.network()(x) - eager(x)).abs().max() < 2e-2
    assert install_tensorrt(engine2) is engine2.network()  # installing twice keeps the one wrapper


def test_build_engines_face_with_the_export_compiler(cli, tiny_sci_weights: Path, tmp_path: Path) -> None:
    r = cli("build-engines", "--engine", "sci", "--weights", tiny_sci_weights, "--size", "640x480",
            "--compiler", "export", "--cache-dir", tmp_path)
    assert r.rc == 0, r.err
    assert "sci         640x480    1x3x192x256 float16: built in" in r.out
    r = cli("build-engines", "--list", "--cache-dir", tmp_path)
    assert r.rc == 0 and r.out.startswith("1 cached engine(s)") and "sci 1x3x192x256 float16 on cpu" in r.out
    r = cli("build-engines", "--engine", "identity", "--compiler", "export", "--cache-dir", tmp_path)
    assert r.rc == 1 and "nothing was built" in r.one_error() and "no network to compile" in r.out
