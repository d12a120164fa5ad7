"""Still images: read as uint8 RGB (+ alpha kept aside), write atomically in the format of the name."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamfix.errors import InputError, OutputError

#: extensions streamfix reads and writes as still images
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_image(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as ``(H, W, 3)`` uint8 RGB plus its alpha ``(H, W)`` (or None).

    16-bit images are scaled to 8 bits (``>> 8``); grayscale is expanded to three channels.
    """
    if not path.exists():
        raise InputError(f"input {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"input {path} is empty (0 bytes)")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"input {path} is not a readable image")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img.astype(np.float64) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    alpha = None
    if img.ndim == 2:
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        alpha = img[:, :, 3].copy()
        rgb = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(rgb), alpha


def write_image(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None, quality: int = 95) -> int:
    """Encode by ``path``'s extension to a partial file beside it, then rename. Returns bytes."""
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise OutputError(f"cannot write an image to {path.name}: use one of {', '.join(IMAGE_EXTENSIONS)}")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if alpha is not None and ext in (".png", ".tif", ".tiff", ".webp"):
        bgr = np.dstack([bgr, alpha])
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, bgr, params)
    if not ok:
        raise OutputError(f"could not encode {path.name}")
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        buf.tofile(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    return path.stat().st_size
