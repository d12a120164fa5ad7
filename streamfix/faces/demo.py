"""``streamfix demo``: a synthetic backlit clip with audio, and its enhanced version."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamfix.errors import UsageError
from streamfix.events import Bus
from streamfix.faces.enhance import Settings, build_enhancer
from streamfix.io.writer import EncodeOptions
from streamfix.pipeline import transcode
from streamfix.synth import write_backlit_clip


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="make a synthetic backlit clip with audio and enhance it",
        description="Write a short synthetic backlit clip (with audio) and its enhanced version; print both paths.",
    )
    p.add_argument("--out", type=Path, default=Path("streamfix-demo"), help="folder for the two files")
    p.add_argument("--engine", default="sci", help="engine (default sci)")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length (default 3)")
    p.add_argument("--size", default="640x360", help="WxH (default 640x360)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must be WxH, got {args.size!r}") from None
    if w % 2 or h % 2 or w < 16 or h < 16:
        raise UsageError("--size needs even sides of at least 16 pixels")
    args.out.mkdir(parents=True, exist_ok=True)
    src = args.out / "backlit_demo.mp4"
    dst = args.out / f"backlit_demo_{args.engine}.mp4"
    clip = write_backlit_clip(src, width=w, height=h, seconds=args.seconds)
    print(f"input:    {src} ({clip['frames']} frames {w}x{h}, with audio)")
    bus = Bus()
    bus.subscribe(lambda e: e.kind != "progress" and print(f"streamfix: {e.kind}: {e.message}", file=sys.stderr))
    settings = Settings(args.engine, None, "auto", 1.0, "on", 0.6, EncodeOptions())
    enhancer = build_enhancer(settings, bus, video=True)
    dst.unlink(missing_ok=True)
    result = transcode(src, dst, enhancer, settings.encode, bus)
    print(f"enhanced: {dst} ({result.frames} frames, {result.fps:.1f} fps, engine {args.engine})")
    return 0
