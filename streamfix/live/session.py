"""A live session: source → enhance → preview and ``--out``, until the duration, Ctrl-C or the end.

    sf-source thread          calling thread              sf-render thread        viewers
    decode (+ pace) ──slot──► enhance_frame ──pair slot──► view → BGR → JPEG ──► hub ─► /stream.mjpg
    reconnect                 latency, fps    └──► --out (sf-out thread)     └──► window (child)

Only the newest frame moves on at each hand-over; what is replaced before it is taken is counted
(``dropped`` at the source, which is what a viewer misses; ``preview_skipped`` for pictures the
renderer had no time for). The renderer encodes JPEGs only while someone watches.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from streamfix.enhancer import Enhancer
from streamfix.events import Bus
from streamfix.live.page import render_page
from streamfix.live.preview import Hub, PreviewServer
from streamfix.live.render import VIEWS, Renderer, next_view
from streamfix.live.sinks import OutputSink
from streamfix.live.sources import LiveSource, NewestSlot
from streamfix.live.stats import LiveStats
from streamfix.pipeline import enhance_frame

#: while the source is down, the status picture is re-sent this often (keeps viewers informed)
STATUS_EVERY_S = 0.5
#: progress events for the console, seconds apart
PROGRESS_EVERY_S = 1.0


@dataclass
class LiveOptions:
    """How a session previews and ends. ``duration`` None: until Ctrl-C or the source ends."""

    preview: str = "browser"
    host: str = "127.0.0.1"
    port: int = 8080
    duration: float | None = None
    jpeg_quality: int = 80
    preview_width: int = 1280
    strength_step: float = 0.1
    view: str = "split"


@dataclass
class _Pair:
    before: av.VideoFrame
    after: av.VideoFrame
    arrival: float
    seq: int


@dataclass
class LiveSummary:
    """What a session did (see :meth:`LiveSession.stats` for the same figures while running)."""

    seconds: float
    frames: int
    fps: float
    dropped: int
    dropped_per_min: float
    latency_ms: dict[str, float | None]
    sent_latency_ms: dict[str, float | None]
    enhance_ms: dict[str, float | None]
    reconnects: int
    outages_s: list[float]
    ended_by: str
    out: dict[str, Any] = field(default_factory=dict)


class LiveSession:
    """Runs one live enhancement (build the parts, then :meth:`run` on the calling thread).

    Args:
        source: an unstarted :class:`LiveSource`.
        enhancer: the enhancer (its ``strength`` is changed by the strength keys).
        engine: engine name for the page and stats.
        sink: the ``--out`` sink or None.
        window: a factory ``(title, on_key, on_shown) -> WindowPreview`` for ``--preview window``.
    """

    def __init__(self, source: LiveSource, enhancer: Enhancer, engine: str, bus: Bus, options: LiveOptions,
                 sink: OutputSink | None = None, window=None) -> None:  # noqa: ANN001
        self.source = source
        self.enhancer = enhancer
        self.engine = engine
        self.bus = bus
        self.options = options
        self.sink = sink
        self.view = options.view if options.view in VIEWS else "split"
        self.stats_ = LiveStats()
        self.hub = Hub()
        self.server: PreviewServer | None = None
        self.window = None
        self._window_factory = window
        self._pairs: NewestSlot[_Pair] = NewestSlot()
        self._last: _Pair | None = None
        self._last_lock = threading.Lock()
        self._snap_renderer = Renderer(options.jpeg_quality, options.preview_width)
        self._snap_lock = threading.Lock()
        self._stop = threading.Event()
        self._ended_by = "duration"
        self._first_frame: float | None = None
        self._render_thread = threading.Thread(target=self._render_loop, name="sf-render", daemon=True)
        self.page = render_page(source.spec.label, engine)

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> None:
        """Bind the preview server (may raise: port in use) and start the window; nothing runs yet."""
        if self.options.preview == "browser":
            self.server = PreviewServer(self.hub, self, lambda: self.page, self.options.host, self.options.port)
        elif self.options.preview == "window" and self._window_factory is not None:
            self.window = self._window_factory(f"streamfix live: {self.source.spec.label}", self._on_key,
                                               self.delivered)

    @property
    def url(self) -> str | None:
        return self.server.url if self.server is not None else None

    def stop(self, why: str = "stopped") -> None:
        """End the run from any thread (Ctrl-C, the window's quit key, a signal)."""
        self._ended_by = why
        self._stop.set()

    def run(self) -> LiveSummary:
        """Enhance until the duration passes, :meth:`stop` is called or the source ends."""
        if self.server is None and self.window is None and self.options.preview != "none":
            self.open()
        restore_threads = self._bind_threads()
        self.warm_up()
        t_start = self.stats_.started = time.perf_counter()
        deadline = t_start + self.options.duration if self.options.duration else None
        self.source.start()
        if self.server is not None:
            self.server.start()
        if self.options.preview != "none":
            self._render_thread.start()
        next_progress = t_start + PROGRESS_EVERY_S
        try:
            while not self._stop.is_set():
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    self._ended_by = "duration"
                    break
                if now >= next_progress:
                    next_progress = now + PROGRESS_EVERY_S
                    self.bus.progress("live", **self._progress())
                wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
                arrival = self.source.slot.take(wait)
                if arrival is None:
                    if self.source.finished:
                        self._ended_by = "source failed" if self.source.error else "end of source"
                        break
                    continue
                t0 = time.perf_counter()
                out = enhance_frame(self.enhancer, arrival.frame)
                t1 = time.perf_counter()
                if self._first_frame is None:
                    self._first_frame = t1
                self.stats_.enhanced(arrival.t, t0, t1)
                pair = _Pair(arrival.frame, out, arrival.t, arrival.seq)
                with self._last_lock:
                    self._last = pair
                if self.options.preview != "none":
                    self._pairs.put(pair)
                if self.sink is not None:
                    self.sink.put(out, arrival.t, arrival.seq)
        except KeyboardInterrupt:
            self._ended_by = "Ctrl-C"
        finally:
            t_end = time.perf_counter()
            self._shutdown()
            restore_threads()
        if self.source.error is not None and not self.stats_.frames:
            raise self.source.error
        return self._summary(t_start, t_end)

    def _bind_threads(self):  # noqa: ANN202 - returns the restorer
        """The enhancer's thread budget on this (the enhancing) thread, OpenCV's to match; returns a
        function restoring the previous counts (for callers that go on in the same process).

        Decode, preview and ``--out`` run on threads of their own; thread pools that spin beside
        them collapse when cores are shared (2 shared cores, 720p identity: 13-25 ms a frame with
        one thread each, 70-240 ms with two).
        """
        import cv2
        import numba
        import torch

        before = numba.get_num_threads(), torch.get_num_threads(), cv2.getNumThreads()
        self.enhancer.bind_thread()
        if torch.get_num_threads() != self.enhancer.threads:  # numba's first launch can reset OpenMP's count
            torch.set_num_threads(self.enhancer.threads)
        cv2.setNumThreads(self.enhancer.threads)

        def restore() -> None:
            numba.set_num_threads(before[0])
            torch.set_num_threads(before[1])
            cv2.setNumThreads(before[2])

        return restore

    def warm_up(self) -> None:
        """Enhance one synthetic frame first: JIT compilation and first-call costs (≈ 1 s) are then
        paid before the source opens, not by the first frames (as latency and drops)."""
        frame = av.VideoFrame(320, 180, "yuv420p")
        for plane, value in zip(frame.planes, (60, 128, 128), strict=True):
            np.frombuffer(plane, np.uint8)[:] = value
        frame.pts, frame.time_base = 0, Fraction(1, 30)
        enhance_frame(Enhancer(self.enhancer.engine, self.enhancer.device, self.enhancer.strength, None), frame)

    def _shutdown(self) -> None:
        self._stop.set()
        self.source.stop(wait=1.0)
        self._pairs.close()
        if self._render_thread.is_alive():
            self._render_thread.join(2)
        if self.sink is not None:
            self.sink.close()
        if self.server is not None:
            self.server.close()
        if self.window is not None:
            self.window.close()

    # -- the render thread ----------------------------------------------------------------------------
    def _render_loop(self) -> None:
        renderer = Renderer(self.options.jpeg_quality, self.options.preview_width)
        last: _Pair | None = None
        last_status = 0.0
        while not self._stop.is_set():
            pair = self._pairs.take(STATUS_EVERY_S / 2)
            watching = self.hub.viewers > 0 or self.window is not None
            if pair is None:
                now = time.perf_counter()
                state, message = self.source.status(now)
                if state != "live" and now - last_status >= STATUS_EVERY_S:
                    # published even to no one, so a viewer who arrives during an outage sees why
                    last_status = now
                    text = f"{state}: {message}"
                    if last is not None:
                        img = renderer.picture(last.before, last.after, self.view, status=text)
                    else:
                        img = renderer.placeholder(text)
                    self._publish(renderer, img, 0, 0.0, always=True)
                continue
            last = pair
            if not watching:
                continue
            img = renderer.picture(pair.before, pair.after, self.view)
            self._publish(renderer, img, pair.seq, pair.arrival)

    def _publish(self, renderer: Renderer, img, seq: int, arrival: float, always: bool = False) -> None:  # noqa: ANN001
        if self.window is not None:
            self.window.show(img, seq, arrival)
        if always or self.hub.viewers > 0:
            self.hub.publish(renderer.jpeg(img), seq, arrival)

    # -- controls (the preview server and the window call these) ---------------------------------------
    def delivered(self, frame_seq: int, arrival: float) -> None:
        self.stats_.delivered(frame_seq, arrival)

    def act(self, action: str) -> dict[str, object]:
        """``toggle`` (split → after → before), ``stronger``, ``weaker``; returns the stats."""
        if action == "toggle":
            self.view = next_view(self.view)
        elif action in ("stronger", "weaker"):
            step = self.options.strength_step * (1 if action == "stronger" else -1)
            self.enhancer.strength = round(min(1.0, max(0.0, self.enhancer.strength + step)), 3)
        else:
            raise ValueError(f"unknown action {action!r}; use toggle, stronger or weaker")
        self.bus.info("control", f"view {self.view}, strength {self.enhancer.strength:.2f}",
                      view=self.view, strength=self.enhancer.strength)
        return self.stats()

    def snapshot(self, view: str | None = None) -> bytes | None:
        """JPEG of the newest frame pair in ``view`` (default: the current view), or None before any."""
        with self._last_lock:
            pair = self._last
        if pair is None:
            return None
        with self._snap_lock:
            img = self._snap_renderer.picture(pair.before, pair.after, view if view in VIEWS else self.view)
            return self._snap_renderer.jpeg(img)

    def _on_key(self, word: str) -> None:
        if word == "quit":
            self.stop("window closed")
        elif word == "snapshot":
            jpeg = self.snapshot()
            if jpeg is not None:
                path = Path(f"streamfix-snapshot-{datetime.now():%Y%m%d-%H%M%S}.jpg")
                path.write_bytes(jpeg)
                self.bus.info("snapshot", f"snapshot saved to {path.resolve()}", path=str(path))
        else:
            with contextlib.suppress(ValueError):
                self.act(word)

    # -- numbers ---------------------------------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        """Everything ``/stats.json`` shows."""
        s = self.stats_.snapshot()
        state, message = self.source.status()
        uptime = float(s["uptime_s"])
        s.update(
            dropped=self.source.dropped,
            dropped_per_min=round(self.source.dropped / uptime * 60, 2) if uptime > 0 else 0.0,
            received=self.source.received,
            source=self.source.spec.label,
            source_kind=self.source.spec.kind,
            video=dict(self.source.video),
            engine=self.engine,
            device=self.enhancer.device,
            strength=self.enhancer.strength,
            view=self.view,
            status=state,
            message=message,
            reconnects=self.source.reconnects,
            outages_s=[round(o.seconds, 2) for o in self.source.outages if o.seconds is not None],
            viewers=self.hub.viewers,
        )
        if self.sink is not None:
            s["out"] = {"target": self.sink.label, "frames": self.sink.frames, "dropped": self.sink.dropped,
                        "error": str(self.sink.error) if self.sink.error else None}
        return s

    def _progress(self) -> dict[str, Any]:
        s = self.stats_.snapshot()
        state, message = self.source.status()
        return {"frames": s["frames"], "fps": s["fps"], "latency": s["latency_recent_ms"],
                "dropped": self.source.dropped, "state": state, "message": message}

    def _summary(self, t_start: float, t_end: float) -> LiveSummary:
        s = self.stats_.snapshot()
        frames = int(s["frames"])
        running = (t_end - self._first_frame) if self._first_frame is not None else 0.0
        out: dict[str, Any] = {}
        if self.sink is not None:
            out = {"target": self.sink.label, "frames": self.sink.frames, "dropped": self.sink.dropped,
                   "bytes": self.sink.bytes, "error": str(self.sink.error) if self.sink.error else None}
        return LiveSummary(
            seconds=round(t_end - t_start, 2),
            frames=frames,
            fps=round((frames - 1) / running, 2) if running > 0 and frames > 1 else 0.0,
            dropped=self.source.dropped,
            dropped_per_min=round(self.source.dropped / (t_end - t_start) * 60, 2) if t_end > t_start else 0.0,
            latency_ms=s["latency_ms"],  # type: ignore[arg-type]
            sent_latency_ms=s["sent_latency_ms"],  # type: ignore[arg-type]
            enhance_ms=s["enhance_ms"],  # type: ignore[arg-type]
            reconnects=self.source.reconnects,
            outages_s=[round(o.seconds, 2) for o in self.source.outages if o.seconds is not None],
            ended_by=self._ended_by,
            out=out,
        )
