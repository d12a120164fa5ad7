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


@dataclass
class DecodeReport:
    """What decoding met. ``lost_frames`` compares the decoded count with what the file announces."""

    frames: int = 0
    packets: int = 0
    bad_packets: int = 0
    corrupt_frames: int = 0
    fixed_pts: int = 0
    expected_frames: int | None = None
    demux_error: str | None = None

    @property
    def lost_frames(self) -> int:
        if self.expected_frames is None:
            return 0
        return max(0, self.expected_frames - self.frames)

    @property
    def damaged(self) -> bool:
        return bool(self.bad_packets or self.corrupt_frames or self.demux_error or self.lost_frames > 1)

    def describe(self) -> str:
        parts = []
        if self.lost_frames:
            parts.append(f"{self.lost_frames} of {self.expected_frames} frames lost")
        if self.bad_packets:
            parts.append(f"{self.bad_packets} packets failed to decode")
        if self.corrupt_frames:
            parts.append(f"{self.corrupt_frames} frames decoded with errors")
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

    Attributes:
        video: the first video stream. copy_streams: audio and subtitle streams to copy.
        report: the :class:`DecodeReport`, filled while iterating.
    """

    def __init__(self, path: Path, start: float | None = None, duration: float | None = None) -> None:
        check_input_path(path)
        self.path = path
        try:
            self.container = av.open(str(path), "r")
        except av.FFmpegError as e:
            raise InputError(f"input {path} is not a readable media file ({_reason(e)})") from None
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams})
            self.container.close()
            what = " and ".join(kinds) if kinds else "no streams"
            raise InputError(f"input {path} has no video stream ({what} only)")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.copy_streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.start = start or 0.0
        self.duration = duration
        self.report = DecodeReport(expected_frames=self._expected_frames())

    # -- facts about the input -------------------------------------------------------------
    @property
    def time_base(self) -> Fraction:
        return self.video.time_base

    @property
    def rate(self) -> Fraction | None:
        return self.video.average_rate or self.video.guessed_rate

    def _seconds(self) -> float | None:
        if self.video.duration and self.video.time_base:
            return float(self.video.duration * self.video.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base
        return None

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
        start_pts = round(self.start / tb) if self.start else 0
        end = self.start + self.duration if self.duration is not None else None
        if self.start:
            try:
                self.container.seek(start_pts + (self.video.start_time or 0), stream=self.video, backward=True)
            except av.FFmpegError as e:
                raise InputError(f"cannot seek to {self.start}s in {self.path} ({_reason(e)})") from None
        shift = {s.index: round(self.start / s.time_base) if (self.start and s.time_base) else 0
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
                    if self.start and t is not None and t < self.start - 1e-6:
                        continue
                    if end is not None and t is not None and t >= end - 1e-6:
                        done = True
                        break
                    frame.pts, fixed = _fix_pts(frame.pts, last_pts, step, tb)
                    frame.pts -= shift[self.video.index]
                    self.report.fixed_pts += fixed
                    last_pts = frame.pts + shift[self.video.index]
                    self.report.frames += 1
                    if frame.is_corrupt:
                        self.report.corrupt_frames += 1
                    yield frame
                if packet is None:
                    break
                continue
            if packet.size == 0 or packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            if (self.start and t < self.start - 1e-6) or (end is not None and t >= end):
                continue
            off = shift[packet.stream.index]
            if off:
                packet.pts -= off
                if packet.dts is not None:
                    packet.dts -= off
            yield packet

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


def _reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.split(":")[0].strip() if msg else type(e).__name__
