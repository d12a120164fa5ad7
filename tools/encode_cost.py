"""What the encoder pays for enhanced content: libx264 on a clip's frames as decoded vs as enhanced.

    python tools/encode_cost.py [-i CLIP | --synthetic 1080p] [--engine sci] [--frames 90]
        [--rounds 3] [--crf 20] [--preset veryfast] [--denoise 0.5]

Decodes ``frames`` frames of CLIP (default ../shared/data/video_night_city/dark.mp4, or the
synthetic backlit clip ``streamfix bench --synthetic`` makes), enhances
them with ``engine`` (temporal filter on), once without and once with the temporal denoiser
(``--denoise``, as ``streamfix enhance`` does by default; 0 leaves that set out), keeps the sets in
memory, then encodes each set ``rounds`` times, alternating, with the bench preset's encoder
settings.
Prints the process CPU ms per frame of the encoder (all its threads), the wall ms per frame, and
the bytes per frame: the part of the pipeline's cost that no enhancement speed-up removes —
brightened shadows carry more visible noise and detail, which x264 spends time and bits on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from streamfix.bench import parse_resolution, synthetic_clip
from streamfix.denoise import DEFAULT_STRENGTH, TemporalDenoiser
from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.pipeline import enhance_frame
from streamfix.temporal import TemporalFilter

DEFAULT_CLIP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video_night_city" / "dark.mp4"


def encode(frames: list[av.VideoFrame], crf: int, preset: str) -> tuple[float, float, int]:
    """(process CPU ms per frame, wall ms per frame, bytes per frame) of encoding ``frames``."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.options = {"crf": str(crf), "preset": preset}
    size = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i, f in enumerate(frames):
        f.pts = i
        f.time_base = ctx.time_base
        size += sum(p.size for p in ctx.encode(f))
    size += sum(p.size for p in ctx.encode(None))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = len(frames)
    return cpu * 1e3 / n, wall * 1e3 / n, size // n


def load(clip: Path, n: int, enhancers: list[Enhancer]) -> list[list[av.VideoFrame]]:
    """The first ``n`` frames of ``clip`` as decoded (yuv420p), then as enhanced by each enhancer."""
    sets: list[list[av.VideoFrame]] = [[] for _ in range(len(enhancers) + 1)]
    with av.open(str(clip)) as c:
        for frame in c.decode(video=0):
            if len(sets[0]) >= n:
                break
            frame = frame.reformat(format="yuv420p")
            sets[0].append(frame)
            for out, enh in zip(sets[1:], enhancers, strict=True):
                out.append(enhance_frame(enh, frame))
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-i", "--input", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--synthetic", help="use bench's synthetic clip at this resolution (e.g. 1080p) instead")
    ap.add_argument("--engine", default="sci")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--crf", type=int, default=20)
    ap.add_argument("--preset", default="veryfast")
    ap.add_argument("--denoise", type=float, default=DEFAULT_STRENGTH,
                    help="strength of the denoised set (0: no such set)")
    args = ap.parse_args()
    names = [f"enhanced ({args.engine})"]
    enhancers = [Enhancer(create_engine(args.engine), temporal=TemporalFilter())]
    if args.denoise > 0:
        names.append(f"enhanced ({args.engine}) + denoise {args.denoise:g}")
        enhancers.append(Enhancer(create_engine(args.engine), temporal=TemporalFilter(),
                                  denoiser=TemporalDenoiser(args.denoise)))
    enhancers[0].bind_thread()
    with tempfile.TemporaryDirectory() as work:
        if args.synthetic:
            args.input = synthetic_clip(parse_resolution(args.synthetic), args.frames, Path(work))
        sets = load(args.input, args.frames, enhancers)
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in ["as decoded", *names]}
    for _ in range(args.rounds):
        for runs, frames in zip(results.values(), sets, strict=True):
            runs.append(encode(frames, args.crf, args.preset))
    original = sets[0]
    w, h = original[0].width, original[0].height
    print(f"{args.input.name}: {len(original)} frames {w}x{h}, libx264 {args.preset} crf {args.crf}, "
          f"{args.rounds} rounds alternating (median)\n")
    print("| frames | encoder CPU ms/frame | wall ms/frame | bytes/frame |\n|---|---|---|---|")
    med = {}
    for name, runs in results.items():
        cpu, wall, size = (float(np.median([r[k] for r in runs])) for k in range(3))
        med[name] = (cpu, size)
        print(f"| {name} | {cpu:.1f} | {wall:.1f} | {size:.0f} |")
    (c0, s0), *rest = med.values()
    print()
    for name, (c1, s1) in zip(names, rest, strict=True):
        print(f"{name} / as decoded: encoder CPU {c1 / c0:.2f}×, bytes {s1 / s0:.2f}×")


if __name__ == "__main__":
    main()
