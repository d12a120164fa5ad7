"""``streamfix bench``: throughput and latency stage by stage, against the passthrough floor and peers.

One run measures, on the same input and machine state:

- the real pipeline (decode ‖ plan ‖ slice ‖ encode) with the chosen engine, and with ``identity``
  as a passthrough (same decode and encode, the frames handed over untouched: the I/O floor),
  alternating so that noise hits both alike;
- per stage mean / p95 ms (decode, thumbnail, engine, temporal, slice, denoise, encode) and, for the
  enhancement's stages, the CPU time of the thread that ran them; frame latency
  (decoded → encoded) p50/p95/p99, CPU use, peak RSS, GPU figures when a GPU is present;
- the alternatives a user would pick, per frame on the same decoded frames: SCI at full
  resolution (the seed's way), CLAHE on Lab L (EVAL.md's baseline), and an FFmpeg filter chain
  (``curves`` through PyAV's filter graph; PyAV's LGPL FFmpeg build has no ``eq`` filter).
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

from streamfix.backends import Backend, create_backend_engine, select_backend
from streamfix.denoise import DEFAULT_STRENGTH as DEFAULT_DENOISE
from streamfix.denoise import TemporalDenoiser
from streamfix.engines import create_engine
from streamfix.enhancer import STAGES, Enhancer
from streamfix.events import Bus
from streamfix.grid.planes import Planes
from streamfix.io.frames import planes_of
from streamfix.io.writer import EncodeOptions
from streamfix.pipeline import enhance_frame, transcode
from streamfix.synth import backlit_frame, write_backlit_clip
from streamfix.telemetry import GpuSampler, format_gpu
from streamfix.temporal import DEFAULT_MODE, TemporalFilter, resolve_mode
from streamfix.temporal import DEFAULT_STRENGTH as DEFAULT_TEMPORAL_STRENGTH

#: named resolutions for --synthetic and the scaling sweep
RESOLUTIONS = {
    "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160),
}


def parse_resolution(text: str) -> tuple[int, int]:
    """``1080p`` / ``4k`` / ``1920x1080`` → (width, height)."""
    key = text.lower()
    if key in RESOLUTIONS:
        return RESOLUTIONS[key]
    try:
        w, h = (int(v) for v in key.split("x"))
    except ValueError:
        raise ValueError(f"unknown resolution {text!r}; use {', '.join(RESOLUTIONS)} or WxH") from None
    return w, h


def summarize(values: list[float]) -> dict[str, float]:
    """mean and percentiles of a list of ms values (empty → zeros)."""
    if not values:
        return {"mean_ms": 0.0, "p50": 0.0, "p95_ms": 0.0, "p99": 0.0}
    a = np.asarray(values, dtype=np.float64)
    return {"mean_ms": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p95_ms": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99))}


def synthetic_clip(size: tuple[int, int], frames: int, folder: Path, fps: int = 30) -> Path:
    """A synthetic backlit clip (libx264 veryfast crf 20, with audio), cached in ``folder``."""
    w, h = size
    path = folder / f"synthetic_{w}x{h}_{frames}f.mp4"
    if not path.exists():
        write_backlit_clip(path, w, h, seconds=frames / fps, fps=fps, audio=True)
    return path


@dataclass
class RunStats:
    """One pipeline run."""

    engine: str
    frames: int
    seconds: float
    cpu_seconds: float
    stages: dict[str, dict[str, float]]
    latency: dict[str, float]
    enhance_ms: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Tuning:
    """What a transcode sets besides the engine, as the bench runs it: the effect's ``strength``
    (0 … 1), the engine on every ``engine_every``-th frame, the temporal filter (``temporal`` mode
    ``off`` / ``smooth`` / ``adaptive`` at ``temporal_strength``) and the temporal denoiser's
    strength (0: none)."""

    strength: float = 1.0
    engine_every: int = 1
    denoise: float = DEFAULT_DENOISE
    temporal: str = DEFAULT_MODE
    temporal_strength: float = DEFAULT_TEMPORAL_STRENGTH


def make_enhancer(engine: str, weights: Path | None, backend: Backend, tuning: Tuning = Tuning(),
                  passthrough: bool = False) -> Enhancer:
    """The enhancer a transcode would build with ``tuning`` (a passthrough: the engine alone)."""
    mode = resolve_mode(tuning.temporal)
    temporal = TemporalFilter(tuning.temporal_strength, mode=mode) if mode != "off" else None
    return Enhancer(create_backend_engine(engine, weights, backend), backend.device, tuning.strength, temporal,
                    passthrough=passthrough, engine_every=tuning.engine_every,
                    denoiser=TemporalDenoiser(tuning.denoise) if tuning.denoise > 0 and not passthrough else None)


def run_pipeline(src: Path, engine: str, weights: Path | None, backend: Backend, options: EncodeOptions,
                 frames: int, workdir: Path, tuning: Tuning = Tuning()) -> RunStats:
    """Transcode the first ``frames`` frames of ``src`` with ``engine``; collect stage timings.

    ``identity`` runs as a passthrough: decoded frames go to the encoder untouched (the I/O floor).
    ``tuning``: see :class:`Tuning`."""
    bus = Bus()
    enhancer = make_enhancer(engine, weights, backend, tuning, passthrough=engine == "identity")
    out = workdir / f"bench_{engine}.mp4"
    out.unlink(missing_ok=True)
    cpu0 = time.process_time()
    result = transcode(src, out, enhancer, options, bus, duration=(frames - 0.5) / video_rate(src))
    cpu = time.process_time() - cpu0
    stages = {s: summarize(enhancer.clock.ms.get(s, [])) for s in STAGES}
    for s in STAGES:
        own = enhancer.clock.cpu_ms.get(s, [])
        stages[s]["cpu_ms"] = float(np.mean(own)) if own else 0.0
    for s in ("decode", "encode"):
        stages[s] = summarize(result.stats.stage_ms.get(s, []))
    enhance_ms = sum(stages[s]["mean_ms"] for s in STAGES)
    out.unlink(missing_ok=True)
    return RunStats(engine, result.frames, result.seconds, cpu, stages, summarize(result.stats.latency_ms),
                    enhance_ms)


def video_rate(src: Path) -> float:
    """Frames per second of the first video stream of ``src`` (30 when it does not say)."""
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        return float(s.average_rate or s.guessed_rate or 30)


def decoded_frames(src: Path, n: int) -> list[av.VideoFrame]:
    """The first ``n`` decoded frames of ``src`` (yuv420p)."""
    out: list[av.VideoFrame] = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            out.append(f if f.format.name == "yuv420p" else f.reformat(format="yuv420p"))
            if len(out) >= n:
                break
    return out


def _time_per_frame(fn: Callable[[av.VideoFrame], Any], frames: list[av.VideoFrame]) -> float:
    fn(frames[0])  # warm-up
    ts = []
    for f in frames:
        t = time.perf_counter()
        fn(f)
        ts.append((time.perf_counter() - t) * 1000)
    return float(statistics.median(ts))


def measure_peers(frames: list[av.VideoFrame], sci_weights: Path | None) -> dict[str, float]:
    """ms per frame of the alternatives, each from a decoded yuv420p frame to a yuv420p frame."""
    peers: dict[str, float] = {}
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

    def clahe_frame(f: av.VideoFrame) -> av.VideoFrame:
        lab = cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2LAB)
        lab[..., 0] = clahe.apply(lab[..., 0])
        rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")

    peers["clahe"] = _time_per_frame(clahe_frame, frames)

    f0 = frames[0]
    graph = av.filter.Graph()
    src = graph.add_buffer(width=f0.width, height=f0.height, format="yuv420p", time_base=Fraction(1, 30))
    curves = graph.add("curves", "master=0/0 0.25/0.45 0.6/0.78 1/1")
    sink = graph.add("buffersink")
    src.link_to(curves)
    curves.link_to(sink)
    graph.configure()
    counter = iter(range(1 << 30))

    def ffmpeg_curves(f: av.VideoFrame) -> av.VideoFrame:
        f.pts = next(counter)
        graph.push(f)
        return graph.pull()

    peers["ffmpeg_curves"] = _time_per_frame(ffmpeg_curves, frames)

    try:
        sci = create_engine("sci", sci_weights)
    except Exception:  # noqa: BLE001 - a peer we cannot build is reported as absent
        sci = None
    if sci is not None:
        def sci_full(f: av.VideoFrame) -> av.VideoFrame:
            out = sci.enhance_full_resolution(f.to_ndarray(format="rgb24"))  # type: ignore[attr-defined]
            return av.VideoFrame.from_ndarray(out, format="rgb24").reformat(format="yuv420p")

        peers["sci_full_resolution"] = _time_per_frame(sci_full, frames[: min(len(frames), 4)])
    return peers


@dataclass
class EnhanceTiming:
    """The enhancement alone (thumbnail + engine + temporal + slice + denoise) on frames already decoded, ms
    per frame: ``sequential`` on one thread (= its CPU cost), ``overlapped`` with the engine
    planning frame n+1 on one thread while frame n is sliced on another, as the pipeline runs it
    (the time per frame two cores need when nothing else runs)."""

    sequential: float
    overlapped: float


def measure_enhance(frames: list[av.VideoFrame], enhancer: Enhancer, repeat: int = 2) -> EnhanceTiming:
    """Time ``enhancer`` on ``frames`` (played ``repeat`` times, after two warm-up frames)."""
    planes = [planes_of(f) for f in frames]
    out = Planes.empty_like(planes[0])
    enhancer.bind_thread()
    for p in planes[:2]:  # warm-up (JIT, caches; the denoiser's kernel first runs on the second frame)
        enhancer.enhance_planes(p, out)
    order = planes * repeat
    t0 = time.perf_counter()
    for p in order:
        enhancer.enhance_planes(p, out)
    sequential = (time.perf_counter() - t0) * 1000 / len(order)

    grids: list[Any] = [None] * len(order)
    ready = [threading.Event() for _ in order]

    def planner() -> None:
        enhancer.bind_thread()
        for i, p in enumerate(order):
            grids[i] = enhancer.plan(p)
            ready[i].set()

    t0 = time.perf_counter()
    worker = threading.Thread(target=planner, name="sf-bench-plan", daemon=True)
    worker.start()
    for i, p in enumerate(order):
        ready[i].wait()
        enhancer.apply(p, grids[i], out)
    worker.join()
    overlapped = (time.perf_counter() - t0) * 1000 / len(order)
    return EnhanceTiming(sequential, overlapped)


def scaling(engine: str, weights: Path | None, backend: Backend, names: list[str],
            n: int = 12, tuning: Tuning = Tuning()) -> dict[str, EnhanceTiming]:
    """Enhancement ms per frame at each resolution, on synthetic frames (no codec involved)."""
    out: dict[str, EnhanceTiming] = {}
    for name in names:
        w, h = parse_resolution(name)
        frames = []
        for i in range(n):
            rgb = backlit_frame(w, h, i / 30)
            frames.append(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p"))
        out[name] = measure_enhance(frames, make_enhancer(engine, weights, backend, tuning))
    return out


def _stage_json(v: dict[str, float]) -> dict[str, float]:
    keep = ("mean_ms", "p95_ms", "cpu_ms")
    return {k: v[k] for k in keep if k in v}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class BenchReport:
    """Everything one bench run measured; :meth:`to_json` is the ``--json`` document."""

    resolution: str
    engine: str
    backend: str
    runs: dict[str, list[RunStats]]
    peers: dict[str, float]
    enhance: EnhanceTiming
    gpu: dict[str, Any] | None = None
    scaling: dict[str, EnhanceTiming] = field(default_factory=dict)
    input: str = ""
    tuning: Tuning = Tuning()

    def fps(self, engine: str) -> float:
        return statistics.median(r.fps for r in self.runs[engine])

    def best(self, engine: str) -> RunStats:
        runs = self.runs[engine]
        return sorted(runs, key=lambda r: r.fps)[len(runs) // 2]

    def to_json(self) -> dict[str, Any]:
        run = self.best(self.engine)
        floor = self.fps("identity")
        return {
            "input": self.input,
            "resolution": self.resolution,
            "engine": self.engine,
            "strength": self.tuning.strength,
            "engine_every": self.tuning.engine_every,
            "denoise": self.tuning.denoise,
            "temporal": self.tuning.temporal,
            "temporal_strength": self.tuning.temporal_strength,
            "backend": self.backend,
            "frames": run.frames,
            "fps": self.fps(self.engine),
            "floor_fps": floor,
            "ratio_to_floor": self.fps(self.engine) / floor if floor else 0.0,
            "enhance_ms": self.enhance.sequential,
            "enhance_overlapped_ms": self.enhance.overlapped,
            "stages": {k: _stage_json(v) for k, v in run.stages.items()},
            "latency_ms": {"p50": run.latency["p50"], "p95": run.latency["p95_ms"], "p99": run.latency["p99"]},
            "cpu_cores_used": run.cpu_seconds / run.seconds if run.seconds else 0.0,
            # process CPU (all threads) per frame: steadier than fps on a shared machine
            "cpu_ms_per_frame": _cpu_ms_per_frame(self.runs[self.engine]),
            "floor_cpu_ms_per_frame": _cpu_ms_per_frame(self.runs["identity"]),
            "peak_rss_mb": peak_rss_mb(),
            "peers": self.peers,
            "speedup": {k: v / self.enhance.sequential for k, v in self.peers.items() if self.enhance.sequential},
            "runs": {k: [r.fps for r in v] for k, v in self.runs.items()},
            "gpu": self.gpu,
            "scaling_ms": {k: v.sequential for k, v in self.scaling.items()},
            "scaling_overlapped_ms": {k: v.overlapped for k, v in self.scaling.items()},
        }


def _cpu_ms_per_frame(runs: list[RunStats]) -> float:
    """Median over the rounds of the process CPU ms per frame."""
    return statistics.median(1e3 * r.cpu_seconds / r.frames for r in runs if r.frames) if runs else 0.0


def bench(src: Path | None, synthetic: str | None, engine: str, weights: Path | None, backend: Backend | str,
          frames: int, options: EncodeOptions, rounds: int = 2, peers: bool = True,
          scale: list[str] | None = None, log: Callable[[str], None] = print,
          tuning: Tuning = Tuning()) -> BenchReport:
    """Run the whole benchmark (see the module docstring).

    ``tuning``: the engine's rate, temporal filter and denoiser (:class:`Tuning`), in the pipeline
    runs and in the enhancement-alone timings.

    ``backend``: a resolved :class:`Backend` or its name. The ``gpu`` field of the report holds
    NVML figures sampled during the pipeline runs (:mod:`streamfix.telemetry`), or why there are none.
    """
    if isinstance(backend, str):
        backend = select_backend(backend)
    torch.set_flush_denormal(True)
    work = Path(tempfile.mkdtemp(prefix="streamfix-bench-"))
    if src is None:
        size = parse_resolution(synthetic or "1080p")
        log(f"making a synthetic {size[0]}x{size[1]} clip of {frames} frames …")
        src = synthetic_clip(size, frames, work)
    engines = ["identity"] if engine == "identity" else ["identity", engine]
    if engine != "identity":  # load the JIT caches and the network once, outside every timed run
        warm = make_enhancer(engine, weights, backend, tuning)
        for f in decoded_frames(src, 2):
            enhance_frame(warm, f)
    runs: dict[str, list[RunStats]] = {e: [] for e in engines}
    sampler = GpuSampler().start()
    try:
        for r in range(rounds):
            for name in engines if r % 2 == 0 else engines[::-1]:
                stats = run_pipeline(src, name, weights if name == engine else None, backend, options, frames, work,
                                     tuning)
                runs[name].append(stats)
                log(f"round {r + 1}/{rounds}: {name:<10} {stats.frames} frames, {stats.fps:.2f} fps")
    finally:
        sampler.stop()
    gpu = sampler.report(frames=sum(r.frames for rs in runs.values() for r in rs))
    sample = decoded_frames(src, 12)
    h, w = sample[0].height, sample[0].width
    enhance = measure_enhance(sample, make_enhancer(engine, weights, backend, tuning))
    peer_ms = measure_peers(sample, weights if engine == "sci" else None) if peers else {}
    report = BenchReport(f"{w}x{h}", engine, backend.name, runs, peer_ms, enhance, gpu=gpu, input=str(src),
                         tuning=tuning)
    if scale:
        report.scaling = scaling(engine, weights, backend, scale, tuning=tuning)
    return report


def format_table(report: BenchReport) -> str:
    """The human-readable report (markdown tables)."""
    j = report.to_json()
    lines = [
        f"streamfix bench — {j['resolution']}, engine {j['engine']}"
        + (f" (run on 1 frame in {j['engine_every']})" if j["engine_every"] > 1 else "")
        + f", temporal {j['temporal']}" + (f" {j['temporal_strength']:g}" if j["temporal"] != "off" else "")
        + (f", denoise {j['denoise']:g}" if j["denoise"] > 0 else ", no denoise")
        + f", backend {j['backend']}, {j['frames']} frames",
        "",
        "| stage | mean ms | p95 ms | CPU ms (its thread) |",
        "|---|---|---|---|",
    ]
    for name in ("decode", *STAGES, "encode"):
        s = j["stages"].get(name)
        if s:
            cpu = f"{s['cpu_ms']:.2f}" if "cpu_ms" in s else "—"
            lines.append(f"| {name} | {s['mean_ms']:.2f} | {s['p95_ms']:.2f} | {cpu} |")
    lat = j["latency_ms"]
    lines += [
        "",
        f"end-to-end: {j['fps']:.2f} fps; passthrough floor (identity): {j['floor_fps']:.2f} fps; "
        f"ratio {j['ratio_to_floor']:.3f}",
        "enhancement (thumbnail + engine + temporal + slice + denoise, frames already decoded): "
        f"{j['enhance_ms']:.2f} ms/frame"
        f" on one thread; {j['enhance_overlapped_ms']:.2f} ms/frame with the engine and the slicing overlapped on two",
        f"frame latency decoded → encoded: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms",
        f"CPU per frame (process, all threads): {j['cpu_ms_per_frame']:.1f} ms; passthrough "
        f"{j['floor_cpu_ms_per_frame']:.1f} ms; CPU cores used: {j['cpu_cores_used']:.2f}; "
        f"peak RSS {j['peak_rss_mb']:.0f} MB",
        format_gpu(j["gpu"]),
    ]
    if j["peers"]:
        lines += ["", "| alternative (per frame) | ms | streamfix speed-up |", "|---|---|---|"]
        for k, v in j["peers"].items():
            lines.append(f"| {k} | {v:.1f} | {j['speedup'][k]:.1f}x |")
    if j["scaling_ms"]:
        lines += ["", "| resolution | enhance ms/frame, one thread | overlapped, two threads |", "|---|---|---|"]
        lines += [f"| {k} | {v:.2f} | {j['scaling_overlapped_ms'][k]:.2f} |" for k, v in j["scaling_ms"].items()]
    return "\n".join(lines)


def plot(report: BenchReport, path: Path) -> None:
    """Stage breakdown bar chart (and the scaling curve on log-log axes when measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    j = report.to_json()
    names = [n for n in ("decode", *STAGES, "encode") if n in j["stages"]]
    panels = 2 if j["scaling_ms"] else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    ax.barh(names, [j["stages"][n]["mean_ms"] for n in names], color="#4c72b0")
    ax.set_xlabel("ms per frame (mean)")
    ax.set_title(f"{j['engine']} @ {j['resolution']}: {j['fps']:.1f} fps (floor {j['floor_fps']:.1f})")
    ax.invert_yaxis()
    if j["scaling_ms"]:
        ax2 = axes[0][1]
        px = [np.prod(parse_resolution(k)) for k in j["scaling_ms"]]
        ax2.loglog(px, list(j["scaling_ms"].values()), "o-", label="one thread")
        ax2.loglog(px, list(j["scaling_overlapped_ms"].values()), "s--", label="engine ‖ slice, two threads")
        ax2.legend()
        for k, x, y in zip(j["scaling_ms"], px, j["scaling_ms"].values(), strict=True):
            ax2.annotate(k, (x, y))
        ax2.set_xlabel("pixels per frame")
        ax2.set_ylabel("enhance ms per frame")
        ax2.set_title("cost vs resolution")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

