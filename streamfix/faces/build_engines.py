"""``streamfix build-engines``: compile the engines' networks with TensorRT ahead of time.

A run with ``--backend tensorrt`` builds what it needs on first use (tens of seconds per shape);
this face does it beforehand, for the frame sizes given, into the same disk cache
(:mod:`streamfix.gpu.trt`). ``--list`` shows what the cache holds (works anywhere).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from streamfix.errors import StreamfixError, UsageError
from streamfix.events import Bus

#: frame sizes built when none are given: landscape 16:9 (1080p and 4K share the 256x144 thumbnail)
DEFAULT_SIZES = ("1920x1080",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-engines", help="pre-build the TensorRT engines (needs an NVIDIA GPU and torch-tensorrt)",
        description="Compile each engine's network with torch-tensorrt (fp16, static thumbnail shape) for the "
        "given frame sizes and store the result in the engine cache, so that --backend tensorrt starts at once. "
        "The cache key covers the engine, its weights, the GPU, its compute capability and the torch / "
        "torch-tensorrt / TensorRT versions: a change of any of them builds again.",
    )
    p.add_argument("--engine", action="append", help="engine to build (repeatable; default: every engine with a "
                   "network and weights)")
    p.add_argument("--weights", type=Path, help="weights for the one --engine given")
    p.add_argument("--size", action="append", help="frame size WxH or 720p/1080p/4k (repeatable; default 1920x1080); "
                   "the engine's thumbnail shape follows from it")
    p.add_argument("--cache-dir", type=Path, help="engine cache folder (default: the user cache dir's "
                   "streamfix/engines, or $STREAMFIX_CACHE_DIR/engines)")
    p.add_argument("--compiler", choices=("tensorrt", "export"), default="tensorrt",
                   help="tensorrt (default), or export: torch.export on the CPU instead (checks that the networks "
                   "export, on any machine; what torch-tensorrt's dynamo path starts from)")
    p.add_argument("--list", action="store_true", help="list the cache's entries and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamfix.gpu.trt import EngineCache, default_cache_dir

    cache_dir = args.cache_dir or default_cache_dir()
    if args.list:
        entries = EngineCache(cache_dir).entries()
        print(f"{len(entries)} cached engine(s) in {cache_dir}")
        for e in entries:
            shape = "x".join(str(s) for s in e.get("shape", []))
            sm = "".join(map(str, e.get("capability", [])))
            print(f"  {e.get('engine')} {shape} {e.get('dtype')} on {e.get('gpu')} sm{sm} "
                  f"torch {e.get('torch')} torch-tensorrt {e.get('torch_tensorrt')} TensorRT {e.get('tensorrt')} "
                  f"weights {str(e.get('weights'))[:12]}… {e['bytes'] / 2**20:.1f} MB")
        return 0
    if args.weights is not None and len(args.engine or []) != 1:
        raise UsageError("--weights needs exactly one --engine")
    sizes = [_size(s) for s in (args.size or DEFAULT_SIZES)]
    names = args.engine or _engines_with_networks()
    bus = Bus()
    bus.subscribe(lambda e: e.kind == "warning" and print(f"streamfix: {e.kind}: {e.message}"))
    compiler, device = _compiler(args.compiler)
    from streamfix.engines import create_engine
    from streamfix.gpu.trt import prebuild

    built = 0
    for name in names:
        engine = create_engine(name, args.weights, device)
        for rep in prebuild(engine, sizes, bus, cache_dir, compiler):
            w_h = f"{rep.frame[1]}x{rep.frame[0]}"
            if rep.note:
                print(f"{name:<11} {w_h:<10} {rep.note}")
            for r in rep.records:
                what = "x".join(map(str, r.key.shape)) + f" {r.key.dtype}" if r.key is not None else "?"
                where = f" → {r.path}" if r.path else ""
                extra = f" ({r.note})" if r.note else ""
                print(f"{name:<11} {w_h:<10} {what}: {r.status} in {r.seconds:.1f} s{where}{extra}")
                built += r.status != "eager"
    if built == 0:
        raise StreamfixError(f"nothing was built for {', '.join(names)} (see the lines above)")
    return 0


def _size(text: str) -> tuple[int, int]:
    """``WxH`` / ``1080p`` → ``(H, W)``."""
    from streamfix.bench import parse_resolution

    try:
        w, h = parse_resolution(text)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if w < 1 or h < 1:
        raise UsageError(f"frame size must be positive, got {text!r}")
    return h, w


def _engines_with_networks() -> list[str]:
    """Registered engines that ship weights (identity has no network; engines without weights cannot load)."""
    from streamfix.engines import available_engines

    names = [c.name for c in available_engines() if c.weights is not None and c.weights.exists()]
    if not names:
        raise StreamfixError("no engine has its weights here (see `streamfix engines`); pass --engine and --weights")
    return names


def _compiler(kind: str) -> tuple[object, str]:
    """The compiler and the device its engines run on; a one-line error when TensorRT cannot be used."""
    from streamfix.gpu.probe import Probe, tensorrt_install_hint
    from streamfix.gpu.trt import ExportCompiler, TorchTensorRTCompiler

    if kind == "export":
        return ExportCompiler(), "cpu"
    probe = Probe()
    problem = probe.tensorrt_problem()
    if problem is not None:
        raise StreamfixError(f"build-engines needs TensorRT: {problem}; {tensorrt_install_hint()}")
    if probe.cuda_device() is None:
        raise StreamfixError("build-engines needs an NVIDIA GPU (PyTorch sees none): TensorRT engines are built "
                             "for the GPU that runs them")
    return TorchTensorRTCompiler(probe.tensorrt_module()), "cuda"
