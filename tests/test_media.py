"""The test-media generators (tests/media.py) and streamfix.synth produce what they claim.

These also pin the PyAV 18.1 behaviours the transcoder relies on (odd sizes, colour tags, rotation,
VFR pts, subtitles, damaged input), so a PyAV upgrade that changes one of them fails here first.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from streamfix.synth import backlit_frame, write_backlit_clip

try:
    from tests import media
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import media


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


def _check_video(info: media.MediaInfo, s: dict) -> dict:
    v = s["video"]
    assert v is not None
    assert v["codec"] == info.video_codec
    assert v["frames"] == info.frames
    assert v["pts"] == info.pts
    assert v["time_base"] == info.time_base
    assert (v["width"], v["height"], v["pix_fmt"]) == (info.width, info.height, info.pix_fmt)
    assert v["rotation"] == info.rotation
    assert v["color"] == info.color
    assert v["decode_errors"] == [] and v["corrupt_frames"] == 0
    return v


# ------------------------------------------------------------------------------------------ H.264


def test_plain_clip(d):
    info = media.h264_clip(d)
    assert info.path.exists() and info.container == "mp4" and info.frames == 12
    assert info.time_base == Fraction(1, 15360)  # the MP4 muxer's choice for 1/30
    assert info.pts == [512 * i for i in range(12)]
    v = _check_video(info, media.decode_summary(info.path))
    assert "B" not in v["pict_types"] and v["pict_types"][0] == "I"
    y = v["luma0"]
    assert y.shape == (64, 96) and y.dtype == np.uint8
    assert y.min() < 30 and y.max() > 220 and y.std() > 20  # dark and bright regions, not flat
    assert np.abs(y.astype(int) - info.luma0).mean() < 3  # decodes close to what was drawn
    assert len(set(np.round(v["luma_means"], 1))) > 1  # it moves


def test_audio_copyable(d):
    info = media.h264_clip(d, audio=True)
    s = media.decode_summary(info.path)
    _check_video(info, s)
    (a,) = s["audio"]
    assert (a["codec"], a["sample_rate"], a["channels"]) == ("aac", 48000, 2)
    assert a["time_base"] == Fraction(1, 48000)
    assert a["sha1"] == info.audio.sha1 and a["pts"] == info.audio.pts
    assert a["pts"][0] == -1024  # AAC encoder priming, kept by MP4's edit list
    assert len(a["pts"]) >= 12 / 30 * 48000 / 1024


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_bframes(d, container):
    info = media.h264_clip(d, bframes=True, container=container, frames=10)
    v = _check_video(info, media.decode_summary(info.path))
    assert "B" in v["pict_types"]
    assert v["pts"] == sorted(v["pts"])  # decoder output is in presentation order
    threaded = media.decode_summary(info.path, thread_type="AUTO")["video"]
    assert threaded["pts"] == v["pts"]  # the flush packet drains the frame-threaded decoder


def test_no_bframes(d):
    info = media.h264_clip(d, bframes=False, frames=10, name="nob.mp4")
    assert "B" not in media.decode_summary(info.path)["video"]["pict_types"]


@pytest.mark.parametrize(
    ("rotation", "container", "expect"),
    [(90, "mp4", 90), (270, "mp4", -90), (180, "mp4", -180), (90, "mkv", 90)],
)
def test_rotation(d, rotation, container, expect):
    info = media.h264_clip(d, rotation=rotation, container=container)
    assert info.rotation == expect
    v = _check_video(info, media.decode_summary(info.path))
    assert (v["width"], v["height"]) == (96, 64)  # coded size unchanged; rotation is display metadata


def test_rotation_not_in_ts(d):
    with pytest.raises(ValueError):
        media.h264_clip(d, rotation=90, container="ts")


@pytest.mark.parametrize("preset", ["bt709", "bt601_full"])
def test_colour_tags(d, preset):
    info = media.h264_clip(d, color=preset)
    assert info.color == media.COLOR_PRESETS[preset]
    v = _check_video(info, media.decode_summary(info.path))
    if preset == "bt601_full":
        assert v["pix_fmt"] == "yuvj420p"  # full-range H.264 decodes as the J format
        assert v["luma0"].min() < 16 or v["luma0"].max() > 235  # full-range data
    else:
        assert v["pix_fmt"] == "yuv420p"


def test_frame_only_colour_tags_are_ignored(d):
    """PyAV fact: libx264 takes the tags from the codec context, not from the frames."""
    path = d / "frame_tags.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        f = av.VideoFrame(64, 48, "yuv420p")
        for p in f.planes:
            p.update(bytes(p.buffer_size))
        f.color_primaries = f.color_trc = f.colorspace = f.color_range = 1
        f.pts = 0
        for pkt in [*s.encode(f), *s.encode(None)]:
            out.mux(pkt)
    assert media.decode_summary(path)["video"]["color"]["colorspace"] == 2  # unspecified


def test_odd_size_h264_uses_yuv444p(d):
    info = media.h264_clip(d, width=67, height=45)
    assert info.encoder_pix_fmt == "yuv444p"
    v = _check_video(info, media.decode_summary(info.path))
    assert v["luma0"].shape == (45, 67)
    with pytest.raises(ValueError):
        media.h264_clip(d, width=67, height=45, pix_fmt="yuv420p")


def test_odd_size_yuv420p_is_refused_by_libx264(d):
    """PyAV fact: libx264 cannot open for 4:2:0 with odd dimensions (error at the first encode)."""
    with av.open(str(d / "odd420.mp4"), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 67, 45, "yuv420p"
        with pytest.raises(av.ExternalError):
            s.encode(av.VideoFrame(67, 45, "yuv420p"))


def test_ffv1_odd_yuv420p_is_lossless(d):
    info = media.ffv1_clip(d)
    assert (info.width, info.height, info.pix_fmt) == (67, 45, "yuv420p")
    v = _check_video(info, media.decode_summary(info.path))
    assert np.array_equal(v["luma0"], info.luma0)


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_vfr_pts_survive(d, container):
    info = media.h264_clip(d, vfr=True, bframes=True, container=container)
    v = _check_video(info, media.decode_summary(info.path))
    gaps = np.diff(v["pts"])
    assert len(set(gaps.tolist())) >= 3  # irregular
    tb, pattern = media._VFR[container]
    assert info.time_base == tb
    assert gaps[: len(pattern)].tolist() == list(pattern)
    if container != "ts":
        assert v["pts"][0] == 0


# ------------------------------------------------------------------------------ 10-bit / gray


@pytest.mark.parametrize(("container", "color"), [("mp4", None), ("mkv", "bt2020_hlg")])
def test_hevc_10bit(d, container, color):
    info = media.hevc10_clip(d, container=container, color=color)
    v = _check_video(info, media.decode_summary(info.path))
    assert v["codec"] == "hevc" and v["pix_fmt"] == "yuv420p10le"
    y = v["luma0"]
    assert y.dtype == np.uint16 and y.max() > 255 and y.max() <= 1023
    assert (y % 4 != 0).mean() > 0.3  # real 10-bit precision, not 8-bit values shifted left
    assert np.abs(y.astype(int) - info.luma0).mean() < 12


def test_gray_ffv1_lossless(d):
    for bits, fmt in ((8, "gray"), (10, "gray10le")):
        info = media.gray_clip(d, bits=bits)
        v = _check_video(info, media.decode_summary(info.path))
        assert v["pix_fmt"] == fmt
        assert np.array_equal(v["luma0"], info.luma0)


@pytest.mark.parametrize(("codec", "fmt"), [("libx265", "gray"), ("libx264", "yuv420p")])
def test_gray_lossy(d, codec, fmt):
    info = media.gray_clip(d, codec=codec)
    assert info.pix_fmt == fmt  # H.264 4:0:0 decodes as yuv420p in FFmpeg
    _check_video(info, media.decode_summary(info.path))


# -------------------------------------------------------------------------------- subtitles


@pytest.mark.parametrize("container", ["mkv", "mp4"])
@pytest.mark.parametrize("method", ["mux", "encode"])
def test_subtitles(d, container, method):
    info = media.subtitle_clip(d, container=container, method=method, audio=True)
    s = media.decode_summary(info.path)
    _check_video(info, s)
    (sub,) = s["subtitles"]
    assert sub["payloads"] == info.subtitles.payloads and sub["pts"] == info.subtitles.pts
    cues = info.cues
    ms = [round(p * sub["time_base"] * 1000) for p in sub["pts"]]
    if container == "mkv":
        assert sub["codec"] in ("srt", "subrip")
        assert sub["payloads"] == [c.text.encode() for c in cues]
        assert ms == [c.start_ms for c in cues]
        assert [round(x * sub["time_base"] * 1000) for x in sub["durations"]] == [
            c.end_ms - c.start_ms for c in cues
        ]
        # the SubRip decoder turns <i> into ASS override tags
        assert sub["texts"][:2] == [c.text for c in cues[:2]]
    else:
        assert sub["codec"] == "mov_text"
        assert sub["texts"] == [c.text for c in cues]
        real = [(m, p) for m, p in zip(ms, sub["payloads"], strict=True) if p != b"\x00\x00"]
        assert [m for m, _ in real] == [c.start_ms for c in cues]
        assert [p[2:] for _, p in real] == [c.text.encode() for c in cues]
        assert b"\x00\x00" in sub["payloads"]  # empty gap samples the MP4 muxer inserts
    assert s["audio"] and s["audio"][0]["sha1"] == info.audio.sha1


def test_subrip_cannot_go_into_mp4(d):
    """PyAV fact: a SubRip stream cannot be copied into MP4 (convert to mov_text or drop it)."""
    info = media.subtitle_clip(d, name="srt_for_copy.mkv")
    src = av.open(str(info.path))
    out = av.open(str(d / "copy.mp4"), "w")
    with pytest.raises(ValueError, match="does not support"):
        out.add_stream_from_template(src.streams.subtitles[0])
    out.close()
    src.close()


# ----------------------------------------------------------------------------- sizes


def test_one_frame(d):
    info = media.one_frame_clip(d)
    v = _check_video(info, media.decode_summary(info.path))
    assert v["frames"] == 1 and v["pict_types"] == "I"


def test_timing_clip(d):
    info = media.timing_clip(d)
    s = media.decode_summary(info.path)
    v = _check_video(info, s)
    assert (v["width"], v["height"], v["frames"]) == (320, 240, 60)
    assert s["audio"][0]["sha1"] == info.audio.sha1


# --------------------------------------------------------------------------------- damaged


@pytest.mark.parametrize("container", ["ts", "mkv"])
def test_truncated_still_decodes_a_prefix(d, container):
    info = media.truncated_clip(d, container=container)
    dmg = info.damage
    assert dmg["opens"] and dmg["bytes"] < dmg["original_bytes"]
    assert 5 < dmg["frames"] < info.frames
    assert dmg["pts"] == info.pts[: dmg["frames"]]
    v = media.decode_summary(info.path)["video"]
    assert v["frames"] == dmg["frames"]


def test_truncated_mp4(d):
    info = media.truncated_clip(d, container="mp4")  # moov atom at the end: lost
    assert info.damage["opens"] is False and info.damage["open_error"] == "InvalidDataError"
    with pytest.raises(av.InvalidDataError):
        media.decode_summary(info.path)
    fast = media.truncated_clip(d, "truncated_fast.mp4", container="mp4", faststart=True)
    assert fast.damage["opens"] and 5 < fast.damage["frames"] < fast.frames


def test_corrupt_middle(d):
    info = media.corrupt_middle_clip(d)
    dmg = info.damage
    assert dmg["opens"] and dmg["demux_error"] is None
    assert 5 < dmg["frames"] <= info.frames
    assert "InvalidDataError" in dmg["decode_errors"]  # raised by packet.decode(), per bad packet
    assert dmg["pts"][:5] == info.pts[:5]  # frames before the damage decode
    assert info.pts[-1] in dmg["pts"]  # ... and so do frames after it
    v = media.decode_summary(info.path)["video"]
    assert v["frames"] == dmg["frames"] and v["decode_errors"] == dmg["decode_errors"]
    # container.decode() propagates the first error and ends; a per-packet loop goes on.
    with av.open(str(info.path)) as c, pytest.raises(av.InvalidDataError):
        for _ in c.decode(video=0):
            pass


def test_audio_only(d):
    info = media.audio_only(d)
    s = media.decode_summary(info.path)
    assert s["video"] is None and info.video_codec is None
    (a,) = s["audio"]
    assert (a["codec"], a["sample_rate"], a["channels"]) == ("aac", 48000, 2)
    assert a["sha1"] == info.audio.sha1


@pytest.mark.parametrize("make", [media.zero_byte, media.text_as_video])
def test_not_media(d, make):
    info = make(d)
    assert info.path.suffix == ".mp4"
    with pytest.raises(av.InvalidDataError):
        av.open(str(info.path))
    assert media.robust_decode(info.path)["open_error"] == "InvalidDataError"


def test_make_all(tmp_path):
    infos = media.make_all(tmp_path)
    assert len(infos) == 20 and all(i.path.exists() for i in infos.values())
    assert infos["empty"].path.stat().st_size == 0


# ------------------------------------------------------------------------------- synth


def test_backlit_frame_deterministic_and_plausible():
    a = backlit_frame(320, 180, 0.5, seed=3)
    assert a.shape == (180, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, backlit_frame(320, 180, 0.5, seed=3))
    assert not np.array_equal(a, backlit_frame(320, 180, 0.6, seed=3))
    assert not np.array_equal(a, backlit_frame(320, 180, 0.5, seed=4))
    luma = a.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert luma.max() >= 250  # the sun clips
    assert luma[:40].mean() > 120  # bright sky
    assert luma[-30:].mean() < 50  # dark foreground
    assert luma[-30:].std() > 2  # textured, not flat
    assert (luma < 25).mean() > 0.02  # silhouettes / deep shadows


def test_write_backlit_clip(tmp_path):
    path = tmp_path / "demo.mp4"
    res = write_backlit_clip(path, width=160, height=96, seconds=0.5, fps=30)
    assert res["frames"] == 15 and res["audio"] is True and res["bytes"] == path.stat().st_size
    assert (res["width"], res["height"], res["fps"]) == (160, 96, 30.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.mp4"]  # no temp file left
    s = media.decode_summary(path)
    v = s["video"]
    assert v["frames"] == 15 and v["pix_fmt"] == "yuv420p" and (v["width"], v["height"]) == (160, 96)
    assert v["color"] == media.COLOR_PRESETS["bt709"]
    assert [round(p * v["time_base"] * 30) for p in v["pts"]] == list(range(15))
    (a,) = s["audio"]
    assert (a["codec"], a["sample_rate"], a["channels"]) == ("aac", 48000, 2)
    assert 0.45 < sum(a["durations"]) * a["time_base"] < 0.6


def test_write_backlit_clip_options(tmp_path):
    res = write_backlit_clip(tmp_path / "x.mkv", width=64, height=48, seconds=0.2, fps=25, audio=False)
    s = media.decode_summary(tmp_path / "x.mkv")
    assert res["frames"] == 5 and s["video"]["frames"] == 5 and s["audio"] == []
    with pytest.raises(ValueError):
        write_backlit_clip(tmp_path / "odd.mp4", width=65, height=48)
    assert not (tmp_path / "odd.mp4").exists()
