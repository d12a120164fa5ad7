"""``streamfix live`` against real components: a gst-rtsp-server camera and headless Chromium.

One scenario, in order (each step needs the previous one's state, so it is one test):
the camera serves a looping test pattern on 127.0.0.1 → ``streamfix live rtsp://… --preview
browser`` (a subprocess) enhances it → Chromium loads the page twice a second apart: the MJPEG
picture changes and /stats.json counts frames → the camera is killed: the page keeps serving,
with a status → the camera restarts on the same port: frames flow again, without restarting
streamfix → the camera stalls (SIGSTOP) and resumes: noticed, then recovered → SIGTERM ends the
run cleanly with a summary. Screenshots are kept under pytest's
tmp dir and copied to artifacts/ (git-ignored).

Needs /usr/bin/python3 with gst-rtsp-server and chromium (.ci/system-deps.sh installs them);
skips with the reason otherwise.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

try:
    from tests import live_helpers as lh
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import live_helpers as lh

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WINDOW = (960, 640)
#: the picture's place on the page: below the 32 px bar, full width, 16:9
PICTURE = (slice(40, 32 + WINDOW[0] * 9 // 16 - 8), slice(8, WINDOW[0] - 8))


@pytest.fixture(scope="module")
def camera():
    reason = lh.gst_rtsp_missing()
    if reason:
        pytest.skip(reason)
    cam = lh.RtspCamera(lh.free_port(), size="640x360", fps=30)
    cam.start()
    yield cam
    cam.stop()


def _picture(png: Path) -> np.ndarray:
    img = cv2.imread(str(png))
    assert img is not None and img.shape[:2] == (WINDOW[1], WINDOW[0]), png
    return img[PICTURE]


def _keep(paths: list[Path]) -> None:
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        for p in paths:
            shutil.copy2(p, ARTIFACTS / f"live_{p.name}")
    except OSError:
        pass  # a read-only checkout keeps them under pytest's tmp dir only


def test_rtsp_camera_browser_preview_and_reconnect(camera, tmp_path):
    if lh.chromium_path() is None:
        pytest.skip("chromium is not installed (apt-get install chromium: .ci/system-deps.sh)")
    live = lh.LiveProcess([camera.url, "--engine", "identity", "--preview", "browser", "--port", "0",
                           "--duration", "120", "--timeout", "2"], cwd=tmp_path)
    try:
        base = live.wait_url(60)
        assert base.startswith("http://127.0.0.1:")
        lh.wait_for(lambda: lh.stats(base)["frames"] >= 30, 40, what="30 enhanced frames")

        # the page in a real browser: the MJPEG picture moves, the counters are there
        shots = [lh.screenshot(base, tmp_path / "page_1.png", WINDOW)]
        time.sleep(1.0)
        shots.append(lh.screenshot(base, tmp_path / "page_2.png", WINDOW))
        a, b = (_picture(p) for p in shots)
        assert a.std() > 5 and b.std() > 5, "the picture area is blank"
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.5, "the MJPEG picture did not change"
        st = lh.stats(base)
        assert st["frames"] >= 30 and st["status"] == "live" and st["sent"] > 0
        assert st["source"] == camera.url and st["engine"] == "identity"
        assert st["latency_ms"]["p99"] is not None and st["fps"] > 5

        # the camera goes away: streamfix stays up and says so
        frames_before = st["frames"]
        camera.kill()
        down = lh.wait_for(lambda: (s := lh.stats(base))["status"] in ("reconnecting", "stalled", "connecting")
                           and s, 15, what="a down status")
        assert down["message"]
        assert lh.get(base)[0] == 200 and lh.get(base + "snapshot.jpg")[0] == 200
        shots.append(lh.screenshot(base, tmp_path / "page_down.png", WINDOW, budget_ms=1200))

        # it comes back on the same port: frames flow again in the same process
        ready = camera.start()
        back = lh.wait_for(lambda: (s := lh.stats(base))["frames"] >= down["frames"] + 30 and s, 40,
                           what="frames after the restart")
        reconnect_s = time.perf_counter() - ready
        assert back["status"] == "live" and back["reconnects"] >= 1
        assert back["frames"] > frames_before
        print(f"reconnected and 30 frames enhanced {reconnect_s:.1f} s after the camera was back")

        # the camera stalls (connection open, nothing sent): noticed, then recovered when it resumes
        camera.pause()
        try:
            stalled = lh.wait_for(lambda: (s := lh.stats(base))["status"] in ("stalled", "reconnecting") and s, 15,
                                  what="a stalled status")
        finally:
            camera.resume()
        lh.wait_for(lambda: lh.stats(base)["frames"] >= stalled["frames"] + 30, 40, what="frames after the stall")
        _keep(shots)
    finally:
        rc, out = live.finish()
    assert rc == 0, live.stderr()
    assert "ended by SIGTERM" in out and "reconnects" in out and "p50/p95/p99" in out, out
