"""A test RTSP camera: gst-rtsp-server serving a looping live test pattern (run with /usr/bin/python3).

    /usr/bin/python3 tests/live_rtsp_server.py --port 8554 [--size 1280x720] [--fps 30] [--mount /test]

Prints ``READY rtsp://127.0.0.1:PORT/MOUNT`` on stdout once listening, then serves until killed.
Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{base,good,ugly}
(see .ci/system-deps.sh). Not a pytest module: the live tests start it as a subprocess.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mount", default="/test")
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--pattern", default="ball")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    Gst.init(None)
    srv = GstRtspServer.RTSPServer()
    srv.set_address(args.host)
    srv.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_shared(True)
    launch = (
        f"( videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,width={w},height={h},framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} threads=1 "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    try:  # fail here, not at the first DESCRIBE, when an element is missing
        Gst.parse_launch(launch.strip("() "))
    except GLib.Error as e:
        print(f"bad pipeline: {e.message}", file=sys.stderr, flush=True)
        return 1
    factory.set_launch(launch)
    srv.get_mount_points().add_factory(args.mount, factory)
    if srv.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"READY rtsp://{args.host}:{args.port}{args.mount}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
