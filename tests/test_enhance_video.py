"""End-to-end: ``streamfix enhance`` on videos (in-process through ``streamfix.cli.main``).

A transcode must lose nothing: every frame with its timestamp, audio and subtitle packets byte for
byte, rotation, colour tags, odd sizes, 10-bit, grayscale; -ss/-t trims; the output appears only
on success.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import streamfix.pipeline
from tests.conftest import FAST, assert_same_times, decoded, leftovers, mean_abs_diff, seconds
from tests.media import decode_summary


def _enhance(cli, src: Path, dst: Path, *extra: object):
    res = cli("enhance", "-i", src, "-o", dst, *FAST, *extra)
    assert res.rc == 0, res.err
    assert "Traceback" not in res.err
    assert dst.is_file()
    assert leftovers(dst.parent) == []
    return decode_summary(src), decode_summary(dst)


def _same_video_timing(si: dict, so: dict) -> None:
    vi, vo = si["video"], so["video"]
    assert vo["frames"] == vi["frames"]
    assert vo["decode_errors"] == [] and vo["corrupt_frames"] == 0
    assert_same_times(vo["pts"], vo["time_base"], vi["pts"], vi["time_base"])


def _same_packets(a: dict, b: dict) -> None:
    """One copied audio/subtitle stream: same codec, payloads and timestamps (in seconds)."""
    assert b["codec"] == a["codec"]
    assert b["sha1"] == a["sha1"]
    assert_same_times(b["pts"], b["time_base"], a["pts"], a["time_base"])
    assert_same_times(b["durations"], b["time_base"], a["durations"], a["time_base"])


# ------------------------------------------------------------------------------------------------
# nothing lost


def test_frames_pts_and_audio_carried(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.audio.path, tmp_path / "out.mp4")
    _same_video_timing(si, so)
    assert (so["video"]["width"], so["video"]["height"]) == (96, 64)
    assert so["video"]["pix_fmt"] == "yuv420p"
    assert len(so["audio"]) == 1
    _same_packets(si["audio"][0], so["audio"][0])


def test_audio_copied_into_mkv(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.audio.path, tmp_path / "out.mkv")
    assert so["video"]["frames"] == si["video"]["frames"]
    assert so["audio"][0]["sha1"] == si["audio"][0]["sha1"]
    # Matroska cannot start at the MP4's negative audio timestamp (AAC priming): the muxer shifts
    # every stream by the same amount, so audio/video sync is what must survive
    ai, ao = (seconds(s["audio"][0]["pts"], s["audio"][0]["time_base"]) for s in (si, so))
    vi, vo = (seconds(s["video"]["pts"], s["video"]["time_base"]) for s in (si, so))
    shift = ao[0] - ai[0]
    assert abs(shift) < 0.05
    assert np.allclose(np.array(ao) - ai, shift, atol=0.0011)  # two roundings to ms ticks
    assert np.allclose(np.array(vo) - vi, shift, atol=0.0011)


@pytest.mark.parametrize("which", ["vfr_mp4", "vfr_mkv"])
def test_vfr_keeps_irregular_timing(cli, clips, tmp_path, which):
    info = getattr(clips, which)
    si, so = _enhance(cli, info.path, tmp_path / f"out{info.path.suffix}")
    _same_video_timing(si, so)
    gaps = np.diff(seconds(so["video"]["pts"], so["video"]["time_base"]))
    assert gaps.max() > 2.5 * gaps.min()  # the 1,1,3,1,2 pattern survived, not resampled to CFR


def test_subtitles_and_audio_copied_into_mkv(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.subs_mkv.path, tmp_path / "out.mkv")
    _same_video_timing(si, so)
    assert len(so["subtitles"]) == 1 and len(so["audio"]) == 1
    _same_packets(si["subtitles"][0], so["subtitles"][0])
    assert so["subtitles"][0]["payloads"] == si["subtitles"][0]["payloads"]
    assert so["subtitles"][0]["texts"] == si["subtitles"][0]["texts"]
    assert len(so["subtitles"][0]["texts"]) == len(clips.subs_mkv.cues) == 3
    _same_packets(si["audio"][0], so["audio"][0])


def test_mov_text_subtitles_copied_into_mp4(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.subs_mp4.path, tmp_path / "out.mp4")
    assert len(so["subtitles"]) == 1
    _same_packets(si["subtitles"][0], so["subtitles"][0])  # cues and the empty samples between them
    assert so["subtitles"][0]["payloads"] == si["subtitles"][0]["payloads"]


def test_subtitles_the_container_cannot_hold_are_dropped_with_a_warning(cli, clips, tmp_path):
    out = tmp_path / "out.mkv"
    res = cli("enhance", "-i", clips.subs_mp4.path, "-o", out, *FAST)
    assert res.rc == 0, res.err
    warnings = [ln for ln in res.err_lines if ln.startswith("streamfix: warning:")]
    assert len(warnings) == 1 and "mov_text" in warnings[0] and "dropped" in warnings[0]
    assert decode_summary(out)["subtitles"] == []


@pytest.mark.parametrize(("which", "ext"),
                         [("rotated", ".mp4"), ("rotated", ".mov"), ("rotated_270", ".mkv")])
def test_rotation_carried(cli, clips, tmp_path, which, ext):
    info = getattr(clips, which)
    si, so = _enhance(cli, info.path, tmp_path / f"out{ext}")
    assert si["video"]["rotation"] == info.rotation != 0
    assert so["video"]["rotation"] == si["video"]["rotation"]
    # stored frames keep their coded orientation: the rotation is display metadata only
    assert (so["video"]["width"], so["video"]["height"]) == (info.width, info.height)


@pytest.mark.parametrize("preset", ["bt709", "bt601_full"])
def test_colour_tags_carried(cli, clips, tmp_path, preset):
    info = clips.color(preset)
    si, so = _enhance(cli, info.path, tmp_path / "out.mp4", "--crf", "0")
    assert so["video"]["color"] == si["video"]["color"] == info.color
    assert so["video"]["pix_fmt"] == info.pix_fmt  # yuvj420p for full range
    # and the values are read in that range: identity keeps them
    assert mean_abs_diff(decoded(info.path), decoded(tmp_path / "out.mp4")) < 1.0


def test_hdr_tags_carried_to_8bit(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.hevc10_pq.path, tmp_path / "out.mp4")
    assert so["video"]["color"] == si["video"]["color"] == clips.hevc10_pq.color
    assert so["video"]["pix_fmt"] == "yuv420p"


@pytest.mark.parametrize("which", ["odd", "ffv1_odd"])
def test_odd_size(cli, clips, tmp_path, which):
    info = getattr(clips, which)
    si, so = _enhance(cli, info.path, tmp_path / "out.mp4")
    _same_video_timing(si, so)
    assert (so["video"]["width"], so["video"]["height"]) == (67, 45)
    assert so["video"]["pix_fmt"] == "yuv444p"  # 4:2:0 needs even sides
    assert np.abs(so["video"]["luma0"].astype(float) - si["video"]["luma0"]).mean() < 4


def test_hevc10_default_output_is_8bit(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.hevc10.path, tmp_path / "out.mp4")
    _same_video_timing(si, so)
    assert si["video"]["pix_fmt"] == "yuv420p10le"
    assert so["video"]["pix_fmt"] == "yuv420p"
    # the 10-bit values were read as 10-bit: the 8-bit output is the input / 4
    assert np.abs(so["video"]["luma0"] - si["video"]["luma0"] / 4.0).mean() < 3


@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_hevc10_kept_10bit(cli, clips, tmp_path, ext):
    out = tmp_path / f"out{ext}"
    si, so = _enhance(cli, clips.hevc10.path, out, "--codec", "libx265", "--pix-fmt", "yuv420p10le")
    _same_video_timing(si, so)
    assert so["video"]["codec"] == "hevc"
    assert so["video"]["pix_fmt"] == "yuv420p10le"
    luma = so["video"]["luma0"]
    assert luma.dtype == np.uint16 and luma.max() > 255
    assert np.any(luma % 4), "10-bit output holds only 8-bit values shifted left"
    assert np.abs(luma.astype(float) - si["video"]["luma0"]).mean() < 12  # 3 levels of 8-bit


def test_grayscale_input(cli, clips, tmp_path):
    out = tmp_path / "out.mp4"
    si, so = _enhance(cli, clips.gray.path, out, "--crf", "0")
    assert si["video"]["pix_fmt"] == "gray"
    _same_video_timing(si, so)
    assert so["video"]["pix_fmt"] == "yuv420p"
    assert mean_abs_diff(decoded(clips.gray.path, "gray"), decoded(out, "gray")) < 1.5
    chroma = decoded(out, "yuv420p")[0][64:]  # the U and V rows of a 64x48 frame
    assert np.abs(chroma.astype(int) - 128).max() <= 2  # still gray


def test_bframes(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.bframes.path, tmp_path / "out.mp4")
    assert "B" in si["video"]["pict_types"]
    _same_video_timing(si, so)
    # frames come out in presentation order: the luma means follow the input's
    assert np.allclose(so["video"]["luma_means"], si["video"]["luma_means"], atol=3)


def test_one_frame(cli, clips, tmp_path):
    si, so = _enhance(cli, clips.one_frame.path, tmp_path / "out.mp4")
    assert so["video"]["frames"] == 1
    _same_video_timing(si, so)


@pytest.mark.parametrize("which", ["long_audio", "long_ts"])
def test_trim(cli, clips, tmp_path, which):
    info = getattr(clips, which)
    out = tmp_path / "out.mkv"
    _, so = _enhance(cli, info.path, out, "-ss", "0.3", "-t", "0.4")
    v = so["video"]
    assert v["frames"] == 12  # 0.4 s at 30 fps
    times = seconds(v["pts"], v["time_base"])
    assert 0 <= times[0] < 1 / 30 + 0.001
    assert np.allclose(np.diff(times), 1 / 30, atol=0.002)
    a = seconds(so["audio"][0]["pts"], so["audio"][0]["time_base"])
    assert a and -0.03 < a[0] < 0.05 and a[-1] < 0.45
    # the frames kept are the ones at 0.3 s ..: frame 9 of the input is the first one out
    src = decoded(info.path, "gray")
    got = decoded(out, "gray")
    assert mean_abs_diff([src[9]], [got[0]]) < mean_abs_diff([src[0]], [got[0]])


def test_ss_only_and_hhmmss(cli, clips, tmp_path):
    out = tmp_path / "out.mp4"
    _, so = _enhance(cli, clips.long_audio.path, out, "-ss", "00:00:00.5")
    assert so["video"]["frames"] == 15
    assert seconds(so["video"]["pts"], so["video"]["time_base"])[0] < 0.04


def test_identity_is_near_lossless(cli, clips, tmp_path):
    out = tmp_path / "out.mp4"
    _enhance(cli, clips.audio.path, out, "--crf", "0")
    src, got = decoded(clips.audio.path), decoded(out)
    assert mean_abs_diff(src, got) < 1.0
    assert mean_abs_diff(decoded(clips.audio.path, "rgb24"), decoded(out, "rgb24")) < 3


def test_identity_default_settings(cli, clips, tmp_path):
    """Default codec settings, temporal filter on: still close to the input."""
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.audio.path, "-o", out, "--engine", "identity", "-q")
    assert res.rc == 0, res.err
    assert "12 frames" in res.out
    assert mean_abs_diff(decoded(clips.audio.path, "rgb24"), decoded(out, "rgb24")) < 6


def test_pipeline_preset(cli, clips, tmp_path):
    preset = tmp_path / "lossless.toml"
    preset.write_text('[enhance]\nengine = "identity"\ndevice = "cpu"\n\n[temporal]\nmode = "off"\n\n'
                      '[encode]\ncrf = 0\npreset = "ultrafast"\n')
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.audio.path, "-o", out, "--pipeline", preset, "-q")
    assert res.rc == 0, res.err
    assert "scene cuts" not in res.out  # temporal off
    assert mean_abs_diff(decoded(clips.audio.path), decoded(out)) < 1.0


def test_engine_every_third_frame_is_reported(cli, tmp_path, clips):
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.audio.path, "-o", out, "--engine-every", "3", "-q")
    assert res.rc == 0, res.err
    m = re.search(r"(\d+) frames in .* (\d+) scene cuts, the engine on (\d+) of (\d+) frames", res.out)
    assert m, res.out
    frames, cuts, runs = int(m[1]), int(m[2]), int(m[3])
    assert int(m[4]) == frames == len(decoded(out)) and cuts == 0  # one synthetic shot
    assert runs == -(-frames // 3)


def test_sci_engine_changes_the_picture(cli, clips, tmp_path, tiny_sci_weights):
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.audio.path, "-o", out, "--engine", "sci", "--weights", tiny_sci_weights,
              "--device", "cpu", "--preset", "ultrafast", "--crf", "0", "-q")
    assert res.rc == 0, res.err
    si, so = decode_summary(clips.audio.path), decode_summary(out)
    _same_video_timing(si, so)
    _same_packets(si["audio"][0], so["audio"][0])
    src, got = decoded(clips.audio.path, "rgb24"), decoded(out, "rgb24")
    assert mean_abs_diff(src, got) > 1  # identity gives < 0.5
    assert all(np.isfinite(g).all() and 0 < g.mean() < 255 and g.std() > 5 for g in got)


def test_strength_zero_is_identity(cli, clips, tmp_path, tiny_sci_weights):
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.one_frame.path, "-o", out, "--engine", "sci",
              "--weights", tiny_sci_weights, "--strength", "0", "--device", "cpu", "--crf", "0", "-q")
    assert res.rc == 0, res.err
    assert mean_abs_diff(decoded(clips.one_frame.path), decoded(out)) < 1.0


# ------------------------------------------------------------------------------------------------
# atomic output


class _Boom(RuntimeError):
    pass


def _failing_after(n: int, exc: BaseException, stage: str = "plan_frame"):
    """``stage`` of the pipeline (``plan_frame`` runs on the plan thread, ``render_frame`` on the
    slice thread) raising ``exc`` from its call n + 1 on."""
    real = getattr(streamfix.pipeline, stage)
    calls = {"n": 0}

    def failing(enhancer, item, *rest):
        calls["n"] += 1
        if calls["n"] > n:
            raise exc
        return real(enhancer, item, *rest)

    return failing


@pytest.fixture
def aborts(monkeypatch) -> list[bool]:
    """Records, for each :meth:`VideoWriter.abort`, whether the partial file existed when it was called."""
    seen: list[bool] = []
    real = streamfix.pipeline.VideoWriter.abort

    def abort(self):
        seen.append(self.path.exists())
        real(self)

    monkeypatch.setattr(streamfix.pipeline.VideoWriter, "abort", abort)
    return seen


def test_failure_midway_leaves_nothing(cli, clips, tmp_path, monkeypatch, aborts):
    monkeypatch.setattr(streamfix.pipeline, "render_frame", _failing_after(5, _Boom("kernel exploded"), "render_frame"))
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.long_audio.path, "-o", out, *FAST)
    assert res.rc == 1
    line = res.one_error()
    assert "kernel exploded" in line and "--debug" in line
    assert aborts == [True]  # a partial file had been written ...
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # ... and is gone


def test_ctrl_c_in_a_worker_leaves_nothing(cli, clips, tmp_path, monkeypatch, aborts):
    monkeypatch.setattr(streamfix.pipeline, "plan_frame", _failing_after(5, KeyboardInterrupt()))
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.long_audio.path, "-o", out, *FAST)
    assert res.rc == 130
    assert "interrupted" in res.one_error()
    assert aborts == [True]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_muxing_leaves_nothing(cli, clips, tmp_path, monkeypatch, aborts):
    """Ctrl-C lands on the main thread, which encodes and muxes."""
    real = streamfix.pipeline.VideoWriter.encode

    def encode(self, frame):
        if self.frames == 4:
            raise KeyboardInterrupt
        real(self, frame)

    monkeypatch.setattr(streamfix.pipeline.VideoWriter, "encode", encode)
    out = tmp_path / "out.mp4"
    res = cli("enhance", "-i", clips.long_audio.path, "-o", out, *FAST)
    assert res.rc == 130
    assert "interrupted" in res.one_error()
    assert aborts == [True]
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_output(cli, clips, tmp_path, monkeypatch):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    monkeypatch.setattr(streamfix.pipeline, "plan_frame", _failing_after(3, _Boom("late failure")))
    res = cli("enhance", "-i", clips.long_audio.path, "-o", out, "-y", *FAST)
    assert res.rc == 1
    assert out.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


def test_existing_output_refused_without_y(cli, clips, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    res = cli("enhance", "-i", clips.one_frame.path, "-o", out, *FAST)
    assert res.rc == 1
    line = res.one_error()
    assert "already exists" in line and "-y" in line
    assert out.read_bytes() == b"keep me"

    res = cli("enhance", "-i", clips.one_frame.path, "-o", out, "-n", *FAST)
    assert res.rc == 1 and "already exists" in res.one_error()
    assert out.read_bytes() == b"keep me"

    res = cli("enhance", "-i", clips.one_frame.path, "-o", out, "-y", *FAST)
    assert res.rc == 0, res.err
    assert decode_summary(out)["video"]["frames"] == 1
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# the console entry, for real


def test_console_entry_subprocess(clips, tmp_path):
    out = tmp_path / "out.mp4"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    ok = subprocess.run(
        [sys.executable, "-m", "streamfix.cli", "enhance", "-i", str(clips.one_frame.path), "-o", str(out),
         *FAST],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "Traceback" not in ok.stderr
    assert "1 frames" in ok.stdout and out.is_file()

    bad = subprocess.run(
        [sys.executable, "-m", "streamfix.cli", "enhance", "-i", str(tmp_path / "missing.mp4"), "-o",
         str(tmp_path / "x.mp4")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert bad.returncode == 1
    missing = tmp_path / "missing.mp4"
    assert bad.stderr.strip().splitlines() == [f"streamfix: error: input {missing} does not exist"]


def test_denoise_steadies_a_noisy_still_shot_and_keeps_its_brightness(cli, tmp_path):
    """A dark, noisy, static shot through `streamfix enhance` (excnet brightens it): with the
    temporal denoiser the output's frame-to-frame noise is well below what `--denoise 0` gives,
    at the same brightness."""
    import av

    rng = np.random.default_rng(0)
    scene = np.tile(np.linspace(15, 70, 160), (120, 1))[..., None].repeat(3, axis=2)
    src = tmp_path / "noisy.mp4"
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"qp": "0", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for _ in range(16):
            rgb = np.clip(np.rint(scene + rng.normal(0, 4.0, scene.shape)), 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    outs = {}
    for strength in ("0", "0.5"):
        out = tmp_path / f"out_{strength}.mp4"
        res = cli("enhance", "-i", src, "-o", out, "--engine", "excnet", "--device", "cpu", "--denoise", strength,
                  "--preset", "ultrafast", "--crf", "0", "-q")
        assert res.rc == 0, res.err
        outs[strength] = np.array(decoded(out), np.float64)[4:]
    step = {k: float(np.abs(np.diff(v, axis=0)).mean()) for k, v in outs.items()}
    assert step["0.5"] < 0.7 * step["0"], step
    assert abs(outs["0.5"].mean() - outs["0"].mean()) < 0.3
