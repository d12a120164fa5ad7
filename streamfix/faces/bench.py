"""``streamfix bench``: stage-by-stage throughput against the passthrough floor and the alternatives."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamfix.backends import BACKENDS, select_backend
from streamfix.errors import UsageError
from streamfix.events import Bus
from streamfix.faces.args import (
    DENOISE_HELP,
    ENGINE_EVERY_HELP,
    check_blend_and_crf,
    engine_every,
    pick_denoise,
    pick_engine_every,
    pick_temporal_mode,
    preset_picker,
    unit_float,
)
from streamfix.io.reader import check_input_path
from streamfix.io.writer import EncodeOptions, validate_encoder
from streamfix.presets import load_preset

BENCH_DEFAULTS = {"frames": 150, "rounds": 2, "synthetic": "1080p", "peers": True}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure throughput and latency, stage by stage",
        description="Run the pipeline with an engine and with the identity passthrough (the I/O floor) on the same "
        "input, alternating, and measure per-stage ms, fps, latency, CPU, RSS, and the cost of the alternatives "
        "(SCI at full resolution, CLAHE, an FFmpeg curves filter). No output video is kept.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("-i", "--input", type=Path, help="video to benchmark on")
    src.add_argument("--synthetic", help="make a synthetic backlit clip: 480p, 720p, 1080p (default), 1440p, 4k or WxH")
    p.add_argument("--pipeline", type=Path, help="preset TOML (default pipelines/bench.toml values)")
    p.add_argument("--engine", help="engine (default sci)")
    p.add_argument("--weights", type=Path, help="engine weights")
    p.add_argument("--backend", choices=BACKENDS,
                   help="where enhancement runs: auto, cpu, cuda, tensorrt (default: the preset's device, auto); "
                   "on a GPU backend frames are decoded by NVDEC where it can, and the report's gpu field has NVML "
                   "figures")
    p.add_argument("--engine-every", type=engine_every, metavar="N", help=ENGINE_EVERY_HELP)
    p.add_argument("--denoise", type=unit_float("--denoise"), metavar="S", help=DENOISE_HELP)
    p.add_argument("--frames", type=int, help="frames per run (default 150)")
    p.add_argument("--rounds", type=int, help="runs per engine, alternating (default 2)")
    p.add_argument("--preset", help="x264 preset (default veryfast)")
    p.add_argument("--crf", type=float, help="crf (default 20)")
    p.add_argument("--codec", help="video encoder (default the preset's, libx264; h264_nvenc falls back to libx264 "
                   "where the GPU has no NVENC)")
    p.add_argument("--no-peers", action="store_true", help="skip the alternatives")
    p.add_argument("--scaling", help="also time the enhancement at these resolutions, e.g. 480p,720p,1080p,1440p,4k")
    p.add_argument("--json", type=Path, help="write the report as JSON")
    p.add_argument("--plot", type=Path, help="write a stage-breakdown chart (PNG)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamfix.bench import Tuning, bench, format_table, parse_resolution, plot
    from streamfix.temporal import resolve_mode

    preset = load_preset(args.pipeline)
    conf = dict(BENCH_DEFAULTS)
    conf.update(preset.get("bench", {}))
    frames = args.frames if args.frames is not None else int(conf["frames"])
    rounds = args.rounds if args.rounds is not None else int(conf["rounds"])
    if frames < 2:
        raise UsageError("--frames must be at least 2")
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    if args.input is not None:
        check_input_path(args.input)
    synthetic = None if args.input is not None else (args.synthetic or conf["synthetic"])
    try:
        if synthetic:
            parse_resolution(synthetic)
        scale = args.scaling.split(",") if args.scaling else None
        for name in scale or []:
            parse_resolution(name)
    except ValueError as e:
        raise UsageError(str(e)) from None
    enc = preset["encode"]
    options = EncodeOptions(codec=args.codec or enc["codec"], crf=args.crf if args.crf is not None else enc["crf"],
                            preset=args.preset or enc["preset"])
    validate_encoder(options, Path("bench.mp4"))
    bus = Bus()
    bus.subscribe(lambda e: e.kind != "progress" and print(f"streamfix: {e.kind}: {e.message}", file=sys.stderr))
    backend = select_backend(args.backend or preset["enhance"].get("device", "cpu"), bus)
    engine = args.engine or preset["enhance"]["engine"]
    pick = preset_picker(preset)
    strength = float(pick(None, "temporal", "strength"))
    check_blend_and_crf(strength, None)
    effect = float(pick(None, "enhance", "strength"))
    if not 0.0 <= effect <= 1.0:
        raise UsageError(f"[enhance] strength must be in [0, 1], got {effect:g}")
    mode = resolve_mode(pick_temporal_mode(None, pick))
    tuning = Tuning(strength=effect, engine_every=pick_engine_every(args.engine_every, pick),
                    denoise=pick_denoise(args.denoise, pick), temporal=mode, temporal_strength=strength)
    report = bench(args.input, synthetic, engine, args.weights, backend, frames, options, rounds,
                   peers=not args.no_peers and bool(conf["peers"]), scale=scale, tuning=tuning,
                   log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    if args.plot:
        plot(report, args.plot)
    return 0
