"""GPU timings for tools/gpu_check.sh: decode-only, enhance-only (frames already on the device), and the table.

    python tools/gpu_timing.py clip --size 1080p --frames 300 --out DIR        # prints the clip's path
    python tools/gpu_timing.py decode --input CLIP --hwaccel cuda --json OUT.json
    python tools/gpu_timing.py enhance --input CLIP --engine sci --backend tensorrt [--denoise 0.5] --json OUT.json
    python tools/gpu_timing.py table DIR/*.json                                 # markdown, with NVML figures

``decode``: demux + decode every frame (NVDEC frames stay in GPU memory, as the pipeline gets
them), no enhancement. ``enhance``: a handful of decoded frames (NVDEC frames on the device for
GPU backends; software frames for ``cpu``) enhanced round-robin ``--frames`` times: thumbnail,
engine, temporal, slicing, the temporal denoiser (``--denoise``, default as ``streamfix enhance``; 0:
none) and the one download, no decode or encode. End-to-end figures come from
``streamfix bench --json`` (gpu_check.sh runs it); ``table`` reads all three kinds of JSON.
Every measurement samples NVML in the background (streamfix.telemetry).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import torch

from streamfix.bench import parse_resolution, synthetic_clip
from streamfix.denoise import DEFAULT_STRENGTH as DEFAULT_DENOISE
from streamfix.errors import StreamfixError
from streamfix.events import Bus
from streamfix.telemetry import GpuSampler

#: decoded frames kept for enhance-only timing (each NVDEC frame holds a decoder surface; the reader
#: asks for 16 extra, see streamfix.io.reader.EXTRA_HW_FRAMES)
HELD_FRAMES = 8


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def cmd_clip(a: argparse.Namespace) -> dict[str, Any]:
    w, h = parse_resolution(a.size)
    a.out.mkdir(parents=True, exist_ok=True)
    path = synthetic_clip((w, h), a.frames, a.out)
    print(path)
    return {}


def cmd_decode(a: argparse.Namespace) -> dict[str, Any]:
    from streamfix.io.reader import VideoReader

    bus = Bus()
    hw = None if a.hwaccel == "none" else a.hwaccel
    n = 0
    with VideoReader(a.input, hwaccel=hw, bus=bus) as r:
        sampler = GpuSampler(interval=0.2).start()
        t0 = time.perf_counter()
        for item in r:
            if isinstance(item, av.VideoFrame):
                n += 1
                if n >= a.frames:
                    break
        _sync()
        seconds = time.perf_counter() - t0
        sampler.stop()
        on_gpu = bool(r.hw_decoding)
    return {"kind": "decode", "input": str(a.input), "resolution": _res(a.input), "hwaccel": a.hwaccel,
            "nvdec": on_gpu, "frames": n, "seconds": seconds, "fps": n / seconds if seconds else 0.0,
            "notes": [e.message for e in bus.history], "gpu": sampler.report(frames=n)}


def cmd_enhance(a: argparse.Namespace) -> dict[str, Any]:
    from streamfix.backends import create_backend_engine, select_backend
    from streamfix.denoise import TemporalDenoiser
    from streamfix.enhancer import STAGES, Enhancer
    from streamfix.io.reader import VideoReader
    from streamfix.pipeline import enhance_frame
    from streamfix.temporal import TemporalFilter

    bus = Bus()
    backend = select_backend(a.backend, bus)
    engine = create_backend_engine(a.engine, a.weights, backend, bus)
    enhancer = Enhancer(engine, backend.device, 1.0, TemporalFilter(), threads=a.threads,
                        denoiser=TemporalDenoiser(a.denoise) if a.denoise > 0 else None)
    enhancer.bind_thread()
    with VideoReader(a.input, hwaccel="cuda" if backend.on_gpu else None, bus=bus) as r:
        held = []
        for item in r:
            if isinstance(item, av.VideoFrame):
                held.append(item)
                if len(held) >= HELD_FRAMES:
                    break
        on_device = bool(r.hw_decoding)
        for f in held[:3]:  # warm-up: TensorRT build or cache load, numba, cuDNN autotune
            enhance_frame(enhancer, f, bus)
        _sync()
        enhancer.clock.ms.clear()
        sampler = GpuSampler(interval=0.2).start()
        t0 = time.perf_counter()
        for i in range(a.frames):
            enhance_frame(enhancer, held[i % len(held)], bus)
        _sync()
        seconds = time.perf_counter() - t0
        sampler.stop()
    stages = {s: enhancer.clock.mean(s) for s in STAGES}
    return {"kind": "enhance", "input": str(a.input), "resolution": _res(a.input), "engine": a.engine,
            "backend": backend.name, "denoise": a.denoise, "frames_on_device": on_device, "frames": a.frames,
            "seconds": seconds,
            "fps": a.frames / seconds if seconds else 0.0, "ms_per_frame": 1000 * seconds / a.frames,
            "stages_ms": stages, "notes": [e.message for e in bus.history], "gpu": sampler.report(frames=a.frames)}


def _res(path: Path) -> str:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return f"{s.codec_context.width}x{s.codec_context.height}"


# -- the table ------------------------------------------------------------------------------------


def _gpu_cols(g: dict[str, Any] | None) -> list[str]:
    if not g or not g.get("available"):
        return ["-", "-", "-", "-"]

    def mean(k: str) -> str:
        v = g.get(k)
        return f"{v['mean']:.0f}" if v else "n/a"

    mem = g.get("memory_used_mb")
    return [mean("gpu_util_pct"), mean("nvdec_util_pct"), mean("power_w"), f"{mem['max'] / 1024:.1f}" if mem else "n/a"]


def cmd_table(a: argparse.Namespace) -> dict[str, Any]:
    docs = []
    for p in a.files:
        try:
            docs.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            print(f"skipping {p}: {e}", file=sys.stderr)
    gpu_name = next((d["gpu"]["name"] for d in docs if (d.get("gpu") or {}).get("available")), "no GPU seen")
    lines = [f"GPU: {gpu_name}", "",
             "| resolution | what | engine | backend | fps | ms/frame | GPU util % | NVDEC % | power W | GPU mem GB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for d in docs:
        kind = d.get("kind") or ("end-to-end" if "floor_fps" in d else None)
        if kind is None:
            continue
        if d.get("skipped"):
            rows.append((d.get("resolution", "?"), kind, d.get("engine", "-"), d.get("backend", "-"),
                         f"skipped: {d['skipped']}", "", *_gpu_cols(None)))
            continue
        fps = d["fps"]
        what = {"decode": f"decode only ({'NVDEC' if d.get('nvdec') else 'CPU'})",
                "enhance": "enhance only" + (" (frames on device)" if d.get("frames_on_device") else "")
                + (f", denoise {d['denoise']:g}" if d.get("denoise") else ""),
                "end-to-end": "end-to-end"}[kind]
        engine = d.get("engine", "-")
        rows.append((d.get("resolution", "?"), what, engine, d.get("backend", "-"), f"{fps:.1f}",
                     f"{1000 / fps:.2f}" if fps else "-", *_gpu_cols(d.get("gpu"))))
    for r in sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3])):
        lines.append("| " + " | ".join(r) + " |")
    text = "\n".join(lines)
    print(text)
    return {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("clip")
    c.add_argument("--size", default="1080p")
    c.add_argument("--frames", type=int, default=300)
    c.add_argument("--out", type=Path, required=True)
    d = sub.add_parser("decode")
    d.add_argument("--input", type=Path, required=True)
    d.add_argument("--hwaccel", choices=("cuda", "none"), default="cuda")
    d.add_argument("--frames", type=int, default=10**9)
    d.add_argument("--json", type=Path)
    e = sub.add_parser("enhance")
    e.add_argument("--input", type=Path, required=True)
    e.add_argument("--engine", default="sci")
    e.add_argument("--weights", type=Path)
    e.add_argument("--backend", default="auto")
    e.add_argument("--frames", type=int, default=200)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--denoise", type=float, default=DEFAULT_DENOISE, help="temporal denoiser strength (0: none)")
    e.add_argument("--json", type=Path)
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    a = p.parse_args(argv)
    fn = {"clip": cmd_clip, "decode": cmd_decode, "enhance": cmd_enhance, "table": cmd_table}[a.cmd]
    try:
        result = fn(a)
    except StreamfixError as err:  # an engine without weights, a backend this machine lacks
        result = {"kind": a.cmd, "engine": getattr(a, "engine", None), "backend": getattr(a, "backend", None),
                  "resolution": _res(a.input) if getattr(a, "input", None) else "?", "skipped": str(err)}
        print(f"{a.cmd}: skipped: {err}", file=sys.stderr)
    if getattr(a, "json", None) and result:
        a.json.write_text(json.dumps(result, indent=2, default=str))
    if result and a.cmd != "clip":
        print(json.dumps({k: v for k, v in result.items() if k not in ("gpu", "notes")}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
