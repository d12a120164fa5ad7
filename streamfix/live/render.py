"""Preview pictures: the before/after views of a frame pair, as BGR images and JPEG bytes.

Views: ``split`` (left half before, right half after, labelled), ``after`` (enhanced) and
``before`` (the source). While the source is down the last picture is dimmed and carries the
status message, so a viewer sees why the picture stopped.

Each :class:`Renderer` keeps its own PyAV reformatters (one per input), which reuse their
SwsContext from frame to frame: PyAV 18.1's ``frame.reformat()`` allocates a new one per call,
which grows memory over long runs (research/ecosystem.md §1.10). Use one renderer per thread.

Example:
    >>> import av
    >>> r = Renderer(max_width=320)
    >>> f = av.VideoFrame(640, 360, "yuv420p")
    >>> r.picture(f, f, "split").shape
    (180, 320, 3)
    >>> r.jpeg(r.picture(f, f, "after"))[:2]
    b'\\xff\\xd8'
"""

from __future__ import annotations

import cv2
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

VIEWS = ("split", "after", "before")

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def next_view(view: str) -> str:
    """The view after ``view`` in the toggle order split → after → before → split."""
    return VIEWS[(VIEWS.index(view) + 1) % len(VIEWS)] if view in VIEWS else VIEWS[0]


def preview_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Even ``(w, h)`` no wider than ``max_width``, keeping the aspect ratio."""
    if width <= max_width:
        w, h = width, height
    else:
        w, h = max_width, round(height * max_width / width)
    return max(2, w - w % 2), max(2, h - h % 2)


def _label(img: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    pad = max(2, round(4 * scale))
    x0, y0 = max(0, x), max(0, y - th - pad)
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, y + base + pad // 2), (0, 0, 0), -1)
    cv2.putText(img, text, (x0 + pad, y), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)


class Renderer:
    """Builds preview pictures and JPEGs.

    Args:
        quality: JPEG quality, 1–100.
        max_width: pictures wider than this are scaled down (even sizes, aspect kept).
    """

    def __init__(self, quality: int = 80, max_width: int = 1280) -> None:
        self.quality = int(quality)
        self.max_width = int(max_width)
        self._rf = {"before": VideoReformatter(), "after": VideoReformatter()}

    def _bgr(self, frame: VideoFrame, which: str, size: tuple[int, int]) -> np.ndarray:
        rng = "JPEG" if int(frame.color_range) == 2 else None
        out = self._rf[which].reformat(frame, size[0], size[1], format="bgr24", src_color_range=rng,
                                       interpolation="BILINEAR", threads=1)
        return out.to_ndarray()

    def picture(self, before: VideoFrame, after: VideoFrame, view: str, status: str | None = None) -> np.ndarray:
        """The ``view`` of a frame pair as a BGR uint8 image (status text drawn when given)."""
        size = preview_size(after.width, after.height, self.max_width)
        scale = max(0.4, size[0] / 1280 * 0.9)
        if view == "before":
            img = self._bgr(before, "before", size)
            _label(img, "before", 8, round(36 * scale), scale)
        elif view == "split":
            img = self._bgr(after, "after", size)
            left = self._bgr(before, "before", size) if before.width == after.width else None
            half = size[0] // 2
            if left is not None:
                img[:, :half] = left[:, :half]
            img[:, half - 1: half + 1] = 255
            _label(img, "before", 8, round(36 * scale), scale)
            _label(img, "after", half + 8, round(36 * scale), scale)
        else:
            img = self._bgr(after, "after", size)
        if status:
            self.dim(img, status)
        return img

    @staticmethod
    def dim(img: np.ndarray, status: str) -> np.ndarray:
        """Darken ``img`` in place and write ``status`` across it (the source is down)."""
        img //= 3
        scale = max(0.4, img.shape[1] / 1280 * 0.8)
        lines, line = [], ""
        limit = max(20, int(img.shape[1] / (scale * 20)))
        for word in status.split():
            if line and len(line) + 1 + len(word) > limit:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        y = img.shape[0] // 2 - (len(lines) - 1) * round(20 * scale)
        for text in lines:
            _label(img, text, 12, y, scale)
            y += round(40 * scale)
        return img

    def placeholder(self, status: str, size: tuple[int, int] = (640, 360)) -> np.ndarray:
        """A grey picture carrying ``status`` (nothing received yet)."""
        img = np.full((size[1], size[0], 3), 96, np.uint8)
        return self.dim(img, status)

    def jpeg(self, img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:  # pragma: no cover - imencode fails only on empty images
            raise ValueError("JPEG encoding failed")
        return buf.tobytes()
