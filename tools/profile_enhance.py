"""Where one frame's enhancement spends its time: cProfile of the Enhancer on synthetic frames.

    python tools/profile_enhance.py [--size 1920x1080] [--engine sci] [--frames 8] [--rounds 3] [--top 20]

Runs thumbnail → engine → temporal (adaptive) → slice on one thread over ``frames`` synthetic
yuv420p frames, ``rounds`` times; prints ms per frame (wall and process CPU, without the
profiler) and the functions with the most own time per frame (with the profiler on, which adds
overhead to Python-level calls). This is how the changes in docs/PERFORMANCE.md were chosen.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import av

from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.grid.planes import Planes
from streamfix.io.frames import planes_of
from streamfix.synth import backlit_frame
from streamfix.temporal import TemporalFilter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--engine", default="sci")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = [av.VideoFrame.from_ndarray(backlit_frame(w, h, t / 30), format="rgb24").reformat(format="yuv420p")
              for t in range(args.frames)]
    planes = [planes_of(f) for f in frames]
    enhancer = Enhancer(create_engine(args.engine), temporal=TemporalFilter())
    enhancer.bind_thread()
    out = Planes.empty_like(planes[0])
    enhancer.enhance_planes(planes[0], out)  # compile / warm up

    def run() -> None:
        for _ in range(args.rounds):
            for p in planes:
                enhancer.enhance_planes(p, out)

    n = args.rounds * len(planes)
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    wall, cpu = (time.perf_counter() - t0) * 1000 / n, (time.process_time() - c0) * 1000 / n
    print(f"{args.engine} at {w}x{h}, one thread: {wall:.2f} ms/frame wall, {cpu:.2f} ms/frame CPU\n")
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: args.top]  # type: ignore[attr-defined]
    print("| function | calls/frame | own ms/frame | with callees ms/frame |\n|---|---|---|---|")
    for (file, line, name), (_, calls, own, total, _) in rows:
        where = name if file == "~" else f"{file.split('streamfix/')[-1]}:{line}({name})"
        print(f"| {where} | {calls / n:.0f} | {own * 1000 / n:.2f} | {total * 1000 / n:.2f} |")


if __name__ == "__main__":
    main()
