"""The CPU slicing kernels at another revision against this tree's, in one process, calls interleaved.

    python tools/ab_slice.py BASE [--calls 100] [--size 1920x1080]

Loads ``streamfix/grid/kernels.py`` as it is at BASE (``git show``) under another module name
beside this tree's (everything it imports — the 8-lane bodies, the colour rewrite — is this
tree's), checks that both slice the same frames to the same codes, then calls the two
``slice_planes_cpu`` alternately (the order flips every call) on synthetic 1080p yuv420p frames,
one thread, with a neutral grid (sci's, ExCNet's) and a general one (BacklitNet's), and prints
the median thread-CPU ms of each. Unlike ``tools/ab_enhance.py`` (whole processes, which drift
apart by up to ≈ 10 % on this machine), both versions here share the process, the frames and the
moment, so differences of a few percent show.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numba
import numpy as np
import torch

from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.kernels import slice_planes_cpu
from streamfix.grid.planes import Planes
from streamfix.io.frames import planes_of
from streamfix.synth import backlit_frame

ROOT = Path(__file__).resolve().parents[1]


def grids() -> dict[str, BilateralGrid]:
    """A neutral grid (gains, no hue change) and a general one with a guide curve."""
    ident = BilateralGrid.identity(8, 16, 16)
    coeffs = ident.coeffs.clone()
    coeffs[[0, 5, 10]] *= 1.6
    noise = 0.1 * torch.randn(ident.coeffs.shape, generator=torch.Generator().manual_seed(0))
    return {"neutral": BilateralGrid(coeffs), "general": BilateralGrid(ident.coeffs + noise,
                                                                       torch.linspace(0, 1, 16) ** 0.8)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", help="git revision whose kernels.py to compare with this tree's")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--size", default="1920x1080")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.base}:streamfix/grid/kernels.py"],
                            check=True, capture_output=True, text=True).stdout
    numba.set_num_threads(1)
    frames = [planes_of(av.VideoFrame.from_ndarray(backlit_frame(w, h, t / 30), format="rgb24")
                        .reformat(format="yuv420p")) for t in range(4)]
    out = Planes.empty_like(frames[0])
    with tempfile.TemporaryDirectory(prefix="sf-ab-slice-") as tmp:
        path = Path(tmp) / "base_kernels.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("base_kernels", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        versions = {args.base: module.slice_planes_cpu, "this tree": slice_planes_cpu}
        print(f"slice_planes_cpu at {w}x{h}, one thread, thread-CPU ms per call, median of {args.calls}\n")
        print(f"| grid | {args.base} | this tree | this tree ÷ {args.base} |\n|---|---|---|---|")
        for name, grid in grids().items():
            a, b = (f(frames[0], grid) for f in versions.values())
            if not all(np.array_equal(x, y) for x, y in zip((a.y, a.u, a.v), (b.y, b.u, b.v), strict=True)):
                raise SystemExit(f"the two versions slice the {name} grid to different codes")
            ms: dict[str, list[float]] = {k: [] for k in versions}
            for i in range(args.calls):
                for label in list(versions)[:: 1 if i % 2 else -1]:
                    c0 = time.thread_time()
                    versions[label](frames[i % len(frames)], grid, out)
                    ms[label].append((time.thread_time() - c0) * 1000.0)
            old, new = (statistics.median(v) for v in ms.values())
            print(f"| {name} | {old:.3f} | {new:.3f} | {new / old:.3f} |")


if __name__ == "__main__":
    main()
