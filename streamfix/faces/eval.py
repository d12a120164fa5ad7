"""``streamfix eval``: EVAL.md's metrics for an engine next to the baselines, with contact sheets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamfix.errors import UsageError
from streamfix.faces.args import unit_float
from streamfix.presets import DEFAULTS

#: the temporal filter's and the denoiser's default strengths (as `streamfix enhance`'s)
DEFAULT_TEMPORAL = float(DEFAULTS["temporal"]["strength"])
DEFAULT_DENOISE = float(DEFAULTS["denoise"]["strength"])


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="score an engine against baselines on paired sets, image folders and videos",
        description="Compute the metrics of EVAL.md (PSNR/SSIM on pairs; NIQE, crushed/clipped % on images; "
        "flicker and brightness pumping on video) for an engine and the baselines. Prints a markdown table and "
        "writes OUT/eval.json, OUT/eval.md and one contact sheet PNG per set.",
    )
    p.add_argument("--engine", default="backlitnet",
                   help="engine to score (default backlitnet; 'none' for baselines only)")
    p.add_argument("--weights", type=Path, help="weights for the engine (default: the card's)")
    p.add_argument("--pairs", type=Path, action="append", default=[], metavar="DIR",
                   help="paired set DIR/input + DIR/target (repeatable)")
    p.add_argument("--images", type=Path, action="append", default=[], metavar="DIR",
                   help="folder of images without ground truth (repeatable)")
    p.add_argument("--video", type=Path, action="append", default=[], metavar="FILE", help="video file (repeatable)")
    p.add_argument("--split", choices=("all", "train", "val"), default="all",
                   help="half of each --pairs set: sorted names, even positions = train, odd = val (default all)")
    p.add_argument("--baselines", default="identity,gamma,clahe,sci-official",
                   help="comma-separated: identity, gamma, clahe, sci-official (= sci-difficult + sci-medium); "
                   "'none' for none (default: all)")
    p.add_argument("--sci-weights", type=Path, metavar="DIR",
                   help="folder with the official SCI difficult.pt / medium.pt (default: shared data sci_weights)")
    p.add_argument("--niqe-params", type=Path, metavar="NPZ",
                   help="niqe_pris_params.npz (default: shared data niqe_params; NIQE is skipped when absent)")
    p.add_argument("--no-niqe", action="store_true", help="skip NIQE (it is the slow part on large images)")
    p.add_argument("--out", type=Path, default=Path("streamfix-eval"), help="output folder (default streamfix-eval)")
    p.add_argument("--sheet-rows", type=int, default=6, help="images per contact sheet (default 6)")
    p.add_argument("--max-frames", type=int, help="video: score at most this many frames")
    p.add_argument("--temporal", choices=("on", "off"), default="on",
                   help="video: engine's temporal filter (default on)")
    p.add_argument("--temporal-strength", type=unit_float("--temporal-strength"), default=DEFAULT_TEMPORAL,
                   help=f"video: weight of the previous grid (default {DEFAULT_TEMPORAL}, as enhance)")
    p.add_argument("--denoise", type=unit_float("--denoise"), default=DEFAULT_DENOISE, metavar="S",
                   help=f"video: temporal denoiser's strength, [0, 1); 0 = off (default {DEFAULT_DENOISE})")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from streamfix import evaluation as E

    if args.sheet_rows < 0 or (args.max_frames is not None and args.max_frames < 2) or args.threads < 1:
        raise UsageError("--sheet-rows must be ≥ 0, --max-frames ≥ 2 and --threads ≥ 1")
    if args.temporal_strength >= 1.0:
        raise UsageError("--temporal-strength must be below 1")
    if args.denoise >= 1.0:
        raise UsageError("--denoise must be below 1")
    torch.set_num_threads(args.threads)
    shared = E.default_shared_data()
    notes: list[str] = []
    names = [b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none"]
    sci_dir = args.sci_weights or (shared / "sci_weights")
    niqe = None
    if not args.no_niqe:
        niqe = args.niqe_params or (shared / "niqe_params" / "niqe_pris_params.npz")
        if not niqe.is_file():
            if args.niqe_params:
                raise UsageError(f"--niqe-params {niqe} does not exist")
            notes.append(f"NIQE skipped: parameter file {niqe} not found")
            niqe = None
    methods = []
    if names and names[0] == "identity":
        methods += E.make_baselines(["identity"], sci_dir, notes)
        names = names[1:]
    if args.engine != "none":
        engine = E.engine_method(args.engine, args.weights, args.temporal == "on", args.temporal_strength,
                                 args.denoise)
        if args.engine in E.BASELINES:  # e.g. the identity engine next to the identity baseline
            engine.name = f"{args.engine} (engine)"
        methods.append(engine)
    methods += E.make_baselines(names, sci_dir, notes)
    if not methods:
        raise UsageError("no engine and no baseline to score")
    meta = {"engine": args.engine, "weights": str(args.weights) if args.weights else "card", "split": args.split,
            "threads": args.threads, "temporal": args.temporal, "temporal_strength": args.temporal_strength,
            "denoise": args.denoise}
    md, _ = E.run_eval(
        methods, args.out, args.pairs, args.images, args.video, split=args.split, niqe_params=niqe,
        sheet_rows=args.sheet_rows, max_frames=args.max_frames, notes=notes, meta=meta,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(md)
    print(f"wrote {args.out / 'eval.json'}, {args.out / 'eval.md'} and contact sheets", file=sys.stderr)
    return 0
