"""Measure ``streamfix live`` against the test RTSP camera: fps, latency, drops, reconnect time, RSS.

    python tools/live_measure.py --seconds 120 --engine identity
    python tools/live_measure.py --seconds 600 --engine sci --weights medium.pt --restarts 0
    python tools/live_measure.py --seconds 60 --engine identity --restarts 3   # reconnect times

Starts tests/live_rtsp_server.py (gst-rtsp-server, /usr/bin/python3) at --size/--fps on 127.0.0.1,
runs ``streamfix live URL --preview browser`` as a subprocess with one MJPEG viewer attached (as a
person watching the page would be), samples /stats.json and the process's RSS, optionally kills
and restarts the camera (--restarts N: reconnect time = camera READY → frames counting again,
polled every 20 ms), and prints one JSON object. The figures of a run with restarts include the
outages; measure steady-state numbers with --restarts 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import live_helpers as lh  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def viewer(url: str, stop: threading.Event, counts: dict) -> None:
    """Read /stream.mjpg like a browser would, counting bytes and parts."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as r:
                while not stop.is_set():
                    chunk = r.read(65536)
                    if not chunk:
                        break
                    counts["bytes"] += len(chunk)
                    counts["parts"] += chunk.count(b"--frame\r\n")
        except OSError:
            time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--engine", default="identity")
    ap.add_argument("--weights")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--restarts", type=int, default=0, help="kill and restart the camera this many times")
    ap.add_argument("--down", type=float, default=2.0, help="seconds the camera stays down per restart")
    ap.add_argument("--no-viewer", action="store_true", help="no MJPEG client attached")
    ap.add_argument("--rss-every", type=float, default=30.0)
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `streamfix live` flags")
    a = ap.parse_args()
    reason = lh.gst_rtsp_missing()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    cam = lh.RtspCamera(lh.free_port(), size=a.size, fps=a.fps)
    cam.start()
    args = [cam.url, "--engine", a.engine, "--preview", "browser", "--port", "0", "--duration", str(a.seconds)]
    if a.weights:
        args += ["--weights", a.weights]
    live = lh.LiveProcess(args + a.extra)
    stop = threading.Event()
    counts = {"bytes": 0, "parts": 0}
    result: dict = {"engine": a.engine, "weights": a.weights, "size": a.size, "camera_fps": a.fps,
                    "seconds": a.seconds, "cpus": os.cpu_count(), "load_at_start": os.getloadavg()}
    try:
        base = live.wait_url(120)
        lh.wait_for(lambda: lh.stats(base)["frames"] > 0, 60, what="the first frame")
        t0 = time.perf_counter()
        rss = [(0.0, rss_mb(live.proc.pid))]
        if not a.no_viewer:
            threading.Thread(target=viewer, args=(base, stop, counts), daemon=True).start()
        reconnects = []
        next_restart = t0 + (a.seconds / (a.restarts + 1) if a.restarts else float("inf"))
        next_rss = t0 + a.rss_every
        while live.proc.poll() is None:
            now = time.perf_counter()
            if now >= next_rss:
                rss.append((round(now - t0, 1), rss_mb(live.proc.pid)))
                next_rss += a.rss_every
            if now >= next_restart and len(reconnects) < a.restarts:
                cam.kill()
                time.sleep(a.down)
                ready = cam.start()
                frames = lh.stats(base)["frames"]
                back = lh.wait_for(lambda f=frames: lh.stats(base)["frames"] > f and time.perf_counter(), 60,
                                   every=0.02, what="frames after the restart")
                reconnects.append(round(back - ready, 2))
                next_restart = now + a.seconds / (a.restarts + 1)
            try:
                last = lh.stats(base)
                last_rss = (round(time.perf_counter() - t0, 1), rss_mb(live.proc.pid))
            except OSError:
                break
            time.sleep(0.5)
        rss.append(last_rss)
        result.update(
            stats_before_end={k: last.get(k) for k in ("frames", "fps", "dropped", "dropped_per_min", "latency_ms",
                                                      "sent_latency_ms", "enhance_ms", "reconnects", "outages_s")},
            reconnect_s=reconnects,
            rss_mb=[(t, round(m, 1)) for t, m in rss if m is not None],
            viewer={"parts": counts["parts"], "mbytes": round(counts["bytes"] / 2**20, 1)},
            load_at_end=os.getloadavg(),
        )
    finally:
        stop.set()
        rc, out = live.finish(sig=None, timeout=a.seconds + 120)
        cam.stop()
    result["summary"] = out.strip().splitlines()
    result["rc"] = rc
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
