"""The OpenCV preview window, run as its own process: ``python -m streamfix.live.window_child TITLE``.

OpenCV is imported first and PyAV never (importing PyAV before the first ``imshow`` can hang it:
research/ecosystem.md §0.7), which is why the window lives in a child process: the parent has
long imported PyAV. Protocol, all binary on stdin, text on stdout:

* stdin: pictures, each ``struct.pack("<II", height, width)`` then ``height*width*3`` BGR bytes;
  end of input closes the window.
* stdout: one word per line for each key: ``toggle`` (v, b, space), ``stronger`` (+, =),
  ``weaker`` (-), ``snapshot`` (s), ``quit`` (q, Esc, or the window closed).

The parent checks for a display and a GUI build of OpenCV before starting this.
"""

import cv2  # noqa: I001 - first, before anything that could load another libxcb

import struct
import sys
import threading

import numpy as np

KEYS = {
    ord("v"): "toggle", ord("b"): "toggle", ord(" "): "toggle",
    ord("+"): "stronger", ord("="): "stronger", ord("-"): "weaker", ord("_"): "weaker",
    ord("s"): "snapshot", ord("q"): "quit", 27: "quit",
}


def _read_exact(stream, n: int) -> bytes | None:  # noqa: ANN001 - a binary file
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def main() -> int:
    title = sys.argv[1] if len(sys.argv) > 1 else "streamfix live"
    latest: list[np.ndarray | None] = [None]
    done = threading.Event()
    lock = threading.Lock()

    def reader() -> None:
        src = sys.stdin.buffer
        while True:
            head = _read_exact(src, 8)
            if head is None:
                break
            h, w = struct.unpack("<II", head)
            body = _read_exact(src, h * w * 3)
            if body is None:
                break
            with lock:
                latest[0] = np.frombuffer(body, np.uint8).reshape(h, w, 3)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    cv2.namedWindow(title, cv2.WINDOW_NORMAL)
    shown = None
    while not done.is_set():
        with lock:
            img = latest[0]
        if img is not None and img is not shown:
            cv2.imshow(title, img)
            shown = img
        key = cv2.waitKey(15) & 0xFF
        word = KEYS.get(key)
        if shown is not None and cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) < 1:
            word = "quit"
        if word:
            print(word, flush=True)
            if word == "quit":
                break
    cv2.destroyAllWindows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
