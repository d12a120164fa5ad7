"""Quality metrics, exactly as defined in ``shared/EVAL.md``.

Every metric is computed on 8-bit RGB. A float image in ``[0, 1]`` is first quantised with
:func:`to_uint8` (``clip(round(x * 255), 0, 255)``), so a float output and the uint8 file written
from it score the same.

Image metrics
    :func:`psnr`, :func:`ssim` (paired, per image; a set is reported as the mean of the
    per-image values), :func:`exposure_stats` (mean BT.709 luma, crushed %, clipped %) and
    :func:`niqe` (no-reference, BasicSR's ``calculate_niqe`` re-implemented: lower is better).

Temporal metrics
    :class:`TemporalMeter` streams (input frame, output frame) pairs and reports the flicker
    ratio, gain, flicker/gain, MABD ratio, MABD/gain and, optionally, the mean warping error;
    :func:`temporal_report` wraps it for in-memory sequences.

Example:
    >>> import numpy as np
    >>> a = np.zeros((4, 4, 3), np.uint8)
    >>> b = a.copy(); b[0, 0, 0] = 255
    >>> round(psnr(b, a), 3)  # MSE = 255² / 48
    16.812
    >>> exposure_stats(a)["crushed_pct"]
    100.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "to_uint8",
    "read_rgb",
    "psnr",
    "ssim",
    "luma709",
    "exposure_stats",
    "niqe",
    "warping_error",
    "TemporalMeter",
    "temporal_report",
    "CRUSHED_Y",
    "CLIPPED_Y",
    "FLICKER_EPS",
]

#: luma below this is "crushed" (EVAL.md)
CRUSHED_Y = 0.1
#: luma above this is "clipped" (EVAL.md)
CLIPPED_Y = 0.95
#: a temporal step whose input mean |ΔY| is below this is skipped by the flicker ratio
FLICKER_EPS = 1e-6

_BT709 = (0.2126, 0.7152, 0.0722)
_BT601_Y = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, applied to values / 255, plus 16


# --------------------------------------------------------------------------------------------
# conversion and reading
# --------------------------------------------------------------------------------------------


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Quantise an image to uint8 the way EVAL.md fixes it.

    Args:
        x: any shape. ``uint8`` is returned unchanged (the same object); a floating array is
            read as values in ``[0, 1]`` and becomes ``clip(round(x * 255), 0, 255)`` (numpy
            rounding: halves go to the even integer; NaN becomes 0).

    Returns:
        ``uint8`` array of the same shape, values in ``[0, 255]``.

    Raises:
        TypeError: for any other dtype (e.g. uint16, int, bool): their range is ambiguous.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"to_uint8 expects uint8 or float in [0, 1], got {x.dtype}")
    y = np.rint(np.nan_to_num(x.astype(np.float64) * 255.0, nan=0.0))
    return np.clip(y, 0, 255).astype(np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as 8-bit RGB.

    Decoded with ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` (so any EXIF orientation tag is
    *not* applied: pixels come in stored order), then:

    * BGR → RGB; BGRA → RGB with alpha dropped (not composited);
    * grayscale (``(H, W)`` or ``(H, W, 1)``) and gray + alpha → the gray value in all 3 channels;
    * 16-bit (uint16) → 8-bit as ``round(v / 257)``, i.e. ``65535 → 255`` linearly, the exact
      inverse of the usual ``v8 * 257`` expansion;
    * floating point (e.g. float TIFF) → read as ``[0, 1]`` and quantised with :func:`to_uint8`.

    Works for PNG (incl. RGBA and 16-bit), 8/16-bit TIFF, JPEG, BMP, and anything else OpenCV
    decodes.

    Args:
        path: image file.

    Returns:
        ``(H, W, 3)`` uint8 RGB, C-contiguous.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: OpenCV cannot decode it, or its layout/dtype is unsupported.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot decode image: {path}")
    if img.dtype == np.uint16:
        img = np.rint(img.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(img.dtype, np.floating):
        img = to_uint8(img)
    elif img.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {img.dtype} in {path}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        rgb = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        rgb = np.repeat(img[:, :, :1], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 3:
        rgb = img[:, :, ::-1]
    elif img.ndim == 3 and img.shape[2] == 4:
        rgb = img[:, :, 2::-1]
    else:
        raise ValueError(f"unsupported image layout {img.shape} in {path}")
    return np.ascontiguousarray(rgb)


def _pair_uint8(out: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_uint8(out), to_uint8(ref)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB images, got {a.shape}")
    return a, b


# --------------------------------------------------------------------------------------------
# paired image metrics
# --------------------------------------------------------------------------------------------


def psnr(out: np.ndarray, ref: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB: ``10 · log10(255² / MSE)``.

    The MSE runs over all pixels and all three channels together. Report a set as the mean of
    the per-image dB values.

    Args:
        out: ``(H, W, 3)`` uint8 RGB (or float in ``[0, 1]``, quantised by :func:`to_uint8`).
        ref: the reference, same shape and conventions.

    Returns:
        PSNR in dB, ``>= 0`` (about 0 for an all-black vs all-white pair). Identical images give
        ``math.inf``; a mean over a set that contains one is then ``inf`` too, so callers that
        average should say how they treat it.

    Raises:
        ValueError: shapes differ or are not ``(H, W, 3)``.
    """
    a, b = _pair_uint8(out, ref)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def ssim(out: np.ndarray, ref: np.ndarray) -> float:
    """Structural similarity, exactly ``skimage.metrics.structural_similarity(out, ref,
    channel_axis=2, data_range=255)`` (7×7 uniform window, mean over channels).

    Args:
        out: ``(H, W, 3)`` uint8 RGB (or float in ``[0, 1]``, quantised by :func:`to_uint8`),
            ``H, W >= 7``.
        ref: the reference, same shape and conventions.

    Returns:
        SSIM in ``[-1, 1]``; ``1.0`` for identical images.

    Raises:
        ValueError: shapes differ or are not ``(H, W, 3)``.
        ImportError: scikit-image is not installed (``pip install scikit-image``).
    """
    from skimage.metrics import structural_similarity

    a, b = _pair_uint8(out, ref)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


# --------------------------------------------------------------------------------------------
# luma and exposure
# --------------------------------------------------------------------------------------------


def luma709(rgb: np.ndarray) -> np.ndarray:
    """BT.709 luma of gamma-encoded RGB: ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` on values / 255.

    Args:
        rgb: ``(..., 3)`` uint8 RGB (a float array in ``[0, 1]`` is quantised first with
            :func:`to_uint8`, as every metric is computed on uint8).

    Returns:
        ``(...)`` float32 in ``[0, 1]`` (``(H, W)`` for an image).
    """
    x = to_uint8(rgb)
    if x.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) RGB, got {x.shape}")
    x = x.astype(np.float32)
    r, g, b = (np.float32(c / 255.0) for c in _BT709)
    return x[..., 0] * r + x[..., 1] * g + x[..., 2] * b


def exposure_stats(rgb: np.ndarray) -> dict[str, float]:
    """Exposure summary of one image from its BT.709 luma (:func:`luma709`).

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB (or float in ``[0, 1]``).

    Returns:
        ``{"mean_y": float in [0, 1], "crushed_pct": % of pixels with Y < 0.1,
        "clipped_pct": % of pixels with Y > 0.95}`` (percentages in ``[0, 100]``).
    """
    y = luma709(rgb)
    n = y.size
    return {
        "mean_y": float(np.mean(y, dtype=np.float64)),
        "crushed_pct": 100.0 * float(np.count_nonzero(y < CRUSHED_Y)) / n,
        "clipped_pct": 100.0 * float(np.count_nonzero(y > CLIPPED_Y)) / n,
    }


# --------------------------------------------------------------------------------------------
# NIQE
# --------------------------------------------------------------------------------------------


def _y601(rgb: np.ndarray) -> np.ndarray:
    """MATLAB/BasicSR BT.601 Y in [16, 235], rounded to integers (float32 (H, W))."""
    x = to_uint8(rgb).astype(np.float64) / 255.0
    y = 16.0 + x[..., 0] * _BT601_Y[0] + x[..., 1] * _BT601_Y[1] + x[..., 2] * _BT601_Y[2]
    return np.rint(y).astype(np.float32)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB ``imresize`` 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def _matlab_resize_taps(in_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB bicubic ``imresize`` taps with antialiasing, for one axis.

    Output sample ``k`` (1-based) sits at input coordinate ``u = k / s + 0.5 (1 - 1 / s)``; when
    shrinking, the kernel is stretched by ``1 / s`` and scaled by ``s`` (antialiasing); each row
    is normalised to sum 1 and tap columns that are zero are dropped; taps outside the signal
    are folded back symmetrically (edge pixel repeated, MATLAB's 'symmetric' padding).

    Returns:
        ``(idx, w)``: ``(out_len, taps)`` int64 0-based input indices and float32 weights.
    """
    out_len = math.ceil(in_len * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    k = np.arange(1, out_len + 1, dtype=np.float64)
    u = k / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input indices
    dist = u[:, None] - idx
    w = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    w /= w.sum(axis=1, keepdims=True)
    keep = np.any(w != 0, axis=0)
    idx, w = idx[:, keep], w[:, keep]
    i0 = idx.astype(np.int64) - 1  # 0-based
    i0 = np.where(i0 < 0, -i0 - 1, i0)
    i0 = np.where(i0 >= in_len, 2 * in_len - 1 - i0, i0)
    return i0, w.astype(np.float32)


def _resize_axis0(img: np.ndarray, scale: float) -> np.ndarray:
    """Resize the first axis of a 2-D float32 array; float64 accumulation in a fixed tap order
    (so a constant region stays exactly constant), float32 result."""
    idx, w = _matlab_resize_taps(img.shape[0], scale)
    src = img.astype(np.float64)
    acc = np.zeros((idx.shape[0], img.shape[1]), dtype=np.float64)
    for t in range(idx.shape[1]):
        acc += w[:, t, None].astype(np.float64) * src[idx[:, t]]
    return acc.astype(np.float32)


def _imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiased) of a 2-D image → float32.

    Rows first, then columns, each pass stored as float32 (as BasicSR's ``imresize`` does).
    """
    return _resize_axis0(_resize_axis0(img, scale).T, scale).T


@lru_cache(maxsize=1)
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """The shape grid 0.2:0.001:10 and ``Γ(2/a)² / (Γ(1/a) Γ(3/a))`` on it."""
    gam = np.arange(0.2, 10.001, 0.001)
    lg = np.vectorize(math.lgamma)
    r_gam = np.exp(2.0 * lg(2.0 / gam) - lg(1.0 / gam) - lg(3.0 / gam))
    return gam, r_gam


def _nearest_on_grid(grid: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``argmin_i (grid[i] − v)²`` per value of ``v`` for a strictly increasing ``grid``.

    Same answer as the brute-force argmin (ties go to the lower index, NaN gives index 0)
    without the ``(len(v), len(grid))`` matrix.
    """
    hi = np.clip(np.searchsorted(grid, v), 1, len(grid) - 1)
    lo = hi - 1
    pick_hi = (grid[hi] - v) ** 2 < (grid[lo] - v) ** 2
    idx = np.where(pick_hi, hi, lo)
    return np.where(np.isnan(v), 0, idx)


def _aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit, one per row of ``x`` (``(N, M)``) → ``alpha, beta_l, beta_r``.

    A row without negative (or positive) samples gives NaN parameters, as in the reference.
    """
    gam, r_gam = _aggd_table()
    neg, pos = x < 0, x > 0
    n_neg, n_pos = np.count_nonzero(neg, 1), np.count_nonzero(pos, 1)
    sq = x * x
    sq_all = sq.sum(1)
    sq_neg = np.sum(sq, axis=1, where=neg)
    sq_pos = np.sum(sq, axis=1, where=pos)
    m = x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(sq_neg / n_neg)
        right_std = np.sqrt(sq_pos / n_pos)
        gammahat = left_std / right_std
        rhat = (np.abs(x).sum(1) / m) ** 2 / (sq_all / m)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    pos_idx = _nearest_on_grid(r_gam, rhatnorm)
    alpha = gam[pos_idx]
    lg = np.vectorize(math.lgamma)
    ratio = np.sqrt(np.exp(lg(1.0 / alpha) - lg(3.0 / alpha)))
    return alpha, left_std * ratio, right_std * ratio


def _mscn(img: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised map ``(I − μ) / (σ + 1)`` of a float32 image (float32).

    μ and σ² come from the Gaussian window with replicated borders, each filtered in float64
    and stored as float32, the arithmetic of BasicSR (``scipy.ndimage.convolve`` on float32).
    That keeps flat regions at exactly 0 instead of rounding noise.
    """
    src = img.astype(np.float64)
    mu = cv2.filter2D(src, cv2.CV_64F, win, borderType=cv2.BORDER_REPLICATE).astype(np.float32)
    sq = np.square(img).astype(np.float64)
    mu2 = cv2.filter2D(sq, cv2.CV_64F, win, borderType=cv2.BORDER_REPLICATE).astype(np.float32)
    sigma = np.sqrt(np.abs(mu2 - np.square(mu)))
    return (img - mu) / (sigma + np.float32(1.0))


def _niqe_features(mscn: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """18 NIQE features for every ``bh × bw`` block of an MSCN map → ``(n_blocks, 18)``."""
    h, w = mscn.shape
    nh, nw = h // bh, w // bw
    blocks = mscn[: nh * bh, : nw * bw].reshape(nh, bh, nw, bw).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(nh * nw, bh, bw)
    n = blocks.shape[0]
    feats = []
    alpha, bl, br = _aggd_fit(blocks.reshape(n, -1).astype(np.float64))
    feats += [alpha, (bl + br) / 2.0]
    lg = np.vectorize(math.lgamma)
    # pairwise products with the circularly shifted block: horizontal, vertical, two diagonals
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        prod = blocks * np.roll(blocks, (dy, dx), axis=(1, 2))  # float32 products
        alpha, bl, br = _aggd_fit(prod.reshape(n, -1).astype(np.float64))
        mean = (br - bl) * np.exp(lg(2.0 / alpha) - lg(1.0 / alpha))
        feats += [alpha, mean, bl, br]
    return np.stack(feats, axis=1)


@lru_cache(maxsize=4)
def _load_niqe_params(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as d:
        mu = np.asarray(d["mu_pris_param"], np.float64).reshape(-1)
        cov = np.asarray(d["cov_pris_param"], np.float64)
        win = np.asarray(d["gaussian_window"], np.float64)
    return mu, cov, win


def niqe(rgb: np.ndarray, params_path: str | Path, block: int = 96) -> float:
    """NIQE (Mittal et al. 2013, "Making a completely blind image quality analyzer").

    Reproduces BasicSR's ``calculate_niqe(img, crop_border=0, convert_to='y')`` (which matches
    the official MATLAB release to about 1e-4):

    1. ``Y = round(16 + 65.481 R + 128.553 G + 24.966 B)`` with R, G, B = values / 255 (BT.601,
       MATLAB ``rgb2ycbcr``), cropped to whole ``block × block`` tiles (top-left kept).
    2. Two scales: the full image, then MATLAB ``imresize(Y, 0.5)`` (bicubic, antialiased,
       symmetric borders; unrounded) with ``block / 2`` tiles, so both scales see the same tiles.
    3. MSCN map ``(Y − μ) / (σ + 1)``, μ and σ from the 7×7 Gaussian window of the parameter
       file with replicated borders.
    4. Per tile, 18 features: AGGD shape and mean scale of the MSCN values; for each of the
       4 neighbour products (circular shifts (0,1), (1,0), (1,1), (1,−1) within the tile) AGGD
       shape, mean, left and right scale. Shapes come from the 0.2:0.001:10 moment-matching grid.
    5. ``sqrt((μ_p − μ_d)ᵀ pinv((Σ_p + Σ_d) / 2) (μ_p − μ_d))`` with μ_d the NaN-ignoring mean of
       the 36-D tile features and Σ_d their covariance over tiles without NaN.

    Arithmetic follows BasicSR's: Y, μ, σ, the MSCN map, the neighbour products and both
    resize passes are stored as float32 (each filter/resize sum is accumulated in float64, in a
    fixed tap order), the AGGD moments in float64. This matters for images with flat regions
    (clipped sky, black silhouettes): there the MSCN values are exactly 0 and such tiles drop
    out as NaN, whereas an all-float64 pipeline turns them into rounding noise whose fitted
    shapes are arbitrary (one 5251×3501 backlit photo scores 4.73 here and 36.5 that way).
    Measured agreement with BasicSR's own float32 code: ≤ 0.002 on 52 shared-data images.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB (or float in ``[0, 1]``); needs ``H, W >= block`` and at least
            2 tiles for a covariance (an image below 192×96 gives NaN).
        params_path: ``niqe_pris_params.npz`` (``mu_pris_param (1, 36)``,
            ``cov_pris_param (36, 36)``, ``gaussian_window (7, 7)``).
        block: tile size at full scale (even); 96 is the standard and what the pristine model used.

    Returns:
        NIQE score, ``>= 0``, lower is better (about 3–5 for natural, well-exposed photos).

    Raises:
        ValueError: the image is not ``(H, W, 3)`` or smaller than one tile, or ``block`` is odd.
        FileNotFoundError: ``params_path`` does not exist.
    """
    x = to_uint8(rgb)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) RGB, got {x.shape}")
    if block < 2 or block % 2:
        raise ValueError(f"NIQE block size must be even and >= 2, got {block}")
    h, w = x.shape[:2]
    nh, nw = h // block, w // block
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs an image of at least {block}x{block}, got {w}x{h}")
    params_path = Path(params_path)
    if not params_path.is_file():
        raise FileNotFoundError(f"NIQE parameter file not found: {params_path}")
    mu_p, cov_p, win = _load_niqe_params(str(params_path))

    img = _y601(x[: nh * block, : nw * block])
    per_scale = []
    for scale in (1, 2):
        mscn = _mscn(img, win)
        per_scale.append(_niqe_features(mscn, block // scale, block // scale))
        if scale == 1:
            img = _imresize(img / np.float32(255.0), 0.5) * np.float32(255.0)
    feats = np.concatenate(per_scale, axis=1)

    with warnings.catch_warnings():  # an all-NaN feature column is reported as NaN below
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_d = np.nanmean(feats, axis=0)
    clean = feats[~np.isnan(feats).any(axis=1)]
    if clean.shape[0] < 2:
        return math.nan
    cov_d = np.cov(clean, rowvar=False)
    diff = mu_p - mu_d
    q = diff @ np.linalg.pinv((cov_p + cov_d) / 2.0) @ diff
    return float(np.sqrt(q))


# --------------------------------------------------------------------------------------------
# temporal metrics
# --------------------------------------------------------------------------------------------

#: forward–backward consistency: |f + b(x+f)|² < _FB_ALPHA (|f|² + |b(x+f)|²) + _FB_BETA
_FB_ALPHA = 0.01
_FB_BETA = 0.5


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _check_frame(frame: np.ndarray, what: str) -> np.ndarray:
    f = to_uint8(frame)
    if f.ndim != 3 or f.shape[2] != 3:
        raise ValueError(f"{what} must be (H, W, 3) RGB, got {f.shape}")
    return f


def warping_error(
    prev_in: np.ndarray, cur_in: np.ndarray, prev_out: np.ndarray, cur_out: np.ndarray
) -> float:
    """Temporal warping error of an enhancement between two consecutive frames.

    1. Optical flow on the *inputs* (grayscale, ``cv2.COLOR_RGB2GRAY``) with OpenCV DIS, preset
       MEDIUM: ``f`` = flow current → previous (``cur_in(x) ≈ prev_in(x + f(x))``) and ``b`` =
       previous → current.
    2. ``prev_out`` is backward-warped to the current frame: ``W(x) = prev_out(x + f(x))``
       (bilinear ``cv2.remap``).
    3. Valid pixels: ``x + f(x)`` inside the frame and forward–backward consistent,
       ``|f(x) + b(x + f(x))|² < 0.01 (|f(x)|² + |b(x + f(x))|²) + 0.5`` (Sundaram et al. 2010,
       the threshold used by Ruder et al. and Lai et al.'s temporal-consistency benchmark).
    4. Error = mean over valid pixels and the 3 channels of ``(cur_out − W)²`` with values / 255.

    Args:
        prev_in, cur_in: ``(H, W, 3)`` uint8 RGB input frames at t−1 and t.
        prev_out, cur_out: ``(H, W, 3)`` uint8 RGB output frames at t−1 and t (float in
            ``[0, 1]`` is quantised with :func:`to_uint8`).

    Returns:
        Mean squared error in ``[0, 1]``; 0 for a perfectly flow-consistent output. NaN when no
        pixel is valid.

    Raises:
        ValueError: the four frames are not all the same ``(H, W, 3)`` shape.
    """
    frames = [
        _check_frame(prev_in, "prev_in"),
        _check_frame(cur_in, "cur_in"),
        _check_frame(prev_out, "prev_out"),
        _check_frame(cur_out, "cur_out"),
    ]
    if len({f.shape for f in frames}) != 1:
        raise ValueError(f"frame shapes differ: {[f.shape for f in frames]}")
    p_in, c_in, p_out, c_out = frames
    g_prev, g_cur = _gray(p_in), _gray(c_in)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    fwd = dis.calc(g_cur, g_prev, None)  # cur → prev
    bwd = dis.calc(g_prev, g_cur, None)  # prev → cur
    h, w = g_cur.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = gx + fwd[..., 0], gy + fwd[..., 1]

    warped = cv2.remap(
        p_out.astype(np.float32) / 255.0, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    b_at = cv2.remap(bwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    s = fwd + b_at
    lhs = np.sum(s * s, axis=2)
    rhs = _FB_ALPHA * (np.sum(fwd * fwd, axis=2) + np.sum(b_at * b_at, axis=2)) + _FB_BETA
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    mask = (lhs < rhs) & inside
    if not mask.any():
        return math.nan
    diff = c_out.astype(np.float32) / 255.0 - warped
    return float(np.mean((diff * diff)[mask], dtype=np.float64))


class TemporalMeter:
    """Streaming temporal-consistency metrics for an (input, output) frame sequence.

    Feed frames in order with :meth:`update`; only the previous pair is kept, so any length of
    video fits in memory. With ``Y`` = :func:`luma709` and ``ΔY(t) = Y(t) − Y(t−1)``, for the
    steps ``t = 1 .. T−1`` (``d_in(t) = mean|ΔY_in(t)|``, ``d_out(t) = mean|ΔY_out(t)|``,
    ``m(t) = mean Y(t)``):

    * ``flicker_ratio`` = mean over t of ``d_out(t) / d_in(t)``, skipping steps with
      ``d_in(t) < 1e-6`` (a frozen input). A *mean of per-step ratios*: 1.0 means the enhancement
      adds no frame-to-frame change of its own.
    * ``gain`` = mean over all T frames of ``m_out`` / the same for the input.
    * ``flicker_over_gain`` = (Σ_t d_out(t) / Σ_t d_in(t)) / gain: the *ratio of means* over all
      steps (none skipped), divided by the gain. A pure global brightening by k scales every
      |ΔY| by about k, so this stays near 1 unless the enhancement adds flicker.
    * ``mabd_ratio`` = mean_t |m_out(t) − m_out(t−1)| / mean_t |m_in(t) − m_in(t−1)|
      (mean absolute brightness difference: brightness pumping).
    * ``mabd_over_gain`` = ``mabd_ratio / gain``.
    * ``warping_error`` (only with ``warping=True``): mean over steps of :func:`warping_error`
      (steps where it is NaN are left out).

    Ratios whose denominator is 0, or with fewer than 2 frames, are NaN.

    Example:
        >>> import numpy as np
        >>> m = TemporalMeter()
        >>> for v in (40, 50, 60):
        ...     f = np.full((8, 8, 3), v, np.uint8)
        ...     m.update(f, f * 2)
        >>> r = m.report()
        >>> r["frames"], round(r["gain"], 6), round(r["flicker_over_gain"], 6)
        (3, 2.0, 1.0)
    """

    def __init__(self, warping: bool = False) -> None:
        """Start an empty meter.

        Args:
            warping: also compute the flow-based :func:`warping_error` per step (two DIS flows
                per frame, and a copy of the previous frame pair is kept).
        """
        self.warping = warping
        self._frames = 0
        self._prev_in: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None
        self._prev_y_in: np.ndarray | None = None
        self._prev_y_out: np.ndarray | None = None
        self._prev_m_in = 0.0
        self._prev_m_out = 0.0
        self._sum_m_in = 0.0
        self._sum_m_out = 0.0
        self._sum_d_in = 0.0
        self._sum_d_out = 0.0
        self._ratio_sum = 0.0
        self._ratio_n = 0
        self._sum_mabd_in = 0.0
        self._sum_mabd_out = 0.0
        self._warp_sum = 0.0
        self._warp_n = 0

    @property
    def frames(self) -> int:
        """Number of frame pairs seen."""
        return self._frames

    def update(self, frame_in: np.ndarray, frame_out: np.ndarray) -> None:
        """Add the next (input, output) frame pair.

        Args:
            frame_in: ``(H, W, 3)`` uint8 RGB input frame.
            frame_out: ``(H, W, 3)`` uint8 RGB output frame (float in ``[0, 1]`` is quantised with
                :func:`to_uint8`), the same size as ``frame_in``.

        Raises:
            ValueError: the two frames differ in shape, or the size changes within the sequence.
        """
        f_in = _check_frame(frame_in, "frame_in")
        f_out = _check_frame(frame_out, "frame_out")
        if f_in.shape != f_out.shape:
            raise ValueError(f"input and output frames differ in size: {f_in.shape} vs {f_out.shape}")
        if self._prev_y_in is not None and self._prev_y_in.shape != f_in.shape[:2]:
            raise ValueError(
                f"frame size changed within the sequence: {self._prev_y_in.shape} -> {f_in.shape[:2]}"
            )
        y_in, y_out = luma709(f_in), luma709(f_out)
        m_in = float(np.mean(y_in, dtype=np.float64))
        m_out = float(np.mean(y_out, dtype=np.float64))
        self._sum_m_in += m_in
        self._sum_m_out += m_out
        if self._prev_y_in is not None and self._prev_y_out is not None:
            d_in = float(np.mean(np.abs(y_in - self._prev_y_in), dtype=np.float64))
            d_out = float(np.mean(np.abs(y_out - self._prev_y_out), dtype=np.float64))
            self._sum_d_in += d_in
            self._sum_d_out += d_out
            if d_in >= FLICKER_EPS:
                self._ratio_sum += d_out / d_in
                self._ratio_n += 1
            self._sum_mabd_in += abs(m_in - self._prev_m_in)
            self._sum_mabd_out += abs(m_out - self._prev_m_out)
            if self.warping and self._prev_in is not None and self._prev_out is not None:
                e = warping_error(self._prev_in, f_in, self._prev_out, f_out)
                if not math.isnan(e):
                    self._warp_sum += e
                    self._warp_n += 1
        self._prev_y_in, self._prev_y_out = y_in, y_out
        self._prev_m_in, self._prev_m_out = m_in, m_out
        if self.warping:
            self._prev_in, self._prev_out = f_in.copy(), f_out.copy()
        self._frames += 1

    def report(self) -> dict[str, float | int]:
        """The metrics so far.

        Returns:
            ``{"frames": int, "flicker_ratio", "gain", "flicker_over_gain", "mabd_ratio",
            "mabd_over_gain": float}`` plus ``"warping_error"`` when built with ``warping=True``.
            Undefined values (fewer than 2 frames, zero denominators) are NaN.
        """
        nan = math.nan

        def div(a: float, b: float) -> float:
            return a / b if b > 0 else nan

        steps = self._frames - 1
        gain = div(self._sum_m_out, self._sum_m_in) if self._frames else nan
        if steps >= 1:
            flicker_ratio = div(self._ratio_sum, self._ratio_n)
            flicker_means = div(self._sum_d_out, self._sum_d_in)
            mabd_ratio = div(self._sum_mabd_out, self._sum_mabd_in)
        else:
            flicker_ratio = flicker_means = mabd_ratio = nan
        out: dict[str, float | int] = {
            "frames": self._frames,
            "flicker_ratio": flicker_ratio,
            "gain": gain,
            "flicker_over_gain": div(flicker_means, gain) if not math.isnan(gain) else nan,
            "mabd_ratio": mabd_ratio,
            "mabd_over_gain": div(mabd_ratio, gain) if not math.isnan(gain) else nan,
        }
        if self.warping:
            out["warping_error"] = div(self._warp_sum, self._warp_n)
        return out


def temporal_report(
    frames_in: Iterable[np.ndarray], frames_out: Iterable[np.ndarray], warping: bool = False
) -> dict[str, float | int]:
    """:class:`TemporalMeter` over two frame sequences (iterables are consumed lazily, in step).

    Args:
        frames_in: ``(H, W, 3)`` uint8 RGB input frames, in order.
        frames_out: the matching output frames, same count and size.
        warping: also report the mean ``warping_error``.

    Returns:
        :meth:`TemporalMeter.report`.

    Raises:
        ValueError: the sequences differ in length or a pair differs in size.
    """
    meter = TemporalMeter(warping=warping)
    sentinel = object()
    it_in, it_out = iter(frames_in), iter(frames_out)
    while True:
        a = next(it_in, sentinel)
        b = next(it_out, sentinel)
        if a is sentinel and b is sentinel:
            break
        if a is sentinel or b is sentinel:
            raise ValueError("input and output sequences differ in length")
        meter.update(a, b)  # type: ignore[arg-type]
    return meter.report()
