"""End-to-end transcode fps of engines against the identity passthrough, in the same run.

    python tools/bench_e2e.py [--size 1920x1080] [--seconds 5] [--engines identity,sci] [--rounds 2]

Writes a synthetic backlit clip (libx264), then runs `streamfix enhance` in-process for each
engine (libx264 veryfast, crf 20 by default), alternating engines over the rounds so that
machine noise hits all of them alike; prints fps per engine and the ratio to identity.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from streamfix.enhancer import STAGES
from streamfix.events import Bus
from streamfix.faces.enhance import Settings, build_enhancer
from streamfix.io.writer import EncodeOptions
from streamfix.pipeline import transcode
from streamfix.synth import write_backlit_clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--engines", default="identity,sci")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--crf", type=float, default=20)
    ap.add_argument("--input", type=Path, help="use this clip instead of a synthetic one")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    src = args.input or tmp / "clip.mp4"
    if args.input is None:
        write_backlit_clip(src, w, h, args.seconds, audio=True)
    engines = args.engines.split(",")
    fps: dict[str, list[float]] = {e: [] for e in engines}
    opts = EncodeOptions(codec="libx264", crf=args.crf, preset=args.preset)
    for r in range(args.rounds):
        order = engines if r % 2 == 0 else engines[::-1]
        for name in order:
            bus = Bus()
            enhancer = build_enhancer(Settings(name, None, "cpu", 1.0, "on", 0.6, opts), bus, video=True)
            out = tmp / f"out_{name}.mp4"
            out.unlink(missing_ok=True)
            res = transcode(src, out, enhancer, opts, bus)
            fps[name].append(res.fps)
            stages = ", ".join(f"{s} {enhancer.clock.mean(s):.1f}" for s in STAGES)
            print(f"round {r}: {name:<10} {res.frames} frames {res.fps:6.2f} fps  (ms/frame: {stages})", flush=True)
    base = statistics.median(fps[engines[0]])
    print(f"\n{src.name}: {w}x{h}, libx264 {args.preset} crf {args.crf:g}, {args.rounds} rounds (median fps)")
    print("| engine | fps | ratio to " + engines[0] + " |\n|---|---|---|")
    for name in engines:
        m = statistics.median(fps[name])
        print(f"| {name} | {m:.2f} | {m / base:.3f} |")


if __name__ == "__main__":
    main()
