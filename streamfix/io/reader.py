"""Reading a video: validate, open, demux, decode (with the final flush), count what was lost.

Iterating a :class:`VideoReader` yields, in demux order, decoded video frames (``av.VideoFrame``,
pts made strictly increasing) and the packets of the audio and subtitle streams to be copied
unchanged (``av.Packet``). Damage is counted in :attr:`VideoReader.report`, never printed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamfix.errors import InputError
from streamfix.events import Bus

#: decoder surfaces NVDEC allocates on top of its own needs when frames stay on the GPU: decoded
#: frames waiting in the pipeline's queues each hold one (see ``streamfix.pipeline.QUEUE_DEPTH``)
EXTRA_HW_FRAMES = 16


@dataclass
class DecodeReport:
    """What decoding met.

    Frames lost are counted against the frame count the file declares (MP4's ``nb_frames``) when
    it declares one and the whole file is read; otherwise from time coverage: how far short of the
    announced end (``expected_end``, seconds) decoding stopped (``decoded_end``: the last frame's
    time plus its duration, at least one nominal frame). Counting against ``duration x rate`` would
    call every variable-frame-rate file damaged.
    """

    frames: int = 0
    packets: int = 0
    bad_packets: int = 0
    corrupt_frames: int = 0
    fixed_pts: int = 0
    expected_frames: int | None = None
    demux_error: str | None = None
    declared_frames: int | None = None
    rate: float | None = None
    expected_end: float | None = None
    decoded_end: float | None = None

    @property
    def lost_frames(self) -> int:
        if self.declared_frames is not None:
            return max(0, self.declared_frames - self.frames)
        if self.expected_end is None or self.decoded_end is None or not self.rate:
            return 0
        return max(0, round((self.expected_end - self.decoded_end) * self.rate))

    @property
    def damaged(self) -> bool:
        return bool(self.bad_packets or self.corrupt_frames or self.demux_error or self.lost_frames > 1)

    def describe(self) -> str:
        parts = []
        if self.lost_frames:
            if self.declared_frames is not None:
                parts.append(f"{self.lost_frames} of {self.declared_frames} frames lost")
            else:
                parts.append(
                    f"about {_n(self.lost_frames, 'frame')} lost (decoding ended at {self.decoded_end:.2f} s "
                    f"of {self.expected_end:.2f} s)"
                )
        if self.bad_packets:
            parts.append(f"{_n(self.bad_packets, 'packet')} failed to decode")
        if self.corrupt_frames:
            parts.append(f"{_n(self.corrupt_frames, 'frame')} decoded with errors")
        if self.demux_error:
            parts.append(f"reading stopped early ({self.demux_error})")
        return ", ".join(parts) or "no damage"


def check_input_path(path: Path) -> None:
    """Raise :class:`InputError` with a one-line reason if ``path`` cannot be a media file."""
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.is_dir():
        raise InputError(f"input {path} is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"input {path} is empty (0 bytes)")


class VideoReader:
    """Opens a video file for enhancement.

    Args:
        path: the input file.
        start: seconds to skip (``-ss``); frames before it are decoded and dropped.
        duration: seconds to keep (``-t``).
        hwaccel: ``"cuda"`` to decode with NVDEC and keep the frames in GPU memory
            (``frame.format.name == "cuda"``, planes exported through DLPack), or None. Where that
            cannot be had — no device, no NVDEC decoder for the codec, a stream NVDEC refuses
            (4:2:2, 10-bit H.264, AV1 on older GPUs) — decoding goes on in software and ``bus``
            gets one informational line saying why.
        bus: where the hardware-decoding notes go.

    Attributes:
        video: the first video stream. copy_streams: audio and subtitle streams to copy.
        report: the :class:`DecodeReport`, filled while iterating.
        hw_decoding: whether frames come from the hardware decoder: None until the first frame
            (when ``hwaccel`` was asked for), False when it is not in use.
    """

    def __init__(self, path: Path, start: float | None = None, duration: float | None = None,
                 hwaccel: str | None = None, bus: Bus | None = None) -> None:
        check_input_path(path)
        self.path = path
        self.bus = bus
        try:
            self.container = av.open(str(path), "r")
        except av.FFmpegError as e:
            raise InputError(f"input {path} is not a readable media file ({_reason(e)})") from None
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams})
            self.container.close()
            what = " and ".join(kinds) if kinds else "no streams"
            raise InputError(f"input {path} has no video stream ({what} only)")
        self.hwaccel = hwaccel
        self.hw_decoding: bool | None = False
        if hwaccel is not None:
            self._open_hardware(hwaccel)
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.start = start or 0.0
        self.duration = duration
        # -ss/-t count from the file's start time (as ffmpeg's do): MPEG-TS clocks rarely start at 0
        origin = self._origin()
        self.window = (origin + self.start, origin + self.start + duration if duration is not None else None)
        rate = self.rate
        trimmed = bool(self.start) or duration is not None
        self.report = DecodeReport(
            expected_frames=self._expected_frames(),
            declared_frames=(self.video.frames or None) if not trimmed else None,
            rate=float(rate) if rate else None,
            expected_end=self._expected_end(),
            decoded_end=self.window[0],
        )

    def _note(self, message: str) -> None:
        if self.bus is not None:
            self.bus.info("decode", message)

    def _open_hardware(self, device_type: str) -> None:
        """Reopen the (already validated) input with hardware decoding; keep software on failure.

        ``allow_software_fallback`` covers streams the hardware decoder refuses, not a missing
        device: without one ``av.open`` raises (an ``av.FFmpegError``), so that is caught here.
        """
        from av.codec.hwaccel import HWAccel

        codec = self.container.streams.video[0].codec_context.name
        try:
            hw = av.open(str(self.path), "r", hwaccel=HWAccel(device_type, allow_software_fallback=True,
                                                                   is_hw_owned=True))
        except (av.FFmpegError, RuntimeError, NotImplementedError, ValueError) as e:
            self._note(f"hardware decoding ({device_type}) is not available here ({_reason(e)}); "
                       f"decoding {codec} in software")
            return
        if not hw.streams.video[0].codec_context.is_hwaccel:
            hw.close()
            self._note(f"the {device_type} decoder has no support for {codec}; decoding it in software")
            return
        self.container.close()
        self.container = hw
        ctx = hw.streams.video[0].codec_context
        ctx.options = {**(ctx.options or {}), "extra_hw_frames": str(EXTRA_HW_FRAMES)}
        self.hw_decoding = None

    def _check_first_frame(self, frame: av.VideoFrame) -> None:
        """Say once if the hardware decoder handed the stream back to software (``get_format`` fallback)."""
        self.hw_decoding = frame.format.name == self.hwaccel
        if not self.hw_decoding:
            ctx = self.video.codec_context
            profile = f" {ctx.profile}" if getattr(ctx, "profile", None) else ""
            self._note(f"the {self.hwaccel} decoder cannot decode this stream ({ctx.name}{profile}, "
                       f"{frame.format.name}); decoding it in software")

    # -- facts about the input -------------------------------------------------------------
    @property
    def time_base(self) -> Fraction:
        return self.video.time_base

    @property
    def rate(self) -> Fraction | None:
        return self.video.average_rate or self.video.guessed_rate

    def _origin(self) -> float:
        """The file's start time in seconds (the earliest stream's first timestamp)."""
        if self.container.start_time is not None:
            return self.container.start_time / av.time_base
        if self.video.start_time is not None and self.video.time_base:
            return float(self.video.start_time * self.video.time_base)
        return 0.0

    def duration_seconds(self) -> float | None:
        """The video's length in seconds, as the file announces it (None if it does not)."""
        return self._seconds()

    def _seconds(self) -> float | None:
        if self.video.duration and self.video.time_base:
            return float(self.video.duration * self.video.time_base)
        tag = _parse_clock(self.video.metadata.get("DURATION", ""))  # Matroska's per-track duration
        if tag:
            return tag
        if self.container.duration:
            return self.container.duration / av.time_base
        return None

    def _expected_end(self) -> float | None:
        """Where the kept range ends in file time (seconds), as far as the file announces it."""
        total = self._seconds()
        if total is None:
            return self.window[1]
        if self.video.start_time is not None and self.video.time_base:
            end = float(self.video.start_time * self.video.time_base) + total
        else:
            end = self._origin() + total
        return end if self.window[1] is None else min(end, self.window[1])

    def _expected_frames(self) -> int | None:
        total = self._seconds()
        rate = self.rate
        n = self.video.frames or None
        if n is None and total is not None and rate:
            n = round(total * float(rate))
        if n is None:
            return None
        if self.start or self.duration is not None:
            if not rate:
                return None
            end = total if total is not None else math.inf
            if self.duration is not None:
                end = min(end, self.start + self.duration)
            if end is math.inf:
                return None
            n = max(0, math.ceil((end - self.start) * float(rate) - 1e-6))
        return n

    def frame_estimate(self) -> int | None:
        """Frames the progress bar should expect."""
        return self.report.expected_frames

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[av.VideoFrame | av.Packet]:
        tb = self.video.time_base
        lo, hi = self.window
        if self.start:
            self._seek(lo)
        shift = {s.index: round(lo / s.time_base) if (self.start and s.time_base) else 0
                 for s in [self.video, *self.copy_streams]}
        last_pts: int | None = None
        step = self._nominal_step()
        done = False
        packets = self.container.demux(self.video, *self.copy_streams)
        while not done:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as e:
                self.report.demux_error = _reason(e)
                packet = None
            if packet is None or packet.stream.type == "video":
                for frame in self._decode(packet):
                    t = float(frame.pts * tb) if frame.pts is not None else None
                    if self.start and t is not None and t < lo - 1e-6:
                        continue
                    if hi is not None and t is not None and t >= hi - 1e-6:
                        done = True
                        break
                    frame.pts, fixed = _fix_pts(frame.pts, last_pts, step, tb)
                    self.report.fixed_pts += fixed
                    last_pts = frame.pts
                    self.report.decoded_end = float((last_pts + max(step, frame.duration or 0)) * tb)
                    frame.pts -= shift[self.video.index]
                    self.report.frames += 1
                    if self.hw_decoding is None:
                        self._check_first_frame(frame)
                    if frame.is_corrupt:
                        self.report.corrupt_frames += 1
                    yield frame
                if packet is None:
                    break
                continue
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            if (self.start and t < lo - 1e-6) or (hi is not None and t >= hi):
                continue
            off = shift[packet.stream.index]
            if off:
                packet.pts -= off
                if packet.dts is not None:
                    packet.dts -= off
            yield packet

    def _seek(self, t: float) -> None:
        """Seek to the keyframe at or before ``t`` (seconds, file time).

        Some demuxers (MPEG-TS) land between keyframes, where nothing decodes until the next
        keyframe — possibly never, in a clip with one. Then reading restarts from the beginning and
        the frames before ``t`` are decoded and dropped: slower, but nothing in the range is lost.
        """
        target = round(t / self.video.time_base)
        try:
            self.container.seek(target, stream=self.video, backward=True)
            first = next((p for p in self.container.demux(self.video) if p.size), None)
            if first is not None and first.is_keyframe:
                self.container.seek(target, stream=self.video, backward=True)
                return
        except av.FFmpegError:
            pass
        try:
            self.container.seek(0, backward=True)
        except av.FFmpegError as e:
            raise InputError(f"cannot seek to {self.start}s in {self.path} ({_reason(e)})") from None

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """Decode one packet (None or an empty packet flushes); bad packets are counted, not raised."""
        if packet is not None and packet.size:
            self.report.packets += 1
        try:
            if packet is None:
                return list(self.video.decode(None))
            return list(packet.decode())
        except EOFError:
            return []
        except av.FFmpegError:
            self.report.bad_packets += 1
            return []

    def _nominal_step(self) -> int:
        rate = self.rate
        if rate and self.video.time_base:
            return max(1, round(1 / (rate * self.video.time_base)))
        return 1

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: a pts jump larger than this many seconds is treated as damage, not as a real gap
MAX_PTS_JUMP_S = 60.0


def _fix_pts(pts: int | None, last: int | None, step: int, tb: Fraction) -> tuple[int, int]:
    """Make pts strictly increasing; returns ``(pts, 1 if it had to be invented else 0)``."""
    if last is None:
        return (pts, 0) if pts is not None else (0, 1)
    if pts is None or pts <= last or float((pts - last) * tb) > MAX_PTS_JUMP_S:
        return last + step, 1
    return pts, 0


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _parse_clock(text: str) -> float | None:
    """Seconds from ``HH:MM:SS.fraction`` (Matroska's DURATION tag), or None."""
    try:
        h, m, sec = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except ValueError:
        return None


def _reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.split(":")[0].strip() if msg else type(e).__name__
