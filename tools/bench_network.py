"""An engine's network and its whole ``predict`` on one thumbnail, wall ms per call.

    python tools/bench_network.py [--engine backlitnet] [--threads 1,2] [--reps 100] [--rounds 2]

The network is timed on its input tensor in both memory layouts — contiguous (NCHW) and
channels-last (NHWC, what the engines hand to oneDNN on the CPU) — alternating within each
round, so the comparison is made in one process on the same machine state. ``predict`` is the
engine as the pipeline calls it (thumbnail in, grid out: network plus any fit). Thumbnail: a
synthetic backlit 1080p frame at the engine card's thumbnail size. Medians of ``reps`` calls, wall
time (with more than one thread the work is spread over them; run it on a quiet machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from streamfix.engines import create_engine
from streamfix.engines.registry import Engine
from streamfix.gpu.trt import install_network
from streamfix.grid.bilateral import Thumbnail
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.synth import backlit_frame


class _Recorder(torch.nn.Module):
    """Passes calls through to ``net``, keeping the first input it was given."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.first: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> object:
        if self.first is None:
            self.first = x.detach().clone()
        return self.net(x)


def network_input(engine: Engine, thumb: Thumbnail) -> torch.Tensor:
    """The tensor the engine hands its network for ``thumb``, recorded from one ``predict`` (the
    network swapped in and out as the TensorRT backend does, :func:`install_network`)."""
    net = engine.network()
    recorder = _Recorder(net)
    install_network(engine, recorder)
    try:
        engine.predict(thumb)
    finally:
        install_network(engine, net)
    if recorder.first is None:
        raise RuntimeError(f"engine {engine.name} did not call its network")
    return recorder.first


def median_ms(fn: Callable[[], object], reps: int) -> float:
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="backlitnet", help="an engine with a network (backlitnet, sci)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    engine = create_engine(args.engine)
    net = engine.network()
    if net is None:
        print(f"engine {args.engine} has no network", file=sys.stderr)
        return 1
    thumb = thumbnail_from_rgb(backlit_frame(1920, 1080, 0.0), engine.card.thumbnail)
    x = network_input(engine, thumb)
    print(f"{args.engine}: network input {tuple(x.shape)}\n")
    print("| threads | round | network, contiguous ms | network, channels-last ms | predict ms |")
    print("|---|---|---|---|---|")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for r in range(args.rounds):
            with torch.inference_mode():
                nchw = median_ms(lambda: net(x.contiguous()), args.reps)
                nhwc = median_ms(lambda: net(x.contiguous(memory_format=torch.channels_last)), args.reps)
            whole = median_ms(lambda: engine.predict(thumb), args.reps)
            print(f"| {threads} | {r + 1} | {nchw:.2f} | {nhwc:.2f} | {whole:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
