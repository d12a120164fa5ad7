"""Temporal propagation: scene cuts, smooth and adaptive blending, and the flicker they remove."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from streamfix.engines.registry import Engine, EngineCard
from streamfix.enhancer import Enhancer
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.slicing import RGB_LUMA, slice_rgb
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import TemporalMeter, luma709
from streamfix.synth import backlit_frame, write_segments
from streamfix.temporal import (
    DEFAULT_STRENGTH,
    BrightnessMeter,
    SceneCutDetector,
    TemporalFilter,
    histogram_distance,
    luma_histogram,
    resolve_mode,
)
from tests.shared_data import SHARED


def _thumb(rgb: np.ndarray) -> Thumbnail:
    return thumbnail_from_rgb(rgb, 96)


def test_histogram_distance_range() -> None:
    a = luma_histogram(torch.zeros(10, 10))
    b = luma_histogram(torch.ones(10, 10))
    assert histogram_distance(a, a) == 0.0
    assert abs(histogram_distance(a, b) - 1.0) < 1e-6


def test_modes() -> None:
    assert resolve_mode("on") == "adaptive" and resolve_mode("Smooth") == "smooth"
    with pytest.raises(ValueError):
        resolve_mode("sometimes")
    with pytest.raises(ValueError):
        TemporalFilter(mode="off")
    with pytest.raises(ValueError):
        TemporalFilter(strength=1.0)


def _scenes() -> list[tuple[str, np.ndarray]]:
    """Three scenes of 8 moving frames each, concatenated: cuts at frames 8 and 16."""
    frames = []
    for t in range(8):
        frames.append(("backlit", backlit_frame(160, 96, t / 10, seed=0)))
    for t in range(8):  # the same kind of content, dark night version of another seed
        f = backlit_frame(160, 96, t / 10, seed=5).astype(np.float32)
        frames.append(("night", (255 * (f / 255) ** 2.5 * 0.35).astype(np.uint8)))
    yy, xx = np.mgrid[0:96, 0:160]
    for t in range(8):  # a bright, flat indoor-ish scene with a slow pan
        g = (150 + 60 * np.sin((xx + 3 * t) / 25.0) * np.cos(yy / 30.0)).astype(np.uint8)
        frames.append(("indoor", np.dstack([g, g, (g * 0.9).astype(np.uint8)])))
    return frames


def test_scene_cuts_are_found_at_real_cuts_only() -> None:
    det = SceneCutDetector()
    cuts = [i for i, (_, f) in enumerate(_scenes()) if det(_thumb(f))]
    assert cuts == [8, 16]


def test_gradual_brightening_is_not_a_cut() -> None:
    det = SceneCutDetector()
    base = backlit_frame(160, 96, 0.0, seed=1).astype(np.float32)
    cuts = [k for k in range(30) if det(_thumb(np.clip(base * (0.6 + 0.02 * k), 0, 255).astype(np.uint8)))]
    assert cuts == []


def _lamp(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.exp(-((xx - 0.3 * w) ** 2 + (yy - 0.45 * h) ** 2) / (2 * (0.15 * w) ** 2))[..., None]


def _light_switch(w: int, h: int, n: int, at: int, seed: int = 3) -> list[np.ndarray]:
    """A dark static scene; at frame ``at`` a lamp is switched on (×2.5 and its glow)."""
    lamp = _lamp(w, h)
    out = []
    for t in range(n):
        f = backlit_frame(w, h, t / 30, seed=seed).astype(np.float32)
        f = f * 0.3 if t < at else f * 0.75 + 90.0 * lamp
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def test_light_switched_on_is_not_a_cut() -> None:
    """The histogram jumps (the old detector's only cue) but the picture's structure stays."""
    det = SceneCutDetector()
    frames = _light_switch(160, 96, 12, 6)
    cuts = [k for k, f in enumerate(frames) if det(_thumb(f))]
    assert cuts == []
    det.reset()
    det(_thumb(frames[5]))
    det(_thumb(frames[6]))
    assert det.last_histogram > 0.4  # the old histogram-only threshold would have cut here


@pytest.mark.parametrize("mode", ["smooth", "adaptive"])
def test_filter_blends_and_resets_at_cut(mode: str) -> None:
    filt = TemporalFilter(strength=0.75, mode=mode)
    scenes = _scenes()
    for i, (_, f) in enumerate(scenes[:10]):
        gain = 2.0 if i < 8 else 3.0
        step = filt.update(BilateralGrid(BilateralGrid.identity(2, 2, 2).coeffs * gain), _thumb(f))
        if i == 7:  # (adaptive: the brightness lock may scale the grid by a few %)
            assert abs(float(step.grid.coeffs[0, 0, 0, 0]) - 2.0) < (1e-5 if mode == "smooth" else 0.1)
        if i == 8:  # the cut: the new grid is taken as is
            assert step.scene_cut and abs(float(step.grid.coeffs[0, 0, 0, 0]) - 3.0) < 1e-5
    assert filt.cuts == 1


def test_frame_rate_scales_the_time_constant() -> None:
    """At 60 fps a frame lasts half as long: the previous grid keeps strength**0.5 of its weight."""
    t = Thumbnail(torch.zeros(3, 8, 8), torch.full((8, 8), 0.5))
    g1 = BilateralGrid.identity(2, 2, 2)
    g2 = BilateralGrid(g1.coeffs * 2)
    for fps, keep in ((30.0, 0.81), (60.0, 0.9)):
        f = TemporalFilter(0.81, mode="smooth", fps=fps)
        f.update(g1, t)
        out = f.update(g2, t).grid
        assert abs(float(out.coeffs[0, 0, 0, 0]) - (keep + 2 * (1 - keep))) < 1e-5


@pytest.mark.parametrize("curved", [False, True])
def test_brightness_meter_matches_slicing(curved: bool) -> None:
    """The meter's mean output luma, from one binned splat per thumbnail, against slicing the
    thumbnail itself; outputs kept inside [0, 1] so that slicing's clamp does not differ."""
    g = torch.Generator().manual_seed(4)
    rgb = 0.1 + 0.7 * torch.rand(3, 36, 64, generator=g)
    rgb = torch.nn.functional.avg_pool2d(rgb[None], 3, 1, 1, count_include_pad=False)[0]  # some structure
    luma = (rgb * torch.tensor(RGB_LUMA).view(3, 1, 1)).sum(0)
    meter = BrightnessMeter(Thumbnail(rgb, luma))
    ident = BilateralGrid.identity(8, 4, 6).coeffs
    for k in range(3):
        gain = 0.8 + 0.4 * torch.rand(1, 8, 4, 6, generator=g)
        coeffs = ident * gain + 0.02 * torch.randn(ident.shape, generator=g)
        guide = torch.linspace(0, 1, 9) ** (0.6 + 0.3 * k) if curved else None
        grid = BilateralGrid(coeffs, guide)
        want = float((slice_rgb(rgb, grid) * torch.tensor(RGB_LUMA).view(3, 1, 1)).sum(0).mean())
        assert abs(meter.output_mean(grid) - want) <= 1e-3 * want
    assert abs(meter.input_mean() - float(luma.mean())) < 1e-6


# --------------------------------------------------------------------------------------------
# engines that jitter, and lighting that really changes


class _GainEngine(Engine):
    """A per-frame gain: auto exposure to ``target`` mean luma (``auto``) or a fixed gain, times
    ``bias``, with an optional ±``jitter`` alternating from frame to frame."""

    name = "gain-test"

    def __init__(self, auto: bool = True, gain: float = 1.5, jitter: float = 0.0) -> None:
        super().__init__(EngineCard("gain-test", "", 64, (4, 1, 1)))
        self.auto, self.gain, self.jitter, self.bias = auto, gain, jitter, 1.0
        self.n = 0
        self.cuts = 0

    def scene_cut(self) -> None:
        self.cuts += 1

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        self.n += 1
        g = min(8.0, 0.4 / max(float(thumb.luma.mean()), 1e-3)) if self.auto else self.gain
        g *= self.bias * (1.0 + self.jitter * (1 if self.n % 2 else -1))
        return BilateralGrid(BilateralGrid.identity(4, 1, 1).coeffs * g)


def _means(engine: Engine, temporal: TemporalFilter | None, frames: list[np.ndarray],
           at: int | None = None, bias: float = 1.0) -> np.ndarray:
    enh = Enhancer(engine, temporal=temporal)
    out = []
    for t, f in enumerate(frames):
        if t == at:
            engine.bias = bias  # type: ignore[attr-defined]
        out.append(float(luma709(enh.enhance_rgb(f)).mean()))
    return np.array(out)


def _mabd(m: np.ndarray, lo: int, hi: int) -> float:
    return float(np.abs(np.diff(m[lo:hi])).mean())


def _settle(m: np.ndarray, ref: np.ndarray, start: int, tol: float) -> int:
    bad = np.nonzero(np.abs(m[start:] - ref[start:]) > tol)[0]
    return 0 if len(bad) == 0 else int(bad[-1]) + 1


def test_adaptive_suppresses_jitter_and_follows_a_light_switched_on() -> None:
    """±10 % engine jitter reduced ≥ 5×; a lamp switched on at frame 30 followed within 0.5 s (15 frames)."""
    frames = _light_switch(96, 54, 60, 30)
    ref = _means(_GainEngine(), None, frames)  # the jitter-free engine, per frame
    off = _means(_GainEngine(jitter=0.1), None, frames)
    ada = _means(_GainEngine(jitter=0.1), TemporalFilter(DEFAULT_STRENGTH), frames)
    assert _mabd(off, 5, 29) / _mabd(ada, 5, 29) >= 5.0
    assert _mabd(off, 45, 60) / _mabd(ada, 45, 60) >= 5.0
    # the auto exposure's grid steps down ×2.5: a frozen grid would overshoot by far more than 0.02
    assert _settle(ada, ref, 30, 0.02) <= 15
    smooth = _means(_GainEngine(jitter=0.1), TemporalFilter(DEFAULT_STRENGTH, mode="smooth"), frames)
    assert _settle(smooth, ref, 30, 0.02) > _settle(ada, ref, 30, 0.02)  # the input's change opened the filter


def test_adaptive_follows_a_persistent_engine_change_without_input_change() -> None:
    """The engine changes its mind (×1.5) with a steady input: followed once it persists, within 8 frames
    (a plain blend at the same strength needs about 14)."""
    base = backlit_frame(96, 54, 0.0, seed=2)
    frames = [(base * 0.4).astype(np.uint8)] * 50
    ref = _means(_GainEngine(auto=False), None, frames, at=25, bias=1.5)
    ada = _means(_GainEngine(auto=False, jitter=0.1), TemporalFilter(DEFAULT_STRENGTH), frames, at=25, bias=1.5)
    step = abs(ref[30] - ref[20])
    assert _settle(ada, ref, 25, 0.1 * step + 0.005) <= 8
    assert _mabd(ada, 2, 24) * 5 <= _mabd(_means(_GainEngine(auto=False, jitter=0.1), None, frames), 2, 24)


def test_a_one_frame_engine_blip_is_damped_alike_at_a_clip_start_and_in_mid_scene() -> None:
    """One frame's +5 % of the engine on a steady input is no persistent change, on the clip's
    second frame (where the persistence statistics have no history yet) as much as later: short
    clips (the 4-frame phone scenes) are steadied as well as long ones."""
    frames = [(backlit_frame(96, 54, 0.0, seed=2) * 0.4).astype(np.uint8)] * 40
    engine = _GainEngine(auto=False)
    enh = Enhancer(engine, temporal=TemporalFilter(DEFAULT_STRENGTH))
    out = []
    for t, f in enumerate(frames):
        engine.bias = 1.05 if t in (1, 30) else 1.0
        out.append(float(luma709(enh.enhance_rgb(f)).mean()))
    start, mid = out[1] / out[0] - 1.0, out[30] / out[29] - 1.0
    assert 0.0 < mid < 0.3 * 0.05  # damped in mid-scene (a plain blend at 0.85 passes 15 % of it)
    assert abs(start - mid) <= 0.1 * mid


def test_temporal_filter_suppresses_engine_jitter_on_moving_frames() -> None:
    def flicker(temporal: TemporalFilter | None) -> dict:
        enh = Enhancer(_GainEngine(auto=False, jitter=0.1), temporal=temporal)
        meter = TemporalMeter()
        for t in range(24):
            dark = (backlit_frame(128, 72, t / 30, seed=2) * 0.4).astype(np.uint8)
            meter.update(dark, enh.enhance_rgb(dark))
        return meter.report()

    off = flicker(None)
    for mode in ("smooth", "adaptive"):
        on = flicker(TemporalFilter(mode=mode))
        assert on["mabd_over_gain"] < off["mabd_over_gain"] / 3
        assert on["flicker_over_gain"] < off["flicker_over_gain"]


def test_enhancer_tells_the_engine_about_cuts_before_it_predicts() -> None:
    eng = _GainEngine()
    enh = Enhancer(eng, temporal=TemporalFilter())
    for _, f in _scenes():
        enh.enhance_rgb(f)
    assert enh.scene_cuts == [8, 16] and eng.cuts == 2


def test_engine_every_nth_frame_runs_it_at_cuts_and_for_stills() -> None:
    """``engine_every=3``: frames 0, 3, 6, the cut at 8, 11, 14, the cut at 16, 19, 22; every frame
    still gets a temporal step and an engine-stage sample; a still always runs the engine."""
    eng = _GainEngine()
    enh = Enhancer(eng, temporal=TemporalFilter(), engine_every=3)
    frames = [f for _, f in _scenes()]
    for f in frames:
        enh.enhance_rgb(f)
    assert enh.scene_cuts == [8, 16]
    assert eng.n == enh.engine_runs == 9
    assert len(enh.clock.ms["engine"]) == len(frames) == len(enh.clock.ms["temporal"])
    enh.enhance_rgb(frames[0], new_scene=True)
    assert eng.n == 10
    with pytest.raises(ValueError, match="engine_every"):
        Enhancer(eng, engine_every=0)


def test_engine_every_other_frame_still_suppresses_jitter_and_follows_light() -> None:
    """The goals of the adaptive filter hold with the engine on every other frame: ±10 % jitter
    reduced ≥ 5×, a lamp switched on followed within 0.5 s."""
    frames = _light_switch(96, 54, 60, 30)
    ref = _means(_GainEngine(), None, frames)

    def means(engine: _GainEngine, temporal: TemporalFilter | None) -> np.ndarray:
        enh = Enhancer(engine, temporal=temporal, engine_every=2)
        return np.array([float(luma709(enh.enhance_rgb(f)).mean()) for f in frames])

    off = means(_GainEngine(jitter=0.1), None)
    ada = means(_GainEngine(jitter=0.1), TemporalFilter(DEFAULT_STRENGTH))
    assert _mabd(off, 5, 29) / _mabd(ada, 5, 29) >= 5.0
    assert _settle(ada, ref, 30, 0.02) <= 15


# --------------------------------------------------------------------------------------------
# a clip with real cuts, through the transcode pipeline


def _decode(path: Path, first: int, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= first + count:
                break
            if k >= first:
                out.append(cv2.resize(f.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA))
    return out


def test_grid_resets_at_every_real_cut_of_a_concatenated_clip_and_nowhere_else(tmp_path: Path) -> None:
    """Segments from different sources (the shared night and daytime videos when present, synthetic
    backlit clips, one of them with a lamp switched on inside) concatenated with PyAV; the pipeline
    must reset the grid exactly at the joins."""
    from streamfix.engines import create_engine
    from streamfix.events import Bus
    from streamfix.io.writer import EncodeOptions
    from streamfix.pipeline import transcode

    size, n = (256, 144), 12
    segments = [
        [backlit_frame(*size, t / 30, seed=0) for t in range(n)],
        [backlit_frame(*size, t / 30, seed=1) for t in range(n)],  # same layout, another scene
        _light_switch(*size, n, n // 2),
    ]
    dark = SHARED / "video_night_city" / "dark.mp4"
    day = SHARED / "video_night_city" / "normal_daytime_same_scene.mp4"
    if dark.is_file() and day.is_file():
        segments[1:1] = [_decode(dark, 0, n, size), _decode(day, 0, n, size), _decode(dark, 120, n, size)]
    src = tmp_path / "concat.mp4"
    truth = write_segments(src, segments, size, crf=20)
    enh = Enhancer(create_engine("identity"), temporal=TemporalFilter())
    res = transcode(src, tmp_path / "out.mp4", enh, EncodeOptions(codec="libx264", preset="ultrafast"), Bus())
    assert res.frames == n * len(segments)
    assert res.scene_cuts == truth
