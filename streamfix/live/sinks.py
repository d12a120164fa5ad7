"""``--out``: record the enhanced stream to a file, or publish it to an RTSP server.

Both encode on their own thread behind a short queue; when the encoder falls behind, frames are
dropped and counted rather than queued without bound. Output timestamps come from the frames'
arrival times (90 kHz clock), so gaps while the source was down stay gaps and the output plays
in real time.

* file (``out.mp4``, ``.mkv``, ``.ts``…): :class:`streamfix.io.writer.VideoWriter` writes a hidden
  partial file and renames it on a clean end; Ctrl-C and ``--duration`` both end cleanly.
* ``rtsp://host:port/path``: RTSP ANNOUNCE/RECORD over TCP (a server such as MediaMTX receives
  it); when the server goes away the publisher retries with backoff, dropping frames meanwhile.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamfix.errors import UsageError
from streamfix.events import Bus
from streamfix.io.writer import EncodeOptions, VideoWriter, check_output_path, validate_encoder, video_encoder
from streamfix.live.sources import redact

#: output time base: RTP's 90 kHz video clock
TIME_BASE = Fraction(1, 90_000)
QUEUE_DEPTH = 8
_STOP = object()


@dataclass
class _Item:
    frame: av.VideoFrame
    arrival: float
    seq: int


def is_stream_url(target: str) -> bool:
    return target.lower().startswith(("rtsp://", "rtsps://"))


def check_out(target: str, options: EncodeOptions, overwrite: bool | None, inputs: list[Path] | None = None) -> None:
    """Fail before starting (usage/output errors) on an ``--out`` that cannot work (``inputs``: source files)."""
    if "://" in target:
        if not is_stream_url(target):
            raise UsageError(f"--out {redact(target)}: only rtsp:// URLs or files are supported")
        video_encoder(options.codec)
        return
    path = Path(target)
    validate_encoder(options, path)
    check_output_path(path, inputs or [], overwrite)


class OutputSink:
    """Encodes enhanced frames to ``target`` on a thread.

    Args:
        target: a file path or an ``rtsp://`` URL (checked beforehand with :func:`check_out`).
        options: encoder settings (live defaults: libx264 ultrafast).
        rate: nominal frame rate (a hint for the encoder; timestamps come from arrivals).
        on_sent: called with ``(seq, arrival)`` after each frame is muxed (latency accounting).
    """

    def __init__(self, target: str, options: EncodeOptions, bus: Bus, rate: float | None = None,
                 on_sent=None, backoff: tuple[float, float] = (0.5, 4.0)) -> None:  # noqa: ANN001
        self.target = target
        self.label = redact(target)
        self.options = options
        self.bus = bus
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.on_sent = on_sent
        self.backoff = backoff
        self.frames = 0
        self.dropped = 0
        self.bytes = 0
        self.error: BaseException | None = None
        self._q: queue.Queue = queue.Queue(QUEUE_DEPTH)
        self._t0: float | None = None
        self._last_pts = -1
        self._size: tuple[int, int] | None = None
        self._warned_size = False
        self._thread = threading.Thread(target=self._run, name="sf-out", daemon=True)
        self._thread.start()

    # called from the enhance thread --------------------------------------------------------
    def put(self, frame: av.VideoFrame, arrival: float, seq: int) -> None:
        if self.error is not None:
            return
        try:
            self._q.put_nowait(_Item(frame, arrival, seq))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 30.0) -> None:
        """Flush and finish (the file is renamed into place); waits up to ``timeout`` s."""
        while self._thread.is_alive():
            try:
                self._q.put(_STOP, timeout=0.2)
                break
            except queue.Full:
                continue
        self._thread.join(timeout)

    # the thread -------------------------------------------------------------------------------
    def _stamp(self, item: _Item) -> av.VideoFrame:
        if self._t0 is None:
            self._t0 = item.arrival
        pts = max(self._last_pts + 1, round((item.arrival - self._t0) / TIME_BASE))
        self._last_pts = pts
        item.frame.pts, item.frame.time_base = pts, TIME_BASE
        return item.frame

    def _fits(self, frame: av.VideoFrame) -> bool:
        size = (frame.width, frame.height)
        if self._size is None:
            self._size = size
        if size == self._size:
            return True
        if not self._warned_size:
            self._warned_size = True
            self.bus.warning("out", f"the source changed size to {size[0]}x{size[1]}; --out keeps "
                                    f"{self._size[0]}x{self._size[1]} and skips frames of other sizes")
        self.dropped += 1
        return False

    def _run(self) -> None:
        try:
            if is_stream_url(self.target):
                self._run_rtsp()
            else:
                self._run_file()
        except BaseException as e:  # noqa: BLE001 - reported by the session
            self.error = e
            self.bus.warning("out", f"--out {self.label} failed: {e}")
            while True:  # unblock close(): drain whatever is queued
                try:
                    if self._q.get_nowait() is _STOP:
                        break
                except queue.Empty:
                    break

    def _items(self):  # noqa: ANN202 - a generator of _Item
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            if self._fits(item.frame):
                yield item

    def _sent(self, item: _Item) -> None:
        self.frames += 1
        if self.on_sent is not None:
            self.on_sent(item.seq, item.arrival)

    def _run_file(self) -> None:
        path = Path(self.target)
        writer: VideoWriter | None = None
        try:
            for item in self._items():
                frame = self._stamp(item)
                if writer is None:
                    writer = VideoWriter(path, frame, self.options, 0, self.rate, TIME_BASE, [], self.bus)
                writer.encode(frame)
                self._sent(item)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            self.bytes = writer.finish()
            self.bus.info("out", f"recorded {self.frames} frames to {path}")

    # RTSP publishing: (re)connect on the first frame after a failure ------------------------------
    def _open_rtsp(self, first: av.VideoFrame) -> tuple[av.container.OutputContainer, av.video.stream.VideoStream]:
        out = av.open(self.target, "w", format="rtsp", options={"rtsp_transport": "tcp"}, timeout=(10.0, 10.0))
        try:
            opts: dict[str, str] = {"g": str(max(1, round(float(self.rate) * 2)))}
            if self.options.codec in ("libx264", "libx265"):
                opts.update(preset=self.options.preset or "ultrafast", tune="zerolatency")
            if self.options.crf is not None and self.options.codec in ("libx264", "libx265"):
                opts["crf"] = f"{self.options.crf:g}"
            stream = out.add_stream(self.options.codec, rate=self.rate, options=opts)
            stream.width, stream.height = first.width, first.height
            stream.pix_fmt = self.options.pix_fmt or "yuv420p"
            stream.time_base = TIME_BASE
            stream.codec_context.time_base = TIME_BASE
            return out, stream
        except Exception:
            out.close()
            raise

    def _run_rtsp(self) -> None:
        out = stream = None
        retry_at = 0.0
        attempt = 0
        for item in self._items():
            frame = self._stamp(item)
            if out is None:
                if time.perf_counter() < retry_at:
                    self.dropped += 1
                    continue
                try:
                    out, stream = self._open_rtsp(frame)
                except (av.FFmpegError, OSError) as e:
                    attempt += 1
                    delay = min(self.backoff[1], self.backoff[0] * 2 ** (attempt - 1))
                    retry_at = time.perf_counter() + delay
                    self.dropped += 1
                    if attempt == 1:
                        self.bus.warning("out", f"cannot publish to {self.label} ({e}); retrying every ≤{delay:g} s")
                    continue
            try:
                if frame.format.name != stream.pix_fmt:
                    pts = frame.pts
                    frame = frame.reformat(format=stream.pix_fmt)
                    frame.pts, frame.time_base = pts, TIME_BASE
                out.mux(stream.encode(frame))
                if attempt:
                    self.bus.info("out", f"publishing to {self.label} again")
                attempt = 0
                self._sent(item)
            except (av.FFmpegError, OSError) as e:
                self.bus.warning("out", f"lost {self.label} ({e}); reconnecting")
                _close_quietly(out)
                out = stream = None
                attempt = 1
                retry_at = time.perf_counter() + self.backoff[0]
        if out is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                out.mux(stream.encode(None))
            _close_quietly(out)


def _close_quietly(container: av.container.OutputContainer) -> None:
    with contextlib.suppress(Exception):  # the connection already failed
        container.close()
