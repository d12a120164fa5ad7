"""Bad input and bad usage: one line on stderr naming the problem, the right exit code, no traceback
(unless ``--debug``), and nothing written where nothing could be."""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path

import pytest

from streamfix.cli import main
from streamfix.errors import InputError
from tests.conftest import FAST, leftovers
from tests.media import decode_summary


def _fails(cli, tmp_path, rc: int, *argv: object) -> str:
    """Run ``enhance``; assert exit code ``rc``, one error line, no traceback, no output; return the line."""
    res = cli("enhance", *argv)
    assert res.rc == rc, (res.rc, res.err)
    line = res.one_error()
    assert res.out == ""
    assert leftovers(tmp_path) == []
    return line


# ------------------------------------------------------------------------------------------------
# inputs that are not videos


def test_missing_file(cli, tmp_path):
    line = _fails(cli, tmp_path, 1, "-i", tmp_path / "nope.mp4", "-o", tmp_path / "out.mp4", *FAST)
    assert "nope.mp4 does not exist" in line
    assert not (tmp_path / "out.mp4").exists()


def test_folder_without_images(cli, tmp_path, clips):
    """A folder input means folder-of-images mode: a folder holding a video (no images) fails clearly."""
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clips.one_frame.path.read_bytes())
    line = _fails(cli, tmp_path, 1, "-i", folder, "-o", tmp_path / "out.mp4", *FAST)
    assert "holds no images" in line and str(folder) in line
    assert not (tmp_path / "out.mp4").exists()


def test_empty_folder(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    line = _fails(cli, tmp_path, 1, "-i", tmp_path / "empty", "-o", tmp_path / "out", *FAST)
    assert "holds no images" in line
    assert not (tmp_path / "out").exists()


def test_zero_byte_file(cli, tmp_path, clips):
    line = _fails(cli, tmp_path, 1, "-i", clips.empty.path, "-o", tmp_path / "out.mp4", *FAST)
    assert "empty (0 bytes)" in line


def test_text_named_mp4(cli, tmp_path, clips):
    line = _fails(cli, tmp_path, 1, "-i", clips.text.path, "-o", tmp_path / "out.mp4", *FAST)
    assert "notes.mp4 is not a readable media file" in line
    assert not (tmp_path / "out.mp4").exists()


def test_audio_only(cli, tmp_path, clips):
    line = _fails(cli, tmp_path, 1, "-i", clips.audio_only.path, "-o", tmp_path / "out.mp4", *FAST)
    assert "has no video stream (audio only)" in line
    assert not (tmp_path / "out.mp4").exists()


def test_truncated_mp4_without_index(cli, tmp_path, clips):
    """An MP4 cut before its moov atom holds nothing decodable: a clear error, nothing written."""
    line = _fails(cli, tmp_path, 1, "-i", clips.truncated_mp4.path, "-o", tmp_path / "out.mp4", *FAST)
    assert "is not a readable media file" in line
    assert not (tmp_path / "out.mp4").exists()


def test_unreadable_image(cli, tmp_path):
    src = tmp_path / "broken.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n nothing more")
    line = _fails(cli, tmp_path, 1, "-i", src, "-o", tmp_path / "out.png", *FAST)
    assert "broken.png is not a readable image" in line
    assert not (tmp_path / "out.png").exists()


# ------------------------------------------------------------------------------------------------
# damaged videos: encode what decodes, say what was lost, exit 1 unless --allow-damaged


@pytest.mark.parametrize(
    ("which", "lost"),
    [
        ("truncated_ts", "decoded with errors"),
        ("truncated_mkv", "lost (decoding ended at"),
        ("corrupt_ts", "failed to decode"),
        ("corrupt_mkv", "failed to decode"),
    ],
)
def test_damaged_input(cli, tmp_path, clips, which, lost):
    info = getattr(clips, which)
    want = info.damage["frames"]  # what a careful decoder gets out of it

    out = tmp_path / "strict.mkv"
    res = cli("enhance", "-i", info.path, "-o", out, *FAST)
    assert res.rc == 1, res.err
    line = res.one_error()
    assert "is damaged" in line and lost in line and "--allow-damaged" in line
    assert re.search(r"\b\d+ (frame|packet)s? (lost|failed|decoded with errors)", line), line  # says how many
    assert f"wrote the {want} frames that decoded" in line
    assert decode_summary(out)["video"]["frames"] == want  # the output holds what decoded

    out = tmp_path / "lenient.mkv"
    res = cli("enhance", "-i", info.path, "-o", out, "--allow-damaged", *FAST)
    assert res.rc == 0, res.err
    assert "Traceback" not in res.err
    assert [ln for ln in res.err_lines if ln.startswith("streamfix: error")] == []
    assert any(ln.startswith("streamfix: warning:") and lost in ln for ln in res.err_lines), res.err
    assert f"{want} frames" in res.out
    assert decode_summary(out)["video"]["frames"] == want
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# outputs that cannot or must not be written


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into a chmod 0o500 folder anyway: the missing-folder case stands in")
def test_unwritable_output_folder(cli, tmp_path, clips):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        line = _fails(cli, tmp_path, 1, "-i", clips.one_frame.path, "-o", folder / "out.mp4", *FAST)
        assert "not writable" in line
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_unwritable_output_folder_simulated(cli, tmp_path, clips, monkeypatch):
    """The same check where chmod cannot stop the test's user (root): os.access says no."""
    folder = tmp_path / "ro"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder else real(p, mode, **kw))
    line = _fails(cli, tmp_path, 1, "-i", clips.one_frame.path, "-o", folder / "out.mp4", *FAST)
    assert f"output folder {folder} is not writable" in line
    assert list(folder.iterdir()) == []


def test_missing_output_folder(cli, tmp_path, clips):
    line = _fails(cli, tmp_path, 1, "-i", clips.one_frame.path, "-o", tmp_path / "nodir" / "out.mp4", *FAST)
    assert "nodir does not exist" in line
    assert not (tmp_path / "nodir").exists()


def test_missing_output_folder_for_images(cli, tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((8, 8, 3), 90, np.uint8))
    line = _fails(cli, tmp_path, 1, "-i", src, "-o", tmp_path / "nodir" / "out.png", *FAST)
    assert "does not exist" in line


@pytest.mark.parametrize("flags", [(), ("-y",)])
def test_output_is_input(cli, tmp_path, clips, flags):
    src = tmp_path / "clip.mp4"
    data = clips.one_frame.path.read_bytes()
    src.write_bytes(data)
    line = _fails(cli, tmp_path, 1, "-i", src, "-o", tmp_path / "." / "clip.mp4", *flags, *FAST)
    assert "is the input file" in line
    assert src.read_bytes() == data


def test_video_to_image_output(cli, tmp_path, clips):
    line = _fails(cli, tmp_path, 2, "-i", clips.one_frame.path, "-o", tmp_path / "out.png", *FAST)
    assert "is an image but the input" in line


def test_image_to_video_output(cli, tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((8, 8, 3), 90, np.uint8))
    line = _fails(cli, tmp_path, 2, "-i", src, "-o", tmp_path / "out.mp4", *FAST)
    assert "must be an image" in line


# ------------------------------------------------------------------------------------------------
# usage errors: exit 2, before anything is read or written


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("--engine", "nope"), "unknown engine 'nope'"),
        (("--codec", "nope"), "unknown encoder 'nope'"),
        (("--codec", "aac"), "is not a video encoder"),
        (("--pix-fmt", "rgb24"), "does not take pixel format 'rgb24'"),
        (("--codec", "libx265", "--pix-fmt", "nv12"), "does not take pixel format 'nv12'"),
        (("--strength", "1.5"), "--strength must be in [0, 1]"),
        (("--strength", "-0.1"), "--strength must be in [0, 1]"),
        (("--strength", "strong"), "--strength must be a number"),
        (("--temporal-strength", "1"), "--temporal-strength must be below 1"),
        (("--crf", "99"), "--crf must be in [0, 63]"),
        (("--engine-every", "0"), "--engine-every must be at least 1"),
        (("--engine-every", "2.5"), "--engine-every must be a whole number"),
        (("--denoise", "1"), "--denoise / [denoise] strength must be in [0, 1)"),
        (("--denoise", "-0.5"), "--denoise must be in [0, 1]"),
        (("--bogus-flag",), "unrecognized arguments: --bogus-flag"),
        (("-ss", "ten"), "not a time: 'ten'"),
        (("-ss", "1:2:3:4"), "not a time"),
        (("-t", "0"), "-t must be positive"),
        (("--preset", "sluggish"), "unknown libx264 preset 'sluggish'"),
        (("--weights", "/nonexistent/w.safetensors"), "weights file /nonexistent/w.safetensors does not"),
        (("--pipeline", "/nonexistent/p.toml"), "does not exist"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_usage_errors(cli, tmp_path, clips, args, expect):
    out = tmp_path / "out.mp4"
    line = _fails(cli, tmp_path, 2, "-i", clips.one_frame.path, "-o", out, *FAST, *args)
    assert expect in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("preset_text", "expect"),
    [(f"[enhance]\nengine_every = {v}\n", "[enhance] engine_every must be a whole number")
     for v in ("0", "1.5", "'2'", "true")]
    + [(f"[denoise]\nstrength = {v}\n", "[denoise] strength must be in [0, 1)")
       for v in ("1", "-0.1", "'0.5'", "true")],
)
def test_preset_values_are_checked(cli, tmp_path, clips, preset_text, expect):
    preset = tmp_path / "p.toml"
    preset.write_text(preset_text)
    out = tmp_path / "out.mp4"
    line = _fails(cli, tmp_path, 2, "-i", clips.one_frame.path, "-o", out, *FAST, "--pipeline", preset)
    assert expect in line
    assert not out.exists()


@pytest.mark.parametrize(("name", "expect"), [
    ("out.xyz", "unknown extension"),
    ("out", "unknown extension"),
    ("out.webm", "cannot hold libx264 video"),
])
def test_bad_output_extension(cli, tmp_path, clips, name, expect):
    line = _fails(cli, tmp_path, 2, "-i", clips.one_frame.path, "-o", tmp_path / name, *FAST)
    assert expect in line and name in line
    assert not (tmp_path / name).exists()


def test_missing_required_argument(cli, tmp_path):
    line = _fails(cli, tmp_path, 2, "-o", tmp_path / "out.mp4")
    assert "-i/--input" in line


def test_start_past_the_end(cli, tmp_path, clips):
    out = tmp_path / "out.mp4"
    line = _fails(cli, tmp_path, 2, "-i", clips.one_frame.path, "-o", out, "-ss", "100", *FAST)
    assert "-ss 100" in line and "no video frame" in line
    assert not out.exists()


def test_bad_weights_file(cli, tmp_path, clips):
    weights = tmp_path / "w.safetensors"
    weights.write_text("not weights")
    res = cli("enhance", "-i", clips.one_frame.path, "-o", tmp_path / "out.mp4", *FAST,
              "--engine", "sci", "--weights", weights)
    assert res.rc == 1
    assert "w.safetensors" in res.one_error()
    assert not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------------------------------------------
# --debug: the traceback instead of the one line


def test_debug_shows_the_traceback(cli, tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(InputError) as err:
        main(["--debug", "enhance", "-i", str(missing), "-o", str(tmp_path / "out.mp4"), *FAST])
    text = "".join(traceback.format_exception(err.value))
    assert text.startswith("Traceback (most recent call last):")
    assert "check_input_path" in text and "nope.mp4 does not exist" in text

    # without --debug: the same failure is one line
    res = cli("enhance", "-i", missing, "-o", tmp_path / "out.mp4", *FAST)
    assert res.rc == 1 and "does not exist" in res.one_error()


def test_debug_on_a_bug(cli, tmp_path, clips, monkeypatch):
    """An unexpected exception (a bug) names itself in one line and hints at --debug; --debug raises it."""
    import streamfix.pipeline

    def broken(enhancer, frame, bus=None):
        raise ZeroDivisionError("division by zero in a kernel")

    monkeypatch.setattr(streamfix.pipeline, "plan_frame", broken)
    res = cli("enhance", "-i", clips.one_frame.path, "-o", tmp_path / "out.mp4", *FAST)
    assert res.rc == 1
    line = res.one_error()
    assert "ZeroDivisionError" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "enhance", "-i", str(clips.one_frame.path), "-o", str(tmp_path / "out.mp4"), *FAST])
    assert list(tmp_path.iterdir()) == []
