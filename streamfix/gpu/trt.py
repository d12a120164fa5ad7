"""TensorRT for the engine's network only: compile (fp16, static thumbnail shape), save, reload, cache.

TensorRT has no 5-D ``grid_sample``, and slicing is memory-bound anyway, so only the network an
engine exposes through :meth:`Engine.network` is compiled — by torch-tensorrt's dynamo path, for
the exact input shape the engine feeds it (one TensorRT engine per shape; SCI's thumbnail shape
follows the video's aspect ratio, BacklitNet always sees 128²).

**The cache.** torch-tensorrt's own engine cache keys on the graph, not on the GPU or the library
versions, and needs refittable engines; so streamfix keeps its own, one file per
:class:`CacheKey` — engine, weights hash (sha256 of the state dict), GPU name, compute
capability, torch / torch-tensorrt / TensorRT versions, input shape and dtype — under
``<user cache dir>/streamfix/engines`` (``$STREAMFIX_CACHE_DIR`` overrides). A JSON sidecar holds
the key in clear. Files are written to a temporary name and renamed into place, under a lock
file, so concurrent runs build once and never read half a file. A miss, a sidecar that does not
match, or a file that fails to load means a (re)build; a build that fails means the network runs
in PyTorch on the GPU, with one informational line.

The cache logic is plain Python around a :class:`Compiler` (compile / save / load / device facts),
so it is tested on machines without a GPU with fakes, and with :class:`ExportCompiler`
(``torch.export``, runs on the CPU) as a stand-in for :class:`TorchTensorRTCompiler`.

    >>> key = CacheKey("sci", "ab" * 32, "NVIDIA H100 80GB HBM3", (9, 0), "2.13.0", "2.13.0", "11.0.0",
    ...                (1, 3, 144, 256), "float16")
    >>> key.filename().startswith("sci-nvidia-h100-80gb-hbm3-sm90-1x3x144x256-float16-")
    True
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import torch
from torch import nn

from streamfix.engines import Engine
from streamfix.errors import StreamfixError
from streamfix.events import Bus
from streamfix.gpu.probe import import_torch_tensorrt, tensorrt_install_hint, tensorrt_version
from streamfix.grid.bilateral import Thumbnail
from streamfix.grid.thumbnail import thumbnail_size

#: precision of compiled networks unless an engine card's ``[tensorrt] precision`` says otherwise
DEFAULT_PRECISION = "float16"
PRECISIONS = {"float16": torch.float16, "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}

#: how long a run waits for another process building the same engine, seconds
LOCK_TIMEOUT_S = 1800.0


# ------------------------------------------------------------------------------------------
# the key


@dataclass(frozen=True)
class DeviceFacts:
    """What a compiled engine is only valid for: the GPU and the library versions."""

    gpu: str
    capability: tuple[int, int]
    torch: str
    torch_tensorrt: str
    tensorrt: str


@dataclass(frozen=True)
class CacheKey:
    """Everything a compiled network depends on. Any change means another file."""

    engine: str
    weights: str
    gpu: str
    capability: tuple[int, int]
    torch: str
    torch_tensorrt: str
    tensorrt: str
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, engine: str, weights: str, facts: DeviceFacts, shape: tuple[int, ...], dtype: torch.dtype) -> CacheKey:
        return cls(engine, weights, facts.gpu, tuple(facts.capability), facts.torch, facts.torch_tensorrt,
                   facts.tensorrt, tuple(int(s) for s in shape), str(dtype).removeprefix("torch."))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["capability"] = list(self.capability)
        d["shape"] = list(self.shape)
        return d

    def digest(self) -> str:
        """sha256 of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def filename(self) -> str:
        """Readable parts for people, the digest for uniqueness."""
        gpu = re.sub(r"[^a-z0-9]+", "-", self.gpu.lower()).strip("-") or "gpu"
        shape = "x".join(str(s) for s in self.shape)
        return f"{_slug(self.engine)}-{gpu}-sm{self.capability[0]}{self.capability[1]}-{shape}-{self.dtype}-" \
               f"{self.digest()[:16]}.pt2"

    def describe(self) -> str:
        shape = "x".join(str(s) for s in self.shape)
        return f"{self.engine} {shape} {self.dtype}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-") or "engine"


def weights_hash(module: nn.Module) -> str:
    """sha256 of a module's class and state dict (names, dtypes, shapes, bytes), in name order.

    Hashing the tensors rather than the weights file also covers weights changed in memory
    (fine-tuning) and files that differ only in container metadata.
    """
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------
# compilers


class Compiler(Protocol):
    """What the cache needs from a compiler. ``compile`` gets the network already in the target
    dtype and device, and an example input of the exact shape."""

    name: str
    #: the device type compiled networks run on (None: any)
    device_type: str | None

    def facts(self, device: torch.device) -> DeviceFacts: ...

    def compile(self, module: nn.Module, example: torch.Tensor) -> nn.Module: ...

    def save(self, compiled: nn.Module, example: torch.Tensor, path: Path) -> None: ...

    def load(self, path: Path) -> nn.Module: ...


class TorchTensorRTCompiler:
    """torch-tensorrt's dynamo path (needs a GPU, TensorRT and torch-tensorrt; imported lazily)."""

    name = "tensorrt"
    device_type = "cuda"

    def __init__(self, module: ModuleType | None = None, optimization_level: int = 3) -> None:
        if module is None:
            module, problem = import_torch_tensorrt()
            if module is None:
                raise StreamfixError(f"TensorRT: {problem}; {tensorrt_install_hint()}")
        self.trt = module
        self.optimization_level = optimization_level

    def facts(self, device: torch.device) -> DeviceFacts:
        return DeviceFacts(torch.cuda.get_device_name(device), tuple(torch.cuda.get_device_capability(device)),
                           torch.__version__, str(getattr(self.trt, "__version__", "unknown")),
                           tensorrt_version(self.trt))

    def compile(self, module: nn.Module, example: torch.Tensor) -> nn.Module:
        # The network arrives in the target dtype (``.half()``): TensorRT ≥ 10.12 is strongly typed
        # and takes precisions from the graph; older torch-tensorrt releases read
        # ``enabled_precisions``, which newer ones accept and ignore on the dynamo path.
        return self.trt.compile(module, ir="dynamo", arg_inputs=[example], enabled_precisions={example.dtype},
                                min_block_size=1, optimization_level=self.optimization_level)

    def save(self, compiled: nn.Module, example: torch.Tensor, path: Path) -> None:
        self.trt.save(compiled, str(path), output_format="exported_program", arg_inputs=[example])

    def load(self, path: Path) -> nn.Module:
        loaded = self.trt.load(str(path))
        return loaded.module() if hasattr(loaded, "module") else loaded


class ExportCompiler:
    """``torch.export`` standing in for TensorRT: same save/load/cache life, runs on any device.

    Used by the tests (and usable to check an engine's graph exports cleanly: what the dynamo
    path of torch-tensorrt starts from).
    """

    name = "torch.export"
    device_type = None  # any

    def __init__(self, facts: DeviceFacts | None = None) -> None:
        self._facts = facts

    def facts(self, device: torch.device) -> DeviceFacts:
        if self._facts is not None:
            return self._facts
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        cap = tuple(torch.cuda.get_device_capability(device)) if device.type == "cuda" else (0, 0)
        return DeviceFacts(name, cap, torch.__version__, "none", "none")

    def compile(self, module: nn.Module, example: torch.Tensor) -> nn.Module:
        program = torch.export.export(module, (example,))
        compiled = program.module()
        compiled._streamfix_program = program  # what save() writes
        return compiled

    def save(self, compiled: nn.Module, example: torch.Tensor, path: Path) -> None:
        program = getattr(compiled, "_streamfix_program", None) or torch.export.export(compiled, (example,))
        torch.export.save(program, str(path))

    def load(self, path: Path) -> nn.Module:
        return torch.export.load(str(path)).module()


# ------------------------------------------------------------------------------------------
# the disk cache


def default_cache_dir() -> Path:
    """``$STREAMFIX_CACHE_DIR/engines`` or the user cache dir's ``streamfix/engines``."""
    env = os.environ.get("STREAMFIX_CACHE_DIR")
    if env:
        return Path(env) / "engines"
    import platformdirs

    return Path(platformdirs.user_cache_dir("streamfix")) / "engines"


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing); a no-op where fcntl is absent."""
    try:
        import fcntl
    except ImportError:  # Windows: builds may race, but the atomic rename still protects readers
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StreamfixError(f"timed out after {timeout:.0f} s waiting for {path} "
                                         "(another streamfix is building the same engine)") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass
class CacheResult:
    """What :meth:`EngineCache.get` did: ``status`` hit | built | rebuilt, and how long it took."""

    module: nn.Module
    status: str
    path: Path
    seconds: float
    note: str = ""


class EngineCache:
    """Compiled networks on disk, one file (+ JSON sidecar) per :class:`CacheKey`."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: CacheKey) -> Path:
        return self.root / key.filename()

    def entries(self) -> list[dict[str, Any]]:
        """The keys of the files in the cache (from their sidecars), with sizes."""
        out = []
        for side in sorted(self.root.glob("*.json")):
            try:
                key = json.loads(side.read_text())
            except (OSError, ValueError):
                continue
            ep = side.with_suffix(".pt2")
            if ep.exists():
                out.append({**key, "file": str(ep), "bytes": ep.stat().st_size})
        return out

    def get(self, key: CacheKey, build: Callable[[], nn.Module], save: Callable[[nn.Module, Path], None],
            load: Callable[[Path], nn.Module]) -> CacheResult:
        """Load the compiled network for ``key``, or build, save and return it.

        Args:
            build: compiles (called on a miss or after a failed load; its exceptions propagate).
            save: writes a compiled network to a path; load: reads one back.

        A failed save is not fatal: the freshly built network is returned with a note.
        """
        t0 = time.perf_counter()
        path = self.path(key)
        side = path.with_suffix(".json")
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_suffix(".lock")):
            status = "built"
            note = ""
            if path.exists():
                if _sidecar_matches(side, key):
                    try:
                        module = load(path)
                        return CacheResult(module, "hit", path, time.perf_counter() - t0)
                    except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt
                        note = f"cached file {path.name} could not be loaded ({_first_line(e)})"
                else:
                    note = f"cached file {path.name} does not carry the expected key"
                status = "rebuilt"
                for p in (path, side):
                    p.unlink(missing_ok=True)
            module = build()
            try:
                _atomic_write(path, lambda tmp: save(module, tmp))
                _atomic_write(side, lambda tmp: tmp.write_text(json.dumps(key.as_dict(), indent=2, sort_keys=True)))
            except Exception as e:  # noqa: BLE001 - a cache we cannot write must not stop the run
                note = (note + "; " if note else "") + f"could not be cached in {self.root} ({_first_line(e)})"
            return CacheResult(module, status, path, time.perf_counter() - t0, note)


def _sidecar_matches(side: Path, key: CacheKey) -> bool:
    try:
        return json.loads(side.read_text()) == key.as_dict()
    except (OSError, ValueError):
        return False


def _atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """``write(tmp)`` to a unique temporary name beside ``path`` (same suffix), then rename over it."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _first_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[0][:200]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ------------------------------------------------------------------------------------------
# the network wrapper an engine calls


#: compiled networks already loaded in this process, by key digest (bench builds engines repeatedly)
_LOADED: dict[str, nn.Module] = {}


def forget_loaded() -> None:
    """Drop the in-process memo of compiled networks (the disk cache is untouched)."""
    _LOADED.clear()


@dataclass
class ShapeRecord:
    """One input shape the wrapper met and what became of it."""

    key: CacheKey | None
    status: str  # hit | built | rebuilt | memory | eager
    seconds: float = 0.0
    path: Path | None = None
    note: str = ""


class CompiledNetwork(nn.Module):
    """Stands in for an engine's network: per input shape, a compiled twin from the cache.

    Inputs are cast to the compiled precision and outputs (any nesting of tuples/lists/dicts)
    cast back to the caller's dtype, so the engine's code does not change. Attribute reads the
    wrapper does not know go to the eager network (``engine.net.config`` keeps working).

    Args:
        eager: the engine's network (on its device, eval mode).
        engine: the engine's name (part of the cache key).
        compiler: a :class:`Compiler`. cache: an :class:`EngineCache`.
        dtype: the compiled precision. bus: where build/load/fallback lines go.
    """

    def __init__(self, eager: nn.Module, engine: str, compiler: Compiler, cache: EngineCache,
                 dtype: torch.dtype = torch.float16, bus: Bus | None = None) -> None:
        super().__init__()
        self.eager = eager
        self.engine_name = engine
        self.compiler = compiler
        self.cache = cache
        self.dtype = dtype
        self.bus = bus
        self.weights = weights_hash(eager)
        self._version = self._weights_version()
        self._stale_noted = False
        self._by_shape: dict[tuple[tuple[int, ...], torch.device], nn.Module | None] = {}
        self.records: list[ShapeRecord] = []

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            eager = self.__dict__.get("_modules", {}).get("eager")
            if eager is None:
                raise
            return getattr(eager, name)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        # compiled engines are for inference: calls that need gradients (an engine optimising its
        # network at test time) and calls the compiled graph was not built for run eagerly
        if (args or kwargs or not isinstance(x, torch.Tensor) or not x.is_floating_point()
                or torch.is_grad_enabled()):
            return self.eager(x, *args, **kwargs)
        if self._weights_version() != self._version:
            # weights changed in place since they were hashed (``--adapt`` fine-tuning): a compiled
            # engine would run the old ones
            if not self._stale_noted:
                self._stale_noted = True
                self._info(f"{self.engine_name}'s weights changed while running (fine-tuning): the compiled "
                           "network is no longer used; running it in PyTorch")
            return self.eager(x)
        slot = (tuple(x.shape), x.device)
        if slot not in self._by_shape:
            self._by_shape[slot] = self.prepare(x)
        compiled = self._by_shape[slot]
        if compiled is None:
            return self.eager(x)
        return _cast_floats(compiled(x.to(self.dtype).contiguous()), x.dtype)

    def _weights_version(self) -> tuple[int, ...]:
        """In-place modification counters of the eager network's tensors (an optimiser step bumps them)."""
        eager = self._modules["eager"]
        try:
            return tuple(t._version for t in (*eager.parameters(), *eager.buffers()))
        except RuntimeError:  # inference tensors keep no version counter (and cannot be trained)
            return ()

    def key_for(self, example: torch.Tensor) -> CacheKey:
        return CacheKey.of(self.engine_name, self.weights, self.compiler.facts(example.device), tuple(example.shape),
                           self.dtype)

    def prepare(self, example: torch.Tensor) -> nn.Module | None:
        """Get the compiled network for ``example``'s shape (memory, disk cache or a build);
        None (run eager) when compiling fails."""
        key: CacheKey | None = None
        try:
            key = self.key_for(example)
            digest = key.digest()
            if digest in _LOADED:
                self.records.append(ShapeRecord(key, "memory"))
                return _LOADED[digest]
            ex = example.detach().to(self.dtype).contiguous()

            def build() -> nn.Module:
                net = copy.deepcopy(self.eager).eval().to(device=example.device, dtype=self.dtype)
                with torch.no_grad():
                    return self.compiler.compile(net, ex)

            result = self.cache.get(key, build, lambda m, p: self.compiler.save(m, ex, p), self.compiler.load)
        except Exception as e:  # noqa: BLE001 - a network TensorRT cannot take still runs in PyTorch
            what = key.describe() if key is not None else self.engine_name
            msg = (f"{self.compiler.name} could not build {what} ({_first_line(e)}); "
                   f"running the network in PyTorch on {example.device.type}")
            self.records.append(ShapeRecord(key, "eager", note=msg))
            self._info(msg)
            return None
        _LOADED[key.digest()] = result.module
        self.records.append(ShapeRecord(key, result.status, result.seconds, result.path, result.note))
        verb = {"hit": "loaded from the cache", "built": "built", "rebuilt": "rebuilt"}[result.status]
        extra = f"; {result.note}" if result.note else ""
        self._info(f"{self.compiler.name} engine {key.describe()}: {verb} in {result.seconds:.1f} s "
                   f"({result.path}){extra}")
        return result.module

    def _info(self, message: str) -> None:
        if self.bus is not None:
            self.bus.info("tensorrt", message)


def _cast_floats(obj: Any, dtype: torch.dtype) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, tuple):
        return tuple(_cast_floats(o, dtype) for o in obj)
    if isinstance(obj, list):
        return [_cast_floats(o, dtype) for o in obj]
    if isinstance(obj, dict):
        return {k: _cast_floats(v, dtype) for k, v in obj.items()}
    return obj


# ------------------------------------------------------------------------------------------
# engines


def install_network(engine: Engine, module: nn.Module) -> list[str]:
    """Make ``engine`` call ``module`` wherever it held its network. Returns the attribute names.

    Engines keep their network in an attribute and return it from :meth:`Engine.network`; every
    attribute holding that object is rebound (no engine code changes).
    """
    target = engine.network()
    names = [k for k, v in vars(engine).items() if v is target]
    for k in names:
        setattr(engine, k, module)
    return names


def engine_precision(engine: Engine) -> torch.dtype:
    """The card's ``[tensorrt] precision`` (float16 | float32), default float16."""
    value = str(engine.card.raw.get("tensorrt", {}).get("precision", DEFAULT_PRECISION)).lower()
    if value not in PRECISIONS:
        raise StreamfixError(f"engine card {engine.card.name}: [tensorrt] precision must be float16 or float32, "
                             f"got {value!r}")
    return PRECISIONS[value]


def install_tensorrt(engine: Engine, bus: Bus | None = None, cache_dir: Path | None = None,
                     compiler: Compiler | None = None) -> CompiledNetwork | None:
    """Route ``engine``'s network through a :class:`CompiledNetwork` (compiled per shape on first use).

    Returns None (with a line on ``bus``) for engines without a network, engines that keep their
    network on another device than the compiler's (ExCNet optimises its small network on the CPU
    for every frame), and engines that keep it where it cannot be rebound.
    """
    net = engine.network()
    if isinstance(net, CompiledNetwork):
        return net

    def skip(why: str) -> None:
        if bus is not None:
            bus.info("tensorrt", f"engine {engine.card.name} {why}")

    if net is None:
        skip("has no network: nothing for TensorRT to compile (slicing runs on the GPU as with --backend cuda)")
        return None
    compiler = compiler or TorchTensorRTCompiler()
    where = next((t.device.type for t in net.parameters()), None)
    if compiler.device_type is not None and where is not None and where != compiler.device_type:
        skip(f"runs its network on the {where.upper()}: not compiled")
        return None
    wrapper = CompiledNetwork(net, engine.card.name, compiler, EngineCache(cache_dir),
                              engine_precision(engine), bus)
    if not install_network(engine, wrapper):
        skip("does not keep its network in an attribute of its own: running it in PyTorch")
        return None
    return wrapper


def dummy_thumbnail(frame_hw: tuple[int, int], long_side: int) -> Thumbnail:
    """A mid-grey thumbnail of the size a ``(H, W)`` frame gives (for pre-building engines)."""
    h, w = thumbnail_size(*frame_hw, long_side)
    return Thumbnail(torch.full((3, h, w), 0.4), torch.full((h, w), 0.4))


@dataclass
class BuildReport:
    """``streamfix build-engines``' account of one engine at one frame size."""

    engine: str
    frame: tuple[int, int]
    records: list[ShapeRecord] = field(default_factory=list)
    note: str = ""


def prebuild(engine: Engine, frame_sizes: list[tuple[int, int]], bus: Bus | None = None,
             cache_dir: Path | None = None, compiler: Compiler | None = None) -> list[BuildReport]:
    """Build (or find) the compiled networks ``engine`` needs for frames of ``frame_sizes``.

    The engine runs once on a grey thumbnail per size: whatever shapes its network then sees
    are compiled, so this works for any engine without knowing how it feeds its network.
    """
    wrapper = install_tensorrt(engine, bus, cache_dir, compiler)
    reports = []
    for hw in frame_sizes:
        rep = BuildReport(engine.card.name, hw)
        if wrapper is None:
            rep.note = "no network to compile"
        else:
            before = len(wrapper.records)
            engine.predict(dummy_thumbnail(hw, engine.card.thumbnail))
            rep.records = wrapper.records[before:]
            if not rep.records:
                rep.note = "shape already prepared above"
        reports.append(rep)
    return reports
