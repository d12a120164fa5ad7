"""Live sources: open, decode, pace and reconnect, on one reader thread per source.

A :class:`LiveSource` decodes on its own thread and hands frames over through a
:class:`NewestSlot`: the consumer always takes the newest frame, and a frame replaced before it
was taken is dropped and counted (live never builds a backlog). Network streams and webcams
reconnect with exponential backoff when they stall or go away; files (and ``lavfi:`` graphs)
are released at their own frame rate, looping with ``loop=True``.

Source strings (:func:`parse_source`):

=================================  ===========================================================
``rtsp://host/path``, ``rtsps://``  RTSP over TCP, socket timeouts, low-delay demuxing
``rtmp://``, ``srt://``, ``http…``  other network streams (timeouts, low delay)
``/dev/video0``, ``webcam:0``       a V4L2 webcam (``--size``, ``--fps`` ask for a mode)
``lavfi:testsrc2=size=640x360``     an FFmpeg filter graph (a camera without hardware)
anything else                       a video file, played in real time
=================================  ===========================================================

Example (a file source, newest frame only):
    >>> from streamfix.events import Bus
    >>> src = LiveSource(parse_source("lavfi:testsrc2=size=64x48:rate=30"), Bus())
    >>> src.start()
    >>> a = src.slot.take(timeout=5.0)
    >>> (a.frame.width, a.frame.height), src.state
    ((64, 48), 'live')
    >>> src.stop()
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

import av

from streamfix.errors import InputError, UsageError
from streamfix.events import Bus

T = TypeVar("T")

#: network schemes opened as streams (reconnect on loss); rtsp/rtsps get RTSP options on top
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https", "udp", "tcp", "rtp")

#: how often a long outage is reported again on the bus, seconds
REPORT_EVERY_S = 30.0


# -- the hand-over slot -----------------------------------------------------------------------
class NewestSlot(Generic[T]):
    """A one-item mailbox: ``put`` replaces an item not yet taken (counted in :attr:`dropped`).

    >>> s = NewestSlot()
    >>> s.put(1), s.put(2), s.take(0.0), s.dropped
    (False, True, 2, 1)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self.dropped = 0
        self.closed = False

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced one that was never taken."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
            return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item (removed), waiting up to ``timeout`` s; None on timeout or when closed and empty."""
        with self._cond:
            if self._item is None and not self.closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the consumer: no more items will come."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


# -- what a source is -------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceSpec:
    """How to open a source.

    Attributes:
        kind: ``rtsp`` | ``network`` | ``webcam`` | ``lavfi`` | ``file``.
        target: what ``av.open`` receives. label: what users see (credentials removed).
        format: forced demuxer (``v4l2``, ``lavfi``) or None. options: FFmpeg options for ``av.open``.
        paced: released at the source's own frame rate (files, lavfi graphs).
        reconnect: reopen with backoff when the stream ends or fails (network, webcams).
        loop: start again at the end (files).
        timeout: PyAV's (open, read) timeouts in seconds.
    """

    kind: str
    target: str
    label: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    paced: bool = False
    reconnect: bool = False
    loop: bool = False
    timeout: tuple[float, float] | None = None


def redact(url: str) -> str:
    """``url`` without the password of its user info (``rtsp://user:***@host/...``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def parse_source(
    text: str,
    loop: bool = False,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    timeout: float = 5.0,
) -> SourceSpec:
    """Turn a command-line source into a :class:`SourceSpec` (see the module table).

    Args:
        loop: files only: play again from the start at the end.
        size, fps: webcams only: the capture mode to ask for (``(w, h)``, frames per second).
        timeout: seconds before a connection attempt or a silent stream counts as failed.

    Raises:
        UsageError: options that do not apply to this kind of source.
        InputError: a file source that does not exist.
    """
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    us = str(int(timeout * 1_000_000))
    if (size or fps) and not (text.startswith("/dev/video") or text.startswith("webcam:")):
        raise UsageError("--size and --fps choose a webcam's capture mode; they do not apply to " + redact(text))
    if scheme in NETWORK_SCHEMES:
        if loop:
            raise UsageError("--loop applies to files; network streams are reconnected instead")
        opts = {"fflags": "nobuffer", "flags": "low_delay", "max_delay": "500000", "analyzeduration": "100000"}
        if scheme.startswith("rtsp"):
            # TCP avoids UDP loss and NAT trouble; `timeout` is the socket I/O timeout in µs (FFmpeg ≥ 5)
            opts.update({"rtsp_transport": "tcp", "timeout": us})
        elif scheme in ("http", "https", "rtmp", "rtmps", "tcp"):
            opts["rw_timeout"] = us
        elif scheme in ("udp", "srt", "rtp"):
            opts["timeout"] = us
        kind = "rtsp" if scheme.startswith("rtsp") else "network"
        return SourceSpec(kind, text, redact(text), None, opts, reconnect=True, timeout=(timeout * 2, timeout))
    m = re.fullmatch(r"(?:webcam:(\d+))|(/dev/video\d+)", text)
    if m:
        if loop:
            raise UsageError("--loop applies to files, not webcams")
        device = m.group(2) or f"/dev/video{m.group(1)}"
        opts = {}
        if size:
            opts["video_size"] = f"{size[0]}x{size[1]}"
        if fps:
            opts["framerate"] = f"{fps:g}"
        return SourceSpec("webcam", device, device, "v4l2", opts, reconnect=True, timeout=(timeout * 2, timeout))
    if text.startswith("lavfi:"):
        graph = text[len("lavfi:"):]
        if not graph:
            raise UsageError("lavfi: needs a filter graph, e.g. lavfi:testsrc2=size=1280x720:rate=30")
        return SourceSpec("lavfi", graph, text, "lavfi", {}, paced=True)
    path = Path(text)
    if not path.exists():
        hint = " (network sources need a scheme such as rtsp://)" if ":" in text or "/" not in text else ""
        raise InputError(f"source {text} does not exist{hint}")
    if path.is_dir():
        raise InputError(f"source {text} is a directory, not a video")
    return SourceSpec("file", str(path), path.name, None, {}, paced=True, loop=loop)


# -- pacing -----------------------------------------------------------------------------------
class Pacer:
    """Releases frames at their media times: frame at media time ``t`` is due at ``anchor + t``.

    Re-anchors when media time goes backwards (a loop) or when more than ``slack`` s late (after
    a stall), so a slow moment never turns into a burst of frames.
    """

    def __init__(self, slack: float = 0.5) -> None:
        self.slack = slack
        self.anchor: tuple[float, float] | None = None  # (wall, media)

    def delay(self, media: float, now: float) -> float:
        if self.anchor is None or media < self.anchor[1]:
            self.anchor = (now, media)
            return 0.0
        due = self.anchor[0] + (media - self.anchor[1])
        if now - due > self.slack:
            self.anchor = (now, media)
            return 0.0
        return max(0.0, due - now)


# -- the reader thread ------------------------------------------------------------------------
@dataclass
class Arrival:
    """A decoded frame and the moment (``time.perf_counter()``) the reader released it."""

    frame: av.VideoFrame
    t: float
    seq: int


@dataclass
class Outage:
    """One period without frames: ``lost`` (stream failed) → ``back`` (first frame after), perf_counter s."""

    lost: float
    back: float | None = None
    reason: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.back is None else self.back - self.lost


class LiveSource:
    """Decodes a source on a reader thread into :attr:`slot` (newest frame only).

    States: ``connecting`` (first open), ``live`` (frames flowing), ``reconnecting`` (lost; waiting
    or reopening), ``ended`` (file end without loop), ``failed`` (cannot open a file or device:
    :attr:`error` holds the reason). :meth:`status` adds ``stalled`` when a live stream has sent
    nothing for ``stall`` s.

    Args:
        spec: what to open (:func:`parse_source`).
        bus: where losses and recoveries are reported (topic ``source``).
        backoff: (first, longest) delay between reconnection attempts, seconds; doubles per failure.
        stall: seconds without a frame before :meth:`status` says ``stalled``.
    """

    def __init__(
        self, spec: SourceSpec, bus: Bus, backoff: tuple[float, float] = (0.25, 1.0), stall: float = 2.0
    ) -> None:
        self.spec = spec
        self.bus = bus
        self.backoff = backoff
        self.stall = stall
        self.slot: NewestSlot[Arrival] = NewestSlot()
        self.state = "connecting"
        self.message = f"opening {spec.label}"
        self.error: InputError | None = None
        self.received = 0
        self.reconnects = 0
        self.last_arrival: float | None = None
        self.outages: deque[Outage] = deque(maxlen=64)
        self.video: dict[str, object] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sf-source", daemon=True)
        self._lock = threading.Lock()

    # public ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        """Ask the reader to stop; waits up to ``wait`` s (a blocked network read ends by its timeout)."""
        self._stop.set()
        self.slot.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    @property
    def dropped(self) -> int:
        return self.slot.dropped

    @property
    def finished(self) -> bool:
        """No more frames will come (file ended, or the source failed for good)."""
        return self.state in ("ended", "failed")

    def status(self, now: float | None = None) -> tuple[str, str]:
        """``(state, message)`` for people: adds ``stalled`` when live but silent for ``stall`` s."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            state, msg, last = self.state, self.message, self.last_arrival
        if state == "live" and last is not None and now - last > self.stall:
            return "stalled", f"no frames for {now - last:.1f} s"
        return state, msg

    # the thread --------------------------------------------------------------------------------
    def _set(self, state: str, message: str) -> None:
        with self._lock:
            self.state, self.message = state, message

    def _open(self) -> av.container.InputContainer:
        s = self.spec
        kw: dict[str, object] = {"options": dict(s.options)}
        if s.format:
            kw["format"] = s.format
        if s.timeout:
            kw["timeout"] = s.timeout
        if s.kind == "webcam":
            # most UVC cameras reach 720p30 only in MJPEG; ask for it, else take what the camera gives
            try:
                return av.open(s.target, "r", **{**kw, "options": {**s.options, "input_format": "mjpeg"}})
            except av.FFmpegError:
                pass
        return av.open(s.target, "r", **kw)

    def _run(self) -> None:
        attempt = 0
        opened = False
        outage: Outage | None = None
        reported = 0.0
        while not self._stop.is_set():
            try:
                container = self._open()
            except (av.FFmpegError, OSError) as e:
                reason = _reason(e)
                if not self.spec.reconnect or (not opened and self.spec.kind == "webcam"):
                    self._fail(f"cannot open {self.spec.label}: {reason}")
                    return
                attempt += 1
                delay = min(self.backoff[1], self.backoff[0] * 2 ** (attempt - 1))
                now = time.perf_counter()
                if outage is None:
                    outage = Outage(now, reason=reason)
                    self.outages.append(outage)
                down = now - outage.lost
                message = f"{reason}; retrying in {delay:.1f} s (attempt {attempt})"
                self._set("connecting" if not opened else "reconnecting", message)
                if attempt == 1 or down - reported >= REPORT_EVERY_S:
                    reported = down
                    lead = f"cannot connect to {self.spec.label}" if not opened else \
                        f"{self.spec.label} down for {down:.0f} s"
                    self.bus.warning("source", f"{lead}: {message}", state=self.state, attempt=attempt, down_s=down)
                self._stop.wait(delay)
                continue
            if opened:
                self.reconnects += 1
            opened = True
            attempt = 0
            reason = "end of stream"
            try:
                for _ in self._frames(container):
                    if outage is not None:
                        outage.back = self.last_arrival
                        self.bus.info("source", f"{self.spec.label} is back after {outage.seconds:.1f} s",
                                      down_s=outage.seconds)
                        outage, reported = None, 0.0
                if self._stop.is_set():
                    break
                if not self.video:
                    self._fail(f"{self.spec.label} has no video stream")
                    return
            except (av.FFmpegError, OSError) as e:
                reason = _reason(e)
            finally:
                _close(container)
            if self._stop.is_set():
                break
            if not self.spec.reconnect:
                self._set("ended", f"{self.spec.label} ended ({reason})")
                self.slot.close()
                return
            if outage is None:  # else: reopened, but no frame came before it failed again
                outage = Outage(time.perf_counter(), reason=reason)
                self.outages.append(outage)
            self._set("reconnecting", f"stream lost ({reason}); reconnecting")
            self.bus.warning("source", f"lost {self.spec.label} ({reason}); reconnecting", state="reconnecting",
                             attempt=0, down_s=0.0)
            reported = 0.0
            self._stop.wait(self.backoff[0] / 2)
        self.slot.close()

    def _fail(self, message: str) -> None:
        self.error = InputError(message)
        self._set("failed", message)
        self.slot.close()

    def _frames(self, container: av.container.InputContainer) -> Iterator[None]:
        """Decode (and pace) frames into the slot; yields after each one. Returns at the end."""
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        # frame threading delays output by a frame per thread: keep network/camera decoding low-delay
        stream.thread_type = "AUTO" if self.spec.paced else "SLICE"
        rate = stream.average_rate or stream.guessed_rate
        self.video = {"codec": stream.codec_context.name, "rate": float(rate) if rate else None}
        pacer = Pacer() if self.spec.paced else None
        step = 1.0 / float(rate) if rate else 1.0 / 30
        n = 0
        while not self._stop.is_set():
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                if pacer is not None:
                    media = float(frame.time) if frame.time is not None else n * step
                    wait = pacer.delay(media, time.perf_counter())
                    if wait > 0 and self._stop.wait(wait):
                        return
                n += 1
                self._arrive(frame)
                yield
            if not self.spec.loop:
                return
            container.seek(0)
            pacer = Pacer() if pacer is not None else None
            if pacer is not None:  # the first frame of the next round comes one frame after the last
                self._stop.wait(step)

    def _arrive(self, frame: av.VideoFrame) -> None:
        now = time.perf_counter()
        self.received += 1
        with self._lock:
            self.last_arrival = now
            if self.state != "live":
                self.state, self.message = "live", "receiving"
        self.video.update(width=frame.width, height=frame.height, pix_fmt=frame.format.name)
        self.slot.put(Arrival(frame, now, self.received))


def _close(container: av.container.InputContainer) -> None:
    with contextlib.suppress(Exception):  # the stream already failed; nothing to keep
        container.close()


def _reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return msg.split(": '")[0].strip()
