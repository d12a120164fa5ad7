"""Temporal propagation of grids (ExCNet's idea, generalised): works on grids and thumbnails only.

The state carried from frame to frame is the output grid Γ'. Each frame's engine grid Γt is
blended in as ``Γ't = α·Γt + (1 − α)·Γ't−1``; at a scene cut α = 1 (the new scene gets its own
grid at once). Modes:

* ``smooth``: α = 1 − strength on every frame (an exponential moving average).
* ``adaptive`` (the default; ``on`` is an alias): α = 1 − strength while nothing real happens,
  which suppresses the engine's frame-to-frame jitter, and rises towards 1 when the change is
  real. Two independent pieces of evidence say a change is real:

  1. *the input changed*: the mean log-luminance of the thumbnail moved (a light switched on, a
     pan from shadow into sun). Jitter of the engine has no cause in the input. The trust decays
     over the next few frames (×0.7 per frame), so an engine that takes a few frames to settle
     on the new light (ExCNet's warm start) is followed too.
  2. *the change persists*: the grid's innovation — the relative brightness difference between
     what Γt and Γ't−1 would output on this thumbnail — keeps its sign from frame to frame.
     Jitter flips sign or is random; a real change of the engine's opinion does not. The
     persistence is ``|EMA(δ)| / EMA(|δ|)`` (1 for a steady drift, ≈ 0.25 for ±jitter); both
     averages start, at a clip's first frame and at a cut, as after a quiet stretch, so a change
     on one frame counts there as it would in mid-scene (with empty averages it read as 1).

  Either one bounds the delay: a step is followed within a handful of frames (measured by
  tools/temporal_report.py), while ±10 % alternating jitter is attenuated ≈ 12× at strength 0.85.

  Last, a *brightness lock*: a steady grid passes the input's own small brightness fluctuations
  (codec breathing, sensor noise, a hand-held camera) at its local slope, which in the shadows
  exceeds its mean gain, so the output pumps more than the input (MABD/gain above 1) although
  the engine does not flicker. The blended grid is scaled so that its mean output on the
  thumbnail (measured by :class:`BrightnessMeter`, not predicted) is ``R̄ · μ̄^(1−ρ) · μ^ρ`` — μ the
  thumbnail's mean luma, R̄ the engine's own output ÷ input ratio and μ̄, both filtered with the
  same adaptive weight as the grid, so real changes, which open the filter, pass at once, while
  fast fluctuations are scaled by ρ = 0.5 (a deflicker of the input, as FFmpeg's ``deflicker``
  but relative to the enhancement). The correction is at most ±10 %. An identity grid (the
  ``identity`` engine) is passed untouched: there is no enhancement to lock.

Scene cuts are detected on thumbnails by :class:`SceneCutDetector`: a cut changes the
*structure* of the picture (the rank order of its block brightnesses), a lighting change or a
pan does not; the luma histogram distance is a second cue.

Time constants are given per frame at 30 fps and converted for other rates (``fps``).

Example:
    >>> import torch
    >>> from streamfix.grid.bilateral import BilateralGrid, Thumbnail
    >>> prop = TemporalFilter(strength=0.5, mode="smooth")
    >>> t = Thumbnail(torch.zeros(3, 8, 8), torch.full((8, 8), 0.5))
    >>> g0 = BilateralGrid.identity(2, 2, 2)
    >>> g1 = BilateralGrid(g0.coeffs * 3)
    >>> round(float(prop.update(g0, t).grid.coeffs[0, 0, 0, 0]), 2)
    1.0
    >>> round(float(prop.update(g1, t).grid.coeffs[0, 0, 0, 0]), 2)
    2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import torch

from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.fit import LumaMoments, pixel_moments
from streamfix.grid.slicing import RGB_LUMA

#: temporal modes; ``on`` is accepted as an alias of :data:`DEFAULT_MODE`
MODES = ("off", "smooth", "adaptive")
DEFAULT_MODE = "adaptive"
#: default weight of the previous output grid (steady state)
DEFAULT_STRENGTH = 0.85
#: frame rate at which the per-frame constants below are stated
REFERENCE_FPS = 30.0

#: histogram bins of the scene-cut detector
CUT_BINS = 32
#: blocks (rows, columns) of the structure cue
CUT_BLOCKS = (9, 16)
#: size (rows, columns) of the log-luminance map of the edge cue
EDGE_SIZE = (36, 64)
#: structure distance (1 − rank correlation of block brightnesses) above which a cut is declared
CUT_THRESHOLD = 0.25
#: histogram distance above which a frame with an edge distance above CUT_EDGE_WITH_HISTOGRAM is a cut
CUT_HISTOGRAM = 0.5
CUT_EDGE_WITH_HISTOGRAM = 0.25
#: an edge distance above CUT_EDGE and CUT_EDGE_SPIKE × the median of the recent ones is a cut
CUT_EDGE = 0.5
CUT_EDGE_SPIKE = 4.0
#: how many recent edge distances the spike test compares with (at least 3 are needed)
CUT_HISTORY = 8

#: a change of the thumbnail's mean log2-luminance of this much in one frame (at 30 fps) is fully trusted
INPUT_CHANGE_FULL = 0.15
#: below this change of mean log2-luminance per frame the input counts as steady (noise, motion)
INPUT_CHANGE_FLOOR = 0.02
#: trust from an input change decays by this factor per frame (at 30 fps): engines that converge
#: over a few frames (ExCNet's warm start, SCI adapting) are followed through that time
INPUT_TRUST_DECAY = 0.7
#: EMA factor of the persistence statistics, per frame at 30 fps
PERSISTENCE_BETA = 0.7
#: persistence above this starts to open the filter; 1 opens it to PERSISTENCE_ALPHA
PERSISTENCE_ONSET = 0.6
PERSISTENCE_ALPHA = 0.6
#: brightness lock (adaptive mode): the input's own fast brightness fluctuations reach the output's
#: predicted mean brightness scaled by this (1: proportionally; 0: not at all)
LOCK_RHO = 0.5
#: the lock's correction of one frame stays within [1/LOCK_RANGE, LOCK_RANGE]
LOCK_RANGE = 1.1
#: innovations smaller than this (relative brightness) never count as persistent (quantisation, noise)
INNOVATION_FLOOR = 0.01


def resolve_mode(mode: str) -> str:
    """Canonical mode name: ``on`` → the default mode; raises ValueError on unknown modes."""
    m = mode.strip().lower()
    if m == "on":
        return DEFAULT_MODE
    if m not in MODES:
        raise ValueError(f"temporal mode must be one of off, on, smooth, adaptive; got {mode!r}")
    return m


def _luma_array(luma: torch.Tensor | np.ndarray) -> np.ndarray:
    """A luma map as a contiguous float32 ``(h, w)`` array on the CPU."""
    if isinstance(luma, torch.Tensor):
        luma = luma.detach().to("cpu", torch.float32).numpy()
    return np.ascontiguousarray(luma, dtype=np.float32).reshape(luma.shape[-2:])


@numba.njit(cache=True, nogil=True)
def _histogram(luma, bins):  # pragma: no cover - compiled
    """Counts of ``luma`` clamped to [0, 1] in ``bins`` equal bins (1.0 in the last), as torch.histc."""
    counts = np.zeros(bins, np.float64)
    fb = np.float32(bins)
    for v in luma.ravel():
        i = int(min(max(v, np.float32(0.0)), np.float32(1.0)) * fb)
        counts[min(i, bins - 1)] += 1.0
    return counts


@numba.njit(cache=True, nogil=True)
def _integral(luma):  # pragma: no cover - compiled
    """Summed-area table ``(h + 1, w + 1)`` float64 of a luma map."""
    h, w = luma.shape
    s = np.zeros((h + 1, w + 1), np.float64)
    for i in range(h):
        acc = 0.0
        for j in range(w):
            acc += luma[i, j]
            s[i + 1, j + 1] = s[i, j + 1] + acc
    return s


@numba.njit(cache=True, nogil=True)
def _pool(s, rows, cols):  # pragma: no cover - compiled
    """Adaptive average pooling (torch's windows: ``floor(i·H/n)`` … ``ceil((i+1)·H/n)``) from a
    summed-area table."""
    h, w = s.shape[0] - 1, s.shape[1] - 1
    out = np.empty((rows, cols), np.float64)
    for i in range(rows):
        r0, r1 = (i * h) // rows, ((i + 1) * h + rows - 1) // rows
        for j in range(cols):
            c0, c1 = (j * w) // cols, ((j + 1) * w + cols - 1) // cols
            out[i, j] = (s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0]) / ((r1 - r0) * (c1 - c0))
    return out


def _standardise(x: np.ndarray) -> np.ndarray:
    """``(x − mean) / std`` (sample std, at least 1e-6), flattened."""
    x = x.ravel()
    return (x - x.mean()) / max(float(x.std(ddof=1)), 1e-6) if x.size > 1 else x - x.mean()


def luma_histogram(luma: torch.Tensor | np.ndarray, bins: int = CUT_BINS) -> np.ndarray:
    """Normalised histogram ``(bins,)`` (sums to 1) of a luma map with values in ``[0, 1]``."""
    h = _histogram(_luma_array(luma), bins)
    return h / max(float(h.sum()), 1.0)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total-variation distance ``½·Σ|a − b|`` of two normalised histograms, in ``[0, 1]``."""
    return 0.5 * float(np.abs(a - b).sum())


def block_ranks(luma: torch.Tensor | np.ndarray, blocks: tuple[int, int] = CUT_BLOCKS,
                table: np.ndarray | None = None) -> np.ndarray:
    """Standardised ranks ``(Bh·Bw,)`` of the block-mean luma (invariant to any monotonic tone
    change; equal blocks — a clipped sky — ranked in a stable order, so they agree frame to frame).
    ``table``: the map's :func:`_integral`, when already made."""
    b = _pool(_integral(_luma_array(luma)) if table is None else table, *blocks).ravel()
    return _standardise(np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64))


def structure_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 − `` the correlation of two standardised vectors (:func:`block_ranks`, :func:`edge_map`), in ``[0, 2]``."""
    return 1.0 - float(np.dot(a, b)) / max(a.size - 1, 1)


def edge_map(luma: torch.Tensor | np.ndarray, size: tuple[int, int] = EDGE_SIZE,
             table: np.ndarray | None = None) -> np.ndarray:
    """Standardised gradient magnitude ``(N,)`` of the log-luminance at ``size`` (gain invariant).
    ``table``: the map's :func:`_integral`, when already made."""
    y = _pool(_integral(_luma_array(luma)) if table is None else table, *size)
    lg = np.log2(np.maximum(y, 1.0 / 256.0))
    gx = lg[:-1, 1:] - lg[:-1, :-1]
    gy = lg[1:, :-1] - lg[:-1, :-1]
    return _standardise(np.sqrt(gx * gx + gy * gy))


class SceneCutDetector:
    """Declares a cut where consecutive thumbnails differ in structure, not only in brightness.

    Cues, each between frame t−1 and t:

    * *structure*: 1 − Spearman rank correlation of the 9 × 16 block means of the luma. A change
      of exposure, a light switched on or a gamma change keeps the order of the blocks; a pan
      moves it a little; a new shot usually rearranges it (measured: consecutive frames ≤ 0.03,
      a 5× subsampled handheld pan ≤ 0.15, a light switched on 0.10, cuts between different
      sources 0.40–0.75).
    * *histogram*: total-variation distance of smoothed luma histograms: large for a cut between
      differently exposed shots, but also for a light switched on, so it only confirms.
    * *edges*: 1 − correlation of the gradient magnitude of the log-luminance (36 × 64): a new
      shot moves the edges; a change of lighting does not (0.11 for a light switched on), but
      fast motion and noise do too (up to 0.7), so alone it counts only as a spike over the
      recent frames.

    A cut: structure > ``threshold``; or histogram > 0.5 with edges > 0.25 (a differently exposed
    shot of a similar layout); or edges > 0.5 and > 4× the median of the last 8 (a similarly
    exposed shot of a similar layout).
    """

    def __init__(self, threshold: float = CUT_THRESHOLD, bins: int = CUT_BINS) -> None:
        self.threshold = threshold
        self.bins = bins
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._edges: list[float] = []
        self.last_distance = 0.0
        self.last_histogram = 0.0
        self.last_edges = 0.0

    def reset(self) -> None:
        self._prev = None
        self._edges = []

    def features(self, luma: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cues' features of one luma map: the histogram smoothed over 3 bins, the block
        ranks and the edge map (one summed-area table for both)."""
        lm = _luma_array(luma)
        h = luma_histogram(lm, self.bins)
        padded = np.concatenate(([0.0], h, [0.0]))
        n = np.full(h.size, 3.0)
        n[[0, -1]] = 2.0
        h = (padded[:-2] + padded[1:-1] + padded[2:]) / n
        table = _integral(lm)
        return h / h.sum(), block_ranks(lm, table=table), edge_map(lm, table=table)

    def __call__(self, thumb: Thumbnail) -> bool:
        """True when ``thumb`` starts a new scene (the first frame is not a cut)."""
        cur = self.features(thumb.luma)
        prev, self._prev = self._prev, cur
        if prev is None:
            self.last_distance = self.last_histogram = self.last_edges = 0.0
            return False
        self.last_histogram = histogram_distance(cur[0], prev[0])
        self.last_distance = structure_distance(cur[1], prev[1])
        self.last_edges = structure_distance(cur[2], prev[2])
        recent = sorted(self._edges)
        spike = (
            len(recent) >= 3
            and self.last_edges > CUT_EDGE
            and self.last_edges > CUT_EDGE_SPIKE * recent[len(recent) // 2]
        )
        cut = (
            self.last_distance > self.threshold
            or (self.last_histogram > CUT_HISTOGRAM and self.last_edges > CUT_EDGE_WITH_HISTOGRAM)
            or spike
        )
        if cut:
            self._edges = []
        else:
            self._edges = [*self._edges[-(CUT_HISTORY - 1):], self.last_edges]
        return cut


@dataclass(frozen=True)
class TemporalStep:
    """What :meth:`TemporalFilter.update` decided for one frame.

    Attributes:
        grid: the grid to slice.
        scene_cut: this frame starts a new scene (the grid was reset).
        distance: the detector's structure distance to the previous frame.
        alpha: weight of this frame's engine grid (1 at a cut or a reset).
        innovation: relative brightness change the engine's grid asked for (signed).
        input_change: change of the thumbnail's mean log2-luminance since the previous frame.
    """

    grid: BilateralGrid
    scene_cut: bool
    distance: float
    alpha: float = 1.0
    innovation: float = 0.0
    input_change: float = 0.0


class BrightnessMeter:
    """Mean output luma of grids on one thumbnail (before clipping): slicing is linear in the
    coefficients, so with the thumbnail's per-cell pixel moments each grid's mean output is a dot
    product (microseconds). The first guide curve's moments come from an exact splat
    (:func:`~streamfix.grid.fit.pixel_moments`, ≈ 0.7 ms at 256 px: all that engines with one
    guide need); further guides — BacklitNet's engine, previous and blended grids carry three —
    from one binned splat (:class:`~streamfix.grid.fit.LumaMoments`) and a small contraction each."""

    def __init__(self, thumb: Thumbnail) -> None:
        self.thumb = thumb
        self._moments: LumaMoments | None = None
        self._weights: list[tuple[torch.Tensor | None, tuple[int, int, int], np.ndarray]] = []
        self._w = np.asarray(RGB_LUMA, dtype=np.float64)

    def input_mean(self) -> float:
        """Mean luma of the thumbnail itself, in ``[0, 1]``."""
        means = self.thumb.rgb.detach().double().mean(dim=(1, 2)).cpu().numpy()
        return float(np.dot(self._w, means))

    def output_mean(self, grid: BilateralGrid) -> float:
        """Mean luma of ``grid`` applied to the thumbnail, in ``[0, 1]`` (unclipped)."""
        weights = self._weights_for(grid)  # (12, cells)
        a = grid.coeffs.detach().cpu().numpy().reshape(12, -1)  # (channel·input, cell)
        return float(np.einsum("kc,kc->", a, weights))

    def _weights_for(self, grid: BilateralGrid) -> np.ndarray:
        """``(12, cells)`` float64: coefficient row ``4c + k`` of a cell times these, summed, is the
        cell's contribution to the mean output luma (luma weight of channel c × moment k ÷ N)."""
        for guide, shape, wts in self._weights:
            same = (guide is None and grid.guide is None) or (
                guide is not None and grid.guide is not None and torch.equal(guide, grid.guide))
            if same and shape == grid.shape:
                return wts
        _, gh, gw = grid.shape
        if not self._weights:
            m = pixel_moments(self.thumb, grid.shape, grid.guide)
        else:
            if self._moments is None or (self._moments.rows, self._moments.cols) != (gh, gw):
                self._moments = LumaMoments(self.thumb, gh, gw)
            m = self._moments.for_grid(grid.shape, grid.guide)
        m = m.reshape(-1, 4)  # (cells, input)
        m = m / max(float(m[:, 3].sum()), 1e-12)
        wts = (self._w[:, None, None] * m.T[None]).reshape(12, -1)
        self._weights.append((grid.guide, grid.shape, wts))
        return wts


class TemporalFilter:
    """Carries the grid from frame to frame; resets at scene cuts.

    Args:
        strength: weight of the previous output grid in steady state, in ``[0, 1)``; 0 turns
            blending off.
        detector: the scene-cut detector (a fresh :class:`SceneCutDetector` by default).
        mode: ``smooth``, ``adaptive`` or ``on`` (= adaptive); see the module docs.
        fps: the video's frame rate (per-frame constants are stated at 30 fps).
    """

    def __init__(
        self,
        strength: float = DEFAULT_STRENGTH,
        detector: SceneCutDetector | None = None,
        mode: str = DEFAULT_MODE,
        fps: float = REFERENCE_FPS,
    ) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"temporal strength must be in [0, 1), got {strength}")
        mode = resolve_mode(mode)
        if mode == "off":
            raise ValueError("mode 'off' means no TemporalFilter at all")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.mode = mode
        self.strength = strength
        self.fps = float(fps)
        per = REFERENCE_FPS / self.fps  # how many reference frames one of ours lasts
        self._keep = strength**per  # previous grid's weight per frame, steady state
        self._beta = PERSISTENCE_BETA**per
        self._input_full = INPUT_CHANGE_FULL * per
        self._input_floor = INPUT_CHANGE_FLOOR * per
        self._trust_decay = INPUT_TRUST_DECAY**per
        self._ratio: float | None = None  # brightness lock: output ÷ input mean brightness, filtered
        self._mu_bar: float | None = None  # … and the input's mean brightness, filtered
        self.detector = detector or SceneCutDetector()
        self._prev: BilateralGrid | None = None
        self._pending_cut: bool | None = None
        self._log_mean: float | None = None
        self._input_change = 0.0
        self._restart_evidence()
        self.cuts = 0

    def reset(self) -> None:
        """Forget everything (the next frame starts afresh)."""
        self._prev = None
        self._pending_cut = None
        self._log_mean = None
        self._restart_evidence()
        self.detector.reset()

    def _restart_evidence(self) -> None:
        """Forget what the last scene said about change: no input-change trust, no brightness
        lock (it restarts from the next frame's ratio), and the persistence statistics as after a
        quiet stretch (innovations at the floor, no sign) — a change seen on one frame is no
        evidence that it persists, so the first innovations of a clip or a scene are damped as
        they would be in mid-scene (with the statistics at zero, the first innovation above the
        floor read as fully persistent and opened the filter to PERSISTENCE_ALPHA on a clip's
        second frame)."""
        self._trust_in = 0.0
        self._m = 0.0
        self._a = INNOVATION_FLOOR
        self._ratio = self._mu_bar = None

    def observe(self, thumb: Thumbnail) -> bool:
        """Look at the next frame's thumbnail before its engine runs; True at a scene cut.

        Lets the caller tell a stateful engine about the cut (e.g. give ExCNet a full iteration
        budget). :meth:`blend` must follow with the same thumbnail.
        """
        cut = self.detector(thumb)
        log_mean = float(torch.log2(thumb.luma.float().clamp(min=1.0 / 1024.0)).mean())
        self._input_change = 0.0 if self._log_mean is None else log_mean - self._log_mean
        self._log_mean = log_mean
        if cut:
            self.cuts += 1
        self._pending_cut = cut
        return cut

    def blend(self, grid: BilateralGrid, thumb: Thumbnail) -> TemporalStep:
        """Blend this frame's engine ``grid`` with the history; returns the grid to slice."""
        if self._pending_cut is None:
            self.observe(thumb)
        cut = bool(self._pending_cut)
        self._pending_cut = None
        d_in = self._input_change
        prev = self._prev
        if prev is None or cut or self.strength == 0.0 or prev.shape != grid.shape:
            self._prev = grid
            self._restart_evidence()
            if self.mode == "adaptive":  # the lock starts from this frame's measured brightness ratio
                meter = BrightnessMeter(thumb)
                mu = meter.input_mean()
                if mu > 1e-4:
                    self._ratio, self._mu_bar = meter.output_mean(grid) / mu, mu
            return TemporalStep(grid, cut, self.detector.last_distance, 1.0, 0.0, d_in)
        alpha = 1.0 - self._keep
        innovation = 0.0
        if grid.is_identity() and prev.is_identity():  # nothing to smooth, nothing to lock: the input passes
            return TemporalStep(grid, False, self.detector.last_distance, alpha, 0.0, d_in)
        if self.mode != "adaptive":
            out = grid.blend(prev, alpha)
            self._prev = out
            return TemporalStep(out, False, self.detector.last_distance, alpha, 0.0, d_in)
        meter = BrightnessMeter(thumb)
        r_new = meter.output_mean(grid)
        r_old = meter.output_mean(prev)
        innovation = (r_new - r_old) / max(r_old, 1e-3)
        if not math.isfinite(innovation):
            innovation = 0.0
        self._m = self._beta * self._m + (1.0 - self._beta) * innovation
        self._a = self._beta * self._a + (1.0 - self._beta) * max(abs(innovation), INNOVATION_FLOOR)
        persistence = abs(self._m) / self._a if self._a > 0 else 0.0
        trust_p = min(max((persistence - PERSISTENCE_ONSET) / (1.0 - PERSISTENCE_ONSET), 0.0), 1.0)
        span = self._input_full - self._input_floor
        trust_in = min(max((abs(d_in) - self._input_floor) / span, 0.0), 1.0)
        self._trust_in = trust_in = max(trust_in, self._trust_in * self._trust_decay)
        alpha = max(alpha, alpha + (1.0 - alpha) * trust_in, alpha + (PERSISTENCE_ALPHA - alpha) * trust_p)
        out = grid.blend(prev, alpha)
        self._prev = out
        # brightness lock: the output's mean brightness on the thumbnail (measured, not
        # predicted from per-cell probes: a grid fitted to one frame's noise answers another
        # frame's noise differently) follows the input's at the engine's brightness ratio,
        # filtered at the grid's rate, the input's fast fluctuations scaled by LOCK_RHO
        mu = meter.input_mean()
        pred = meter.output_mean(out)
        if mu > 1e-4 and pred > 1e-4:
            engine_ratio = meter.output_mean(grid) / mu
            if self._ratio is None or self._mu_bar is None:
                self._ratio, self._mu_bar = engine_ratio, mu
            else:
                self._ratio += alpha * (engine_ratio - self._ratio)
                self._mu_bar += alpha * (mu - self._mu_bar)
            target = self._ratio * self._mu_bar ** (1.0 - LOCK_RHO) * mu**LOCK_RHO
            c = min(max(target / pred, 1.0 / LOCK_RANGE), LOCK_RANGE)
            out = BilateralGrid(out.coeffs * c, out.guide)
        return TemporalStep(out, False, self.detector.last_distance, alpha, innovation, d_in)

    def update(self, grid: BilateralGrid, thumb: Thumbnail) -> TemporalStep:
        """:meth:`observe` + :meth:`blend` for one frame."""
        self.observe(thumb)
        return self.blend(grid, thumb)
