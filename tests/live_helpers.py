"""Helpers for the live tests (a library, not tests): free ports, the test RTSP camera, a running
``streamfix live`` subprocess, HTTP on 127.0.0.1, headless Chromium screenshots.

Every socket here is on 127.0.0.1. What needs Debian packages (gst-rtsp-server through
/usr/bin/python3, chromium) is looked up once and the tests that need it skip with the reason;
``.ci/system-deps.sh`` installs them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = HERE / "live_rtsp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def gst_rtsp_missing() -> str | None:
    """Why the gst-rtsp-server camera cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    code = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
            "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
            "missing = [n for n in ('videotestsrc', 'x264enc', 'rtph264pay') if not Gst.ElementFactory.find(n)]; "
            "print(' '.join(missing))")
    try:
        r = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {SYSTEM_PYTHON}: {e}"
    if r.returncode != 0:
        return ("gst-rtsp-server is not available to /usr/bin/python3 (install python3-gi gir1.2-gst-rtsp-server-1.0 "
                "gstreamer1.0-rtsp gstreamer1.0-plugins-{base,good,ugly}: .ci/system-deps.sh)")
    if r.stdout.strip():
        return f"GStreamer elements missing: {r.stdout.strip()} (install gstreamer1.0-plugins-ugly/-base/-good)"
    return None


@functools.cache
def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class RtspCamera:
    """The test RTSP camera (tests/live_rtsp_server.py) as a subprocess on 127.0.0.1:``port``."""

    def __init__(self, port: int, size: str = "640x360", fps: int = 30) -> None:
        self.port = port
        self.size = size
        self.fps = fps
        self.proc: subprocess.Popen | None = None
        self.url = f"rtsp://127.0.0.1:{port}/test"

    def start(self, timeout: float = 20.0) -> float:
        """Start and wait for READY; returns the perf_counter time it was ready."""
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--size", self.size, "--fps", str(self.fps)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = _readline(self.proc.stdout, timeout)
        if not line.startswith("READY"):
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"test RTSP server did not start: {line!r} {err}")
        return time.perf_counter()

    def kill(self) -> None:
        """SIGKILL: the camera vanishes without a goodbye (TCP reset)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the connection stays open but nothing comes (a stalled camera)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.kill()


def _readline(stream, timeout: float) -> str:  # noqa: ANN001
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    return box[0].strip() if box else ""


class LiveProcess:
    """``python -m streamfix.cli live …`` as a subprocess; stderr is collected on a thread."""

    URL = re.compile(r"preview at (http://\S+/)")

    def __init__(self, args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamfix.cli", "live", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        self.err: deque[str] = deque(maxlen=400)
        self._url = threading.Event()
        self.url: str | None = None
        self._t = threading.Thread(target=self._collect, daemon=True)
        self._t.start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line.rstrip())
            m = self.URL.search(line)
            if m and self.url is None:
                self.url = m.group(1)
                self._url.set()

    def wait_url(self, timeout: float = 60.0) -> str:
        if not self._url.wait(timeout):
            raise AssertionError(f"no preview URL within {timeout} s; stderr: {self.stderr()}")
        assert self.url is not None
        return self.url

    def stderr(self) -> str:
        return "\n".join(self.err)

    def finish(self, sig: int | None = signal.SIGTERM, timeout: float = 60.0) -> tuple[int, str]:
        """Send ``sig`` (None: just wait), wait, return ``(returncode, stdout)``."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self._t.join(5)
        return self.proc.returncode, out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes, str]:
    """``(status, body, content type)`` of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def stats(base: str) -> dict:
    status, body, _ = get(base + "stats.json")
    assert status == 200, status
    return json.loads(body)


def wait_for(predicate, timeout: float, every: float = 0.1, what: str = "condition"):  # noqa: ANN001, ANN201
    """Poll ``predicate()`` until it returns something truthy; returns it (AssertionError on timeout)."""
    end = time.perf_counter() + timeout
    last = None
    while time.perf_counter() < end:
        try:
            last = predicate()
        except (OSError, AssertionError, ValueError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def screenshot(url: str, path: Path, size: tuple[int, int] = (960, 640), budget_ms: int = 1500) -> Path:
    """Headless Chromium screenshot of ``url`` into ``path`` (PNG)."""
    exe = chromium_path()
    assert exe is not None
    profile = path.with_suffix(".profile")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", "--mute-audio",
           f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
           f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if not path.exists():
        raise AssertionError(f"chromium wrote no screenshot (rc {r.returncode}): {r.stderr[-2000:]}")
    shutil.rmtree(profile, ignore_errors=True)
    return path
