"""``streamfix demo``: a synthetic backlit clip with audio, and its enhanced version."""

from __future__ import annotations

import argparse
import sys

from streamfix.errors import UsageError
from streamfix.events import Bus
from streamfix.faces.enhance import Settings, build_enhancer
from streamfix.io.writer import EncodeOptions
from streamfix.pipeline import transcode
from streamfix.synth import write_backlit_clip


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
