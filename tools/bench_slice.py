"""Slicing cost per frame: the fused CPU kernel against PyTorch's 5-D grid_sample reference.

    python tools/bench_slice.py [--size 1920x1080] [--threads 2] [--reps 20]

Random 8-bit yuv420p planes and random 16×16×16 grids — a general one (3×4 affines: three table
lookups per sample) and a neutral one (a gain and a grey offset per cell, as SCI's gain-model
fits: one lookup per sample); median and min wall ms per frame. Also the temporal denoiser's pass
over the sliced planes (streamfix.denoise: branch-free, so its cost does not depend on the content).
The reference is :func:`streamfix.grid.slicing.slice_planes` (the CUDA path's code, on CPU tensors).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import torch

from streamfix.denoise import TemporalDenoiser
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.colour import PlaneFormat
from streamfix.grid.kernels import is_neutral, slice_planes_cpu
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import slice_planes


def timeit(fn, reps: int) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return float(np.median(ts)), float(np.min(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--ref-reps", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    fmt = PlaneFormat()
    p = Planes(rng.integers(16, 236, (h, w)).astype(np.uint8), rng.integers(16, 241, (h // 2, w // 2)).astype(np.uint8),
               rng.integers(16, 241, (h // 2, w // 2)).astype(np.uint8), fmt)
    ident = BilateralGrid.identity(16, 16, 16)
    noise = torch.randn(ident.coeffs.shape, generator=torch.Generator().manual_seed(0))
    grid = BilateralGrid(ident.coeffs + 0.1 * noise)
    gain = 1.0 + 0.5 * torch.rand((16, 16, 16), generator=torch.Generator().manual_seed(1))
    neutral_coeffs = torch.zeros_like(ident.coeffs)
    for c in range(3):
        neutral_coeffs[5 * c] = gain
        neutral_coeffs[4 * c + 3] = 0.02
    neutral = BilateralGrid(neutral_coeffs)
    assert is_neutral(neutral, fmt) and not is_neutral(grid, fmt)
    out = Planes.empty_like(p)
    fused = timeit(lambda: slice_planes_cpu(p, grid, out), args.reps)
    fused_neutral = timeit(lambda: slice_planes_cpu(p, neutral, out), args.reps)
    den = TemporalDenoiser()
    den.planes(p, out)  # starts its history
    denoise = timeit(lambda: den.planes(p, out), args.reps)
    ty, tu, tv = (torch.from_numpy(a) for a in (p.y, p.u, p.v))
    ref = timeit(lambda: slice_planes(ty, tu, tv, grid, fmt), args.ref_reps)
    print(f"{w}x{h} yuv420p, grid 16x16x16, {args.threads} threads")
    print("| path | median ms | min ms |\n|---|---|---|")
    print(f"| fused numba kernel (planes), general grid | {fused[0]:.1f} | {fused[1]:.1f} |")
    print(f"| fused numba kernel (planes), neutral grid | {fused_neutral[0]:.1f} | {fused_neutral[1]:.1f} |")
    print(f"| grid_sample reference (torch) | {ref[0]:.1f} | {ref[1]:.1f} |")
    print(f"| temporal denoiser (Y, U, V), after slicing | {denoise[0]:.2f} | {denoise[1]:.2f} |")
    print(f"speed-up over the reference (median): {ref[0] / fused[0]:.1f}x general, "
          f"{ref[0] / fused_neutral[0]:.1f}x neutral")
    # the kernel's parts, as CPU time of this thread (robust to other load on the machine)
    from streamfix.grid import kernels as K
    from streamfix.grid.colour import affine_to_code_cells, depth_lut

    c = affine_to_code_cells(grid.coeffs, fmt)
    lutz = depth_lut(grid.guide_curve(), fmt, 16).numpy()
    z0 = np.floor(lutz).astype(np.int32)
    wz = (lutz - z0).astype(np.float32)
    lt, ct = np.empty((16, 16, 256, 3), np.float32), np.empty((2, 16, 16, 256, 3), np.float32)
    yb = np.empty(p.u.shape, np.uint8)
    K._block_luma(p.y, 1, 1, yb)
    cn = affine_to_code_cells(neutral.coeffs, fmt)
    nlt, ngt = np.empty((16, 16, 256), np.float32), np.empty((16, 16, 256), np.float32)
    parts = {
        "value tables": lambda: K._value_tables(c, z0, wz, lt, ct),
        "luma pass": lambda: K._luma_kernel(p.y, p.u, p.v, out.y, lt, 1, 1, 255),
        "block luma (chroma's depth)": lambda: K._block_luma(p.y, 1, 1, yb),
        "chroma pass": lambda: K._chroma_kernel(yb, p.u, p.v, out.u, out.v, ct, h, w, 1, 1, 255),
        "neutral: value tables": lambda: K._neutral_tables(cn, z0, wz, nlt, ngt),
        "neutral: luma pass": lambda: K._neutral_luma_kernel(p.y, out.y, nlt, 255),
        "neutral: chroma pass (its block luma included)":
            lambda: K._neutral_chroma_kernel(p.y, p.u, p.v, out.u, out.v, ngt, 1, 1, 128, 255),
    }
    print("| kernel part | thread-CPU ms (min of reps) |\n|---|---|")
    for name, fn in parts.items():
        fn()
        ts = []
        for _ in range(args.reps):
            t = time.thread_time()
            fn()
            ts.append((time.thread_time() - t) * 1000)
        print(f"| {name} | {min(ts):.2f} |")


if __name__ == "__main__":
    main()
