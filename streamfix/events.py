"""Events carried out of the pipeline (GStreamer-bus style) instead of printed from inside it.

Stages post :class:`Event` objects on a :class:`Bus`; the face on top (CLI, live server, bench)
decides how to show them.

    >>> bus = Bus()
    >>> seen = []
    >>> bus.subscribe(seen.append)
    >>> bus.info("codec", "h264_nvenc unavailable; using libx264")
    >>> seen[0].kind, seen[0].topic
    ('info', 'codec')
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """``kind`` is info | warning | progress; ``topic`` names the subject; ``data`` carries numbers."""

    kind: str
    topic: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Bus:
    """Thread-safe fan-out of events to subscribers (called on the posting thread)."""

    def __init__(self) -> None:
        self._subs: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()
        self.history: list[Event] = []

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        with self._lock:
            self._subs.append(fn)

    def post(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
            if event.kind != "progress":
                self.history.append(event)
        for fn in subs:
            fn(event)

    def info(self, topic: str, message: str, **data: Any) -> None:
        self.post(Event("info", topic, message, data))

    def warning(self, topic: str, message: str, **data: Any) -> None:
        self.post(Event("warning", topic, message, data))

    def progress(self, topic: str, **data: Any) -> None:
        self.post(Event("progress", topic, "", data))
