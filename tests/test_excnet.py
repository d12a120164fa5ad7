"""The excnet engine (S-curve, block loss, warm-started test-time optimisation) and online SCI adaptation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from streamfix.adapt import OnlineAdapter
from streamfix.engines import create_engine
from streamfix.engines.excnet import ExCNetEngine, curve_grid
from streamfix.engines.excnet_net import (
    LOGIT_RANGE,
    PHI_MAX,
    CurveEstimator,
    block_loss,
    block_stats,
    curved_block_means,
    s_curve,
    s_curve_slope,
)
from streamfix.engines.registry import EngineCard, load_card
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.kernels import slice_rgb_cpu
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import luma709
from streamfix.synth import backlit_frame

LUMA = np.array([0.2126, 0.7152, 0.0722])


def test_s_curve_lifts_shadows_holds_highlights_and_stays_monotonic() -> None:
    x = torch.linspace(0, 1, 1001)
    assert torch.allclose(s_curve(x, 0.0, 0.0), x)
    for ps in (0.0, 0.3, PHI_MAX):
        for ph in (0.0, 0.3, PHI_MAX):
            y = s_curve(x, ps, ph)
            assert bool((y[1:] - y[:-1] >= -1e-6).all()), (ps, ph)
            assert float(s_curve_slope(x, ps, ph).min()) > 0.0
    assert float(s_curve(torch.tensor(0.1), 0.5, 0.0)) > 0.25  # shadows lifted
    assert float(s_curve(torch.tensor(0.9), 0.0, 0.5)) < 0.85  # highlights pulled down
    assert float(s_curve(torch.tensor(0.9), 0.5, 0.0)) == pytest.approx(0.9, abs=1e-3)  # … and kept by φs alone


def test_block_loss_terms() -> None:
    base = torch.tensor([[0.1, 0.3], [0.2, 0.4]])
    # the pairwise term is zero when every neighbour difference is kept: only the unary term is left
    shifted = base + 0.2
    assert float(block_loss(shifted, base, 0.5, 10.0)) == pytest.approx(float((shifted - 0.5).square().mean()))
    # flattening everything to the target zeroes the unary term but pays for lost contrast
    flat = torch.full_like(base, 0.5)
    assert float(block_loss(flat, base, 0.5, 0.0)) == 0.0
    assert float(block_loss(flat, base, 0.5, 10.0)) > float(block_loss(shifted, base, 0.5, 10.0))


def test_block_histograms_give_the_curved_block_means() -> None:
    luma = torch.rand(64, 96) ** 2
    st = block_stats(luma)
    exact = torch.nn.functional.adaptive_avg_pool2d(s_curve(luma, 0.5, 0.3)[None, None], st.blocks)[0, 0]
    approx = curved_block_means(st, torch.tensor(0.5), torch.tensor(0.3))
    assert float((approx - exact).abs().max()) < 0.01


def _dark_backlit(t: float = 0.0, scale: float = 0.5) -> np.ndarray:
    return (backlit_frame(192, 108, t, seed=4) * scale).astype(np.uint8)


def test_fit_finds_the_loss_minimum_and_warm_start_converges_at_once() -> None:
    luma = thumbnail_from_rgb(_dark_backlit(scale=0.8), 256).luma
    st = block_stats(luma)
    reach = PHI_MAX * torch.sigmoid(torch.tensor([-LOGIT_RANGE, LOGIT_RANGE]))  # what the network can output
    grid = torch.linspace(float(reach[0]), float(reach[1]), 41)
    best = min(
        float(block_loss(curved_block_means(st, a, b), st.base)) for a in grid for b in grid
    )
    est = CurveEstimator(seed=0)
    first = est.fit(luma, 150)
    assert first.converged and first.iterations > 3
    assert first.loss <= best * 1.01
    again = est.fit(luma, 10)  # the same frame again: the warm start is already there
    assert again.converged and again.iterations == 0
    assert (again.phi_s, again.phi_h) == pytest.approx((first.phi_s, first.phi_h), abs=1e-4)
    brighter = est.fit(thumbnail_from_rgb(_dark_backlit(scale=1.0), 256).luma, 40)
    assert brighter.iterations > 0 and brighter.phi_s < first.phi_s  # less lift for a brighter frame
    assert 0.0 <= brighter.phi_s <= PHI_MAX and 0.0 <= brighter.phi_h <= PHI_MAX


def test_curve_grid_applies_the_curve_to_luma_and_keeps_colour_ratios() -> None:
    assert torch.allclose(curve_grid(0.0, 0.0, 8).coeffs, BilateralGrid.identity(8, 1, 1).coeffs, atol=1e-6)
    rng = np.random.default_rng(0)
    rgb = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    out = slice_rgb_cpu(rgb, curve_grid(0.5, 0.3, 32)).astype(np.float64) / 255
    y_in = (rgb / 255.0) @ LUMA
    want = s_curve(torch.from_numpy(y_in).float(), 0.5, 0.3).numpy()
    y_out = out @ LUMA
    inside = (out.min(-1) > 0.002) & (out.max(-1) < 0.998)  # channels pushed out of [0, 1] are clipped
    assert inside.mean() > 0.5
    assert np.abs(y_out - want)[inside].mean() < 0.003
    # chrominance: colour differences scale with the luminance gain (saturation 1)
    mid = (y_in > 0.2) & (y_in < 0.6) & (out.max(-1) < 0.99)
    d_in = (rgb / 255.0 - y_in[..., None])[mid]
    d_out = (out - y_out[..., None])[mid]
    gain = (y_out / np.maximum(y_in, 1e-3))[mid]
    assert np.corrcoef(d_out.ravel(), (d_in * gain[:, None]).ravel())[0, 1] > 0.97


def test_engine_from_registry_brightens_a_dark_frame() -> None:
    eng = create_engine("excnet")
    frame = _dark_backlit(scale=0.35)
    grid = eng.predict(thumbnail_from_rgb(frame, eng.card.thumbnail))
    assert grid.shape == tuple(eng.card.grid)
    out = slice_rgb_cpu(frame, grid)
    assert luma709(out).mean() > 1.3 * luma709(frame).mean()


def test_iteration_budget_and_scene_cut() -> None:
    eng = create_engine("excnet")
    assert isinstance(eng, ExCNetEngine)
    eng.set_iterations(0)
    a = thumbnail_from_rgb(_dark_backlit(scale=0.3), 256)
    b = thumbnail_from_rgb(backlit_frame(192, 108, 0.0, seed=9), 256)
    eng.predict(a)
    assert eng.history[0].iterations > 0  # the first frame gets the first-frame budget
    eng.predict(b)
    assert eng.history[1].iterations == 0  # budget 0: predicts with the network as it is
    eng.scene_cut()
    eng.predict(b)
    assert eng.history[2].iterations > 0  # after a cut: the first-frame budget again
    with pytest.raises(ValueError):
        eng.set_iterations(-1)


def test_hold_band_keeps_a_static_scene_still_and_follows_a_real_change() -> None:
    """Later frames step only on a clear gradient: sensor noise on a static scene leaves the curve
    where the first frame put it; a real brightness change still moves it."""
    eng = create_engine("excnet")
    assert isinstance(eng, ExCNetEngine)
    rng = np.random.default_rng(0)
    base = _dark_backlit(scale=0.3).astype(np.int16)
    for _ in range(5):
        noisy = np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8)
        eng.predict(thumbnail_from_rgb(noisy, eng.card.thumbnail))
    first, later = eng.history[0], eng.history[1:]
    assert first.iterations > 0 and all(r.iterations == 0 for r in later)
    assert all((r.phi_s, r.phi_h) == (first.phi_s, first.phi_h) for r in later)
    eng.predict(thumbnail_from_rgb(_dark_backlit(scale=0.9), eng.card.thumbnail))  # lights up 3×
    lit = eng.history[-1]
    assert lit.iterations > 0 and (lit.phi_s, lit.phi_h) != (first.phi_s, first.phi_h)


def test_local_cells_lift_the_dark_side_more() -> None:
    card = load_card("excnet")
    eng = ExCNetEngine(dataclasses.replace(card, grid=(16, 2, 2)))
    img = np.full((108, 192, 3), 200, np.uint8)
    img[:, :96] = 20  # dark left half, bright right half
    res = eng.fit(thumbnail_from_rgb(img, 256))
    assert res.local is not None and tuple(res.local.shape) == (2, 2, 2)
    assert float(res.local[0, :, 0].mean()) > float(res.local[0, :, 1].mean()) + 0.05  # φs left > right
    grid = eng.predict(thumbnail_from_rgb(img, 256))
    assert grid.shape == (16, 2, 2)


# --------------------------------------------------------------------------------------------
# online SCI adaptation


class _SCILike:
    name = "sci-like"

    def __init__(self) -> None:
        from streamfix.engines.sci_net import EnhanceNetwork

        torch.manual_seed(0)
        self.card = EngineCard("sci-like", "", 64, (4, 2, 2))
        self.net = EnhanceNetwork().eval()
        self.seen: list[float] = []

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        self.seen.append(float(self.net.in_conv[0].weight.detach().sum()))
        return BilateralGrid.identity(4, 2, 2)


def test_online_adaptation_trains_during_the_window_only() -> None:
    eng = _SCILike()
    before = {k: v.clone() for k, v in eng.net.state_dict().items()}
    # a window of 5 frames; a budget far above the 10 steps' need (the default, 2 × the window,
    # cut them short on a loaded machine)
    ad = OnlineAdapter(eng, seconds=0.5, fps=10.0, steps=2, budget=120.0)
    x = (torch.from_numpy(backlit_frame(64, 36, 0.0, seed=1)).permute(2, 0, 1).float() / 255.0) * 0.3
    for _ in range(8):
        ad.predict(Thumbnail(x, x.mean(0)))
    rep = ad.report()
    assert rep["frames_adapted"] == 5 and rep["steps"] == 10
    assert any(not torch.equal(before[k], v) for k, v in eng.net.state_dict().items())
    assert len(set(eng.seen[5:])) == 1 and len(set(eng.seen[:5])) == 5  # frozen after the window
    assert not eng.net.training


def test_warm_up_adapts_before_the_first_frame_and_freezes() -> None:
    eng = _SCILike()
    from streamfix.engines.sci_net import sci_loss

    frames = [(torch.from_numpy(backlit_frame(64, 36, t / 10, seed=1)).permute(2, 0, 1).float() / 255.0) * 0.3
              for t in range(4)]
    with torch.no_grad():
        before = float(sci_loss(frames[0][None], eng.net(frames[0][None])))
    # a budget far above the 40 steps' need: on a loaded machine the default 2 s cut them short
    ad = OnlineAdapter(eng, seconds=1.0, fps=4.0, steps=10, budget=120.0)
    ad.warm_up(frames)
    with torch.no_grad():
        after = float(sci_loss(frames[0][None], eng.net(frames[0][None])))
    assert ad.report()["steps"] == 40 and after < before
    for f in frames:
        ad.predict(Thumbnail(f, f.mean(0)))
    assert ad.report()["steps"] == 40 and len(set(eng.seen)) == 1  # frozen: no training while it plays


def test_online_adaptation_stops_at_the_time_budget() -> None:
    eng = _SCILike()
    ad = OnlineAdapter(eng, seconds=10.0, fps=30.0, budget=0.0)
    x = torch.rand(3, 24, 32) * 0.2
    ad.predict(Thumbnail(x, x.mean(0)))
    assert ad.report()["steps"] == 0


def test_adapter_needs_an_sci_network() -> None:
    with pytest.raises(ValueError):
        OnlineAdapter(create_engine("identity"), seconds=1.0)


# --------------------------------------------------------------------------------------------
# command line


def test_enhance_flags(cli, clips, tmp_path: Path) -> None:
    src = clips.h264.path if hasattr(clips, "h264") else clips.bframes.path
    out = tmp_path / "out.mp4"
    r = cli("enhance", "-i", src, "-o", out, "--engine", "excnet", "--excnet-iters", "2", "--temporal", "smooth",
            "--device", "cpu", "--preset", "ultrafast", "-q")
    assert r.rc == 0, r.err
    assert out.stat().st_size > 0
    bad = cli("enhance", "-i", src, "-o", tmp_path / "x.mp4", "--engine", "identity", "--excnet-iters", "2",
              "--device", "cpu", "-q")
    assert bad.rc != 0 and "--excnet-iters" in bad.one_error()
    bad = cli("enhance", "-i", src, "-o", tmp_path / "y.mp4", "--engine", "identity", "--adapt", "1",
              "--device", "cpu", "-q")
    assert bad.rc != 0 and "--adapt" in bad.one_error()
