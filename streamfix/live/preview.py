"""The browser preview: MJPEG over HTTP on the standard library's ``ThreadingHTTPServer``.

Routes (anything else is 404; GET except ``/control``):

==================  ============================================================================
``/``               a small page: the stream (before/after split by default), engine, fps,
                    latency, drops, status; keys ``v`` view, ``+``/``-`` strength, ``s`` snapshot
``/stream.mjpg``    ``multipart/x-mixed-replace`` JPEGs, newest picture only (slow viewers skip)
``/snapshot.jpg``   the current picture (``?view=split|after|before`` picks one)
``/stats.json``     frames, dropped, fps, latency_ms {p50, p95, p99, …}, source, engine, status, …
``POST /control``   ``?action=toggle|stronger|weaker``: change the view or the strength
==================  ============================================================================

It binds 127.0.0.1 unless told otherwise; there is no authentication, so a wider ``host`` is a
deliberate choice (the face warns). Also viewable with ``ffplay http://127.0.0.1:8080/stream.mjpg``.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from streamfix.errors import StreamfixError

BOUNDARY = "frame"


@dataclass(frozen=True)
class Picture:
    """One published JPEG. ``frame_seq`` 0: not a frame (placeholder or status picture)."""

    seq: int
    jpeg: bytes
    frame_seq: int
    arrival: float


class Hub:
    """The newest published picture; viewers wait on it (each sees only the newest)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.picture: Picture | None = None
        self.viewers = 0
        self.closed = False
        self._seq = 0

    def publish(self, jpeg: bytes, frame_seq: int = 0, arrival: float = 0.0) -> None:
        with self._cond:
            self._seq += 1
            self.picture = Picture(self._seq, jpeg, frame_seq, arrival)
            self._cond.notify_all()

    def wait(self, after: int, timeout: float = 1.0) -> Picture | None:
        """The first picture newer than ``after`` (waits up to ``timeout`` s); None on timeout/close."""
        with self._cond:
            self._cond.wait_for(lambda: self.closed or (self.picture is not None and self.picture.seq > after),
                                timeout)
            p = self.picture
            return p if (p is not None and p.seq > after and not self.closed) else None

    def join(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Controls(Protocol):
    """What the server asks of the session."""

    def stats(self) -> dict[str, object]: ...

    def snapshot(self, view: str | None) -> bytes | None: ...

    def act(self, action: str) -> dict[str, object]: ...

    def delivered(self, frame_seq: int, arrival: float) -> None: ...


def _handler(hub: Hub, controls: Controls, page: Callable[[], bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "streamfix"
        timeout = 15  # seconds a stalled viewer may block a send

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data: object, status: int = 200) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _not_found(self) -> None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            try:
                if url.path == "/":
                    self._send(200, page(), "text/html; charset=utf-8")
                elif url.path == "/stream.mjpg":
                    self._stream()
                elif url.path == "/snapshot.jpg":
                    view = parse_qs(url.query).get("view", [None])[0]
                    jpeg = controls.snapshot(view)
                    if jpeg is None:
                        self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"no picture yet\n", "text/plain; charset=utf-8")
                    else:
                        self._send(200, jpeg, "image/jpeg")
                elif url.path == "/stats.json":
                    self._json(controls.stats())
                elif url.path == "/control":
                    self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"use POST\n", "text/plain; charset=utf-8")
                else:
                    self._not_found()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            url = urlsplit(self.path)
            if url.path != "/control":
                self._not_found()
                return
            action = parse_qs(url.query).get("action", [""])[0]
            try:
                self._json(controls.act(action))
            except ValueError as e:
                self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            hub.join(1)
            try:
                last = 0
                while not hub.closed:
                    pic = hub.wait(last, timeout=1.0)
                    if pic is None:
                        continue
                    last = pic.seq
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(pic.jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + pic.jpeg + b"\r\n")
                    self.wfile.flush()
                    if pic.frame_seq:
                        controls.delivered(pic.frame_seq, pic.arrival)
            finally:
                hub.join(-1)

    return Handler


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class PreviewServer:
    """Serves the preview on ``host:port`` (``port`` 0 picks a free one) from a daemon thread.

    Raises:
        StreamfixError: the address cannot be bound (in use, or not an address of this machine).
    """

    def __init__(self, hub: Hub, controls: Controls, page: Callable[[], bytes],
                 host: str = "127.0.0.1", port: int = 8080) -> None:
        self.hub = hub
        server_class = _Server6 if ":" in host else ThreadingHTTPServer
        try:
            self.httpd = server_class((host, port), _handler(hub, controls, page))
        except OSError as e:
            hint = "; pass --port N, or --port 0 for any free port" if e.errno == errno.EADDRINUSE else ""
            raise StreamfixError(f"cannot serve the preview on {host}:{port}: {e.strerror or e}{hint}") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="sf-preview-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.hub.close()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()
