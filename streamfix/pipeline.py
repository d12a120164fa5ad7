"""The transcode pipeline: decode ‖ plan ‖ slice ‖ encode on four threads joined by bounded queues.

    reader ──q──► plan thread ──q──► slice thread ──q──► calling thread (encode + mux)
                  (thumbnail → engine                (full-resolution
                   → temporal: the grid)              bilateral slicing)

The engine works on frame n+1 while frame n is sliced and frame n−1 encoded, so the engine is
off the slicing's critical path. PyAV's codecs, the numba kernels and PyTorch release the GIL,
so the stages overlap. Audio and subtitle packets ride the same queues untouched, which keeps
their order relative to video for the one thread that muxes. Errors raised in a worker travel
down the queues and are re-raised on the calling thread; Ctrl-C stops the workers and removes
the partial output.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from streamfix.enhancer import Enhancer
from streamfix.errors import DamagedInputError, InputError, Interrupted, UsageError
from streamfix.events import Bus
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.planes import Planes
from streamfix.io.frames import new_frame_like, planes_of, processing_format
from streamfix.io.reader import DecodeReport, VideoReader
from streamfix.io.writer import EncodeOptions, VideoWriter

#: queue depth between stages (frames); bounds memory at a few frames per stage
QUEUE_DEPTH = 6

_END = object()


@dataclass
class _Failure:
    error: BaseException


@dataclass
class _Decoded:
    frame: av.VideoFrame
    at: float  # perf_counter when the decoder handed it over


@dataclass
class _Enhanced:
    frame: av.VideoFrame
    rotation: int
    at: float


@dataclass
class FramePlan:
    """A decoded frame with the grid to slice into it (:func:`plan_frame`), or, for the GPU path,
    the frame already enhanced (``done``)."""

    frame: av.VideoFrame
    planes: Planes | None = None
    grid: BilateralGrid | None = None
    done: av.VideoFrame | None = None


@dataclass
class _Planned:
    plan: FramePlan
    rotation: int
    at: float


@dataclass
class PipelineStats:
    """Per-frame timings of the threaded stages, in ms: ``stage_ms`` holds ``decode`` (time the
    reader spent producing each frame, demux included) and ``encode`` (encode + mux);
    ``latency_ms`` runs from a frame leaving the decoder to its encode call returning."""

    stage_ms: dict[str, list[float]] = field(default_factory=lambda: {"decode": [], "encode": []})
    latency_ms: list[float] = field(default_factory=list)


@dataclass
class TranscodeResult:
    """Summary of one transcode."""

    output: Path
    frames: int
    seconds: float
    bytes: int
    packets_copied: int
    report: DecodeReport
    scene_cuts: list[int] = field(default_factory=list)
    stats: PipelineStats = field(default_factory=PipelineStats)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event | None = None) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop is not None and stop.is_set():
                return _END


def _reader_loop(reader: VideoReader, out: queue.Queue, stop: threading.Event, stats: PipelineStats) -> None:
    try:
        items = iter(reader)
        busy = 0.0
        while True:
            t0 = time.perf_counter()
            item = next(items, _END)
            now = time.perf_counter()
            busy += now - t0
            if item is _END:
                break
            if isinstance(item, av.VideoFrame):
                stats.stage_ms["decode"].append(busy * 1000.0)
                busy = 0.0
                item = _Decoded(item, now)
            if stop.is_set() or not _put(out, item, stop):
                return
        _put(out, _END, stop)
    except BaseException as e:  # noqa: BLE001 - carried to the calling thread
        _put(out, _Failure(e), stop)


def _stage_loop(enhancer: Enhancer, step: Callable[[object], object], src: queue.Queue, out: queue.Queue,
                stop: threading.Event) -> None:
    """Apply ``step`` to each frame item of ``src`` (other packets pass through), in order."""
    try:
        enhancer.bind_thread()
        while not stop.is_set():
            item = _get(src, stop)
            if item is _END or isinstance(item, _Failure):
                _put(out, item, stop)
                return
            if isinstance(item, (_Decoded, _Planned)):
                item = step(item)
            if not _put(out, item, stop):
                return
    except BaseException as e:  # noqa: BLE001 - carried to the calling thread
        _put(out, _Failure(e), stop)


def plan_frame(enhancer: Enhancer, frame: av.VideoFrame, bus: Bus | None = None) -> FramePlan:
    """The first half of :func:`enhance_frame`: bring the frame to its processing format and
    find its grid (thumbnail → engine → temporal). Frames must be planned in order.

    Frames still in GPU memory (NVDEC, ``format.name == "cuda"``) are enhanced there whole and
    only the result is downloaded (:mod:`streamfix.gpu.frames`); layouts that path does not take
    are downloaded first and go the software way, with one line on ``bus`` (or on the bus
    :func:`transcode` attached to the enhancer's device path).

    A passthrough enhancer (the benchmarks' I/O floor) plans nothing: the decoded frame, in its
    processing format, is the result.
    """
    if frame.format.name == "cuda":
        from streamfix.gpu.frames import download_frame, enhance_device_frame

        done = None if enhancer.passthrough else enhance_device_frame(enhancer, frame, bus)
        if done is not None:
            return FramePlan(frame, done=done)
        frame = download_frame(frame)
    name = frame.format.name
    bits = max(c.bits for c in frame.format.components)
    proc = processing_format(name, bits, frame.width, frame.height)
    if proc != name:
        pts, tb = frame.pts, frame.time_base
        frame = frame.reformat(format=proc)
        frame.pts, frame.time_base = pts, tb
    if enhancer.passthrough:
        return FramePlan(frame, done=frame)
    planes = planes_of(frame)
    return FramePlan(frame, planes, enhancer.plan(planes))


def render_frame(enhancer: Enhancer, plan: FramePlan) -> av.VideoFrame:
    """The second half of :func:`enhance_frame`: slice the plan's grid into a new frame of the
    processing format (pts and tags kept). Stateless: may run on another thread than the plans."""
    if plan.done is not None:
        return plan.done
    assert plan.planes is not None and plan.grid is not None
    out = new_frame_like(plan.frame)
    enhancer.apply(plan.planes, plan.grid, planes_of(out, plan.planes.fmt))
    return out


def enhance_frame(enhancer: Enhancer, frame: av.VideoFrame, bus: Bus | None = None) -> av.VideoFrame:
    """Enhance one decoded frame into a new frame of the processing format (pts and tags kept):
    :func:`plan_frame` then :func:`render_frame` on the calling thread."""
    return render_frame(enhancer, plan_frame(enhancer, frame, bus))


def transcode(
    source: Path,
    target: Path,
    enhancer: Enhancer,
    options: EncodeOptions,
    bus: Bus,
    start: float | None = None,
    duration: float | None = None,
    allow_damaged: bool = False,
    on_reader: Callable[[VideoReader], None] | None = None,
    hwaccel: str | None = "auto",
) -> TranscodeResult:
    """Enhance ``source`` into ``target``.

    ``hwaccel``: ``"auto"`` decodes with NVDEC into GPU memory when the enhancer runs on CUDA
    (falling back to software decoding with one informational line), ``"cuda"`` asks for it
    regardless, None decodes in software.

    Raises:
        InputError / OutputError / UsageError: bad input or output (nothing written).
        DamagedInputError: the input was damaged and ``allow_damaged`` is False; the output
            holding what decoded has been written.
        Interrupted: Ctrl-C; nothing left at ``target``.
    """
    t0 = time.perf_counter()
    if hwaccel == "auto":
        hwaccel = "cuda" if enhancer.device == "cuda" else None
    reader = VideoReader(source, start, duration, hwaccel=hwaccel, bus=bus)
    if reader.hw_decoding is None:  # frames will arrive in GPU memory: the device path reports on this bus
        from streamfix.gpu.frames import device_path

        device_path(enhancer, bus)
    if on_reader is not None:
        on_reader(reader)
    stop = threading.Event()
    stats = PipelineStats()
    decoded: queue.Queue = queue.Queue(QUEUE_DEPTH)
    planned: queue.Queue = queue.Queue(QUEUE_DEPTH)
    enhanced: queue.Queue = queue.Queue(QUEUE_DEPTH)

    def plan(item: object) -> _Planned:
        assert isinstance(item, _Decoded)
        return _Planned(plan_frame(enhancer, item.frame), _rotation(item.frame), item.at)

    def render(item: object) -> _Enhanced:
        assert isinstance(item, _Planned)
        return _Enhanced(render_frame(enhancer, item.plan), item.rotation, item.at)

    workers = [
        threading.Thread(target=_reader_loop, args=(reader, decoded, stop, stats), name="sf-decode", daemon=True),
        threading.Thread(target=_stage_loop, args=(enhancer, plan, decoded, planned, stop), name="sf-plan",
                         daemon=True),
        threading.Thread(target=_stage_loop, args=(enhancer, render, planned, enhanced, stop), name="sf-slice",
                         daemon=True),
    ]
    for w in workers:
        w.start()
    writer: VideoWriter | None = None
    pending: list[av.Packet] = []
    size = 0
    try:
        while True:
            item = _get(enhanced)
            if item is _END:
                break
            if isinstance(item, _Failure):
                raise item.error
            if isinstance(item, _Enhanced):
                if writer is None:
                    writer = VideoWriter(target, item.frame, options, item.rotation, reader.rate,
                                         reader.time_base, reader.copy_streams, bus)
                    for p in pending:
                        writer.copy(p)
                    pending.clear()
                t_enc = time.perf_counter()
                writer.encode(item.frame)
                done = time.perf_counter()
                stats.stage_ms["encode"].append((done - t_enc) * 1000.0)
                stats.latency_ms.append((done - item.at) * 1000.0)
                bus.progress("frames", done=writer.frames, total=reader.frame_estimate())
            elif writer is None:
                pending.append(item)
            else:
                writer.copy(item)
        if writer is None:
            if start and not reader.report.damaged:
                length = reader.duration_seconds()
                about = f" (it is {length:.2f} s long)" if length is not None else ""
                raise UsageError(f"-ss {start:g}: {source} has no video frame from {start:g} s on{about}")
            raise InputError(f"no video frame could be decoded from {source} ({reader.report.describe()})")
        size = writer.finish()
    except KeyboardInterrupt:
        stop.set()
        if writer is not None:
            writer.abort()
        raise Interrupted(f"interrupted; nothing written to {target}") from None
    except BaseException:
        stop.set()
        if writer is not None:
            writer.abort()
        raise
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=5)
        reader.close()
    result = TranscodeResult(target, writer.frames, time.perf_counter() - t0, size, writer.packets,
                             reader.report, list(enhancer.scene_cuts), stats)
    if reader.report.damaged:
        msg = f"input {source} is damaged: {reader.report.describe()}; wrote the {writer.frames} frames that decoded"
        if not allow_damaged:
            raise DamagedInputError(msg + " (pass --allow-damaged to accept)")
        bus.warning("damage", msg)
    return result


def _rotation(frame: av.VideoFrame) -> int:
    try:
        return int(round(frame.rotation or 0))
    except (AttributeError, ValueError):
        return 0
