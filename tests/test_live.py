"""``streamfix live`` without Debian packages: sources, pacing, stats, the preview server, --out.

The RTSP-camera and browser tests are in test_live_rtsp.py. Everything here uses files or lavfi
graphs as sources and 127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from streamfix.cli import main
from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.errors import InputError, UsageError
from streamfix.events import Bus
from streamfix.live.config import LIVE_DEFAULTS, load_live_preset
from streamfix.live.preview import Hub, PreviewServer
from streamfix.live.render import Renderer, next_view
from streamfix.live.session import LiveOptions, LiveSession
from streamfix.live.sources import LiveSource, NewestSlot, Pacer, parse_source, redact
from streamfix.live.stats import LatencyHistogram, LiveStats
from streamfix.live.window import GUI_HELP, check_window, opencv_gui
from streamfix.synth import write_backlit_clip

try:
    from tests import live_helpers as lh
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import live_helpers as lh

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """1 s, 320x180, 30 fps backlit clip (H.264)."""
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    write_backlit_clip(path, width=320, height=180, seconds=1.0, fps=30, audio=False)
    return path


def _session(spec_text: str, preview: str = "browser", duration: float | None = None, **kw) -> LiveSession:
    bus = Bus()
    source = LiveSource(parse_source(spec_text, **kw), bus, backoff=(0.1, 0.5))
    enhancer = Enhancer(create_engine("identity"), "cpu", 1.0)
    opts = LiveOptions(preview=preview, port=0, duration=duration)
    return LiveSession(source, enhancer, "identity", bus, opts)


# -- sources -----------------------------------------------------------------------------------------
def test_parse_source_kinds(clip):
    s = parse_source("rtsp://admin:secret@127.0.0.1:8554/cam", timeout=3.0)
    assert s.kind == "rtsp" and s.reconnect and not s.paced
    assert s.options["rtsp_transport"] == "tcp" and s.options["timeout"] == "3000000"
    assert s.options["fflags"] == "nobuffer" and s.options["flags"] == "low_delay"
    assert s.timeout == (6.0, 3.0)
    assert "secret" not in s.label and s.label == "rtsp://admin:***@127.0.0.1:8554/cam"
    w = parse_source("webcam:2", size=(1280, 720), fps=30)
    assert (w.kind, w.target, w.format) == ("webcam", "/dev/video2", "v4l2")
    assert w.options == {"video_size": "1280x720", "framerate": "30"}
    assert parse_source("/dev/video0").target == "/dev/video0"
    f = parse_source(str(clip), loop=True)
    assert f.kind == "file" and f.paced and f.loop and not f.reconnect
    assert parse_source("lavfi:testsrc2=size=64x48").format == "lavfi"
    with pytest.raises(InputError, match="does not exist"):
        parse_source("/nonexistent/clip.mp4")
    with pytest.raises(UsageError, match="--loop"):
        parse_source("rtsp://127.0.0.1/x", loop=True)
    with pytest.raises(UsageError, match="webcam"):
        parse_source(str(clip), size=(640, 480))
    assert redact("rtsp://host/x") == "rtsp://host/x"


def test_newest_slot_keeps_only_the_newest():
    s: NewestSlot[int] = NewestSlot()
    for i in range(5):
        s.put(i)
    assert s.take(0) == 4 and s.dropped == 4
    assert s.take(0.01) is None
    s.close()
    assert s.take(5.0) is None  # closed: returns at once


def test_pacer_releases_at_media_time_and_reanchors():
    p = Pacer(slack=0.5)
    assert p.delay(10.0, now=100.0) == 0.0  # first frame anchors
    assert p.delay(10.5, now=100.1) == pytest.approx(0.4)
    assert p.delay(11.0, now=102.0) == 0.0  # 1 s late: re-anchor instead of bursting
    assert p.delay(11.1, now=102.0) == pytest.approx(0.1)
    assert p.delay(0.0, now=102.0) == 0.0  # media time went back (loop): re-anchor


def test_file_source_is_paced_and_loops(clip):
    src = LiveSource(parse_source(str(clip), loop=True), Bus())
    src.start()
    taken = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.6:
        if src.slot.take(0.1) is not None:
            taken += 1
    src.stop()
    # 30 fps for 1.6 s (the 1 s clip looped once): about 48 frames, not as fast as decoding allows
    assert 30 <= src.received <= 60, src.received
    assert src.state == "live" and taken >= 20


def test_file_source_ends_without_loop(clip):
    src = LiveSource(parse_source(str(clip)), Bus())
    src.start()
    end = time.perf_counter() + 10
    while not src.finished and time.perf_counter() < end:
        src.slot.take(0.1)
    src.stop()
    assert src.state == "ended" and src.received == 30


def test_unreachable_network_source_keeps_retrying_with_status():
    port = lh.free_port()  # nothing listens there
    bus = Bus()
    src = LiveSource(parse_source(f"rtsp://127.0.0.1:{port}/none", timeout=1.0), bus, backoff=(0.05, 0.2))
    src.start()
    lh.wait_for(lambda: any(e.topic == "source" for e in bus.history), 10, what="a source warning")
    time.sleep(0.5)
    state, message = src.status()
    src.stop()
    assert state == "connecting" and "retrying" in message and "attempt" in message
    assert not src.finished


# -- stats -------------------------------------------------------------------------------------------
def test_latency_histogram_matches_numpy():
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 8.0, 5000)
    h = LatencyHistogram()
    for v in values:
        h.add(v)
    for q in (50, 95, 99):
        assert abs(h.percentile(q) - np.percentile(values, q, method="higher")) <= 0.11
    assert h.summary()["count"] == 5000


def test_live_stats_fps_and_first_delivery_only():
    s = LiveStats()
    t = time.perf_counter() - 1.0
    for i in range(31):
        s.enhanced(t + i / 30, t + i / 30 + 0.002, t + i / 30 + 0.010)
    s.delivered(5, t, t + 0.05)
    s.delivered(4, t, t + 0.9)  # older frame: ignored
    snap = s.snapshot()
    assert snap["frames"] == 31 and snap["sent"] == 1
    assert snap["latency_ms"]["p50"] == pytest.approx(10.0, abs=0.2)
    assert snap["sent_latency_ms"]["max"] == pytest.approx(50.0, abs=0.2)
    assert 25 <= snap["fps"] <= 31


# -- preview server ------------------------------------------------------------------------------------
class _FakeControls:
    def __init__(self) -> None:
        self.actions: list[str] = []
        self.sent: list[int] = []

    def stats(self):
        return {"frames": 3, "dropped": 0}

    def snapshot(self, view):
        return None

    def act(self, action):
        if action not in ("toggle", "stronger", "weaker"):
            raise ValueError(action)
        self.actions.append(action)
        return self.stats()

    def delivered(self, frame_seq, arrival):
        self.sent.append(frame_seq)


def _status(url: str, method: str = "GET") -> int:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_preview_server_routes_404_and_loopback_only():
    hub, controls = Hub(), _FakeControls()
    server = PreviewServer(hub, controls, lambda: b"<html>page</html>", port=0)
    server.start()
    try:
        host, port = server.address
        assert host == "127.0.0.1" and LIVE_DEFAULTS["host"] == "127.0.0.1"
        base = f"http://127.0.0.1:{port}/"
        assert lh.get(base)[0] == 200
        assert json.loads(lh.get(base + "stats.json")[1]) == {"frames": 3, "dropped": 0}
        assert lh.get(base + "snapshot.jpg")[0] == 503  # no picture yet
        for path in ("index.html", "nope", "stats.json/x", "stream.mjpg/../../etc/passwd", "%2e%2e/etc/passwd",
                     "favicon.ico", "pipelines/live.toml"):
            assert lh.get(base + path)[0] == 404, path
        assert _status(base + "nope", "POST") == 404
        assert _status(base + "control?action=bogus", "POST") == 400
        assert _status(base + "control?action=toggle", "POST") == 200 and controls.actions == ["toggle"]
        assert lh.get(base + "control")[0] == 405
        # bound to 127.0.0.1 only: another loopback address of this machine is refused
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect(("127.0.0.2", port))
    finally:
        server.close()


def test_mjpeg_stream_sends_newest_pictures():
    hub, controls = Hub(), _FakeControls()
    server = PreviewServer(hub, controls, lambda: b"", port=0)
    server.start()
    r = Renderer(max_width=160)
    pics = [r.jpeg(r.placeholder(f"picture {i}", (160, 90))) for i in range(3)]
    try:
        url = f"http://127.0.0.1:{server.address[1]}/stream.mjpg"
        resp = urllib.request.urlopen(url, timeout=5)
        assert resp.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=frame")
        lh.wait_for(lambda: hub.viewers == 1, 5, what="a viewer")

        def feed():
            for i, p in enumerate(pics, 1):
                hub.publish(p, frame_seq=i, arrival=time.perf_counter())
                time.sleep(0.2)

        threading.Thread(target=feed, daemon=True).start()
        parts = []
        for _ in range(2):
            assert resp.readline() == b"--frame\r\n"
            headers = {}
            while (line := resp.readline()) != b"\r\n":
                k, v = line.decode().split(":", 1)
                headers[k.strip().lower()] = v.strip()
            assert headers["content-type"] == "image/jpeg"
            body = resp.read(int(headers["content-length"]))
            assert body[:2] == b"\xff\xd8" and resp.read(2) == b"\r\n"
            parts.append(body)
        resp.close()
        assert parts[0] in pics and parts[1] in pics and parts[0] != parts[1]
        assert controls.sent[:1] == [1] or controls.sent[:1] == [2]
    finally:
        server.close()


def test_port_in_use_is_one_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        from streamfix.errors import StreamfixError

        with pytest.raises(StreamfixError, match="--port"):
            PreviewServer(Hub(), _FakeControls(), lambda: b"", port=port)


# -- the session in-process ----------------------------------------------------------------------------
def test_session_serves_page_stats_snapshot_and_controls(clip):
    session = _session(str(clip), duration=6.0, loop=True)
    session.open()
    base = session.url
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("summary", session.run()), daemon=True)
    t.start()
    try:
        st = lh.wait_for(lambda: (s := lh.stats(base))["frames"] >= 10 and s, 20, what="10 frames")
        for key in ("frames", "dropped", "fps", "latency_ms", "source", "engine"):
            assert key in st
        assert set(st["latency_ms"]) >= {"p50", "p95", "p99"} and st["latency_ms"]["p99"] is not None
        assert st["source"] == "clip.mp4" and st["engine"] == "identity" and st["status"] == "live"
        page = lh.get(base)[1].decode()
        assert '<img id="v" src="/stream.mjpg"' in page and "identity" in page
        status, jpeg, ctype = lh.get(base + "snapshot.jpg?view=after")
        assert status == 200 and ctype == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
        assert _status(base + "control?action=weaker", "POST") == 200
        assert _status(base + "control?action=toggle", "POST") == 200
        after = lh.stats(base)
        assert after["strength"] == pytest.approx(0.9) and after["view"] == next_view("split") == "after"
        assert session.enhancer.strength == pytest.approx(0.9)
        # a viewer makes the renderer publish frames, and their delivery is timed
        with urllib.request.urlopen(base + "stream.mjpg", timeout=5) as r:
            r.read(20000)
        lh.wait_for(lambda: lh.stats(base)["sent"] > 0, 10, what="a delivered frame")
    finally:
        session.stop()
        t.join(20)
    summary = box["summary"]
    assert summary.frames >= 10 and summary.latency_ms["p50"] is not None and summary.ended_by == "stopped"


def test_cli_records_a_looping_file_with_duration(clip, tmp_path, capsys):
    out = tmp_path / "rec.mp4"
    rc = main(["live", str(clip), "--loop", "--engine", "identity", "--preview", "none", "--out", str(out),
               "--duration", "3", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "ended by duration" in captured.out and "p50/p95/p99" in captured.out
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        time_base = s.time_base  # read while open: PyAV 18.1.1 refuses a closed container's streams
        frames = list(c.decode(s))
    # about 3 s of 30 fps, looped past the 1 s clip; the time stamps follow arrival (real time)
    assert len(frames) > 45, len(frames)
    span = float((frames[-1].pts - frames[0].pts) * time_base)
    assert 1.5 < span < 3.5
    assert not list(tmp_path.glob(".*partial*"))


def test_cli_publishes_to_rtsp(clip, tmp_path):
    """--out rtsp://: a PyAV listener on 127.0.0.1 plays the RTSP server that receives the stream."""
    port = lh.free_port()
    url = f"rtsp://127.0.0.1:{port}/out"
    got = {"frames": 0, "size": None, "error": None}

    def listen():
        try:
            with av.open(url, options={"rtsp_flags": "listen", "listen_timeout": "30"}, timeout=(40, 10)) as c:
                for f in c.decode(video=0):
                    got["frames"] += 1
                    got["size"] = (f.width, f.height)
        except av.FFmpegError as e:  # the publisher hanging up ends the listener
            got["error"] = str(e)

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(0.5)
    r = subprocess.run([sys.executable, "-m", "streamfix.cli", "live", str(clip), "--loop", "--engine", "identity",
                        "--preview", "none", "--out", url, "--duration", "4", "-q"],
                       capture_output=True, text=True, timeout=120)
    t.join(15)
    assert r.returncode == 0, r.stderr
    assert got["frames"] >= 30 and got["size"] == (320, 180), (got, r.stderr)


def test_cli_missing_source_and_bad_flags(capsys, tmp_path):
    assert main(["live", str(tmp_path / "none.mp4"), "--preview", "none"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["live", "rtsp://127.0.0.1:1/x", "--loop"]) == 2
    assert main(["live", "webcam:0", "--port", "70000"]) == 2
    assert main(["live", "webcam:0", "--out", "ftp://x/y"]) == 2
    assert main(["live", "webcam:0", "--denoise", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("streamfix: error:") == 4 and "--denoise / [denoise] strength must be in [0, 1)" in err


def test_cli_missing_webcam_is_an_input_error(capsys):
    rc = main(["live", "/dev/video97", "--engine", "identity", "--preview", "none", "--duration", "5"])
    assert rc == 1
    assert "cannot open /dev/video97" in capsys.readouterr().err


def test_window_refuses_without_display_or_gui(monkeypatch, capsys):
    with pytest.raises(UsageError, match=r"\$DISPLAY"):
        check_window({})
    if opencv_gui() is None:  # opencv-python-headless, this project's dependency
        with pytest.raises(UsageError, match="pip install opencv-python"):
            check_window({"DISPLAY": ":0"})
        assert "opencv-python-headless" in GUI_HELP
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["live", "webcam:0", "--preview", "window"]) == 2
    assert "needs a display" in capsys.readouterr().err


_FAKE_WINDOW = """
import struct, sys
src = sys.stdin.buffer
for _ in range(10):  # a few pictures first: the earliest may be the "opening" placeholder
    h, w = struct.unpack("<II", src.read(8))
    assert len(src.read(h * w * 3)) == h * w * 3
print(f"size {w}x{h}", flush=True)
for word in ("stronger", "toggle", "snapshot", "quit"):
    print(word, flush=True)
src.read()
"""


def test_window_protocol_and_keys_with_a_stand_in_child(clip, tmp_path, monkeypatch):
    """The window's parent side and the session's key handling, with a child that needs no display."""
    from streamfix.live.window import WindowPreview

    monkeypatch.chdir(tmp_path)
    session = _session(str(clip), preview="window", duration=15.0, loop=True)
    session.enhancer.strength = 0.5
    session._window_factory = lambda title, on_key, on_shown: WindowPreview(
        title, on_key, on_shown, command=[sys.executable, "-c", _FAKE_WINDOW])
    summary = session.run()
    assert summary.ended_by == "window closed" and summary.seconds < 14
    assert session.enhancer.strength == pytest.approx(0.6) and session.view == "after"
    assert len(list(tmp_path.glob("streamfix-snapshot-*.jpg"))) == 1
    assert summary.sent_latency_ms["count"] >= 1


def test_window_child_imports_opencv_and_never_av():
    code = ("import sys, streamfix.live.window_child as w; "
            "assert 'cv2' in sys.modules and 'av' not in sys.modules, sorted(sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# -- presets --------------------------------------------------------------------------------------------
def test_live_preset_states_the_builtin_defaults(tmp_path):
    assert load_live_preset(ROOT / "pipelines" / "live.toml") == load_live_preset(None)
    bad = tmp_path / "bad.toml"
    bad.write_text("[live]\nport = 'eighty'\n")
    with pytest.raises(UsageError, match="port must be an integer"):
        load_live_preset(bad)
    bad.write_text("[live]\nwat = 1\n")
    with pytest.raises(UsageError, match="unknown key"):
        load_live_preset(bad)
    partial = tmp_path / "p.toml"
    partial.write_text("[encode]\ncrf = 30\n[live]\nport = 9000\n")
    p = load_live_preset(partial)
    assert p["encode"]["crf"] == 30 and p["encode"]["preset"] == "ultrafast" and p["live"]["port"] == 9000
