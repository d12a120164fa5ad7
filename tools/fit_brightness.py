"""Does SCI's fitted grid keep the network's brightening, frame by frame?

    python tools/fit_brightness.py [--frames DIR] [--weights W]

For each frame of DIR (default: lowlight_phone_frames scene 450, a near-black burst) prints the
thumbnail's mean luma in 8-bit codes, the network's output ÷ input mean on the thumbnail, and the
same ratio for the grid fitted to it (exact, :class:`~streamfix.temporal.BrightnessMeter`) with
each regularisation of the gain model (``coefficients``, ``output``; streamfix.grid.fit.solve_gain),
each fitter warm-started from frame to frame as in the pipeline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from streamfix.engines import create_engine
from streamfix.grid.fit import REGULARISE, GridFitter
from streamfix.grid.slicing import RGB_LUMA
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import read_rgb
from streamfix.temporal import BrightnessMeter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, default=SHARED / "lowlight_phone_frames" / "450")
    ap.add_argument("--weights", type=Path, default=None, help="SCI weights (default: the shipped ones)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(p for p in args.frames.glob("*.png"))
    if not files:
        print(f"no PNG frames in {args.frames}", file=sys.stderr)
        return 1
    engine = create_engine("sci", args.weights)
    f = engine.fitter
    fitters = {r: GridFitter(f.shape, f.prior_weight, f.smoothness, model=f.model, regularise=r) for r in REGULARISE}
    w = torch.tensor(RGB_LUMA).view(3, 1, 1)
    heads = " | ".join(f"fit ratio, {r}" for r in REGULARISE)
    print(f"| frame | thumbnail mean (codes) | network ratio | {heads} |")
    print("|---|---|---|" + "---|" * len(REGULARISE))
    for p in files:
        thumb = thumbnail_from_rgb(read_rgb(p), engine.card.thumbnail)
        target = engine.enhance_thumbnail(thumb.rgb)
        meter = BrightnessMeter(thumb)
        mu = meter.input_mean()
        net = float((target * w).sum(0).mean()) / mu
        fits = [meter.output_mean(fitter.fit(thumb, target)) / mu for fitter in fitters.values()]
        print(f"| {p.name} | {mu * 255:.2f} | {net:.3f} | " + " | ".join(f"{v:.3f}" for v in fits) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
