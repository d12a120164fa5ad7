"""Live counters: frames, drops, fps and per-frame latency percentiles, in constant memory.

Each frame is timed at three points (``time.perf_counter()`` seconds): **arrival** (the reader
released it), **enhanced** (the enhanced frame is ready) and **sent** (its first delivery: a
preview JPEG written to a browser, a frame handed to the window, or a frame muxed by ``--out``).
Latencies go into fixed-size histograms (whole run) and short windows (the last few seconds), so
an hours-long run uses the same memory as a minute.

    >>> h = LatencyHistogram()
    >>> for ms in (10, 20, 30, 40):
    ...     h.add(ms)
    >>> h.percentile(50), h.percentile(99), h.count
    (20.1, 40.0, 4)
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

#: fps is measured over this many seconds
FPS_WINDOW_S = 2.0
#: "recent" latency percentiles cover this many frames
RECENT_FRAMES = 300


class LatencyHistogram:
    """Millisecond latencies in ``resolution``-ms bins up to ``top`` ms (above: one overflow bin)."""

    def __init__(self, resolution: float = 0.1, top: float = 10_000.0) -> None:
        self.resolution = resolution
        self.bins = np.zeros(int(top / resolution) + 2, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, ms: float) -> None:
        ms = float(ms)
        i = min(len(self.bins) - 1, max(0, int(ms / self.resolution)))
        self.bins[i] += 1
        self.count += 1
        self.total += ms
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile: the upper edge of its bin (capped at the maximum seen), or None."""
        if not self.count:
            return None
        rank = max(1, int(np.ceil(q / 100.0 * self.count)))
        i = int(np.searchsorted(np.cumsum(self.bins), rank))
        if i >= len(self.bins) - 1:
            return round(self.max, 1)
        return round(min(self.max, (i + 1) * self.resolution), 1)

    def summary(self) -> dict[str, float | None]:
        return _summary(self.count, self.total, self.max, self.percentile)


def _summary(count: int, total: float, mx: float, pct) -> dict[str, float | None]:  # noqa: ANN001
    if not count:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None, "count": 0}
    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "mean": round(total / count, 2),
            "max": round(mx, 1), "count": count}


class Window:
    """The last ``size`` latencies (ms) for "right now" percentiles."""

    def __init__(self, size: int = RECENT_FRAMES) -> None:
        self.values: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self.values.append(ms)

    def summary(self) -> dict[str, float | None]:
        v = np.fromiter(self.values, float, len(self.values))
        if not v.size:
            return _summary(0, 0.0, 0.0, None)
        return _summary(v.size, float(v.sum()), float(v.max()),
                        lambda q: round(float(np.percentile(v, q, method="higher")), 1))


class LiveStats:
    """Thread-safe counters for a live session (see the module docstring for the three times)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.perf_counter()
        self.frames = 0
        self.sent = 0
        self.enhance_errors = 0
        self.latency = LatencyHistogram()  # arrival → enhanced
        self.latency_sent = LatencyHistogram()  # arrival → sent
        self.work = LatencyHistogram()  # enhance_frame alone
        self.recent = Window()
        self.recent_sent = Window()
        self._times: deque[float] = deque()
        self._last_sent_seq = 0

    def enhanced(self, arrival: float, start: float, ready: float) -> None:
        """A frame that arrived at ``arrival`` was enhanced between ``start`` and ``ready``."""
        ms = (ready - arrival) * 1000.0
        with self._lock:
            self.frames += 1
            self.latency.add(ms)
            self.recent.add(ms)
            self.work.add((ready - start) * 1000.0)
            self._times.append(ready)
            while self._times and ready - self._times[0] > FPS_WINDOW_S:
                self._times.popleft()

    def delivered(self, seq: int, arrival: float, now: float | None = None) -> None:
        """Frame ``seq`` reached a viewer or the output; only its first delivery counts."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            if seq <= self._last_sent_seq:
                return
            self._last_sent_seq = seq
            self.sent += 1
            ms = (now - arrival) * 1000.0
            self.latency_sent.add(ms)
            self.recent_sent.add(ms)

    def fps(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        with self._lock:
            times = [t for t in self._times if now - t <= FPS_WINDOW_S]
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], times[-1] - times[0])
        return round((len(times) - 1) / span, 2) if span > 0 else 0.0

    def snapshot(self) -> dict[str, object]:
        """Counters and latency summaries (ms) as plain values."""
        now = time.perf_counter()
        fps = self.fps(now)
        with self._lock:
            return {
                "frames": self.frames,
                "sent": self.sent,
                "uptime_s": round(now - self.started, 2),
                "latency_ms": self.latency.summary(),
                "latency_recent_ms": self.recent.summary(),
                "sent_latency_ms": self.latency_sent.summary(),
                "sent_latency_recent_ms": self.recent_sent.summary(),
                "enhance_ms": self.work.summary(),
                "fps": fps,
            }
