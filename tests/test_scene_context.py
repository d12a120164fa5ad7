"""The held global context (streamfix/engines/scene_context.py) and BacklitNet's use of it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from streamfix.engines import create_engine
from streamfix.engines.scene_context import FOLLOW, FOLLOW_STOPS, HOLD_STOPS, SceneContext
from streamfix.enhancer import Enhancer
from streamfix.grid.bilateral import BilateralGrid
from streamfix.grid.kernels import slice_rgb_cpu
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import luma709
from streamfix.synth import backlit_frame
from streamfix.temporal import TemporalFilter

SHIPPED = Path(__file__).resolve().parents[1] / "engines" / "backlitnet.safetensors"


def test_context_is_held_within_the_tolerance_and_followed_beyond_it() -> None:
    ctx = SceneContext()
    a, b = torch.zeros(3), torch.ones(3)
    assert torch.equal(ctx.update(a, 0.25), a) and ctx.last_weight == 1.0  # a shot's first frame: its own
    out = ctx.update(b, 0.25 * 2 ** (HOLD_STOPS * 0.9))  # within the tolerance: drifts at FOLLOW
    torch.testing.assert_close(out, torch.full((3,), FOLLOW))
    ctx.reset()
    ctx.update(a, 0.25)
    assert torch.equal(ctx.update(b, 0.25 * 2 ** -(FOLLOW_STOPS + 0.01)), b)  # half a stop darker: followed
    ctx.reset()
    ctx.update(a, 0.25)
    mid = (HOLD_STOPS + FOLLOW_STOPS) / 2  # between the two: the weight ramps
    w = float(ctx.update(b, 0.25 * 2**mid)[0])
    assert FOLLOW < w < 1.0 and math.isclose(w, FOLLOW + (1 - FOLLOW) * 0.5, rel_tol=1e-6)


def test_a_slow_drift_of_the_exposure_is_followed_with_a_bounded_lag() -> None:
    """The held exposure moves with the weight it was blended with: a slow pan into brighter
    light (a stop over 60 frames) is held at first, then followed less than a quarter stop behind."""
    ctx = SceneContext()
    held = []
    for k in range(61):
        held.append(float(ctx.update(torch.tensor([k / 60]), 0.1 * 2 ** (k / 60))[0]))  # vector = its exposure
        if k < 8:
            assert ctx.last_weight in (1.0, FOLLOW)
    assert held[60] > 1.0 - 0.25 and ctx.last_weight > FOLLOW


def test_context_arguments_and_shape_changes() -> None:
    with pytest.raises(ValueError, match="follow"):
        SceneContext(follow=1.5)
    with pytest.raises(ValueError, match="hold_stops"):
        SceneContext(hold_stops=0.5, follow_stops=0.5)
    ctx = SceneContext()
    ctx.update(torch.zeros(3), 0.2)
    assert torch.equal(ctx.update(torch.ones(5), 0.2), torch.ones(5))  # another network: taken whole
    assert ctx.update(torch.zeros(1), 0.0).shape == (1,)  # a black frame is a valid exposure


@pytest.fixture(scope="module")
def backlitnet():  # noqa: ANN201
    if not SHIPPED.is_file():
        pytest.skip("engines/backlitnet.safetensors not trained yet")
    torch.set_num_threads(1)
    return create_engine("backlitnet")


def _gain(grid: BilateralGrid, rgb: np.ndarray, cols: slice) -> float:
    out = slice_rgb_cpu(np.ascontiguousarray(rgb), grid)
    return float(luma709(out[:, cols]).mean() / luma709(rgb[:, cols]).mean())


def test_backlitnet_holds_the_scene_exposure_when_dark_content_enters(backlitnet) -> None:  # noqa: ANN001
    """A dark building entering the right quarter of the frame (dark.mp4's pan; the frame's mean
    luma falls a quarter stop): with the context held, the rest of the frame keeps its rendering;
    the frame's own context re-exposes it."""
    scene = backlit_frame(256, 144, 0.3)
    entered = scene.copy()
    entered[:, 192:] = (entered[:, 192:] * 0.3).astype(np.uint8)
    assert HOLD_STOPS < -math.log2(luma709(entered).mean() / luma709(scene).mean()) < FOLLOW_STOPS
    rest = slice(0, 115)  # columns the building does not reach (nor its grid cells)
    t0, t1 = thumbnail_from_rgb(scene, 256), thumbnail_from_rgb(entered, 256)

    backlitnet.carry_scene(False)
    g0 = backlitnet.predict(t0)
    own = backlitnet.predict(t1)
    backlitnet.carry_scene(True)
    backlitnet.scene_cut()
    assert torch.equal(backlitnet.predict(t0).coeffs, g0.coeffs)  # a shot's first frame: its own context
    held = backlitnet.predict(t1)
    base = _gain(g0, scene, rest)
    moved_own, moved_held = abs(_gain(own, scene, rest) / base - 1), abs(_gain(held, scene, rest) / base - 1)
    assert moved_held < 0.5 * moved_own, (moved_held, moved_own)
    backlitnet.scene_cut()  # after a cut the new frame is judged on its own
    assert torch.equal(backlitnet.predict(t1).coeffs, own.coeffs)
    backlitnet.carry_scene(False)


def test_backlitnet_follows_a_light_switched_on_at_once(backlitnet) -> None:  # noqa: ANN001
    bright = backlit_frame(256, 144, 0.3)
    dim = (bright * 0.4).astype(np.uint8)  # the light switched on: over a stop brighter
    backlitnet.carry_scene(False)
    own = backlitnet.predict(thumbnail_from_rgb(bright, 256))
    backlitnet.carry_scene(True)
    backlitnet.predict(thumbnail_from_rgb(dim, 256))
    assert torch.equal(backlitnet.predict(thumbnail_from_rgb(bright, 256)).coeffs, own.coeffs)
    backlitnet.carry_scene(False)


def test_the_enhancer_holds_the_context_only_with_a_temporal_filter(backlitnet) -> None:  # noqa: ANN001
    a = thumbnail_from_rgb(backlit_frame(128, 72, 0.4), 256)
    b = thumbnail_from_rgb(backlit_frame(128, 72, 0.4, seed=3), 256)  # another video, alike in exposure
    backlitnet.carry_scene(False)
    own_a, own_b = backlitnet.predict(a), backlitnet.predict(b)
    assert torch.equal(backlitnet.predict(a).coeffs, own_a.coeffs)  # stateless without a temporal filter

    Enhancer(backlitnet, temporal=TemporalFilter())
    assert backlitnet.context is not None
    backlitnet.predict(a)
    assert not torch.equal(backlitnet.predict(b).coeffs, own_b.coeffs)  # within one video: a's context held
    Enhancer(backlitnet, temporal=TemporalFilter())  # the next video holds nothing of this one's
    assert torch.equal(backlitnet.predict(b).coeffs, own_b.coeffs)
    Enhancer(backlitnet)  # stills, and video with --temporal off: every frame on its own
    assert backlitnet.context is None
