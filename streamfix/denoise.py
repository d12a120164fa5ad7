"""Temporal noise reduction of the enhanced frames (after slicing).

Brightening a dark frame multiplies its sensor and codec noise: a curve that lifts the shadows
×3 turns ±2 codes of static noise into ±6, which the eye (and EVAL.md's flicker ratio) sees as
the picture crawling, and which the encoder spends bits and CPU on. The grid's temporal filter
(:mod:`streamfix.temporal`) steadies the *transform*; this steadies the *pixels*.

:class:`TemporalDenoiser` is a motion-adaptive recursive filter (camera ISPs' temporal noise
reduction), one pass per plane on the integer planes. Motion is judged on the *input*, where the
noise level is the same everywhere, and the averaging is done on the *output*, which is linear
(averaging the input before a curve would change the mean of the curve's output as the noise
shrinks). With ``d = |x_t − x_{t−1}|`` the change of an input sample, ``y`` its enhanced value and
``p`` the previous denoised output::

    out = y + k · (p − y),   k = strength · clamp((T2 − d) / (T2 − T1), 0, 1)

so a sample whose input changed by less than ``T1`` is averaged with its history (weight
``strength``), one that changed by more than ``T2`` — motion, a light switched on, a scene cut —
passes untouched, and the span between fades from one to the other. ``T1`` and ``T2`` are
:data:`MOTION_LOW` and :data:`MOTION_HIGH` times the plane's noise level σ (the standard
deviation of a still sample's frame-to-frame difference), estimated from the previous frame pair
(a clipped mean of ``d``, robust to the moving part of the picture), so the same setting suits
clean footage (σ under a code: little is averaged) and a noisy night clip.

The filter moves no brightness: in every row the history's pull is taken back from the averaged
samples in proportion to their weight, so each row of each plane keeps its mean up to the final
rounding (a brightness change of the grid reaches the output at once; EVAL.md's MABD moves by
hundredths). The result is rounded half to even (an ordered dither kept the means closer but cost
x264 ≈ 15 % more bits on dark.mp4: it draws a fixed pattern into flat areas). Static noise of
variance σ² is left at about ``σ²·(1 − k)/(1 + k)`` (a third at ``strength`` 0.5); a moving edge
whose change is under ``T2`` trails by about a frame.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> den = TemporalDenoiser(strength=0.5)
    >>> raw = [np.clip(60 + rng.normal(0, 3, (64, 64)), 0, 255).round().astype(np.uint8) for _ in range(8)]
    >>> out = [f.copy() for f in raw]
    >>> for f, o in zip(raw, out):
    ...     den((f,), (o,))
    >>> step = lambda frames: np.abs(np.diff(np.array(frames, float), axis=0)).mean()
    >>> bool(step(out) < 0.6 * step(raw)), abs(float(np.mean(out)) - float(np.mean(raw))) < 0.05
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import torch

from streamfix.grid.planes import Planes

#: default weight of the history for a sample that did not move, in ``[0, 1)``; 0 turns it off
DEFAULT_STRENGTH = 0.5
#: a change below MOTION_LOW·σ is noise (fully averaged) …
MOTION_LOW = 1.0
#: … and above MOTION_HIGH·σ it is real (passed untouched)
MOTION_HIGH = 3.0
#: |d| is clipped at NOISE_CLIP·σ (the previous estimate) before averaging into the new estimate
NOISE_CLIP = 2.0
#: E[min(|N|, c)] for a standard normal N and c = NOISE_CLIP: the clipped mean of |d| is σ times this
_CLIPPED_MEAN = math.sqrt(2.0 / math.pi) * (1.0 - math.exp(-NOISE_CLIP**2 / 2.0)) + NOISE_CLIP * math.erfc(
    NOISE_CLIP / math.sqrt(2.0))
#: the noise estimate stays within these bounds, in 8-bit codes (scaled for deeper planes): clean
#: footage still has its ±1-code rounding flicker averaged; above 8 codes the "noise" is motion
#: everywhere (a pan), which must not be smeared
NOISE_MIN = 1.0 / 3.0
NOISE_MAX = 8.0
#: noise level assumed for a plane's first frame pair, in 8-bit codes
NOISE_START = 2.0


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _recursive_plane(src: np.ndarray, out: np.ndarray, src_prev: np.ndarray, out_prev: np.ndarray,
                     high: float, inv_span: float, keep: float, clip: float, top: float) -> float:
    """One plane, in place. ``src``: this frame's input plane; ``out``: what was made of it (same
    shape, any strides), denoised in place; ``src_prev`` / ``out_prev``: the previous input and
    denoised output (contiguous), overwritten with this frame's. Each row keeps the mean of its
    ``out`` row: the history's pull is taken back from the averaged samples in proportion to
    their weight. Returns Σ min(|src − src_prev|, clip) over the plane."""
    h, w = src.shape
    sums = np.zeros(h)
    for i in numba.prange(h):
        val = np.empty(w, np.float32)
        wt = np.empty(w, np.float32)
        acc = np.float32(0.0)
        pull = np.float32(0.0)
        weight = np.float32(0.0)
        for j in range(w):
            a = abs(np.float32(src[i, j]) - np.float32(src_prev[i, j]))
            k = np.float32(keep) * min(max((np.float32(high) - a) * np.float32(inv_span), np.float32(0.0)),
                                       np.float32(1.0))
            o = np.float32(out[i, j])
            d = k * (np.float32(out_prev[i, j]) - o)
            val[j] = o + d
            wt[j] = k
            pull += d
            weight += k
            acc += min(a, np.float32(clip))
            src_prev[i, j] = src[i, j]
        back = pull / weight if weight > np.float32(0.0) else np.float32(0.0)
        for j in range(w):
            v = np.rint(val[j] - wt[j] * back)
            v = min(max(v, np.float32(0.0)), np.float32(top))
            out[i, j] = v
            out_prev[i, j] = v
        sums[i] = acc
    return float(sums.sum())


def _recursive_plane_torch(src: torch.Tensor, out: torch.Tensor, src_prev: torch.Tensor, out_prev: torch.Tensor,
                           high: float, inv_span: float, keep: float, clip: float,
                           top: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_recursive_plane` in torch ops, for planes that live on a GPU (the device path):
    returns the denoised plane (a new tensor of ``out``'s dtype) and Σ min(|src − src_prev|, clip)
    as a 0-d tensor; ``src_prev`` and ``out_prev`` are overwritten with this frame's."""
    o = out.to(torch.float32)
    a = (src.to(torch.float32) - src_prev.to(torch.float32)).abs()
    k = keep * ((high - a) * inv_span).clamp_(0.0, 1.0)
    d = k * (out_prev.to(torch.float32) - o)
    weight = k.sum(dim=1, keepdim=True)
    back = torch.where(weight > 0, d.sum(dim=1, keepdim=True) / weight.clamp(min=1e-30), torch.zeros_like(weight))
    v = torch.round(o + d - k * back).clamp_(0.0, top)
    src_prev.copy_(src)
    out_prev.copy_(v)
    return v.to(out.dtype), a.clamp_(max=clip).sum()


class TemporalDenoiser:
    """Motion-adaptive recursive noise reduction of an enhanced frame sequence (see the module docs).

    Call it with each frame's input planes and the planes made of them, in order (any number of
    2-D integer arrays: Y, U and V, or the channels of a packed RGB image); it denoises the latter
    in place and keeps copies of both as its history.

    Args:
        strength: weight of a still sample's history, in ``[0, 1)``; 0 leaves frames untouched.
    """

    def __init__(self, strength: float = DEFAULT_STRENGTH) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"denoise strength must be in [0, 1), got {strength}")
        self.strength = float(strength)
        self._bits = 8  # bit depth of the history's codes
        self._src: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        self._sigma: list[float] = []

    def reset(self) -> None:
        """Forget the history (the next frame passes untouched and starts it afresh)."""
        self._src, self._out, self._sigma = [], [], []

    @property
    def noise(self) -> list[float]:
        """The current noise level σ of each input plane: the standard deviation of a still
        sample's frame-to-frame difference, in codes (what the motion thresholds are multiples of)."""
        return list(self._sigma)

    def __call__(self, src: tuple[np.ndarray, ...], out: tuple[np.ndarray, ...], bits: int = 8) -> None:
        """Denoise ``out`` (made of ``src``: same shapes, 2-D uint8 / uint16 of ``bits``-bit codes)
        in place. A change of shapes, dtype or depth restarts the history."""

        def plane(n: int, high: float, inv_span: float, clip: float) -> float:
            return _recursive_plane(src[n], out[n], self._src[n], self._out[n], high, inv_span, self.strength,
                                    clip, self._top)

        if self._started(src, out, bits, lambda p: np.ascontiguousarray(p).copy()):
            self._step(src, plane)

    def tensors(self, src: tuple[torch.Tensor, ...], out: tuple[torch.Tensor, ...],
                bits: int = 8) -> tuple[torch.Tensor, ...]:
        """:meth:`__call__` for planes held as tensors (on a GPU: the device path); returns the
        denoised planes as new tensors (``out`` unchanged)."""
        result = list(out)

        def plane(n: int, high: float, inv_span: float, clip: float) -> torch.Tensor:
            result[n], total = _recursive_plane_torch(src[n], out[n], self._src[n], self._out[n], high, inv_span,
                                                      self.strength, clip, self._top)
            return total

        if self._started(src, out, bits, lambda p: p.contiguous().clone()):
            self._step(src, plane)
        return tuple(result)

    def _started(self, src: tuple, out: tuple, bits: int, copy: Callable[[Any], Any]) -> bool:
        """True when the history fits this frame (same kind, shapes, dtypes, depth); else it
        restarts from this frame (copies of ``src`` and ``out``), which passes untouched."""
        if self.strength == 0.0:
            return False
        fits = bits == self._bits and len(self._src) == len(src) and all(
            type(h) is type(p) and h.shape == p.shape and h.dtype == p.dtype
            and getattr(h, "device", None) == getattr(p, "device", None)
            for h, p in zip(self._src, src, strict=True))
        if not fits:
            self._src = [copy(p) for p in src]
            self._out = [copy(p) for p in out]
            self._bits = bits
            self._sigma = [NOISE_START * self._scale] * len(src)
        return fits

    @property
    def _scale(self) -> float:
        """Codes of the history's depth per 8-bit code (the noise bounds are stated at 8 bits)."""
        return float(1 << (self._bits - 8)) if self._bits > 8 else 1.0

    @property
    def _top(self) -> float:
        """The history's largest code."""
        return float((1 << self._bits) - 1)

    def _step(self, src: tuple, plane: Callable[[int, float, float, float], Any]) -> None:
        """Run ``plane(n, T2, 1 / (T2 − T1), clip)`` for each plane of ``src``; update the noise
        estimates from the clipped sums it returns (floats, or 0-d tensors read once per frame)."""
        totals = []
        for n in range(len(src)):
            sigma = self._sigma[n]
            low, high = MOTION_LOW * sigma, MOTION_HIGH * sigma
            totals.append(plane(n, high, 1.0 / (high - low), NOISE_CLIP * sigma))
        if totals and isinstance(totals[0], torch.Tensor):
            totals = torch.stack(totals).tolist()
        for n, total in enumerate(totals):
            est = float(total) / max(math.prod(src[n].shape), 1) / _CLIPPED_MEAN
            self._sigma[n] = min(max(est, NOISE_MIN * self._scale), NOISE_MAX * self._scale)

    def planes(self, src: Planes, out: Planes) -> None:
        """Denoise the YUV frame ``out``, made of ``src``, in place."""
        self((src.y, src.u, src.v), (out.y, out.u, out.v), src.fmt.bit_depth)

    def rgb(self, src: np.ndarray, out: np.ndarray) -> None:
        """Denoise the packed ``(H, W, 3)`` image ``out``, made of ``src``, in place (each channel
        keeps its row means)."""
        self(tuple(src[..., c] for c in range(src.shape[2])), tuple(out[..., c] for c in range(out.shape[2])))
