"""The enhancement's stage times at two revisions, measured alternately on this machine.

    python tools/ab_enhance.py BASE [--engine sci] [--size 1920x1080] [--frames 12] [--rounds 4]
                               [--pairs 3] [--denoise 0.5]

Checks BASE out into a temporary git worktree and runs the same measurement there and in this
tree, one process after the other, ``--pairs`` times (base first in even pairs, this tree first
in odd ones, so that an order effect cancels): thumbnail → engine → temporal (adaptive) → slice →
denoise on one thread over synthetic yuv420p frames (after a warm-up), the CPU ms per frame of
each stage (the Enhancer's own clock) and of the whole. Prints each run, the medians and the
median of the pairs' ratios. Alternating processes is what makes the two comparable on a shared
machine whose speed drifts; even so, two identical trees have come out up to ≈ 10 % apart
(docs/PERFORMANCE.md, stop 15): a smaller difference is not evidence.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(args: argparse.Namespace) -> dict[str, float]:
    """One process's measurement with whatever ``streamfix`` is importable (the tree under test)."""
    import av

    from streamfix.engines import create_engine
    from streamfix.enhancer import Enhancer, StageClock
    from streamfix.grid.planes import Planes
    from streamfix.io.frames import planes_of
    from streamfix.synth import backlit_frame
    from streamfix.temporal import TemporalFilter

    extra = {}
    if args.denoise > 0:  # revisions before the temporal denoiser take --denoise 0
        from streamfix.denoise import TemporalDenoiser

        extra["denoiser"] = TemporalDenoiser(args.denoise)
    w, h = (int(v) for v in args.size.split("x"))
    planes = [planes_of(av.VideoFrame.from_ndarray(backlit_frame(w, h, t / 30), format="rgb24")
                        .reformat(format="yuv420p")) for t in range(args.frames)]
    enhancer = Enhancer(create_engine(args.engine), temporal=TemporalFilter(), **extra)
    enhancer.bind_thread()
    out = Planes.empty_like(planes[0])
    for p in planes[:3]:  # compile, warm up
        enhancer.enhance_planes(p, out)
    enhancer.clock = StageClock()
    c0 = time.thread_time()
    for _ in range(args.rounds):
        for p in planes:
            enhancer.enhance_planes(p, out)
    n = args.rounds * len(planes)
    result = {stage: statistics.fmean(v) for stage, v in enhancer.clock.cpu_ms.items()}
    result["total"] = (time.thread_time() - c0) * 1000.0 / n
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="git revision to compare this tree with")
    ap.add_argument("--engine", default="sci")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--denoise", type=float, default=0.5, help="denoiser strength, 0 = off (default 0.5)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(measure(args)))
        return
    flags = ["--engine", args.engine, "--size", args.size, "--frames", str(args.frames),
             "--rounds", str(args.rounds), "--denoise", str(args.denoise)]
    runs: dict[str, list[dict[str, float]]] = {args.base: [], "this tree": []}
    with tempfile.TemporaryDirectory(prefix="sf-ab-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base_tree), args.base],
                       check=True)
        try:
            for i in range(args.pairs):
                order = ((args.base, base_tree), ("this tree", ROOT))
                for label, tree in order if i % 2 == 0 else order[::-1]:  # ABBA: cancels an order effect
                    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
                    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", args.base,
                                           *flags], env=env, cwd=tree, check=True, capture_output=True, text=True)
                    runs[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
                    print(label, " ".join(f"{k} {v:.2f}" for k, v in runs[label][-1].items()), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=False)
    stages = list(runs["this tree"][0])
    print(f"\n{args.engine} at {args.size}, one thread, CPU ms per frame, median of {args.pairs} alternating runs"
          " (the pairs' order alternates)\n")
    print("| stage | " + " | ".join(runs) + " | this tree ÷ base, median of the pairs |\n|---|---|---|---|")
    for s in stages:
        medians = (statistics.median(r.get(s, 0.0) for r in v) for v in runs.values())
        ratio = statistics.median(b.get(s, 0.0) / a[s] for a, b in zip(runs[args.base], runs["this tree"], strict=True)
                                  if a.get(s, 0.0) > 0)
        print(f"| {s} | " + " | ".join(f"{m:.2f}" for m in medians) + f" | {ratio:.3f} |")


if __name__ == "__main__":
    main()
