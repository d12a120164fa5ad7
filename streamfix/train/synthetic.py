"""Synthetic training pairs from clean, well-exposed photos: input = degraded, target = the photo.

The degradations work in linear light (sRGB decoded), as GLADNet's recipe does on raw data, and
the result is re-encoded and quantised to 8 bits like a camera JPEG:

* ``lowlight`` — GLADNet: exposure ``E ∈ [−5, −0.5]`` stops, contrast reduction (Lightroom's
  ``C ∈ [−100, 0]`` as a factor ``1 + C/200`` around the image mean), a random saturation drop
  (GLADNet's fix for colour bias) and Poisson–Gaussian sensor noise, which quantisation makes
  worse in the shadows.
* ``backlit`` — a foreground mask (a smooth random field biased towards darker content and the
  lower part of the frame, thresholded, its edge softened by a pixel or two) underexposed by
  1–4 stops with shadow noise; the background pushed up by 0.3–1.5 stops and clipped; sometimes
  a veiling glare that lifts the black level.
* ``overexposed`` — ``E ∈ [+0.5, +2]`` stops, clipped: the network must be able to pull back.
* ``mild`` — ``E ∈ [−1.2, +0.5]`` stops, contrast ``×[0.75, 1.1]`` and saturation ``×[0.7, 1.1]``:
  a flat or slightly dark rendition.
* ``flat`` — contrast compressed ``×[0.5, 0.85]`` around the image mean, exposure ``E ∈ [−0.5,
  +0.5]`` stops, saturation ``×[0.6, 1.05]``: the flat default rendering of a raw file (the FiveK
  inputs' 1–99 % luma range is ``×0.57–0.82`` of their retouch's), whose fix is a levels stretch that
  keeps the mean rather than a brightening. Not in :data:`DEFAULT_SCHEDULE`; ask for it with
  ``schedule`` (``--kinds``).
* ``identity`` — the photo unchanged: a well-exposed frame must come out unchanged.
* GLADNet's tricks: ``black`` / ``white`` pairs (black stays black, white stays white) and a
  share of pairs turned to grey on both sides (no colour bias).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    >>> inp, tgt, info = make_pair(clean, "backlit", rng)
    >>> inp.shape == tgt.shape == clean.shape, info["kind"]
    (True, 'backlit')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "KINDS",
    "DEFAULT_SCHEDULE",
    "srgb_to_linear",
    "linear_to_srgb",
    "make_pair",
    "write_synthetic_pairs",
]

#: the degradations :func:`make_pair` knows
KINDS = ("lowlight", "backlit", "overexposed", "mild", "flat", "identity", "black", "white")
#: kinds cycled through per clean photo by :func:`write_synthetic_pairs` (9 pairs per photo)
DEFAULT_SCHEDULE = ("backlit", "lowlight", "mild", "backlit", "lowlight", "identity", "backlit", "overexposed",
                    "mild")
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
#: kinds that re-render the photo globally: ranges of exposure (stops), contrast and saturation
_RENDITIONS = {"mild": ((-1.2, 0.5), (0.75, 1.1), (0.7, 1.1)), "flat": ((-0.5, 0.5), (0.5, 0.85), (0.6, 1.05))}


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB decoding of float values in ``[0, 1]``."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB encoding of linear values (clipped to ``[0, 1]`` first)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def _quantise(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _noise(lin: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Poisson–Gaussian sensor noise in linear light: variance ``a·x + b`` (``strength`` scales both)."""
    a = strength * 10 ** rng.uniform(-4.0, -2.6)
    b = strength * 10 ** rng.uniform(-6.5, -4.5)
    sigma = np.sqrt(a * np.clip(lin, 0, None) + b).astype(np.float32)
    return lin + sigma * rng.standard_normal(lin.shape, dtype=np.float32)


def _contrast(enc: np.ndarray, k: float) -> np.ndarray:
    m = float(np.mean(enc))
    return m + (enc - m) * k


def _saturation(enc: np.ndarray, s: float) -> np.ndarray:
    y = (enc @ _LUMA)[..., None]
    return y + (enc - y) * s


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    gh = max(2, round(cells * h / max(h, w)) + 1)
    gw = max(2, round(cells * w / max(h, w)) + 1)
    field = rng.random((gh, gw), dtype=np.float32)
    return cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)


def backlit_mask(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible foreground mask ``(H, W)`` in ``[0, 1]`` for a clean float image ``(H, W, 3)``.

    Darker content, the lower part of the frame and a smooth random field vote; the vote is
    thresholded at a random quantile (foreground 25–70 % of the frame) and its edge softened.
    """
    h, w = clean.shape[:2]
    y = np.ascontiguousarray(clean @ _LUMA, dtype=np.float32)
    # edge-preserving smoothing: the mask's border follows the photo's own edges, like a subject's
    y_s = cv2.bilateralFilter(y, 0, 0.15, max(2.0, 0.015 * max(h, w)))
    y_s = cv2.bilateralFilter(y_s, 0, 0.15, max(2.0, 0.015 * max(h, w)))
    vertical = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    if rng.random() < 0.2:  # sometimes the light comes from below or the side
        vertical = np.rot90(vertical, k=int(rng.integers(1, 4))).copy()
        vertical = cv2.resize(vertical, (w, h))
    field = _smooth_field(rng, h, w, int(rng.integers(2, 6)))
    a, b, c = rng.uniform(1.5, 3.0), rng.uniform(0.0, 1.2), rng.uniform(0.2, 0.8)
    vote = a * (1.0 - y_s) + b * vertical + c * field
    share = rng.uniform(0.25, 0.7)
    thr = np.quantile(vote, 1.0 - share)
    mask = (vote > thr).astype(np.float32)
    soft = rng.uniform(0.4, 1.5)
    return np.clip(cv2.GaussianBlur(mask, (0, 0), soft), 0.0, 1.0)


def make_pair(
    clean: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """One synthetic (input, target) pair of ``kind`` from a clean uint8 RGB photo ``(H, W, 3)``.

    Returns:
        ``(input, target, info)``: uint8 RGB images of the photo's size and the parameters drawn.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; known: {', '.join(KINDS)}")
    h, w = clean.shape[:2]
    info: dict[str, object] = {"kind": kind}
    if kind == "black":
        inp = np.clip(rng.normal(2.0, 1.5, (h, w, 3)), 0, 255).astype(np.uint8)
        return inp, np.zeros_like(inp), info
    if kind == "white":
        inp = np.clip(rng.normal(253.0, 1.5, (h, w, 3)), 0, 255).astype(np.uint8)
        return inp, np.full_like(inp, 255), info
    if kind == "identity":
        return clean.copy(), clean.copy(), info

    enc = clean.astype(np.float32) / 255.0
    lin = srgb_to_linear(enc)
    if kind == "lowlight":
        e = float(rng.uniform(-5.0, -0.5))
        k = 1.0 + float(rng.uniform(-100.0, 0.0)) / 200.0
        s = float(rng.uniform(0.6, 1.0)) if rng.random() < 0.5 else 1.0
        dark = _noise(lin * 2.0**e, rng, strength=float(rng.uniform(0.2, 1.5)))
        out = _saturation(_contrast(linear_to_srgb(dark), k), s)
        info.update(exposure=e, contrast=k, saturation=s)
    elif kind == "overexposed":
        e = float(rng.uniform(0.5, 2.0))
        k = float(rng.uniform(0.8, 1.05))
        out = _contrast(linear_to_srgb(lin * 2.0**e), k)
        info.update(exposure=e, contrast=k)
    elif kind in _RENDITIONS:
        (e_lo, e_hi), (k_lo, k_hi), (s_lo, s_hi) = _RENDITIONS[kind]
        e, k, s = float(rng.uniform(e_lo, e_hi)), float(rng.uniform(k_lo, k_hi)), float(rng.uniform(s_lo, s_hi))
        out = _saturation(_contrast(linear_to_srgb(lin * 2.0**e), k), s)
        info.update(exposure=e, contrast=k, saturation=s)
    else:  # backlit
        mask = backlit_mask(enc, rng)[..., None]
        fg_stops = float(rng.uniform(1.0, 4.0))
        bg_stops = float(rng.uniform(0.3, 1.5))
        fg = _noise(lin * 2.0**-fg_stops, rng, strength=float(rng.uniform(0.2, 1.2)))
        bg = lin * 2.0**bg_stops
        mixed = mask * fg + (1.0 - mask) * bg
        glare = float(rng.uniform(0.0, 0.04)) if rng.random() < 0.4 else 0.0
        if glare:
            mixed = mixed + glare * float(np.mean(np.clip(bg, 0, 1)))
        out = linear_to_srgb(mixed)
        info.update(fg_stops=fg_stops, bg_stops=bg_stops, glare=glare, fg_share=float(mask.mean()))
    return _quantise(np.clip(out, 0.0, 1.0)), clean.copy(), info


def add_lights(
    images: Sequence[np.ndarray], rng: np.random.Generator, count: tuple[int, int] = (1, 4),
    radius: tuple[float, float] = (0.02, 0.08),
) -> list[np.ndarray]:
    """The same lights put into each of ``images`` (uint8 ``(H, W, 3)`` RGB, one size): lamps,
    windows, headlights — what enters and leaves a night video's frame.

    ``count`` lights (inclusive range), each a warm-white source of radius ``radius`` × the short
    side, centred anywhere, with a clipped core and a Gaussian glow (``m = min(1, 1.5·e^{−(d/r)²})``),
    screen-blended: ``1 − (1 − x)(1 − m·c)``. Given an (input, target) pair, the pair keeps saying
    the same thing about the rest of the frame: its rendering must not depend on the lights.

    Returns new arrays; ``images`` are untouched.
    """
    h, w = images[0].shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = np.zeros((h, w, 3), np.float32)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(*radius) * min(h, w)
        m = np.minimum(1.0, 1.5 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / max(r, 0.5) ** 2))
        colour = np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.55, 1.0)], np.float32)
        light = 1.0 - (1.0 - light) * (1.0 - m[..., None] * colour)
    return [_quantise(1.0 - (1.0 - img.astype(np.float32) / 255.0) * (1.0 - light)) for img in images]


def _to_gray(img: np.ndarray) -> np.ndarray:
    y = np.clip(np.rint(img.astype(np.float32) @ _LUMA), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=2)


def _fit(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    if s >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def write_synthetic_pairs(
    images: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    per_image: int = 9,
    seed: int = 0,
    long_side: int = 512,
    gray_share: float = 0.12,
    black_white: int = 4,
    schedule: Sequence[str] = DEFAULT_SCHEDULE,
    log: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Write ``out/input/NAME.png`` + ``out/target/NAME.png`` pairs and ``out/manifest.json``.

    Args:
        images: clean photo files (read as 8-bit RGB, alpha dropped).
        out: output folder (created; existing pairs of the same names are overwritten).
        per_image: pairs per photo; kinds cycle through ``schedule``, starting at a photo-dependent
            offset so every kind appears even with few pairs per photo.
        seed: seeds every random draw; equal arguments give identical files.
        long_side: photos are first downscaled (INTER_AREA) so their long side is at most this.
        gray_share: share of pairs turned grey on both sides.
        black_white: number of black-to-black and of white-to-white pairs (256×256).
        schedule: the kinds to cycle through.
        log: progress callback.

    Returns:
        the manifest: ``{"seed", "per_image", "long_side", "sources", "pairs": [{name, source, kind,
        gray, …parameters}]}``.
    """
    from streamfix.metrics import read_rgb

    root = Path(out)
    (root / "input").mkdir(parents=True, exist_ok=True)
    (root / "target").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs: list[dict[str, object]] = []

    def put(name: str, inp: np.ndarray, tgt: np.ndarray, meta: dict[str, object]) -> None:
        for sub, img in (("input", inp), ("target", tgt)):
            if not cv2.imwrite(str(root / sub / name), np.ascontiguousarray(img[..., ::-1])):
                raise OSError(f"cannot write {root / sub / name}")
        pairs.append({"name": name, **meta})

    for i, path in enumerate(images):
        clean = _fit(read_rgb(path), long_side)
        stem = Path(path).stem.replace(" ", "_")
        for k in range(per_image):
            kind = schedule[(i + k) % len(schedule)]
            inp, tgt, info = make_pair(clean, kind, rng)
            gray = bool(rng.random() < gray_share)
            if gray:
                inp, tgt = _to_gray(inp), _to_gray(tgt)
            put(f"{stem}_{k:02d}_{kind}.png", inp, tgt, {"source": str(path), "gray": gray, **info})
        if log is not None:
            log(f"{i + 1}/{len(images)} {path}: {per_image} pairs")
    blank = np.zeros((256, 256, 3), np.uint8)
    for k in range(black_white):
        for kind in ("black", "white"):
            inp, tgt, info = make_pair(blank, kind, rng)
            put(f"{kind}_{k:02d}.png", inp, tgt, {"source": "", "gray": False, **info})
    manifest: dict[str, object] = {
        "seed": seed,
        "per_image": per_image,
        "long_side": long_side,
        "sources": [str(p) for p in images],
        "pairs": pairs,
    }
    tmp = root / f".manifest.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, root / "manifest.json")
    return manifest
