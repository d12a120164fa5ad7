"""``streamfix live``: enhance a live feed as it arrives; preview it, record it, re-publish it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from streamfix.errors import UsageError
from streamfix.events import Bus, Event
from streamfix.faces.args import (
    DENOISE_HELP,
    ENGINE_EVERY_HELP,
    blend_and_crf,
    engine_every,
    pick_denoise,
    pick_engine_every,
    pick_temporal_mode,
    preset_picker,
    seconds,
    unit_float,
)
from streamfix.faces.enhance import Settings, build_enhancer
from streamfix.io.writer import EncodeOptions
from streamfix.live.config import PREVIEWS, load_live_preset


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WxH, e.g. 1280x720, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"--size must be positive, got {text!r}")
    return w, h


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a number, got {text!r}") from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be in [0, 65535], got {v}")
    return v


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="enhance a live stream (RTSP, webcam, or a file in real time) with a browser preview",
        description="Enhance a live feed as it arrives and preview it in the browser (a local page with a "
        "before/after split view, fps, latency and dropped-frame counters), in a window, or not at all; "
        "optionally record or re-publish it with --out. Network streams reconnect by themselves. "
        "Defaults come from --pipeline (built in: pipelines/live.toml); flags override them.",
        epilog="sources: rtsp://host/path, /dev/video0 or webcam:0, lavfi:testsrc2=size=1280x720:rate=30, "
        "or a video file (played at its own frame rate; --loop repeats it). Page keys: v before/after, "
        "+/- strength, s snapshot. Ctrl-C ends the run cleanly (a recording is finished, exit 0).",
    )
    p.add_argument("source", help="rtsp://…, /dev/videoN, webcam:N, lavfi:GRAPH, or a video file")
    p.add_argument("--pipeline", type=Path, help="preset TOML (see pipelines/live.toml)")
    p.add_argument("--engine", help="engine name (see `streamfix engines`; default sci)")
    p.add_argument("--weights", type=Path, help="engine weights (.safetensors, or an official SCI .pt)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where engine and slicing run (default auto)")
    p.add_argument("--strength", type=unit_float("--strength"), help="0 = unchanged … 1 = full effect (default 1)")
    p.add_argument("--temporal", choices=("on", "off"), help="carry the grid across frames (default on)")
    p.add_argument("--temporal-strength", type=unit_float("--temporal-strength"),
                   help="weight of the previous frame's grid, [0, 1) (default 0.6)")
    p.add_argument("--engine-every", type=engine_every, metavar="N", help=ENGINE_EVERY_HELP)
    p.add_argument("--denoise", type=unit_float("--denoise"), metavar="S", help=DENOISE_HELP)
    p.add_argument("--preview", choices=PREVIEWS,
                   help="browser: serve a local page (default); window: an OpenCV window (needs a display and "
                        "opencv-python); none: headless")
    p.add_argument("--host", help="preview server address (default 127.0.0.1; 0.0.0.0 exposes it, unauthenticated)")
    p.add_argument("--port", type=_port, help="preview server port (default 8080; 0 picks a free one)")
    p.add_argument("--out", help="also record to a file (out.mp4, .mkv, .ts…) or publish to rtsp://host:port/path")
    ow = p.add_mutually_exclusive_group()
    ow.add_argument("-y", dest="overwrite", action="store_const", const=True, help="overwrite an --out file")
    ow.add_argument("-n", dest="overwrite", action="store_const", const=False, help="never overwrite (default)")
    p.add_argument("--codec", help="encoder for --out (default libx264)")
    p.add_argument("--crf", type=float, help="constant rate factor for --out (default 23)")
    p.add_argument("--preset", help="encoder preset for --out (default ultrafast)")
    p.add_argument("--duration", type=seconds, help="stop cleanly after this many seconds (or HH:MM:SS)")
    p.add_argument("--loop", action="store_true", help="file sources: start again at the end")
    p.add_argument("--size", type=_size, help="webcams: capture size WxH, e.g. 1280x720")
    p.add_argument("--fps", type=float, help="webcams: capture frame rate")
    p.add_argument("--timeout", type=float, help="seconds before a silent network source counts as lost (default 5)")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace) -> tuple[Settings, dict[str, Any]]:
    """Explicit flags over the preset over the built-in live defaults."""
    preset = load_live_preset(args.pipeline)
    pick = preset_picker(preset)
    ts, crf = blend_and_crf(args, pick)
    settings = Settings(
        engine=pick(args.engine, "enhance", "engine"),
        weights=args.weights,
        device=pick(args.device, "enhance", "device"),
        strength=float(pick(args.strength, "enhance", "strength")),
        temporal=pick_temporal_mode(args.temporal, pick),
        temporal_strength=ts,
        encode=EncodeOptions(
            codec=pick(args.codec, "encode", "codec"),
            crf=crf,
            preset=pick(args.preset, "encode", "preset"),
            pix_fmt=preset["encode"]["pix_fmt"],
        ),
        engine_every=pick_engine_every(args.engine_every, pick),
        denoise=pick_denoise(args.denoise, pick),
    )
    live = dict(preset["live"])
    for key in ("preview", "host", "port", "timeout"):
        if getattr(args, key) is not None:
            live[key] = getattr(args, key)
    if live["timeout"] <= 0:
        raise UsageError("--timeout must be positive")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration must be positive")
    if not 1 <= live["jpeg_quality"] <= 100:
        raise UsageError("[live] jpeg_quality must be in [1, 100]")
    return settings, live


class _Console:
    """Shows session events on stderr: one line per info/warning, a status line for progress."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last_line = 0.0
        self.dirty = False
        self.lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self.lock:
            if event.kind != "progress":
                self._clear()
                print(f"streamfix: {event.kind}: {event.message}", file=sys.stderr, flush=True)
                return
            if self.quiet:
                return
            now = time.perf_counter()
            if not self.tty and now - self.last_line < 10.0:
                return
            self.last_line = now
            d = event.data
            lat = d["latency"]
            p50 = "–" if lat["p50"] is None else f"{lat['p50']:.0f}"
            p99 = "–" if lat["p99"] is None else f"{lat['p99']:.0f}"
            state = d["state"] if d["state"] == "live" else f"{d['state']}: {d['message']}"
            line = (f"{now - self.started:6.0f} s  {d['frames']} frames  {d['fps']:.1f} fps  "
                    f"latency p50 {p50} / p99 {p99} ms  dropped {d['dropped']}  {state}")
            if self.tty:
                print("\r\033[K" + line, end="", file=sys.stderr, flush=True)
                self.dirty = True
            else:
                print(line, file=sys.stderr, flush=True)

    def _clear(self) -> None:
        if self.dirty:
            print("\r\033[K", end="", file=sys.stderr)
            self.dirty = False

    def close(self) -> None:
        with self.lock:
            self._clear()


def _ms(d: dict[str, float | None]) -> str:
    f = [("–" if d.get(k) is None else f"{d[k]:.1f}") for k in ("p50", "p95", "p99")]
    return " / ".join(f)


def run(args: argparse.Namespace) -> int:
    from streamfix.live.session import LiveOptions, LiveSession
    from streamfix.live.sinks import OutputSink, check_out
    from streamfix.live.sources import LiveSource, parse_source

    settings, live = resolve(args)
    spec = parse_source(args.source, loop=args.loop, size=args.size, fps=args.fps, timeout=float(live["timeout"]))
    window_factory = None
    if live["preview"] == "window":
        from streamfix.live.window import WindowPreview, check_window

        check_window()
        window_factory = WindowPreview
    if args.out is not None:
        check_out(args.out, settings.encode, args.overwrite, [Path(spec.target)] if spec.kind == "file" else [])
    bus = Bus()
    console = _Console(args.quiet)
    bus.subscribe(console)
    try:
        enhancer = build_enhancer(settings, bus, video=True)
        enhancer.threads = int(live["threads"])  # the session binds it on the enhancing thread
        source = LiveSource(spec, bus, backoff=(float(live["reconnect_min"]), float(live["reconnect_max"])),
                            stall=float(live["stall"]))
        options = LiveOptions(
            preview=live["preview"], host=live["host"], port=int(live["port"]), duration=args.duration,
            jpeg_quality=int(live["jpeg_quality"]), preview_width=int(live["preview_width"]),
            strength_step=float(live["strength_step"]),
        )
        sink = None
        session = LiveSession(source, enhancer, settings.engine, bus, options, window=window_factory)
        session.open()
        if args.out is not None:
            sink = OutputSink(args.out, settings.encode, bus, on_sent=session.delivered)
            session.sink = sink
        if session.url:
            if live["host"] not in ("127.0.0.1", "localhost", "::1"):
                bus.warning("preview", f"the preview listens on {live['host']}: anyone who can reach this machine "
                                       "can watch it (there is no authentication)")
            print(f"streamfix live: {spec.label} → preview at {session.url}", file=sys.stderr, flush=True)
        else:
            print(f"streamfix live: {spec.label} ({live['preview']} preview)", file=sys.stderr, flush=True)
        restore = _on_sigterm(lambda: session.stop("SIGTERM"))
        try:
            summary = session.run()
        finally:
            restore()
    finally:
        console.close()
    lines = [
        f"streamfix live: {summary.frames} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps), "
        f"dropped {summary.dropped} ({summary.dropped_per_min:.1f}/min), engine {settings.engine}, "
        f"ended by {summary.ended_by}",
        f"  latency p50/p95/p99: arrival→enhanced {_ms(summary.latency_ms)} ms, "
        f"arrival→sent {_ms(summary.sent_latency_ms)} ms (enhancement alone {_ms(summary.enhance_ms)} ms)",
    ]
    if summary.reconnects:
        lines.append(f"  {summary.reconnects} reconnects; down for "
                     f"{', '.join(f'{s:.1f}' for s in summary.outages_s) or '?'} s")
    if summary.out:
        o = summary.out
        line = f"  --out {o['target']}: {o['frames']} frames" + (f", {o['dropped']} dropped" if o["dropped"] else "")
        if o.get("error"):
            line += f" (failed: {o['error']})"
        lines.append(line)
    print("\n".join(lines), flush=True)
    if summary.out.get("error"):
        return 1
    return 0


def _on_sigterm(fn) -> Any:  # noqa: ANN001
    """Call ``fn`` on SIGTERM while running (main thread only); returns the restorer."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda *_: fn())
    return lambda: signal.signal(signal.SIGTERM, previous)
