"""Synthetic backlit media for ``streamfix demo`` and the benchmarks.

:func:`backlit_frame` draws a deterministic "shot against the sun" scene: a bright sky gradient with
a sun disc at clipping, a dark textured ground under a hilly horizon, two static trees and a few
near-black silhouettes that move with ``t``, plus mild Gaussian sensor noise. Everything that does
not depend on ``t`` (sky, sun, ground texture, a bank of noise) is built once per
``(width, height, seed)`` and cached, so a 1080p frame costs a few array operations.

:func:`write_backlit_clip` encodes such frames with PyAV (libx264, yuv420p, BT.709 limited range)
and, optionally, an AAC stereo 48 kHz tone, writing to a temporary name beside the target and
renaming it into place when complete.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["backlit_frame", "write_backlit_clip", "AUDIO_RATE"]

AUDIO_RATE = 48_000
_AAC_FRAME = 1024
_NOISE_PAD = 64  # the per-frame noise is a shifted window into a padded bank
_NOISE_SIGMA = 2.2  # grey levels


class _Figure(NamedTuple):
    kind: str  # "walker" or "bird"
    x0: float  # start position, fraction of the width
    speed: float  # fractions of the width per second (signed)
    base: float  # walker: feet y / bird: flight y, fraction of the height
    size: float  # walker height / bird span, fraction of the height
    phase: float


class _Static(NamedTuple):
    base: np.ndarray  # (H, W, 3) int16, the scene without moving figures or noise
    noise: np.ndarray  # (H + pad, W + pad, 3) int8 bank of Gaussian noise
    figures: tuple[_Figure, ...]
    colour: np.ndarray  # (3,) int16 silhouette colour


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth noise in [0, 1]: a random grid with about ``cells`` cells across, upscaled (bicubic)."""
    import cv2

    gw = max(2, cells)
    gh = max(2, round(cells * h / max(w, 1)))
    grid = rng.random((gh + 1, gw + 1), dtype=np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def _fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: tuple[int, ...]) -> np.ndarray:
    acc = np.zeros((h, w), np.float32)
    total = 0.0
    for k, cells in enumerate(octaves):
        amp = 0.55**k
        acc += amp * _value_noise(rng, h, w, cells)
        total += amp
    acc /= total
    lo, hi = float(acc.min()), float(acc.max())
    return (acc - lo) / max(hi - lo, 1e-6)


@lru_cache(maxsize=4)
def _static(width: int, height: int, seed: int) -> _Static:
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5EED])
    h, w = height, width
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    scale = float(min(w, h))

    # Horizon: a gently rolling line at ~62 % of the height.
    ridge = _fractal_noise(rng, 1, w, (3, 7, 19))[0]
    horizon = h * (0.58 + 0.08 * ridge)  # (W,)

    # Sky: deep blue at the top to a hazy white near the horizon, faint clouds.
    s = np.clip(ys / max(h * 0.62, 1.0), 0.0, 1.0) ** 0.7  # (H,1)
    top = np.array([92, 138, 214], np.float32)
    low = np.array([246, 236, 214], np.float32)
    sky = top + (low - top) * s[..., None]  # (H,1,3)
    clouds = _fractal_noise(rng, h, w, (4, 9, 23))
    sky = sky * (1.0 - 0.07 * clouds[..., None]) + 10.0 * clouds[..., None]

    # Sun: a disc at clipping with a wide glow.
    sx, sy = w * (0.63 + 0.1 * rng.random()), h * (0.22 + 0.08 * rng.random())
    r = 0.05 * scale
    d = np.sqrt((xs - sx) ** 2 + (ys - sy) ** 2)
    glow = 130.0 * np.exp(-((d / (3.5 * r)) ** 2)) + 55.0 * np.exp(-d / (12.0 * r))
    disc = np.clip((r - d) / 1.5 + 1.0, 0.0, 1.0)  # anti-aliased edge
    sky = sky + glow[..., None] * np.array([1.0, 0.93, 0.78], np.float32)
    sky = sky * (1.0 - disc[..., None]) + 255.0 * disc[..., None]

    # Ground: dark, multi-scale textured, darkest at the bottom, hazy just below the horizon.
    tex = _fractal_noise(rng, h, w, (3, 8, 21, 55, 140))
    fine = _value_noise(rng, h, w, max(8, w // 3))
    depth = np.clip((ys - horizon[None, :]) / max(h * 0.4, 1.0), 0.0, 1.0)  # 0 at horizon, 1 at bottom
    shade = (0.30 + 0.85 * tex + 0.25 * (fine - 0.5)) * (1.0 - 0.45 * depth)
    soil = np.array([40, 33, 24], np.float32)
    ground = shade[..., None] * soil
    haze = np.exp(-(ys - horizon[None, :]) / max(0.025 * h, 1.0))
    haze = np.where(ys >= horizon[None, :], haze, 0.0)[..., None]
    ground = ground * (1.0 - 0.45 * haze) + 0.45 * haze * np.array([150, 140, 128], np.float32)

    below = (ys >= horizon[None, :])[..., None]
    img = np.where(below, ground, sky)

    # Two static trees standing on the horizon, dark against the sky.
    dark = np.array([16, 14, 13], np.float32)
    for fx in (0.12 + 0.1 * rng.random(), 0.84 + 0.08 * rng.random()):
        tx = w * fx
        base_y = float(horizon[min(w - 1, max(0, int(tx)))])
        th = 0.30 * h * (0.8 + 0.4 * rng.random())
        # Work inside the tree's bounding box only.
        x0, x1 = max(0, int(tx - 0.27 * th) - 2), min(w, int(tx + 0.27 * th) + 3)
        y0, y1 = max(0, int(base_y - 1.12 * th) - 2), min(h, int(base_y) + 3)
        if x0 >= x1 or y0 >= y1:
            continue
        bx, by = xs[:, x0:x1], ys[y0:y1]
        trunk = (np.abs(bx - tx) < 0.012 * scale + 1) & (by > base_y - th * 0.6) & (by <= base_y + 2)
        crown = ((bx - tx) / (0.22 * th)) ** 2 + ((by - (base_y - th * 0.75)) / (0.3 * th)) ** 2
        leaves = _value_noise(rng, y1 - y0, x1 - x0, max(3, (x1 - x0) // 12))
        mask = trunk | (crown < 0.75 + 0.5 * leaves)
        img[y0:y1, x0:x1][mask] = dark

    base = np.clip(np.rint(img), 0, 255).astype(np.int16)
    base.setflags(write=False)

    noise = rng.standard_normal((h + _NOISE_PAD, w + _NOISE_PAD, 3), dtype=np.float32) * _NOISE_SIGMA
    noise = np.clip(np.rint(noise), -127, 127).astype(np.int8)
    noise.setflags(write=False)

    figures = []
    for k in range(3):
        figures.append(
            _Figure(
                kind="walker",
                x0=float(rng.random()),
                speed=float((0.05 + 0.07 * rng.random()) * (1 if k % 2 == 0 else -1)),
                base=float(0.80 + 0.15 * rng.random()),
                size=float(0.26 + 0.14 * rng.random()),
                phase=float(2 * math.pi * rng.random()),
            )
        )
    figures.append(
        _Figure(
            kind="bird",
            x0=float(rng.random()),
            speed=float(0.15 + 0.1 * rng.random()),
            base=float(0.12 + 0.2 * rng.random()),
            size=0.05,
            phase=float(2 * math.pi * rng.random()),
        )
    )
    return _Static(base, noise, tuple(figures), np.array([13, 11, 11], np.int16))


def _frame_rng(seed: int, t: float) -> np.random.Generator:
    key = round(t * 1_000_000) & 0xFFFF_FFFF_FFFF_FFFF
    return np.random.default_rng([seed & 0xFFFFFFFF, key & 0xFFFFFFFF, key >> 32, 0xF4A3E])


def _wrap_x(fig: _Figure, t: float, width: int, margin: float) -> float:
    span = width + 2 * margin
    return (fig.x0 * width + fig.speed * width * t) % span - margin


def _paint(
    out: np.ndarray,
    noise: np.ndarray,
    colour: np.ndarray,
    y0: int,
    y1: int,
    x0: int,
    x1: int,
    mask: np.ndarray,
) -> None:
    """Set ``out[y0:y1, x0:x1][mask]`` to ``colour`` plus the frame's sensor noise (figures stay noisy)."""
    region = out[y0:y1, x0:x1]
    region[mask] = colour + noise[y0:y1, x0:x1][mask]


def _draw_figures(out: np.ndarray, noise: np.ndarray, st: _Static, t: float) -> None:
    h, w = out.shape[:2]
    for fig in st.figures:
        size = fig.size * h
        if fig.kind == "walker":
            half_w = 0.22 * size
            cx = _wrap_x(fig, t, w, half_w + 2)
            feet = fig.base * h
            top = feet - size
        else:
            half_w = 0.6 * size
            cx = _wrap_x(fig, t, w, half_w + 2)
            cy = fig.base * h + 0.3 * size * math.sin(2.1 * t + fig.phase)
            top, feet = cy - 0.5 * size, cy + 0.5 * size
        x0, x1 = max(0, int(cx - half_w) - 1), min(w, int(cx + half_w) + 2)
        y0, y1 = max(0, int(top) - 1), min(h, int(feet) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        if fig.kind == "walker":
            head_r = 0.085 * size
            head = (xx - cx) ** 2 + (yy - (top + head_r)) ** 2 <= head_r**2
            body_cy, body_ry, body_rx = top + 0.40 * size, 0.22 * size, 0.13 * size
            body = ((xx - cx) / body_rx) ** 2 + ((yy - body_cy) / body_ry) ** 2 <= 1.0
            swing = 0.09 * size * math.sin(2 * math.pi * 1.4 * t + fig.phase)
            hip = top + 0.58 * size
            leg_frac = np.clip((yy - hip) / max(feet - hip, 1.0), 0.0, 1.0)
            in_legs = (yy >= hip) & (yy <= feet)
            leg_w = 0.035 * size + 0.5
            leg1 = in_legs & (np.abs(xx - (cx + swing * leg_frac)) <= leg_w)
            leg2 = in_legs & (np.abs(xx - (cx - swing * leg_frac)) <= leg_w)
            mask = head | body | leg1 | leg2
        else:
            flap = 0.25 * size * math.sin(9.0 * t + fig.phase)
            u = (xx - cx) / max(half_w, 1.0)  # -1..1 along the wings
            wing_y = (top + 0.5 * size) - flap * (1 - np.abs(u)) + 0.25 * size * np.abs(u)
            mask = (np.abs(u) <= 1.0) & (np.abs(yy - wing_y) <= 0.06 * size + 0.6)
        _paint(out, noise, st.colour, y0, y1, x0, x1, mask)


def backlit_frame(width: int, height: int, t: float, seed: int = 0) -> np.ndarray:
    """One RGB frame (``(height, width, 3)`` uint8) of the synthetic backlit scene at time ``t`` seconds.

    Deterministic for a given ``(width, height, t, seed)``; the static layers are cached per
    ``(width, height, seed)``.
    """
    if width < 2 or height < 2:
        raise ValueError(f"frame size must be at least 2x2, got {width}x{height}")
    st = _static(int(width), int(height), int(seed))
    rng = _frame_rng(int(seed), float(t))
    dy, dx = (int(v) for v in rng.integers(0, _NOISE_PAD + 1, size=2))
    noise = st.noise[dy : dy + height, dx : dx + width]
    out = st.base + noise  # int16
    _draw_figures(out, noise, st, float(t))
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def _tone(n_samples: int, rate: int = AUDIO_RATE) -> np.ndarray:
    """A gentle stereo chirp (220 → 330 Hz) with fades, float32 planar ``(2, n)`` in [-0.15, 0.15]."""
    t = np.arange(n_samples, dtype=np.float64) / rate
    dur = max(n_samples / rate, 1e-6)
    f0, f1 = 220.0, 330.0
    phase = 2 * np.pi * (f0 * t + 0.5 * (f1 - f0) * t * t / dur)
    fade = np.minimum(1.0, np.minimum(t / 0.05, (dur - t) / 0.05).clip(min=0.0))
    left = 0.12 * np.sin(phase) * fade
    right = 0.10 * np.sin(phase + 0.6) * fade + 0.02 * np.sin(2 * phase) * fade
    return np.stack([left, right]).astype(np.float32)


def write_backlit_clip(
    path: str | os.PathLike[str],
    width: int = 640,
    height: int = 360,
    seconds: float = 3.0,
    fps: float = 30,
    audio: bool = True,
    crf: int = 20,
    preset: str = "veryfast",
    seed: int = 0,
) -> dict:
    """Encode ``seconds`` of :func:`backlit_frame` to ``path`` (H.264 yuv420p, BT.709 limited; + AAC).

    The container follows the file extension (``.mp4``, ``.mkv``, ``.mov``, ...). Video pts count
    frames in a ``1/fps`` time base (the muxer may rescale, e.g. MP4 stores 1/15360 for 30 fps);
    audio pts count samples at 48 kHz. The file is written to a temporary name in the same folder
    and renamed over ``path`` only when complete.

    Returns ``{"path", "frames", "fps", "width", "height", "audio", "bytes"}``.
    """
    import av
    from av.video.reformatter import ColorRange, Colorspace

    if width % 2 or height % 2 or width < 2 or height < 2:
        raise ValueError(f"width and height must be even and >= 2 for yuv420p, got {width}x{height}")
    if not seconds > 0 or not fps > 0:
        raise ValueError("seconds and fps must be positive")
    rate = Fraction(fps).limit_denominator(1001)
    frames = max(1, round(seconds * rate))
    tb = 1 / rate
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")

    try:
        out = av.open(str(tmp), "w")
        try:
            v = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
            v.width, v.height, v.pix_fmt = width, height, "yuv420p"
            v.codec_context.time_base = tb
            v.time_base = tb
            cc = v.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = 1, 1, 1, 1  # BT.709, TV
            a = None
            pcm = None
            if audio:
                a = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
                a.codec_context.time_base = Fraction(1, AUDIO_RATE)
                a.time_base = Fraction(1, AUDIO_RATE)
                pcm = _tone(round(frames * tb * AUDIO_RATE))
            sent = 0  # audio samples sent so far

            for i in range(frames):
                rgb = backlit_frame(width, height, float(i * tb), seed=seed)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                    format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
                )
                frame.pts, frame.time_base = i, tb
                for pkt in v.encode(frame):
                    out.mux(pkt)
                if a is not None:
                    until = min(pcm.shape[1], round((i + 1) * tb * AUDIO_RATE))
                    while sent < until:
                        n = min(_AAC_FRAME, pcm.shape[1] - sent)
                        af = av.AudioFrame.from_ndarray(
                            np.ascontiguousarray(pcm[:, sent : sent + n]), format="fltp", layout="stereo"
                        )
                        af.sample_rate = AUDIO_RATE
                        af.pts, af.time_base = sent, Fraction(1, AUDIO_RATE)
                        sent += n
                        for pkt in a.encode(af):
                            out.mux(pkt)
            for pkt in v.encode(None):
                out.mux(pkt)
            if a is not None:
                for pkt in a.encode(None):
                    out.mux(pkt)
        finally:
            out.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

    return {
        "path": str(path),
        "frames": frames,
        "fps": float(rate),
        "width": width,
        "height": height,
        "audio": bool(audio),
        "bytes": path.stat().st_size,
    }


def write_segments(
    path: str | os.PathLike[str],
    segments: list[list[np.ndarray]],
    size: tuple[int, int] | None = None,
    fps: int = 30,
    crf: int = 18,
) -> list[int]:
    """Encode RGB frame lists one after another into one clip (libx264 ultrafast, yuv420p): a clip
    with real scene cuts. ``size`` ``(width, height)`` resizes every frame (default: the first
    frame's). Returns the index of the first frame of every segment after the first (the cuts)."""
    import av
    import cv2

    h, w = segments[0][0].shape[:2]
    w, h = size or (w, h)
    cuts, n = [], 0
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": str(crf)}
        s.codec_context.time_base = Fraction(1, fps)
        for k, seg in enumerate(segments):
            if k:
                cuts.append(n)
            for f in seg:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(cv2.resize(f, (w, h))), format="rgb24")
                vf.pts = n
                for p in s.encode(vf):
                    c.mux(p)
                n += 1
        for p in s.encode():
            c.mux(p)
    return cuts
