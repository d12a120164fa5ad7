"""Temporal propagation: blending, scene cuts, and the flicker it removes (EVAL.md metrics)."""

from __future__ import annotations

import numpy as np
import torch

from streamfix.engines.registry import Engine, EngineCard
from streamfix.enhancer import Enhancer
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import TemporalMeter
from streamfix.synth import backlit_frame
from streamfix.temporal import SceneCutDetector, TemporalFilter, histogram_distance, luma_histogram


def _thumb(rgb: np.ndarray) -> Thumbnail:
    return thumbnail_from_rgb(rgb, 96)


def test_histogram_distance_range() -> None:
    a = luma_histogram(torch.zeros(10, 10))
    b = luma_histogram(torch.ones(10, 10))
    assert histogram_distance(a, a) == 0.0
    assert abs(histogram_distance(a, b) - 1.0) < 1e-6


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


def test_filter_blends_and_resets_at_cut() -> None:
    filt = TemporalFilter(strength=0.75)
    scenes = _scenes()
    for i, (_, f) in enumerate(scenes[:10]):
        gain = 2.0 if i < 8 else 3.0
        step = filt.update(BilateralGrid(BilateralGrid.identity(2, 2, 2).coeffs * gain), _thumb(f))
        if i == 7:
            assert abs(float(step.grid.coeffs[0, 0, 0, 0]) - 2.0) < 1e-5
        if i == 8:  # the cut: the new grid is taken as is
            assert step.scene_cut and abs(float(step.grid.coeffs[0, 0, 0, 0]) - 3.0) < 1e-5
    assert filt.cuts == 1


class _JitterEngine(Engine):
    """A per-frame engine whose brightness jitters ±10 % from frame to frame."""

    name = "jitter-test"

    def __init__(self) -> None:
        super().__init__(EngineCard("jitter-test", "", 64, (4, 4, 4)))
        self.n = 0

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        self.n += 1
        gain = 1.5 * (1.1 if self.n % 2 else 0.9)
        return BilateralGrid(BilateralGrid.identity(4, 4, 4).coeffs * gain)


def _flicker(temporal: TemporalFilter | None) -> dict:
    enh = Enhancer(_JitterEngine(), temporal=temporal)
    meter = TemporalMeter()
    for t in range(24):
        frame = backlit_frame(128, 72, t / 30, seed=2)
        dark = (frame * 0.4).astype(np.uint8)
        meter.update(dark, enh.enhance_rgb(dark))
    return meter.report()


def test_temporal_filter_suppresses_engine_jitter() -> None:
    off = _flicker(None)
    on = _flicker(TemporalFilter(strength=0.8))
    assert on["mabd_over_gain"] < off["mabd_over_gain"] / 3
    assert on["flicker_over_gain"] < off["flicker_over_gain"]
