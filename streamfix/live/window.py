"""``--preview window``: an OpenCV window, opt-in, only where a display exists.

``cv2.imshow`` without a display aborts the process (uncatchable), and importing PyAV before the
first ``imshow`` can hang it (DESIGN.md). So: :func:`check_window` refuses early, with what to do,
when there is no display or the installed OpenCV has no GUI (``opencv-python-headless``, this
project's dependency, has none); and the window itself runs in a child process
(:mod:`streamfix.live.window_child`) that imports OpenCV first and never PyAV.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable

import numpy as np

from streamfix.errors import UsageError
from streamfix.live.sources import NewestSlot

GUI_HELP = (
    "--preview window needs OpenCV built with a GUI, but the installed OpenCV has none "
    "(opencv-python-headless). In this environment run: "
    "pip uninstall -y opencv-python-headless && pip install opencv-python "
    "(Debian/Ubuntu may also need libgl1 and libglib2.0-0); or use --preview browser"
)


def has_display(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def opencv_gui() -> str | None:
    """The GUI backend of the installed OpenCV (``QT5``, ``GTK3``, …), or None when it has none."""
    import cv2

    info = cv2.getBuildInformation()
    for line in info.splitlines():
        name, _, value = line.strip().partition(":")
        if name == "GUI":
            value = value.strip()
            return None if value.upper() in ("", "NONE", "NO") else value
    return None


def check_window(env: dict[str, str] | None = None) -> None:
    """Raise :class:`UsageError` (with what to do) unless a window can be shown here."""
    if not has_display(env):
        raise UsageError(
            "--preview window needs a display, and neither $DISPLAY nor $WAYLAND_DISPLAY is set; "
            "use --preview browser (the default; open the printed URL, e.g. through an SSH tunnel) "
            "or --preview none"
        )
    if opencv_gui() is None:
        raise UsageError(GUI_HELP)


class WindowPreview:
    """Shows pictures in the child window; its key presses come back through ``on_key``.

    Args:
        on_key: called with ``toggle`` | ``stronger`` | ``weaker`` | ``snapshot`` | ``quit``
            (``quit`` also when the window is closed or the child exits).
        on_shown: called with ``(frame_seq, arrival)`` once a frame's picture was handed over.
        command: the child to run (default: :mod:`streamfix.live.window_child`; tests use a stand-in).
    """

    def __init__(self, title: str, on_key: Callable[[str], None],
                 on_shown: Callable[[int, float], None] | None = None, command: list[str] | None = None) -> None:
        self.on_key = on_key
        self.on_shown = on_shown
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "streamfix.live.window_child", title],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.slot: NewestSlot[tuple[np.ndarray, int, float]] = NewestSlot()
        self._writer = threading.Thread(target=self._write, name="sf-window-out", daemon=True)
        self._reader = threading.Thread(target=self._read, name="sf-window-keys", daemon=True)
        self._writer.start()
        self._reader.start()

    def show(self, img: np.ndarray, frame_seq: int = 0, arrival: float = 0.0) -> None:
        self.slot.put((img, frame_seq, arrival))

    def _write(self) -> None:
        pipe = self.proc.stdin
        assert pipe is not None
        try:
            while True:
                item = self.slot.take(timeout=0.5)
                if item is None:
                    if self.slot.closed:
                        break
                    continue
                img, seq, arrival = item
                img = np.ascontiguousarray(img)
                pipe.write(struct.pack("<II", img.shape[0], img.shape[1]) + img.tobytes())
                pipe.flush()
                if seq and self.on_shown is not None:
                    self.on_shown(seq, arrival)
        except (BrokenPipeError, OSError, ValueError):
            pass

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        for line in out:
            word = line.decode(errors="replace").strip()
            if word:
                self.on_key(word)
        self.on_key("quit")

    def close(self) -> None:
        self.slot.close()
        self._writer.join(2)
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(3)
