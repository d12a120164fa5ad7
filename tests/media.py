"""Tiny test media for end-to-end tests of the transcoder (a library, not tests).

Every generator writes one file into ``directory`` and returns a :class:`MediaInfo` that says
exactly what was written: frame count, per-frame pts (presentation order, in the stream time base
the *file* ended up with — muxers may change it, e.g. MP4 turns 1/30 into 1/15360), pix_fmt as a
decoder reports it, rotation, colour tags, and, for audio/subtitle streams, the demuxed packets
(pts, duration, SHA-1 of the payload; subtitle payload bytes too). :func:`decode_summary` decodes any
file with PyAV and returns the same facts as a dict, so a test can compare an output with its input.

All media I/O goes through PyAV. Frames are drawn directly in the target pixel format (a moving
diagonal gradient with a fine checker texture, a near-black band, a near-white moving block and
moving chroma), so the values written are known and an encoder has real work to do.

Facts these generators rely on (PyAV 18.1 / FFmpeg 8.1, verified by tests/test_media.py):

* libx264 + yuv420p refuses odd width/height (``av.error.ExternalError`` from ``avcodec_open2`` at the
  first encode). Odd sizes therefore use libx264 **yuv444p** (High 4:4:4, MP4) or **ffv1 yuv420p** in
  MKV (lossless, chroma planes ceil(w/2) x ceil(h/2)).
* Colour tags must be set on the *codec context* before the first encode; tags set only on frames
  are ignored by libx264. A full-range 8-bit H.264 stream decodes as ``yuvj420p`` (``yuvj444p`` for
  4:4:4); full-range 10-bit HEVC stays ``yuv420p10le`` with ``color_range == 2``. libx265 always
  signals a range, so an untagged HEVC clip reads back ``color_range == 1``.
* Damaged input: truncated MPEG-TS/MKV decode a prefix without any exception; a truncated MP4 with
  the moov atom at the end fails at ``av.open`` (``av.InvalidDataError``); corrupt packets raise
  ``av.InvalidDataError`` from ``packet.decode()`` (and end a ``container.decode()`` loop), but many
  lost frames vanish silently — count frames and watch pts, do not rely on exceptions.
* The encoder's time base defaults to ``1/rate``; frame pts are rescaled into it, so a VFR clip must set
  ``stream.codec_context.time_base`` to the fine time base too, or the pts get quantised.
* Rotation: ``stream.set_display_rotation(deg)`` before the first encode; decoded frames report
  ``frame.rotation`` in [-180, 180] (270 -> -90, 180 -> -180). MP4/MOV/MKV keep it, MPEG-TS does not.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "COLOR_PRESETS",
    "DEFAULT_CUES",
    "Cue",
    "MediaInfo",
    "PacketTrack",
    "audio_only",
    "corrupt_middle_clip",
    "decode_summary",
    "ffv1_clip",
    "gray_clip",
    "h264_clip",
    "hevc10_clip",
    "make_all",
    "one_frame_clip",
    "robust_decode",
    "subtitle_clip",
    "text_as_video",
    "timing_clip",
    "truncated_clip",
    "zero_byte",
]

AUDIO_RATE = 48_000

#: Colour tag presets (values are FFmpeg's AVColor* enums, as ``frame.color_*`` reports them).
COLOR_PRESETS: dict[str, dict[str, int]] = {
    # HD: BT.709 primaries / transfer / matrix, limited ("TV", MPEG) range.
    "bt709": {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 1},
    # SD 525-line BT.601 (SMPTE 170M) in full ("PC", JPEG) range.
    "bt601_full": {"color_primaries": 6, "color_trc": 6, "colorspace": 6, "color_range": 2},
    # HDR: BT.2020 non-constant luminance with HLG (ARIB STD-B67) or PQ (SMPTE 2084), limited range.
    "bt2020_hlg": {"color_primaries": 9, "color_trc": 18, "colorspace": 9, "color_range": 1},
    "bt2020_pq": {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1},
}
_UNTAGGED = {"color_primaries": 2, "color_trc": 2, "colorspace": 2, "color_range": 0}
_COLOR_KEYS = ("color_primaries", "color_trc", "colorspace", "color_range")

_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "ts": "mpegts", "m4a": "ipod"}
_X265_QUIET = "log-level=error"


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


DEFAULT_CUES: tuple[Cue, ...] = (
    Cue(0, 300, "Hello"),
    Cue(400, 700, "Second cue, ünïcödé"),
    Cue(800, 950, "Third <i>cue</i>"),
)


@dataclass
class PacketTrack:
    """The demuxed packets of one audio or subtitle stream (flush packets of size 0 left out)."""

    codec: str
    time_base: Fraction | None
    pts: list[int | None]
    durations: list[int]
    sha1: list[str]
    payloads: list[bytes] = field(default_factory=list)  # filled for subtitle streams only
    sample_rate: int | None = None
    channels: int | None = None


@dataclass
class MediaInfo:
    """What a generator wrote. Video fields are ``None``/0 for files without video."""

    path: Path
    kind: str
    container: str | None = None  # muxer name: mp4, matroska, mpegts, ipod, ...
    video_codec: str | None = None  # decoder name: h264, hevc, ffv1
    frames: int = 0  # video frames encoded
    pts: list[int] = field(default_factory=list)  # presentation order, in `time_base`
    time_base: Fraction | None = None  # the video stream's time base in the file
    fps: Fraction | None = None  # nominal rate (None for VFR)
    width: int = 0
    height: int = 0
    pix_fmt: str | None = None  # as the decoder reports it (yuvj420p for full-range 8-bit H.264)
    encoder_pix_fmt: str | None = None  # what the encoder was given
    rotation: int = 0  # as frame.rotation reads it back: [-180, 180]
    color: dict[str, int] = field(default_factory=lambda: dict(_UNTAGGED))
    bframes: bool = False
    lossless: bool = False
    luma0: np.ndarray | None = None  # luma plane of frame 0 as written (compare exactly when lossless)
    audio: PacketTrack | None = None
    subtitles: PacketTrack | None = None
    cues: list[Cue] = field(default_factory=list)
    damage: dict = field(default_factory=dict)  # damaged inputs: what was done and how it decodes


# --------------------------------------------------------------------------------------------------
# pixels


def _pattern(i: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame ``i`` of the test pattern as full-resolution float32 planes (Y, Cb, Cr) in [0, 1]."""
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    u = xs / max(w - 1, 1)
    v = ys / max(h - 1, 1)
    y = 0.12 + 0.70 * ((0.7 * u + 0.3 * v + 0.043 * i) % 1.0)  # moving diagonal ramp with an edge
    checker = ((xs // 2) + (ys // 2) + i) % 2  # fine texture
    y = y + 0.05 * (checker - 0.5)
    y = np.where(u < 0.2, 0.02 + 0.06 * v, y)  # near-black band on the left
    bw, bh = max(2, w // 5), max(2, h // 4)
    bx = int(0.2 * w + (i * 3) % max(1, int(0.8 * w) - bw))  # near-white block moving right
    by = h // 3
    y[by : by + bh, bx : bx + bw] = 0.97
    cb = np.broadcast_to(0.5 + 0.22 * np.sin(2 * np.pi * (u + 0.05 * i)), (h, w))
    cr = 0.5 + 0.22 * np.cos(2 * np.pi * (v + 0.5 * u + 0.03 * i))
    return np.clip(y, 0, 1).astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)


def _quantise(p: np.ndarray, bits: int, full: bool, chroma: bool) -> np.ndarray:
    top = (1 << bits) - 1
    if full:
        q = p * top
    else:
        s = 1 << (bits - 8)
        q = 16 * s + p * ((224 if chroma else 219) * s)
    return np.clip(np.rint(q), 0, top).astype(np.uint16 if bits > 8 else np.uint8)


def _resize(p: np.ndarray, w: int, h: int) -> np.ndarray:
    if p.shape == (h, w):
        return p
    import cv2

    return cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA)


def _fill_plane(plane, arr: np.ndarray) -> None:
    itemsize = arr.dtype.itemsize
    buf = np.zeros((plane.height, plane.line_size // itemsize), arr.dtype.newbyteorder("<"))
    buf[:, : plane.width] = arr
    plane.update(buf.tobytes())


def _frame(i: int, w: int, h: int, pix_fmt: str, full: bool) -> tuple[av.VideoFrame, np.ndarray]:
    """Frame ``i`` drawn directly in ``pix_fmt``; also returns its luma plane."""
    bits = 10 if pix_fmt.endswith("10le") else 8
    y, cb, cr = _pattern(i, w, h)
    frame = av.VideoFrame(w, h, pix_fmt)
    planes = frame.planes
    luma = _quantise(y, bits, full or pix_fmt.startswith("gray"), False)
    _fill_plane(planes[0], luma)
    for plane, c in zip(planes[1:], (cb, cr), strict=False):
        _fill_plane(plane, _quantise(_resize(c, plane.width, plane.height), bits, full, True))
    return frame, luma


def _tone(n: int, rate: int = AUDIO_RATE) -> np.ndarray:
    t = np.arange(n) / rate
    left = 0.2 * np.sin(2 * np.pi * 440 * t)
    right = 0.15 * np.sin(2 * np.pi * 660 * t + 0.3)
    return np.stack([left, right]).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# writing helpers


def _rescale(values: list[int], src: Fraction, dst: Fraction) -> list[int]:
    """av_rescale_q semantics: round to nearest, halves away from zero."""
    out = []
    for v in values:
        x = Fraction(v) * src / dst
        out.append(math.floor(x + Fraction(1, 2)) if x >= 0 else -math.floor(-x + Fraction(1, 2)))
    return out


def _scan(path: Path) -> dict:
    """Demux only (no decoding): per-stream packets of the written file."""
    with av.open(str(path)) as c:
        res: dict = {"format": c.format.name, "streams": {}}
        for s in c.streams:
            cc = s.codec_context
            res["streams"][s.index] = {
                "type": s.type,
                "codec": cc.name if cc is not None else None,
                "time_base": s.time_base,
                "pts": [],
                "durations": [],
                "sha1": [],
                "payloads": [],
                "sample_rate": getattr(cc, "sample_rate", None) if s.type == "audio" else None,
                "channels": cc.layout.nb_channels if s.type == "audio" else None,
            }
        for pkt in c.demux():
            if pkt.size == 0:
                continue
            d = res["streams"][pkt.stream.index]
            data = bytes(pkt)
            d["pts"].append(pkt.pts)
            d["durations"].append(pkt.duration)
            d["sha1"].append(hashlib.sha1(data).hexdigest())
            if d["type"] == "subtitle":
                d["payloads"].append(data)
    return res


def _track(scan: dict, kind: str) -> PacketTrack | None:
    for d in scan["streams"].values():
        if d["type"] == kind:
            return PacketTrack(
                codec=d["codec"],
                time_base=d["time_base"],
                pts=d["pts"],
                durations=d["durations"],
                sha1=d["sha1"],
                payloads=d["payloads"],
                sample_rate=d["sample_rate"],
                channels=d["channels"],
            )
    return None


def _video_scan(scan: dict) -> dict:
    for d in scan["streams"].values():
        if d["type"] == "video":
            return d
    raise RuntimeError("no video stream in the written file")


def _ext(container: str) -> str:
    if container not in _MUXERS:
        raise ValueError(f"unknown container {container!r}; use one of {sorted(_MUXERS)}")
    return container


class _AudioWriter:
    """AAC stereo 48 kHz tone, fed in 1024-sample frames with pts counted in samples."""

    def __init__(self, out, seconds: float):
        self.stream = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.stream.codec_context.time_base = Fraction(1, AUDIO_RATE)
        self.stream.time_base = Fraction(1, AUDIO_RATE)
        self.out = out
        self.pcm = _tone(max(1, round(seconds * AUDIO_RATE)))
        self.sent = 0

    def until(self, seconds: float | None) -> None:
        end = self.pcm.shape[1] if seconds is None else min(self.pcm.shape[1], round(seconds * AUDIO_RATE))
        while self.sent < end:
            n = min(1024, self.pcm.shape[1] - self.sent)
            f = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(self.pcm[:, self.sent : self.sent + n]), format="fltp", layout="stereo"
            )
            f.sample_rate = AUDIO_RATE
            f.pts, f.time_base = self.sent, Fraction(1, AUDIO_RATE)
            self.sent += n
            for p in self.stream.encode(f):
                self.out.mux(p)

    def finish(self) -> None:
        self.until(None)
        for p in self.stream.encode(None):
            self.out.mux(p)


def _write_video(
    path: Path,
    *,
    codec: str,
    pix_fmt: str,
    width: int,
    height: int,
    pts: list[int],
    time_base: Fraction,
    rate: Fraction,
    options: dict[str, str],
    color: dict[str, int] | None,
    rotation: int,
    audio: bool,
    container_options: dict[str, str] | None = None,
    cues: tuple[Cue, ...] = (),
    subtitle_codec: str | None = None,
    subtitle_method: str = "mux",
) -> np.ndarray:
    """Encode ``len(pts)`` pattern frames; returns the luma plane of frame 0."""
    full = bool(color and color.get("color_range") == 2)
    luma0 = None
    out = av.open(str(path), "w", options=container_options or {})
    try:
        v = out.add_stream(codec, rate=rate, options=options)
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        v.codec_context.time_base = time_base  # else pts are rescaled (quantised) to 1/rate
        v.time_base = time_base
        if color:
            for k in _COLOR_KEYS:
                setattr(v.codec_context, k, color[k])
        if rotation:
            v.set_display_rotation(rotation)
        last_gap = pts[-1] - pts[-2] if len(pts) > 1 else 1 / (rate * time_base)
        duration = float((pts[-1] + last_gap) * time_base)
        aw = _AudioWriter(out, duration) if audio else None
        sub = None
        if subtitle_codec:
            sub = _add_subtitle_stream(out, subtitle_codec, subtitle_method)
            out.start_encoding()  # fixes every stream's time base
        pending = list(cues)
        for i, p in enumerate(pts):
            t = float(p * time_base)
            while sub is not None and pending and pending[0].start_ms <= t * 1000:
                _mux_cue(out, sub, pending.pop(0), subtitle_codec, subtitle_method)
            frame, luma = _frame(i, width, height, pix_fmt, full)
            if luma0 is None:
                luma0 = luma
            if color:
                for k in _COLOR_KEYS:
                    setattr(frame, k, color[k])
            frame.pts, frame.time_base = p, time_base
            for pkt in v.encode(frame):
                out.mux(pkt)
            if aw is not None:
                aw.until(t + float(1 / rate))
        for cue in pending:
            _mux_cue(out, sub, cue, subtitle_codec, subtitle_method)
        for pkt in v.encode(None):
            out.mux(pkt)
        if aw is not None:
            aw.finish()
    finally:
        out.close()
    return luma0


_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, "
    b"Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, "
    b"Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n"
    b"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def _add_subtitle_stream(out, codec: str, method: str):
    if method == "mux":
        # No encoder: packets are muxed as given (PyAV 17+: add_mux_stream).
        return out.add_mux_stream(codec, time_base=Fraction(1, 1000))
    if method == "encode":
        s = out.add_stream(codec)
        # Text subtitle encoders refuse to open without an ASS header (InvalidDataError at start).
        s.codec_context.subtitle_header = _ASS_HEADER
        return s
    raise ValueError(f"method must be 'mux' or 'encode', not {method!r}")


def _mux_cue(out, s, cue: Cue, codec: str, method: str) -> None:
    from av.subtitles.subtitle import SubtitleSet

    tb = s.time_base
    start = _rescale([cue.start_ms], Fraction(1, 1000), tb)[0]
    dur = _rescale([cue.end_ms - cue.start_ms], Fraction(1, 1000), tb)[0]
    text = cue.text.encode()
    if method == "encode":
        ss = SubtitleSet.create(b"0,0,Default,,0,0,0,," + text, 0, dur, pts=start)
        pkt = s.codec_context.encode_subtitle(ss)
    else:
        if codec == "mov_text":  # tx3g sample: 16-bit big-endian length + UTF-8 text
            text = struct.pack(">H", len(text)) + text
        pkt = av.Packet(text)
        pkt.pts = pkt.dts = start
        pkt.duration = dur
    pkt.time_base = tb
    pkt.stream = s
    out.mux(pkt)


def _decoded_pix_fmt(codec: str, pix_fmt: str, color: dict[str, int] | None) -> str:
    full = bool(color and color.get("color_range") == 2)
    if codec == "libx264" and pix_fmt in ("gray", "gray10le"):
        # H.264 4:0:0 decodes as 4:2:0 with neutral chroma.
        pix_fmt = "yuv420p" if pix_fmt == "gray" else "yuv420p10le"
    if codec == "libx264" and full and pix_fmt in ("yuv420p", "yuv444p"):
        return pix_fmt.replace("yuv", "yuvj")
    return pix_fmt


def _finish(
    path: Path,
    kind: str,
    *,
    codec: str,
    pix_fmt: str,
    width: int,
    height: int,
    pts: list[int],
    time_base: Fraction,
    fps: Fraction | None,
    color: dict[str, int] | None,
    rotation: int,
    bframes: bool,
    lossless: bool,
    luma0: np.ndarray,
    container: str,
) -> MediaInfo:
    scan = _scan(path)
    vs = _video_scan(scan)
    file_tb = vs["time_base"]
    got = sorted(p for p in vs["pts"] if p is not None)
    want = _rescale(pts, time_base, file_tb)
    if len(got) != len(pts):
        raise RuntimeError(f"{path.name}: {len(got)} video packets in the file, {len(pts)} frames encoded")
    # MPEG-TS shifts every timestamp by a constant (mux delay / B-frame delay); the rest keep them.
    ok = [g - got[0] for g in got] == [w - want[0] for w in want] if container == "ts" else got == want
    if not ok:
        raise RuntimeError(f"{path.name}: muxed pts {got} differ from the intended {want}")
    rot = ((rotation + 180) % 360) - 180 if rotation and container != "ts" else 0  # [-180, 180)
    tags = dict(color) if color else dict(_UNTAGGED)
    if codec == "libx265" and not color:
        tags["color_range"] = 1  # x265 always signals a range: limited unless told otherwise
    return MediaInfo(
        path=path,
        kind=kind,
        container=_MUXERS[container],
        video_codec=vs["codec"],
        frames=len(pts),
        pts=got,
        time_base=file_tb,
        fps=fps,
        width=width,
        height=height,
        pix_fmt=_decoded_pix_fmt(codec, pix_fmt, color),
        encoder_pix_fmt=pix_fmt,
        rotation=rot,
        color=tags,
        bframes=bframes,
        lossless=lossless,
        luma0=luma0,
        audio=_track(scan, "audio"),
        subtitles=_track(scan, "subtitle"),
    )


def _color(color: str | dict[str, int] | None) -> dict[str, int] | None:
    if color is None:
        return None
    if isinstance(color, str):
        try:
            return dict(COLOR_PRESETS[color])
        except KeyError:
            raise ValueError(f"unknown colour preset {color!r}; use one of {sorted(COLOR_PRESETS)}") from None
    missing = set(_COLOR_KEYS) - set(color)
    if missing:
        raise ValueError(f"colour dict lacks {sorted(missing)}")
    return {k: int(color[k]) for k in _COLOR_KEYS}


# VFR gap patterns (ticks) per container time base: 1,1,3,1,2 frame intervals of ~33 ms.
_VFR = {
    "mp4": (Fraction(1, 90000), (3000, 3000, 9000, 3000, 6000)),
    "mov": (Fraction(1, 90000), (3000, 3000, 9000, 3000, 6000)),
    "ts": (Fraction(1, 90000), (3000, 3000, 9000, 3000, 6000)),
    "mkv": (Fraction(1, 1000), (33, 33, 100, 33, 67)),
}


# --------------------------------------------------------------------------------------------------
# generators


def h264_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    width: int = 96,
    height: int = 64,
    frames: int = 12,
    fps: int | Fraction = 30,
    container: str = "mp4",
    audio: bool = False,
    bframes: bool = False,
    rotation: int = 0,
    color: str | dict[str, int] | None = None,
    vfr: bool = False,
    pix_fmt: str | None = None,
    gop: int | None = None,
    crf: int = 23,
    faststart: bool = False,
) -> MediaInfo:
    """H.264 (libx264) clip in mp4/mov/mkv/ts.

    * ``audio``: add an AAC stereo 48 kHz stream (copy-able into MP4/MKV/TS).
    * ``bframes``: libx264 ``bf=2`` (B-frames guaranteed: ultrafast preset has b-adapt off); else ``bf=0``.
    * ``rotation``: display-matrix rotation (counter-clockwise degrees, like ``frame.rotation``).
      MPEG-TS cannot carry it (``MediaInfo.rotation`` is then 0).
    * ``color``: a :data:`COLOR_PRESETS` name or a dict of the four tags. Full range writes 0..255 data.
    * ``vfr``: irregular pts (intervals 1,1,3,1,2 x 1/30 s) in 1/90000 (mp4/mov/ts) or 1/1000 (mkv).
    * odd ``width``/``height``: libx264 cannot do yuv420p, so ``pix_fmt`` defaults to ``yuv444p``
      (High 4:4:4 Predictive). Otherwise ``yuv420p``; ``yuv420p10le`` (High 10) and ``gray``
      (4:0:0, decodes as yuv420p) also work.
    * ``gop``: keyframe interval (x264 ``g``); ``faststart``: MP4 moov atom at the front.
    """
    ext = _ext(container)
    col = _color(color)
    if pix_fmt is None:
        pix_fmt = "yuv444p" if (width % 2 or height % 2) else "yuv420p"
    if pix_fmt in ("yuv420p", "yuv420p10le") and (width % 2 or height % 2):
        raise ValueError("libx264 needs even width and height for 4:2:0; use pix_fmt='yuv444p'")
    if rotation and container == "ts":
        raise ValueError("MPEG-TS cannot store a display rotation")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    rate = Fraction(fps)
    if vfr:
        tb, gaps = _VFR[container]
        pts = [0]
        for k in range(frames - 1):
            pts.append(pts[-1] + gaps[k % len(gaps)])
    else:
        tb = 1 / rate
        pts = list(range(frames))
    if name is None:
        tags = [f"{width}x{height}", "a" if audio else "", "b" if bframes else ""]
        tags += [f"r{rotation}" if rotation else ""]
        tags += [color if isinstance(color, str) else ("color" if color else ""), "vfr" if vfr else ""]
        tags += [pix_fmt if pix_fmt != "yuv420p" else "", f"n{frames}"]
        name = "h264_" + "_".join(t for t in tags if t) + f".{ext}"
    path = Path(directory) / name
    options = {"preset": "ultrafast", "crf": str(crf), "bf": "2" if bframes else "0"}
    if gop:
        options["g"] = str(gop)
    luma0 = _write_video(
        path,
        codec="libx264",
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=tb,
        rate=rate,
        options=options,
        color=col,
        rotation=rotation,
        audio=audio,
        container_options={"movflags": "+faststart"} if faststart else None,
    )
    return _finish(
        path,
        "h264",
        codec="libx264",
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=tb,
        fps=None if vfr else rate,
        color=col,
        rotation=rotation,
        bframes=bframes,
        lossless=False,
        luma0=luma0,
        container=container,
    )


def hevc10_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    width: int = 96,
    height: int = 64,
    frames: int = 10,
    fps: int = 30,
    container: str = "mp4",
    color: str | dict[str, int] | None = None,
    audio: bool = False,
) -> MediaInfo:
    """10-bit HEVC (libx265 Main 10, ``yuv420p10le``; x265's default B-frames). Values use all 10 bits
    (a smooth ramp with 1-code steps, so decoded samples are not all multiples of 4)."""
    ext = _ext(container)
    if width % 2 or height % 2:
        raise ValueError("libx265 4:2:0 needs even width and height")
    col = _color(color)
    rate = Fraction(fps)
    pts = list(range(frames))
    suffix = f"_{color}" if isinstance(color, str) else ""
    path = Path(directory) / (name or f"hevc10_{width}x{height}{suffix}.{ext}")
    options = {"preset": "ultrafast", "crf": "18", "x265-params": _X265_QUIET}
    luma0 = _write_video(
        path,
        codec="libx265",
        pix_fmt="yuv420p10le",
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        rate=rate,
        options=options,
        color=col,
        rotation=0,
        audio=audio,
    )
    return _finish(
        path,
        "hevc10",
        codec="libx265",
        pix_fmt="yuv420p10le",
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        fps=rate,
        color=col,
        rotation=0,
        bframes=True,
        lossless=False,
        luma0=luma0,
        container=container,
    )


def ffv1_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    width: int = 67,
    height: int = 45,
    frames: int = 8,
    fps: int = 30,
    pix_fmt: str = "yuv420p",
) -> MediaInfo:
    """Lossless FFV1 in MKV; any size (default odd 67x45 with 4:2:0) and pix_fmt (gray, gray10le,
    yuv444p, yuv420p10le, ...). Decoded planes equal the written ones exactly (``luma0``)."""
    rate = Fraction(fps)
    pts = list(range(frames))
    path = Path(directory) / (name or f"ffv1_{pix_fmt}_{width}x{height}.mkv")
    luma0 = _write_video(
        path,
        codec="ffv1",
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        rate=rate,
        options={},
        color=None,
        rotation=0,
        audio=False,
    )
    return _finish(
        path,
        "ffv1",
        codec="ffv1",
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        fps=rate,
        color=None,
        rotation=0,
        bframes=False,
        lossless=True,
        luma0=luma0,
        container="mkv",
    )


def gray_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    bits: int = 8,
    codec: str = "ffv1",
    width: int = 64,
    height: int = 48,
    frames: int = 8,
) -> MediaInfo:
    """Grayscale video.

    * ``codec="ffv1"`` (default): MKV, ``gray``/``gray10le``, lossless, decodes as gray/gray10le.
    * ``codec="libx265"``: MKV HEVC Rext 4:0:0, decodes as ``gray``/``gray10le`` (tagged TV range).
    * ``codec="libx264"``: MP4 H.264 4:0:0 — FFmpeg decodes it as ``yuv420p``/``yuv420p10le``.
    """
    if bits not in (8, 10):
        raise ValueError("bits must be 8 or 10")
    pix_fmt = "gray" if bits == 8 else "gray10le"
    if codec == "ffv1":
        name = name or f"gray{bits}_ffv1.mkv"
        return ffv1_clip(directory, name, width=width, height=height, frames=frames, pix_fmt=pix_fmt)
    if codec not in ("libx264", "libx265"):
        raise ValueError("codec must be ffv1, libx264 or libx265")
    container = "mp4" if codec == "libx264" else "mkv"
    rate = Fraction(30)
    pts = list(range(frames))
    path = Path(directory) / (name or f"gray{bits}_{codec}.{container}")
    options = {"preset": "ultrafast", "crf": "20"}
    if codec == "libx265":
        options["x265-params"] = _X265_QUIET
    luma0 = _write_video(
        path,
        codec=codec,
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        rate=rate,
        options=options,
        color=None,
        rotation=0,
        audio=False,
    )
    return _finish(
        path,
        "gray",
        codec=codec,
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        fps=rate,
        color=None,
        rotation=0,
        bframes=codec == "libx265",
        lossless=False,
        luma0=luma0,
        container=container,
    )


def subtitle_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    container: str = "mkv",
    method: str = "mux",
    cues: tuple[Cue, ...] = DEFAULT_CUES,
    audio: bool = False,
    frames: int = 30,
    width: int = 64,
    height: int = 48,
) -> MediaInfo:
    """H.264 video (30 fps) + a text subtitle stream: SubRip in MKV, mov_text (tx3g) in MP4.

    ``method="mux"`` muxes raw packets through ``add_mux_stream`` (SubRip payload = the UTF-8 text;
    mov_text payload = 16-bit BE length + text). ``method="encode"`` goes through the subtitle encoder
    (``SubtitleSet.create`` + ``codec_context.encode_subtitle``; needs ``subtitle_header``).
    ``MediaInfo.subtitles`` holds the packets as demuxed — for MP4 that includes the 2-byte empty
    samples (``b"\\x00\\x00"``) the muxer inserts in the gaps between cues.
    """
    if container not in ("mkv", "mp4"):
        raise ValueError("subtitles: container must be 'mkv' (subrip) or 'mp4' (mov_text)")
    codec = "subrip" if container == "mkv" else "mov_text"
    rate = Fraction(30)
    pts = list(range(frames))
    path = Path(directory) / (name or f"subs_{codec}_{method}.{container}")
    luma0 = _write_video(
        path,
        codec="libx264",
        pix_fmt="yuv420p",
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        rate=rate,
        options={"preset": "ultrafast", "bf": "0"},
        color=None,
        rotation=0,
        audio=audio,
        cues=tuple(cues),
        subtitle_codec=codec,
        subtitle_method=method,
    )
    info = _finish(
        path,
        "subtitles",
        codec="libx264",
        pix_fmt="yuv420p",
        width=width,
        height=height,
        pts=pts,
        time_base=1 / rate,
        fps=rate,
        color=None,
        rotation=0,
        bframes=False,
        lossless=False,
        luma0=luma0,
        container=container,
    )
    info.cues = list(cues)
    return info


def one_frame_clip(directory: str | Path, name: str = "one_frame.mp4", **kw) -> MediaInfo:
    """A single-frame H.264 clip (same options as :func:`h264_clip`)."""
    return h264_clip(directory, name, frames=1, **kw)


def timing_clip(
    directory: str | Path,
    name: str = "timing.mp4",
    *,
    width: int = 320,
    height: int = 240,
    frames: int = 60,
    audio: bool = True,
    **kw,
) -> MediaInfo:
    """A mid-size clip for timing (320x240, 60 frames, AAC audio by default)."""
    return h264_clip(directory, name, width=width, height=height, frames=frames, audio=audio, **kw)


def robust_decode(path: str | Path, *, thread_type: str | None = None) -> dict:
    """Decode the first video stream packet by packet, surviving errors the way a transcoder must.

    Returns ``{"opens", "open_error", "frames", "pts", "decode_errors" (exception class names, one per
    failed packet), "demux_error", "corrupt_frames" (frames with is_corrupt), "corrupt_packets"}``.
    """
    res = {
        "opens": False,
        "open_error": None,
        "frames": 0,
        "pts": [],
        "decode_errors": [],
        "demux_error": None,
        "corrupt_frames": 0,
        "corrupt_packets": 0,
    }
    try:
        c = av.open(str(path))
    except av.FFmpegError as e:
        res["open_error"] = type(e).__name__
        return res
    res["opens"] = True
    with c:
        if not c.streams.video:
            return res
        s = c.streams.video[0]
        if thread_type:
            s.thread_type = thread_type
        it = c.demux(s)
        while True:
            try:
                pkt = next(it)
            except StopIteration:
                break
            except av.FFmpegError as e:  # the demux generator is finished after raising
                res["demux_error"] = type(e).__name__
                break
            res["corrupt_packets"] += bool(pkt.is_corrupt)
            try:
                for f in pkt.decode():  # the final size-0 packet flushes the decoder
                    res["frames"] += 1
                    res["pts"].append(f.pts)
                    res["corrupt_frames"] += bool(f.is_corrupt)
            except av.FFmpegError as e:
                res["decode_errors"].append(type(e).__name__)
    return res


def _damaged_source(
    directory: Path,
    container: str,
    frames: int,
    width: int,
    height: int,
    audio: bool,
    faststart: bool,
    stem: str,
) -> MediaInfo:
    return h264_clip(
        directory,
        f".{stem}_source.{container}",
        width=width,
        height=height,
        frames=frames,
        container=container,
        audio=audio,
        gop=10,
        faststart=faststart,
    )


def truncated_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    container: str = "ts",
    keep: float = 0.6,
    frames: int = 30,
    width: int = 160,
    height: int = 120,
    audio: bool = False,
    faststart: bool = False,
) -> MediaInfo:
    """A valid H.264 file (keyframe every 10 frames) cut to ``keep`` of its bytes.

    MPEG-TS and MKV still open and yield the frames before the cut (18 of 30 here, no exception). An MP4
    with the moov atom at the end (default) no longer opens (``av.InvalidDataError`` at ``av.open``);
    with ``faststart=True`` it opens and yields the first frames, the last partial packet raising
    ``InvalidDataError`` on decode. ``MediaInfo.damage`` records how it decodes (:func:`robust_decode`).
    """
    directory = Path(directory)
    src = _damaged_source(directory, container, frames, width, height, audio, faststart, "truncated")
    data = src.path.read_bytes()
    path = directory / (name or f"truncated.{container}")
    cut = int(len(data) * keep)
    path.write_bytes(data[:cut])
    src.path.unlink()
    src.path, src.kind = path, "truncated"
    src.damage = {"original_bytes": len(data), "bytes": cut, **robust_decode(path)}
    return src


def corrupt_middle_clip(
    directory: str | Path,
    name: str | None = None,
    *,
    container: str = "ts",
    frames: int = 30,
    width: int = 160,
    height: int = 120,
    every: int = 20,
    seed: int = 0,
    audio: bool = False,
) -> MediaInfo:
    """A valid H.264 file (keyframe every 10 frames) with one byte in ``every`` overwritten at random in
    the middle third of the file (deterministic for ``seed``).

    With MPEG-TS (default) one packet raises ``av.InvalidDataError`` from ``packet.decode()``, 26 of 30
    frames come out (frames before and after the damage), some flagged ``is_corrupt`` and some with
    garbage pts (huge values or ``None``) from damaged PES headers. MKV: 19/30, frames 9..19 silently
    missing (a pts gap) plus one InvalidDataError; MP4: 29/30. Counts are the same with frame
    threading; ``is_corrupt`` counts are not. ``MediaInfo.damage`` records frames out, pts, decode
    errors, ``is_corrupt`` counts (:func:`robust_decode`) and the damaged byte range.
    """
    directory = Path(directory)
    src = _damaged_source(directory, container, frames, width, height, audio, False, "corrupt")
    data = bytearray(src.path.read_bytes())
    n = len(data)
    lo, hi = n // 3, 2 * n // 3
    rng = np.random.default_rng(seed)
    idx = rng.integers(lo, hi, size=max(1, (hi - lo) // every))
    vals = rng.integers(0, 256, size=idx.size)
    for k, b in zip(idx.tolist(), vals.tolist(), strict=True):
        data[k] = b
    path = directory / (name or f"corrupt_middle.{container}")
    path.write_bytes(bytes(data))
    src.path.unlink()
    src.path, src.kind = path, "corrupt_middle"
    src.damage = {"bytes": n, "garbled_range": (lo, hi), "garbled_bytes": int(idx.size)}
    src.damage.update(robust_decode(path))
    return src


def audio_only(directory: str | Path, name: str = "audio_only.m4a", *, seconds: float = 1.0) -> MediaInfo:
    """AAC stereo 48 kHz in an M4A (``ipod`` muxer); no video stream."""
    path = Path(directory) / name
    out = av.open(str(path), "w")
    try:
        aw = _AudioWriter(out, seconds)
        aw.finish()
    finally:
        out.close()
    scan = _scan(path)
    return MediaInfo(path=path, kind="audio_only", container="ipod", audio=_track(scan, "audio"))


def zero_byte(directory: str | Path, name: str = "empty.mp4") -> MediaInfo:
    """An empty file with a video extension (``av.open`` raises ``av.InvalidDataError``)."""
    path = Path(directory) / name
    path.write_bytes(b"")
    return MediaInfo(path=path, kind="zero_byte")


def text_as_video(directory: str | Path, name: str = "notes.mp4") -> MediaInfo:
    """A plain text file with a video extension (``av.open`` raises ``av.InvalidDataError``)."""
    path = Path(directory) / name
    path.write_text("This is not a video.\n" * 40, encoding="utf-8")
    return MediaInfo(path=path, kind="text_as_video")


def make_all(directory: str | Path) -> dict[str, MediaInfo]:
    """One of everything (about a second in all), keyed by a short name."""
    d = Path(directory)
    return {
        "plain": h264_clip(d),
        "audio": h264_clip(d, audio=True),
        "bframes": h264_clip(d, bframes=True),
        "rotated": h264_clip(d, rotation=90),
        "bt709": h264_clip(d, color="bt709"),
        "bt601_full": h264_clip(d, color="bt601_full"),
        "odd": h264_clip(d, width=67, height=45),
        "vfr": h264_clip(d, vfr=True, bframes=True),
        "hevc10": hevc10_clip(d),
        "gray": gray_clip(d),
        "ffv1_odd": ffv1_clip(d),
        "subs_mkv": subtitle_clip(d),
        "subs_mp4": subtitle_clip(d, container="mp4"),
        "one_frame": one_frame_clip(d),
        "timing": timing_clip(d),
        "truncated": truncated_clip(d),
        "corrupt": corrupt_middle_clip(d),
        "audio_only": audio_only(d),
        "empty": zero_byte(d),
        "text": text_as_video(d),
    }


# --------------------------------------------------------------------------------------------------
# reading back


def _luma(frame: av.VideoFrame) -> np.ndarray:
    p = frame.planes[0]
    dtype = np.dtype("<u2") if frame.format.components[0].bits > 8 else np.dtype(np.uint8)
    arr = np.frombuffer(p, dtype).reshape(p.height, p.line_size // dtype.itemsize)[:, : p.width]
    return arr.copy()


def decode_summary(path: str | Path, *, thread_type: str | None = None) -> dict:
    """Decode a file with PyAV and describe every stream.

    One demux pass over all streams. Video (first video stream only) is decoded packet by packet,
    including the final empty flush packet (same frames as iterating ``container.decode(video=0)``,
    but a packet that fails to decode is counted in ``decode_errors`` instead of ending the loop).
    Audio and subtitle packets are hashed, not decoded (subtitle text is decoded too); the size-0
    flush packets are skipped. Raises ``av.FFmpegError`` (e.g. ``InvalidDataError``) if the file does
    not open.

    Returns ``{"format", "duration", "video": {...} | None, "audio": [...], "subtitles": [...]}`` with
    video keys ``codec, time_base, average_rate, frames, pts, pict_types ("IBBP..."), width, height,
    pix_fmt, rotation, color (dict of the 4 tags), luma0 (ndarray), luma_means, decode_errors,
    corrupt_frames`` (frame properties from the first frame); audio keys ``codec, time_base,
    sample_rate, channels, pts, durations, sha1``; subtitle keys ``codec, time_base, pts, durations,
    sha1, payloads, texts`` (decoded dialogue, mov_text gap packets give none).
    """
    from av.video.frame import PictureType

    with av.open(str(path)) as c:
        vs = c.streams.video[0] if c.streams.video else None
        if vs is not None and thread_type:
            vs.thread_type = thread_type
        video = None
        if vs is not None:
            video = {
                "codec": vs.codec_context.name,
                "time_base": vs.time_base,
                "average_rate": vs.average_rate,
                "frames": 0,
                "pts": [],
                "pict_types": "",
                "width": None,
                "height": None,
                "pix_fmt": None,
                "rotation": None,
                "color": None,
                "luma0": None,
                "luma_means": [],
                "decode_errors": [],
                "corrupt_frames": 0,
            }
        tracks: dict[int, dict] = {}
        for s in c.streams:
            if s.type in ("audio", "subtitle"):
                d = {
                    "codec": s.codec_context.name,
                    "time_base": s.time_base,
                    "pts": [],
                    "durations": [],
                    "sha1": [],
                }
                if s.type == "audio":
                    d["sample_rate"] = s.codec_context.sample_rate
                    d["channels"] = s.codec_context.layout.nb_channels
                else:
                    d["payloads"], d["texts"] = [], []
                tracks[s.index] = d
        wanted = [s for s in c.streams if s is vs or s.index in tracks]
        it = c.demux(*wanted)
        while True:
            try:
                pkt = next(it)
            except StopIteration:
                break
            except av.FFmpegError as e:
                if video is not None:
                    video["decode_errors"].append("demux:" + type(e).__name__)
                break
            if pkt.stream is vs:
                try:
                    decoded = pkt.decode()
                except av.FFmpegError as e:
                    video["decode_errors"].append(type(e).__name__)
                    continue
                for f in decoded:
                    if video["frames"] == 0:
                        video.update(
                            width=f.width,
                            height=f.height,
                            pix_fmt=f.format.name,
                            rotation=f.rotation,
                            color={k: int(getattr(f, k)) for k in _COLOR_KEYS},
                            luma0=_luma(f),
                        )
                    video["frames"] += 1
                    video["pts"].append(f.pts)
                    try:
                        video["pict_types"] += PictureType(int(f.pict_type)).name
                    except ValueError:
                        video["pict_types"] += "?"
                    video["corrupt_frames"] += bool(f.is_corrupt)
                    video["luma_means"].append(float(_luma(f).mean()))
                continue
            if pkt.size == 0:
                continue
            d = tracks[pkt.stream.index]
            data = bytes(pkt)
            d["pts"].append(pkt.pts)
            d["durations"].append(pkt.duration)
            d["sha1"].append(hashlib.sha1(data).hexdigest())
            if pkt.stream.type == "subtitle":
                d["payloads"].append(data)
                try:
                    for sub in pkt.decode():
                        d["texts"].append(sub.dialogue.decode("utf-8", "replace"))
                except av.FFmpegError:
                    pass
        return {
            "format": c.format.name,
            "duration": c.duration,
            "video": video,
            "audio": [tracks[s.index] for s in c.streams.audio],
            "subtitles": [tracks[s.index] for s in c.streams.subtitles],
        }
