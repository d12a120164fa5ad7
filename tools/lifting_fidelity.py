"""How closely `sci` through thumbnail → fitted grid → full-res slice matches SCI run at full resolution.

    python tools/lifting_fidelity.py [--weights W] [--sets lime,dicm,...] [--limit N]
        [--fit-model affine|gain] [--regularise coefficients|output]

Prints a markdown table: per shared set, the mean / min PSNR (EVAL.md definition) between the
two outputs, and the mean ms of each path at the set's resolution (one thread).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.grid.fit import MODELS, REGULARISE, GridFitter
from streamfix.metrics import psnr, read_rgb

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ["lime", "dicm", "lol_eval15_low_only", "sice_part1_512_unlabeled", "backlit_cliplit",
        "backlit_web_ovd0312", "fivek_dpe_expertc_deeplpf/input", "lol_v1_train_pairs_subset/input"]
EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="SCI weights (default: the shipped ones)")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--limit", type=int, default=0, help="images per set (0 = all)")
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--fit-model", choices=MODELS, help="override the card's per-cell model (affine or gain)")
    ap.add_argument("--regularise", choices=REGULARISE, help="override the card's gain-model regularisation")
    args = ap.parse_args()
    torch.set_num_threads(1)
    engine = create_engine("sci", args.weights)
    if args.fit_model or args.regularise:
        f = engine.fitter
        engine.fitter = GridFitter(f.shape, f.prior_weight, f.smoothness, model=args.fit_model or f.model,
                                   regularise=args.regularise or f.regularise)
    enhancer = Enhancer(engine)
    print(f"weights: {args.weights or engine.card.weights}; fit model: {engine.fitter.model}, "
          f"regularise: {engine.fitter.regularise}\n")
    print("| set | images | PSNR mean (dB) | PSNR min | lifted ms | full-res ms |")
    print("|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        folder = args.data / name
        if not folder.is_dir():
            print(f"| {name} | missing | | | | |")
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXT)
        if args.limit:
            files = files[: args.limit]
        vals, t_lift, t_full = [], [], []
        for p in files:
            rgb = read_rgb(p)
            t0 = time.perf_counter()
            lifted = enhancer.enhance_rgb(rgb, new_scene=True)
            t1 = time.perf_counter()
            full = engine.enhance_full_resolution(rgb)
            t2 = time.perf_counter()
            vals.append(psnr(lifted, full))
            t_lift.append((t1 - t0) * 1000)
            t_full.append((t2 - t1) * 1000)
        print(f"| {name} | {len(files)} | {np.mean(vals):.2f} | {np.min(vals):.2f} | "
              f"{np.median(t_lift):.0f} | {np.median(t_full):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
