"""Writing the enhanced video: encoder setup, stream copy, atomic publish.

The output is written to a hidden partial file beside the target and renamed over it only by
:meth:`VideoWriter.finish`; :meth:`VideoWriter.abort` (errors, Ctrl-C) removes the partial file,
so the target path never holds a half-written video.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from streamfix.errors import OutputError, UsageError
from streamfix.events import Bus

#: output extensions → container format names
CONTAINERS = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".ts": "mpegts", ".avi": "avi", ".nut": "nut",
}

#: software encoders to fall back to when a hardware encoder cannot open
SOFTWARE_FALLBACK = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265", "av1_nvenc": "libsvtav1"}

_CRF_CODECS = {"libx264", "libx265", "libsvtav1", "libvpx-vp9"}

#: presets x264 and x265 accept (an unknown one fails only at the first frame, with a native log line)
X26X_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)


@dataclass(frozen=True)
class EncodeOptions:
    """Encoder settings. ``pix_fmt`` None: yuv420p (yuv444p when a side is odd)."""

    codec: str = "libx264"
    crf: float | None = 20
    preset: str | None = "veryfast"
    pix_fmt: str | None = None


def partial_path(target: Path) -> Path:
    """Hidden temporary name beside ``target`` that keeps its extension (for format guessing)."""
    return target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")


def check_output_path(target: Path, inputs: list[Path], overwrite: bool | None) -> None:
    """Raise :class:`OutputError` for a target that cannot or must not be written.

    Args:
        overwrite: True (``-y``), False (``-n``) or None (default: refuse existing files).
    """
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise OutputError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a directory")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {folder} is not writable")
    for src in inputs:
        if target.exists() and src.exists() and target.resolve() == src.resolve():
            raise OutputError(f"output {target} is the input file; choose another name")
    if target.is_dir():
        raise OutputError(f"output {target} is a directory")
    if target.exists() and not overwrite:
        hint = "" if overwrite is False else " (pass -y to overwrite)"
        raise OutputError(f"output {target} already exists{hint}")


def video_encoder(name: str) -> av.Codec:
    """The encoder ``name``, or a usage error when there is none or it does not encode video."""
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        raise UsageError(f"unknown encoder {name!r}") from None
    if codec.type != "video":
        raise UsageError(f"{name!r} is not a video encoder")
    return codec


def validate_encoder(options: EncodeOptions, target: Path) -> None:
    """Fail fast (usage error) on an unknown codec, pix_fmt, preset or container, or a container
    that cannot hold the codec."""
    ext = target.suffix.lower()
    if ext not in CONTAINERS:
        raise UsageError(
            f"cannot write video to {target.name}: unknown extension; use one of {', '.join(sorted(CONTAINERS))}"
        )
    codec = video_encoder(options.codec)
    with av.open(io.BytesIO(), "w", format=CONTAINERS[ext]) as probe:
        supported = probe.supported_codecs  # empty where the muxer keeps no codec list (MPEG-TS)
    if supported and options.codec not in supported:
        raise UsageError(f"cannot write {target.name}: {ext} files cannot hold {options.codec} video; "
                         "use .mkv, or another --codec")
    if options.codec in ("libx264", "libx265") and options.preset and options.preset not in X26X_PRESETS:
        raise UsageError(
            f"unknown {options.codec} preset {options.preset!r}; use one of {', '.join(X26X_PRESETS)}"
        )
    if options.pix_fmt is not None:
        names = {f.name for f in (codec.video_formats or [])}
        if names and options.pix_fmt not in names:
            raise UsageError(
                f"encoder {options.codec} does not take pixel format {options.pix_fmt!r}; "
                f"it takes {', '.join(sorted(names))}"
            )


def encoder_opens(codec: str, width: int = 256, height: int = 144) -> bool:
    """Open the encoder once on a small frame: hardware encoders fail here without a device."""
    try:
        ctx = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = max(width, 256), max(height, 144), "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
        ctx.close()
        return True
    except (av.FFmpegError, ValueError):
        return False


class VideoWriter:
    """Encodes enhanced frames and copies packets into a partial file, then publishes it.

    Args:
        target: final output path.
        first: the first enhanced frame (size, format, colour tags).
        rotation: display rotation of the input (degrees, counter-clockwise), carried over.
        rate: nominal frame rate, time_base: the input video's time base (pts are carried as is).
        copy_streams: input audio/subtitle streams to copy packet for packet.
        bus: where fallbacks and dropped streams are reported.
    """

    def __init__(
        self,
        target: Path,
        first: av.VideoFrame,
        options: EncodeOptions,
        rotation: int,
        rate: Fraction | None,
        time_base: Fraction,
        copy_streams: list[av.stream.Stream],
        bus: Bus,
    ) -> None:
        self.target = target
        self.path = partial_path(target)
        self.bus = bus
        codec = options.codec
        if codec in SOFTWARE_FALLBACK and not encoder_opens(codec, first.width, first.height):
            fallback = SOFTWARE_FALLBACK[codec]
            bus.info("encoder", f"{codec} is not available on this machine; encoding with {fallback}")
            codec = fallback
        odd = first.width % 2 or first.height % 2
        pix_fmt = options.pix_fmt or ("yuv444p" if odd else "yuv420p")
        if options.pix_fmt is None and odd:
            bus.info("encoder", f"odd frame size {first.width}x{first.height}: "
                     "encoding yuv444p (4:2:0 needs even sides)")
        self.pix_fmt = pix_fmt
        self.container = av.open(str(self.path), "w", format=CONTAINERS[target.suffix.lower()])
        try:
            opts: dict[str, str] = {}
            if codec in _CRF_CODECS and options.crf is not None:
                opts["crf"] = f"{options.crf:g}"
            if options.preset and codec in ("libx264", "libx265"):
                opts["preset"] = options.preset
            if codec == "libx265":
                opts["x265-params"] = "log-level=error"
            stream = self.container.add_stream(codec, rate=rate, options=opts)
            stream.width, stream.height, stream.pix_fmt = first.width, first.height, pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            ctx = stream.codec_context
            ctx.color_range = first.color_range
            ctx.colorspace = first.colorspace
            ctx.color_primaries = first.color_primaries
            ctx.color_trc = first.color_trc
            if rotation:
                stream.set_display_rotation(rotation)
            self.video = stream
            self.copies: dict[int, av.stream.Stream] = {}
            for s in copy_streams:
                try:
                    self.copies[s.index] = self.container.add_stream_from_template(s)
                except (ValueError, av.FFmpegError) as e:
                    hint = "" if CONTAINERS[target.suffix.lower()] == "matroska" else "; use .mkv to keep it"
                    bus.warning(
                        "streams",
                        f"{s.type} stream #{s.index} ({s.codec_context.name}) cannot be stored in "
                        f"{target.suffix}: dropped ({e}){hint}",
                    )
        except Exception:
            self.abort()
            raise
        self.frames = 0
        self.packets = 0

    def encode(self, frame: av.VideoFrame) -> None:
        """Encode one enhanced frame (converted to the output pix_fmt if needed)."""
        if frame.format.name != self.pix_fmt:
            pts, tb = frame.pts, frame.time_base
            frame = frame.reformat(format=self.pix_fmt)
            frame.pts, frame.time_base = pts, tb
        self.container.mux(self.video.encode(frame))
        self.frames += 1

    def copy(self, packet: av.Packet) -> None:
        """Mux an input audio/subtitle packet unchanged (payload and timestamps).

        MP4's empty mov_text samples between cues are left out: the muxer writes the same ones itself.
        """
        out = self.copies.get(packet.stream.index)
        if out is None:
            return
        if out.codec_context.name == "mov_text" and bytes(packet) == b"\x00\x00":
            return  # an empty gap sample: the MP4 muxer writes its own between cues (copies would double)
        packet.stream = out
        self.container.mux(packet)
        self.packets += 1

    def finish(self) -> int:
        """Flush the encoder, close, and rename the partial file onto the target. Returns bytes."""
        try:
            self.container.mux(self.video.encode(None))
            self.container.close()
        except Exception:
            self.abort()
            raise
        os.replace(self.path, self.target)
        return self.target.stat().st_size

    def abort(self) -> None:
        """Close and delete the partial file; the target is left untouched."""
        with contextlib.suppress(Exception):  # already failing; the partial file goes regardless
            self.container.close()
        self.path.unlink(missing_ok=True)
