"""What per-frame CPU cost the end-to-end ratio allows: the transcode pipeline with a fixed cost.

    python tools/cpu_budget.py [-i FILE | --synthetic 1080p] [--frames 150] [--costs 0,2,4,6,8,10,12]
                               [--plan-share 0.45] [--rounds 3] [--json out.json]

Runs the real pipeline (`streamfix.pipeline.transcode`: decode ‖ plan ‖ slice ‖ encode, libx264
veryfast crf 20, the bench's synthetic clip or ``-i FILE``) with an enhancer that does no enhancement but spends
a fixed CPU time per frame on its two threads — ``plan_share`` of it on the plan thread, the rest
on the slice thread, where the engine and the slicing spend theirs (≈ 0.45 / 0.55 for sci) — in
compiled code that releases the GIL, as the real kernels do, and then hands the encoder an
unchanged copy of the decoded frame. So the encoder sees exactly the passthrough's content and
the run's fps differs from the passthrough's only by the injected cost: the curve ratio(cost)
is the budget an enhancement has on this machine for a given end-to-end ratio (issue 7's 0.85).
Each cost's run alternates with a passthrough run (the `identity` floor of `streamfix bench`);
the ratio of each pair is taken, then the median over ``rounds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from streamfix.bench import parse_resolution, synthetic_clip, video_rate
from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.events import Bus
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.planes import Planes
from streamfix.io.writer import EncodeOptions
from streamfix.pipeline import transcode


@numba.njit(nogil=True, cache=True)
def _spin(n: int, seed: float) -> float:  # pragma: no cover - compiled
    """Dependent float arithmetic, ``n`` steps (no memory traffic): CPU time, GIL released."""
    x = seed
    for _ in range(n):
        x = x * 1.0000001 + 1e-9
    return x


class _Spinner:
    """Spends a given CPU time: the step count of :func:`_spin` calibrated once on this thread."""

    def __init__(self) -> None:
        _spin(1000, 1.0)
        n, c0 = 5_000_000, time.thread_time()
        _spin(n, 1.0)
        self.steps_per_ms = n / max((time.thread_time() - c0) * 1000.0, 1e-6)

    def __call__(self, ms: float) -> None:
        if ms > 0:
            _spin(int(ms * self.steps_per_ms), 1.0)


class FixedCostEnhancer(Enhancer):
    """An enhancer whose plan spends ``plan_ms`` and whose apply spends ``apply_ms`` of CPU and
    copies the frame unchanged (the identity engine's card, no temporal filter or denoiser)."""

    def __init__(self, plan_ms: float, apply_ms: float, spinner: _Spinner) -> None:
        super().__init__(create_engine("identity"))
        self.plan_ms, self.apply_ms, self.spin = plan_ms, apply_ms, spinner

    def plan(self, planes: Planes) -> BilateralGrid:
        with self.clock.timed("engine"):
            self.spin(self.plan_ms)
        return BilateralGrid.identity(2, 2, 2)

    def apply(self, planes: Planes, grid: BilateralGrid, out: Planes) -> None:
        with self.clock.timed("slice"):
            for src, dst in zip((planes.y, planes.u, planes.v), (out.y, out.u, out.v), strict=True):
                np.copyto(dst, src)
            self.spin(self.apply_ms)


def run(src: Path, enhancer: Enhancer, frames: int, rate: float, work: Path) -> tuple[float, float]:
    """fps and process CPU ms per frame of one transcode of the first ``frames`` frames."""
    out = work / "out.mp4"
    c0 = time.process_time()
    result = transcode(src, out, enhancer, EncodeOptions(), Bus(), duration=(frames - 0.5) / rate)
    cpu = (time.process_time() - c0) * 1000.0 / result.frames
    out.unlink(missing_ok=True)
    return result.frames / result.seconds, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-i", dest="input", type=Path, default=None, help="a video file instead of the synthetic clip")
    ap.add_argument("--synthetic", default="1080p")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--costs", default="0,2,4,6,8,10,12", help="CPU ms per frame to inject, comma-separated")
    ap.add_argument("--plan-share", type=float, default=0.45, help="share of the cost on the plan thread")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    costs = [float(c) for c in args.costs.split(",")]
    size = parse_resolution(args.synthetic)
    spinner = _Spinner()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = args.input or synthetic_clip(size, args.frames, work)
        rate = video_rate(src)
        run(src, Enhancer(create_engine("identity"), passthrough=True), 10, rate, work)  # warm-up
        rows = []
        for cost in costs:
            ratios, fps, floor, cpu, floor_cpu = [], [], [], [], []
            for _ in range(args.rounds):
                f0, c0 = run(src, Enhancer(create_engine("identity"), passthrough=True), args.frames, rate, work)
                enh = FixedCostEnhancer(cost * args.plan_share, cost * (1 - args.plan_share), spinner)
                f1, c1 = run(src, enh, args.frames, rate, work)
                ratios.append(f1 / f0)
                fps.append(f1)
                floor.append(f0)
                cpu.append(c1)
                floor_cpu.append(c0)
            row = {"cost_ms": cost, "ratio": statistics.median(ratios), "ratios": ratios,
                   "fps": statistics.median(fps), "floor_fps": statistics.median(floor),
                   "cpu_ms_per_frame": statistics.median(cpu), "floor_cpu_ms_per_frame": statistics.median(floor_cpu)}
            rows.append(row)
            print(f"cost {cost:5.1f} ms/frame: ratio {row['ratio']:.3f} ({', '.join(f'{r:.3f}' for r in ratios)}); "
                  f"fps {row['fps']:.1f} vs floor {row['floor_fps']:.1f}; process CPU "
                  f"{row['cpu_ms_per_frame']:.1f} vs {row['floor_cpu_ms_per_frame']:.1f} ms/frame", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"source": str(args.input or args.synthetic), "frames": args.frames,
                                         "plan_share": args.plan_share, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
