"""``streamfix enhance``: video → video, image → image, folder → folder."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamfix.adapt import OnlineAdapter
from streamfix.backends import BACKENDS, Backend, create_backend_engine, select_backend
from streamfix.denoise import DEFAULT_STRENGTH as DEFAULT_DENOISE
from streamfix.denoise import TemporalDenoiser
from streamfix.enhancer import STAGES, Enhancer
from streamfix.errors import InputError, OutputError, UsageError
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
    whole_number,
)
from streamfix.io.images import IMAGE_EXTENSIONS, is_image_path, read_image, write_image
from streamfix.io.reader import check_input_path
from streamfix.io.writer import EncodeOptions, check_output_path, validate_encoder
from streamfix.pipeline import transcode
from streamfix.presets import load_preset
from streamfix.temporal import TemporalFilter, resolve_mode


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enhance a video, an image or a folder of images",
        description="Enhance a backlit or dark video (or image, or folder of images). "
        "Defaults come from --pipeline (built in: pipelines/transcode.toml); flags override them.",
    )
    p.add_argument("-i", "--input", required=True, type=Path, help="input video, image, or folder of images")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output file (format follows the extension) or folder (for a folder input)")
    ow = p.add_mutually_exclusive_group()
    ow.add_argument("-y", dest="overwrite", action="store_const", const=True, help="overwrite the output")
    ow.add_argument("-n", dest="overwrite", action="store_const", const=False,
                    help="never overwrite: fail if the output exists (the default behaviour, made explicit)")
    p.add_argument("-ss", "--start", type=seconds, help="start at this time (seconds or HH:MM:SS)")
    p.add_argument("-t", "--duration", type=seconds, help="enhance this many seconds")
    p.add_argument("--pipeline", type=Path, help="preset TOML (see pipelines/)")
    p.add_argument("--engine", help="engine name (see `streamfix engines`; default sci)")
    p.add_argument("--weights", type=Path, help="engine weights (.safetensors, or an official SCI .pt)")
    be = p.add_mutually_exclusive_group()
    be.add_argument("--backend", choices=BACKENDS,
                    help="where engine and slicing run: auto (TensorRT if installed and a GPU is present, else CUDA, "
                    "else CPU), cpu, cuda, tensorrt (default auto)")
    be.add_argument("--device", dest="backend", choices=BACKENDS, help="the same as --backend (older name)")
    p.add_argument("--strength", type=unit_float("--strength"), help="0 = unchanged … 1 = full effect (default 1)")
    p.add_argument("--temporal", choices=("off", "on", "smooth", "adaptive"),
                   help="carry the grid across frames, reset at scene cuts: smooth = fixed blend, adaptive = "
                        "suppress the engine's jitter but follow real lighting changes "
                        "(default adaptive; on = adaptive)")
    p.add_argument("--temporal-strength", type=unit_float("--temporal-strength"),
                   help="weight of the previous frame's grid in steady state, [0, 1) (default 0.85)")
    p.add_argument("--engine-every", type=engine_every, metavar="N", help=ENGINE_EVERY_HELP)
    p.add_argument("--denoise", type=unit_float("--denoise"), metavar="S", help=DENOISE_HELP)
    p.add_argument("--excnet-iters", type=whole_number("--excnet-iters", 0),
                   help="excnet: optimiser steps per frame after the first (default 4, from the card; "
                        "a converged frame takes none)")
    p.add_argument("--adapt", type=_positive_float, metavar="SECONDS",
                   help="fine-tune the engine (sci) on the first SECONDS of the video before enhancing it "
                        "(read ahead, at most 2×SECONDS of compute; off by default)")
    p.add_argument("--codec", help="video encoder (default libx264; h264_nvenc falls back to libx264 without NVENC; "
                   "auto: h264_nvenc when the backend is on a GPU that has NVENC, else libx264)")
    p.add_argument("--crf", type=float, help="constant rate factor for x264/x265/svtav1/vp9 (default 20)")
    p.add_argument("--preset", help="encoder preset, e.g. ultrafast…veryslow (default veryfast)")
    p.add_argument("--pix-fmt", help="output pixel format (default yuv420p; yuv420p10le + libx265 keeps 10 bits)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="exit 0 when the input is damaged (the output holds what decoded either way)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stats", action="store_true",
                   help="after a video, print per-stage timings and GPU figures (utilisation, memory, power, "
                   "NVDEC/NVENC)")
    p.set_defaults(func=run)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


@dataclass(frozen=True)
class Settings:
    """Resolved settings: explicit flags over the preset over the built-in defaults."""

    engine: str
    weights: Path | None
    device: str  # the requested backend: auto | cpu | cuda | tensorrt (named before backends had names)
    strength: float
    temporal: str
    temporal_strength: float
    encode: EncodeOptions
    excnet_iters: int | None = None  # excnet: optimiser steps per frame (None: the card's)
    adapt: float | None = None  # seconds of video to fine-tune the engine on (None: off)
    engine_every: int = 1  # run the engine on every N-th frame of a video
    denoise: float = DEFAULT_DENOISE  # temporal denoiser's strength for a video (0: off)


def resolve(args: argparse.Namespace) -> Settings:
    preset = load_preset(args.pipeline)
    pick = preset_picker(preset)
    ts, crf = blend_and_crf(args, pick)
    mode = pick_temporal_mode(args.temporal, pick)
    return Settings(
        engine=pick(args.engine, "enhance", "engine"),
        weights=args.weights,
        device=pick(args.backend, "enhance", "device"),
        strength=float(pick(args.strength, "enhance", "strength")),
        temporal=mode,
        temporal_strength=ts,
        encode=EncodeOptions(
            codec=pick(args.codec, "encode", "codec"),
            crf=crf,
            preset=pick(args.preset, "encode", "preset"),
            pix_fmt=pick(args.pix_fmt, "encode", "pix_fmt"),
        ),
        excnet_iters=getattr(args, "excnet_iters", None),
        adapt=getattr(args, "adapt", None),
        engine_every=pick_engine_every(getattr(args, "engine_every", None), pick),
        denoise=pick_denoise(getattr(args, "denoise", None), pick),
    )


class _Console:
    """Shows pipeline events: a tqdm bar for progress, one line per info/warning."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet = quiet
        self.label = label
        self.bar = None

    def __call__(self, event: Event) -> None:
        if event.kind == "progress":
            if self.quiet:
                return
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event.data.get("total"), unit="frame", desc=self.label,
                                file=sys.stderr, dynamic_ncols=True, disable=None)
            self.bar.update(event.data["done"] - self.bar.n)
        else:
            self.write(f"streamfix: {event.kind}: {event.message}")

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def build_enhancer(
    s: Settings, bus: Bus, video: bool, backend: Backend | None = None, fps: float = 30.0
) -> Enhancer:
    """The engine on its backend (``s.device`` resolved unless ``backend`` is given), temporal filter for video.

    ``fps`` (video) sets the temporal filter's time constants and the ``--adapt`` window.
    """
    backend = backend or select_backend(s.device, bus)
    engine: Any = create_backend_engine(s.engine, s.weights, backend, bus)
    if s.excnet_iters is not None:
        if not hasattr(engine, "set_iterations"):
            raise UsageError(f"--excnet-iters applies to the excnet engine, not {s.engine!r}")
        engine.set_iterations(s.excnet_iters)
    if s.adapt is not None and video:
        try:
            engine = OnlineAdapter(engine, s.adapt, fps)
        except ValueError as e:
            raise UsageError(f"--adapt: {e}") from None
        bus.info("adapt", f"fine-tuning {s.engine} on the first {s.adapt:g} s of the video (read ahead)")
    mode = resolve_mode(s.temporal)
    temporal = TemporalFilter(s.temporal_strength, mode=mode, fps=fps) if (video and mode != "off") else None
    denoiser = TemporalDenoiser(s.denoise) if video and s.denoise > 0 else None
    return Enhancer(engine, backend.device, s.strength, temporal, engine_every=s.engine_every if video else 1,
                    denoiser=denoiser)


#: most frames read ahead for --adapt
MAX_ADAPT_FRAMES = 150


def video_fps(path: Path) -> float:
    """The video's average frame rate (30 when the container does not say)."""
    import av

    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate if c.streams.video else None
            return float(rate) if rate else 30.0
    except (av.FFmpegError, OSError, ValueError, ZeroDivisionError):
        return 30.0


def resolve_codec(options: EncodeOptions, backend: Backend, bus: Bus) -> EncodeOptions:
    """``--codec auto``: h264_nvenc where the backend is on a GPU whose NVENC opens, else libx264."""
    if options.codec != "auto":
        return options
    from dataclasses import replace

    from streamfix.gpu.probe import nvenc_available

    if backend.on_gpu and nvenc_available("h264_nvenc"):
        codec, why = "h264_nvenc", f"{backend.gpu or 'the GPU'} has NVENC"
    else:
        codec = "libx264"
        why = "the backend runs on the CPU" if not backend.on_gpu else f"{backend.gpu or 'this GPU'} has no NVENC"
    bus.info("encoder", f"--codec auto → {codec} ({why})")
    return replace(options, codec=codec)


def run(args: argparse.Namespace) -> int:
    s = resolve(args)
    src: Path = args.input
    dst: Path = args.output
    bus = Bus()
    console = _Console(args.quiet, src.name)
    bus.subscribe(console)
    try:
        if src.is_dir():
            return _run_folder(src, dst, s, bus, args.overwrite)
        if is_image_path(src):
            return _run_image(src, dst, s, bus, args.overwrite)
        return _run_video(src, dst, s, bus, args)
    finally:
        console.close()


def _run_video(src: Path, dst: Path, s: Settings, bus: Bus, args: argparse.Namespace) -> int:
    check_input_path(src)
    if is_image_path(dst):
        raise UsageError(f"output {dst.name} is an image but the input {src.name} is a video")
    if s.encode.codec != "auto":
        validate_encoder(s.encode, dst)
    check_output_path(dst, [src], args.overwrite)
    if args.duration is not None and args.duration <= 0:
        raise UsageError("-t must be positive")
    backend = select_backend(s.device, bus)
    encode = resolve_codec(s.encode, backend, bus)
    if encode is not s.encode:
        validate_encoder(encode, dst)
    enhancer = build_enhancer(s, bus, video=True, backend=backend, fps=video_fps(src))
    if isinstance(enhancer.engine, OnlineAdapter):  # a file can be read ahead: adapt first, then enhance
        from streamfix.train.sci import frames_from_video

        frames = frames_from_video(src, seconds=s.adapt or 0.0, max_frames=int(MAX_ADAPT_FRAMES),
                                   long_side=enhancer.engine.card.thumbnail)
        enhancer.engine.warm_up(frames)
    sampler = None
    if getattr(args, "stats", False):
        from streamfix.telemetry import GpuSampler

        sampler = GpuSampler().start()
    try:
        result = transcode(src, dst, enhancer, encode, bus, args.start, args.duration, args.allow_damaged)
    finally:
        if sampler is not None:
            sampler.stop()
    cuts = f", {len(result.scene_cuts)} scene cuts" if enhancer.temporal is not None else ""
    if enhancer.engine_every > 1:
        cuts += f", the engine on {enhancer.engine_runs} of {result.frames} frames"
    if isinstance(enhancer.engine, OnlineAdapter):
        r = enhancer.engine.report()
        bus.info("adapt", f"{r['frames_adapted']} frames, {r['steps']} steps in {r['seconds']:.1f} s, "
                          f"SCI loss {r['first_loss']:.4f} → {r['last_loss']:.4f}")
    print(
        f"{result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), "
        f"{result.packets_copied} audio/subtitle packets copied{cuts} → {dst} ({_human(result.bytes)})"
    )
    if sampler is not None:
        print(format_stats(result, enhancer, backend, sampler.report(frames=result.frames)))
    return 0


def format_stats(result: Any, enhancer: Enhancer, backend: Backend, gpu: dict[str, Any] | None) -> str:
    """``--stats``: mean ms per frame of each stage, latency percentiles, and the GPU line."""
    import numpy as np

    from streamfix.telemetry import format_gpu

    def mean(values: list[float]) -> str:
        return f"{float(np.mean(values)):.2f}" if values else "-"

    stages = [("decode", result.stats.stage_ms.get("decode", []))]
    stages += [(k, enhancer.clock.ms.get(k, [])) for k in STAGES]
    stages += [("encode", result.stats.stage_ms.get("encode", []))]
    lat = result.stats.latency_ms
    lat_txt = (f"latency decoded → encoded p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms"
               if lat else "latency -")
    where = backend.name + (f" on {backend.gpu}" if backend.gpu else "")
    return "\n".join([
        f"stats ({where}), ms per frame: " + ", ".join(f"{k} {mean(v)}" for k, v in stages),
        lat_txt,
        format_gpu(gpu),
    ])


def _run_image(src: Path, dst: Path, s: Settings, bus: Bus, overwrite: bool | None) -> int:
    if not is_image_path(dst):
        raise UsageError(f"output {dst.name} must be an image ({', '.join(IMAGE_EXTENSIONS)}) for an image input")
    check_output_path(dst, [src], overwrite)
    enhancer = build_enhancer(s, bus, video=False)
    t0 = time.perf_counter()
    rgb, alpha = read_image(src)
    size = write_image(dst, enhancer.enhance_rgb(rgb, new_scene=True), alpha)
    print(f"1 image in {time.perf_counter() - t0:.2f} s → {dst} ({_human(size)})")
    return 0


def _run_folder(src: Path, dst: Path, s: Settings, bus: Bus, overwrite: bool | None) -> int:
    images = sorted(p for p in src.iterdir() if p.is_file() and is_image_path(p))
    if not images:
        raise InputError(f"input folder {src} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"output {dst} exists and is not a folder (a folder input needs an output folder)")
    if not dst.parent.exists():
        raise OutputError(f"output folder {dst.parent} does not exist")
    if dst.resolve() == src.resolve():
        raise OutputError("output folder is the input folder; choose another")
    dst.mkdir(exist_ok=True)
    targets = [dst / p.name for p in images]
    for t, p in zip(targets, images, strict=True):
        check_output_path(t, [p], overwrite)
    enhancer = build_enhancer(s, bus, video=False)
    t0 = time.perf_counter()
    failed: list[str] = []
    total = 0
    for i, (p, t) in enumerate(zip(images, targets, strict=True)):
        try:
            rgb, alpha = read_image(p)
            total += write_image(t, enhancer.enhance_rgb(rgb, new_scene=True), alpha)
        except InputError as e:
            failed.append(p.name)
            bus.warning("image", str(e))
        bus.progress("images", done=i + 1, total=len(images))
    n = len(images) - len(failed)
    print(f"{n} images in {time.perf_counter() - t0:.1f} s → {dst} ({_human(total)})")
    if failed:
        raise InputError(f"{len(failed)} of {len(images)} images could not be read: {', '.join(failed)}")
    return 0
