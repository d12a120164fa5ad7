"""BacklitNet: network shapes and identity start, batched slicing vs the reference, gradients,
weights round trip, the shipped engine's behaviour, synthetic pairs and a training smoke test."""

from __future__ import annotations

import argparse
import json
import math
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamfix.engines import create_engine
from streamfix.engines.backlitnet import network_input
from streamfix.engines.backlitnet_net import (
    BacklitNet,
    BacklitNetConfig,
    batched_interp1d,
    load_backlitnet,
    luma_histogram_features,
    save_backlitnet,
    slice_batch,
    soft_max_pool,
)
from streamfix.enhancer import Enhancer
from streamfix.errors import StreamfixError, UsageError
from streamfix.grid.bilateral import BilateralGrid, interp1d
from streamfix.grid.slicing import slice_rgb
from streamfix.grid.thumbnail import thumbnail_from_rgb
from streamfix.metrics import exposure_stats, psnr
from streamfix.train.backlitnet import (
    _ema_update,
    backlitnet_loss,
    list_pairs,
    split_names,
    ssim_torch,
    toe_penalty,
    train_backlitnet,
)
from streamfix.train.synthetic import KINDS, make_pair, write_synthetic_pairs
from tests.shared_data import shared

SMALL = BacklitNetConfig(input_size=64, width=8)


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A textured, well-exposed test photo (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.35 + 0.3 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    rgb = np.stack([base, base * 0.9 + 0.08, base * 0.8 + 0.1], -1) + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def test_network_shapes_parameter_budget_and_identity_start() -> None:
    torch.manual_seed(0)
    net = BacklitNet().eval()
    assert sum(p.numel() for p in net.parameters()) <= 400_000
    with torch.no_grad():
        coeffs, guide, sal = net(torch.rand(2, 3, 128, 128))
        wide, _, _ = net(torch.rand(1, 3, 72, 128))  # any input size works
    assert coeffs.shape == (2, 12, 8, 16, 16) and wide.shape == (1, 12, 8, 16, 16)
    assert guide.shape == (2, 16) and sal.shape == (2, 1, 32, 32)
    assert torch.all(guide[:, 1:] >= guide[:, :-1])
    assert torch.allclose(guide[:, 0], torch.zeros(2)) and torch.allclose(guide[:, -1], torch.ones(2))
    # an untrained network predicts (almost) the identity grid and the identity guide
    ident = BilateralGrid.identity(8, 16, 16).coeffs
    assert (coeffs - ident).abs().max() < 0.05
    assert torch.allclose(guide, torch.linspace(0, 1, 16).expand(2, 16), atol=1e-3)
    assert float(sal.min()) >= 0 and float(sal.max()) <= 1


def test_batched_slicing_matches_reference_and_passes_gradients() -> None:
    torch.manual_seed(1)
    rgb = torch.rand(2, 3, 20, 28)
    coeffs = (BilateralGrid.identity(4, 3, 5).coeffs[None] + 0.2 * torch.randn(2, 12, 4, 3, 5)).requires_grad_()
    guide = torch.sort(torch.rand(2, 6), 1).values
    guide[:, 0], guide[:, -1] = 0.0, 1.0
    guide.requires_grad_()
    out = slice_batch(rgb, coeffs, guide)
    for b in range(2):
        ref = slice_rgb(rgb[b], BilateralGrid(coeffs[b].detach(), guide[b].detach()))
        assert torch.allclose(out[b], ref, atol=1e-5)
    out.sum().backward()
    assert coeffs.grad is not None and float(coeffs.grad.abs().sum()) > 0
    assert guide.grad is not None and float(guide.grad.abs().sum()) > 0
    x = torch.rand(2, 7)
    assert torch.allclose(batched_interp1d(guide.detach(), x)[1], interp1d(guide[1].detach(), x[1]))


def test_network_input_is_square_and_static() -> None:
    assert network_input(torch.rand(3, 144, 256), 128).shape == (1, 3, 128, 128)
    assert network_input(torch.rand(3, 40, 30), 64).shape == (1, 3, 64, 64)


def test_weights_round_trip_and_bad_files(tmp_path: Path) -> None:
    torch.manual_seed(2)
    net = BacklitNet(SMALL)
    path = tmp_path / "w.safetensors"
    save_backlitnet(net, path, {"command": "test"})
    loaded, meta = load_backlitnet(path)
    assert loaded.config == SMALL and meta["command"] == "test"
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net.eval()(x)[0], loaded(x)[0])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a safetensors"):
        load_backlitnet(bad)
    with pytest.raises(UsageError, match="does not exist"):
        create_engine("backlitnet", weights=tmp_path / "missing.safetensors")


def test_engine_card_mismatch_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_backlitnet(BacklitNet(BacklitNetConfig(input_size=64, width=8, depth=4)), path)
    with pytest.raises(StreamfixError, match="differs from the card"):
        create_engine("backlitnet", weights=path)


@pytest.fixture(scope="module")
def shipped() -> Enhancer:
    card_weights = Path(__file__).resolve().parents[1] / "engines" / "backlitnet.safetensors"
    if not card_weights.is_file():
        pytest.skip("engines/backlitnet.safetensors not trained yet")
    torch.set_num_threads(2)
    return Enhancer(create_engine("backlitnet"))


def test_shipped_engine_grid(shipped: Enhancer) -> None:
    img = _scene(180, 320)
    grid = shipped.engine.predict(thumbnail_from_rgb(img, shipped.engine.card.thumbnail))
    assert grid.coeffs.shape == (12, 8, 16, 16) and grid.guide is not None and grid.guide.shape == (16,)
    assert torch.all(grid.guide[1:] >= grid.guide[:-1])
    assert shipped.enhance_rgb(img).shape == img.shape
    # the engine hands the network its input channels-last on the CPU (faster); same numbers
    thumb = thumbnail_from_rgb(img, shipped.engine.card.thumbnail)
    engine = shipped.engine
    with torch.inference_mode():
        ref = engine.net(network_input(thumb.rgb, engine.input_size).contiguous())  # type: ignore[attr-defined]
    for got, want in zip(engine.forward(thumb.rgb), ref, strict=True):  # type: ignore[attr-defined]
        torch.testing.assert_close(got, want[0].reshape(got.shape), atol=1e-5, rtol=1e-5)


@pytest.mark.shared_data
def test_shipped_engine_leaves_well_exposed_frames_nearly_unchanged(shipped: Enhancer) -> None:
    """The retouched targets of the validation halves (never trained on) are well exposed."""
    from statistics import median

    from streamfix.metrics import read_rgb

    scores = []
    for name in ("fivek_dpe_expertc_deeplpf", "lol_v1_train_pairs_subset"):
        for _, _, tgt in list_pairs(shared(name), "val"):
            img = read_rgb(tgt)
            scores.append(psnr(shipped.enhance_rgb(img), img))
    assert median(scores) > 32.0 and min(scores) > 20.0


def test_shipped_engine_lifts_shadows_and_holds_highlights(shipped: Enhancer) -> None:
    from streamfix.synth import backlit_frame

    frame = backlit_frame(320, 180, 0.0)
    out = shipped.enhance_rgb(frame)
    before, after = exposure_stats(frame), exposure_stats(out)
    assert after["crushed_pct"] < 0.5 * before["crushed_pct"]
    assert after["clipped_pct"] <= before["clipped_pct"] + 0.5
    # an over-exposed frame is pulled back, not brightened further
    bright = np.clip(_scene().astype(np.int32) + 110, 0, 255).astype(np.uint8)
    assert exposure_stats(shipped.enhance_rgb(bright))["mean_y"] < exposure_stats(bright)["mean_y"]


def test_synthetic_kinds_and_writer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    clean = _scene()
    for kind in KINDS:
        inp, tgt, info = make_pair(clean, kind, rng)
        assert inp.shape == tgt.shape == clean.shape and inp.dtype == np.uint8 and info["kind"] == kind
    inp, tgt, _ = make_pair(clean, "identity", rng)
    assert np.array_equal(inp, clean) and np.array_equal(tgt, clean)
    low, _, _ = make_pair(clean, "lowlight", rng)
    assert low.mean() < clean.mean()
    for _ in range(5):  # a flat rendition: a narrower tonal range around a mean that moves little
        flat, tgt, info = make_pair(clean, "flat", rng)
        y_in, y_tgt = flat.astype(np.float32).mean(axis=2), tgt.astype(np.float32).mean(axis=2)
        assert y_in.std() < 0.9 * y_tgt.std() and abs(y_in.mean() - y_tgt.mean()) < 0.15 * 255
        assert 0.5 <= info["contrast"] <= 0.85  # type: ignore[operator]
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        make_pair(clean, "sepia", rng)
    src = tmp_path / "clean.png"
    cv2.imwrite(str(src), clean)
    m = write_synthetic_pairs([src], tmp_path / "syn", per_image=3, black_white=1, long_side=64)
    names = sorted(p.name for p in (tmp_path / "syn" / "input").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "syn" / "target").iterdir())
    assert len(names) == len(m["pairs"]) == 5  # type: ignore[arg-type]
    first = next(n for n in names if n.startswith("clean"))
    assert max(cv2.imread(str(tmp_path / "syn" / "input" / first)).shape[:2]) == 64


def test_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    names = [f"{i}.png" for i in range(25)]
    train, val = split_names(names, "train"), split_names(list(reversed(names)), "val")
    assert len(train) == 13 and len(val) == 12 and not set(train) & set(val)
    assert sorted(train + val) == sorted(names)
    with pytest.raises(ValueError):
        split_names(names, "test")
    (tmp_path / "input").mkdir()
    with pytest.raises(StreamfixError, match="not a paired set"):
        list_pairs(tmp_path)


def test_losses() -> None:
    torch.manual_seed(3)
    a = torch.rand(2, 3, 24, 24)
    assert abs(float(ssim_torch(a, a)) - 1.0) < 1e-5
    coeffs = BilateralGrid.identity(4, 2, 2).coeffs[None].expand(2, -1, -1, -1, -1)
    sal = torch.full((2, 1, 6, 6), 0.5)
    loss, terms = backlitnet_loss(a, a, a, sal, coeffs)
    assert terms["l1"] == 0 and terms["tv"] == 0 and terms["saliency"] == 0
    worse, _ = backlitnet_loss((a * 0.5), a, a, sal, coeffs)
    assert float(worse) > float(loss)
    # the crush term: only pixels pushed below luma 0.1 where the target is not crushed count
    target = torch.full((1, 3, 24, 24), 0.3)
    crushed, dark_target = torch.full((1, 3, 24, 24), 0.05), torch.full((1, 3, 24, 24), 0.05)
    one = coeffs[:1]
    _, terms = backlitnet_loss(crushed, target, target, sal[:1], one, weights={"crush": 1.0})
    assert abs(terms["crush"] - 0.5) < 1e-5  # (0.1 − 0.05) / 0.1 on every pixel
    _, terms = backlitnet_loss(crushed, dark_target, target, sal[:1], one, weights={"crush": 1.0})
    assert terms["crush"] == 0.0  # the target is crushed itself
    _, terms = backlitnet_loss(crushed, target, target, sal[:1], one)
    assert "crush" not in terms  # off by default
    # the grid's total variation: a grid whose cells differ pays in proportion to the tv weight
    patchy = coeffs.clone()
    patchy[:, :, :, 0, 0] += 0.3
    base, terms = backlitnet_loss(a, a, a, sal, patchy, weights={"tv": 0.0})
    heavy, _ = backlitnet_loss(a, a, a, sal, patchy, weights={"tv": 2.0})
    assert terms["tv"] > 0 and abs(float(heavy - base) - 2.0 * terms["tv"]) < 1e-5


def _curve_grid(gain: float, offset: float) -> torch.Tensor:
    """``(1, 12, 8, 2, 2)`` coefficients mapping every channel ``v → gain·v + offset`` in every cell."""
    c = torch.zeros(1, 3, 4, 8, 2, 2)
    for ch in range(3):
        c[:, ch, ch] = gain
    c[:, :, 3] = offset
    return c.view(1, 12, 8, 2, 2)


def test_toe_penalty() -> None:
    """Curves no steeper than their gain (identity, a lift of black) cost nothing; a contrast
    boost that pushes the shadows down (slope 2 > gain 2 − 0.1/y) does, and its gradient pulls
    the offset up."""
    assert float(toe_penalty(_curve_grid(1.0, 0.0), None)) < 1e-6
    assert float(toe_penalty(_curve_grid(2.0, 0.05), None)) == 0.0
    guide = torch.linspace(0.0, 1.0, 16) ** 0.7  # a guide curve changes the blend, not the verdict
    assert float(toe_penalty(_curve_grid(2.0, 0.05), guide[None])) == 0.0
    toe = _curve_grid(2.0, -0.1).requires_grad_()
    pen = toe_penalty(toe, None)
    assert 0.1 < float(pen.detach()) <= 1.0
    pen.backward()
    assert float(toe.grad.view(1, 3, 4, 8, 2, 2)[:, :, 3].sum()) < 0  # raising the offset lowers it
    _, terms = backlitnet_loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16),
                               torch.full((1, 1, 4, 4), 0.5), toe.detach(), weights={"toe": 1.0})
    assert abs(terms["toe"] - float(pen.detach())) < 1e-6
    # min_gain = 1: a black point pulled down (slope 1.1, gain < 1 up to y = 0.25) is free, a
    # brightening toe (slope 4, gain 4 − 0.1/y: from 1.5 at y = 0.04 to 3.6) still costs
    black_point = _curve_grid(1.1, -0.05)
    assert float(toe_penalty(black_point, None)) > 0.05
    assert float(toe_penalty(black_point, None, min_gain=1.0)) == 0.0
    lifted = _curve_grid(4.0, -0.1)
    assert float(toe_penalty(lifted, None, min_gain=1.0)) > 0.02


def test_training_smoke(tmp_path: Path) -> None:
    """A few iterations on tiny synthetic pairs; the weights load into the engine."""
    src = tmp_path / "clean.png"
    cv2.imwrite(str(src), _scene(72, 96))
    write_synthetic_pairs([src], tmp_path / "syn", per_image=4, black_white=1, long_side=96)
    net, stats = train_backlitnet(synthetic=[tmp_path / "syn"], iterations=3, batch_size=2, crop=32, log=None,
                                  config=SMALL, threads=1)
    assert stats["iterations"] == 3 and math.isfinite(stats["final_loss"])  # type: ignore[arg-type]
    out = tmp_path / "w.safetensors"
    save_backlitnet(net, out)
    engine = create_engine("backlitnet", weights=out)
    img = _scene(50, 70)
    assert Enhancer(engine).enhance_rgb(img).shape == img.shape


def test_smooth_stats_move_continuously_with_the_pixels() -> None:
    """Grey frames just below and just above a histogram bin edge (and the crushed threshold):
    the hard statistics jump by a whole bin, the smooth ones by almost nothing."""
    below, above = (torch.full((1, 3, 16, 16), v) for v in (0.0999, 0.1001))  # the crushed share's threshold
    edge_lo, edge_hi = (torch.full((1, 3, 16, 16), v) for v in (0.2499, 0.2501))  # 16 bins: an edge at 4/16
    for a, b in ((below, above), (edge_lo, edge_hi)):
        hard = (luma_histogram_features(a) - luma_histogram_features(b)).abs().sum()
        smooth = (luma_histogram_features(a, smooth=True) - luma_histogram_features(b, smooth=True)).abs().sum()
        assert hard > 0.99 and smooth < 0.02
    x = torch.rand(2, 3, 20, 24)
    for smooth in (False, True):
        hist = luma_histogram_features(x, 16, smooth)[:, :16]
        torch.testing.assert_close(hist.sum(1), torch.ones(2))
    h = torch.randn(2, 5, 4, 4)
    peak = soft_max_pool(h)
    assert bool((peak >= h.mean((2, 3)) - 1e-6).all() and (peak <= h.amax((2, 3)) + 1e-6).all())


def test_train_cli_smooth_stats_network(tmp_path: Path) -> None:
    """``--smooth-stats`` trains the smooth-statistics network; its weights say so and load."""
    from streamfix.cli import main

    cv2.imwrite(str(tmp_path / "clean.png"), _scene(72, 96))
    write_synthetic_pairs([tmp_path / "clean.png"], tmp_path / "syn", per_image=3, black_white=1, long_side=96)
    out = tmp_path / "w.safetensors"
    assert main(["train", "backlitnet", "--synthetic", str(tmp_path / "syn"), "--iterations", "2", "--batch-size",
                 "2", "--crop", "32", "--threads", "1", "--smooth-stats", "--out", str(out)]) == 0
    net, _ = load_backlitnet(out)
    assert net.config.smooth_stats
    assert BacklitNetConfig.from_json(BacklitNetConfig().to_json().replace(', "smooth_stats": false', "")) \
        == BacklitNetConfig()  # weights from before the option load as the hard-statistics network
    img = _scene(50, 70)
    assert Enhancer(create_engine("backlitnet", weights=out)).enhance_rgb(img).shape == img.shape


def test_train_cli_init_fine_tunes_the_given_weights(tmp_path: Path) -> None:
    """``--init W`` starts from W (its network shape, not the default one) and leaves W as it was;
    a missing file is an input error, ``--smooth-stats`` on a hard-statistics W a usage error."""
    from streamfix.cli import main

    cv2.imwrite(str(tmp_path / "clean.png"), _scene(72, 96))
    write_synthetic_pairs([tmp_path / "clean.png"], tmp_path / "syn", per_image=3, black_white=1, long_side=96)
    torch.manual_seed(5)
    start = BacklitNet(SMALL)
    with torch.no_grad():
        for p in start.parameters():
            p.add_(0.05 * torch.randn_like(p))  # away from any fresh initialisation
    init = tmp_path / "init.safetensors"
    save_backlitnet(start, init)
    before = init.read_bytes()
    args = ["train", "backlitnet", "--synthetic", str(tmp_path / "syn"), "--iterations", "2", "--batch-size", "2",
            "--crop", "32", "--threads", "1", "--init", str(init)]
    out = tmp_path / "tuned.safetensors"
    assert main([*args, "--lr", "1e-9", "--out", str(out)]) == 0
    tuned, _ = load_backlitnet(out)
    assert tuned.config == SMALL
    for (name, p), q in zip(tuned.state_dict().items(), start.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)
    assert main([*args, "--out", str(tmp_path / "moved.safetensors")]) == 0  # the default lr moves it
    moved, _ = load_backlitnet(tmp_path / "moved.safetensors")
    assert any(not torch.equal(p, q) for p, q in zip(moved.parameters(), start.parameters(), strict=True))
    assert init.read_bytes() == before
    assert main([*args[:-1], str(tmp_path / "none.safetensors"), "--out", str(out)]) == 1
    assert main([*args, "--smooth-stats", "--out", str(out)]) == 2


def test_weight_averaging(tmp_path: Path) -> None:
    """``_ema_update`` moves every floating tensor towards the live net by ``1 − decay``; training
    with ``ema`` returns the average, not the last iterate, and refuses decays outside [0, 1)."""
    a, b = BacklitNet(SMALL), BacklitNet(SMALL)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    _ema_update(a, b, 0.75)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, 0.75 * before[k] + 0.25 * b.state_dict()[k])

    src = tmp_path / "clean.png"
    cv2.imwrite(str(src), _scene(72, 96))
    write_synthetic_pairs([src], tmp_path / "syn", per_image=4, black_white=1, long_side=96)
    kw = dict(synthetic=[tmp_path / "syn"], iterations=4, batch_size=2, crop=32, log=None, config=SMALL, threads=1)
    last, _ = train_backlitnet(**kw)  # type: ignore[arg-type]
    avg, stats = train_backlitnet(ema=0.9, **kw)  # type: ignore[arg-type]
    torch.manual_seed(0)
    first = BacklitNet(SMALL).requires_grad_(False)  # the runs' seed 0: their initial weights
    assert stats["ema"] == 0.9

    def moved(net: BacklitNet) -> float:
        return sum(float((p - q).abs().sum()) for p, q in zip(net.parameters(), first.parameters(), strict=True))

    moved_last, moved_avg = moved(last), moved(avg)
    assert 0 < moved_avg < moved_last  # an average of iterates lags the last one
    with pytest.raises(ValueError, match="ema"):
        train_backlitnet(ema=1.0, **kw)  # type: ignore[arg-type]


def test_train_cli_usage_errors(tmp_path: Path) -> None:
    from streamfix.cli import main

    assert main(["train", "backlitnet", "--out", str(tmp_path / "w.pt")]) == 2
    assert main(["train", "backlitnet", "--out", str(tmp_path / "w.safetensors")]) == 1  # no data
    assert main(["train", "synth-pairs", "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 1
    ns = argparse.Namespace(images=[str(tmp_path)], out=str(tmp_path / "s"), per_image=0, long_side=64, seed=0,
                            kinds=None, black_white=4)
    from streamfix.train.backlitnet import run_synth

    cv2.imwrite(str(tmp_path / "a.png"), _scene(20, 20))
    with pytest.raises(UsageError):
        run_synth(ns)
    src = ["train", "synth-pairs", "--images", str(tmp_path / "a.png"), "--per-image", "3"]
    assert main([*src, "--kinds", "flat,sepia", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_synth_pairs_kinds_pick_the_degradations(tmp_path: Path) -> None:
    from streamfix.cli import main

    cv2.imwrite(str(tmp_path / "a.png"), _scene(40, 60))
    assert main(["train", "synth-pairs", "--images", str(tmp_path / "a.png"), "--per-image", "3", "--kinds",
                 "flat,identity", "--black-white", "0", "--out", str(tmp_path / "s")]) == 0
    kinds = sorted(p["kind"] for p in json.loads((tmp_path / "s" / "manifest.json").read_text())["pairs"])
    assert kinds == ["flat", "flat", "identity"]
    assert len(list((tmp_path / "s" / "input").iterdir())) == 3


def test_exposure_jitter_reexposes_real_inputs_only() -> None:
    """The sampler's exposure jitter changes the jittered groups' input crops by a gain within
    ±J stops (under a 2.2 gamma) and leaves their targets, and the other groups, untouched."""
    from streamfix.train.backlitnet import PairSampler

    flat_in, flat_target = np.full((40, 40, 3), 100, np.uint8), np.full((40, 40, 3), 60, np.uint8)
    for group, moved in ((0, True), (1, False)):
        shares = [1.0, 0.0] if group == 0 else [0.0, 1.0]
        sampler = PairSampler([[(flat_in, flat_target)]] * 2, shares, 16, 16, np.random.default_rng(1),
                              exposure_jitter=1.0, jittered=[0])
        lo, hi, tg = sampler.batch(16)
        means = hi.mean(dim=(1, 2, 3)) * 255.0
        if moved:
            assert float(means.min()) < 90 and float(means.max()) > 110  # darker and brighter crops
            lo_stops, hi_stops = 2.2 * math.log2(float(means.min()) / 100), 2.2 * math.log2(float(means.max()) / 100)
            assert lo_stops >= -1.01 and hi_stops <= 1.01
            assert torch.allclose(lo.mean(dim=(1, 2, 3)) * 255.0, means, atol=0.6)  # the network sees it too
        else:
            assert torch.allclose(means, torch.full_like(means, 100.0), atol=0.01)
        assert torch.allclose(tg * 255.0, torch.full_like(tg, 60.0), atol=0.01)  # targets never re-exposed


def test_zoom_pan_views_are_same_scale_windows_of_the_view() -> None:
    """Each window is the view's own pixels at its offset, all windows one side within the zoom
    range, offsets spread over the view (content leaves at different edges)."""
    from streamfix.train.backlitnet import zoom_pan_views

    hi = torch.rand(6, 3, 40, 40)
    sides, corners = set(), set()
    for seed in range(20):
        windows, offsets = zoom_pan_views(hi, 0.25, np.random.default_rng(seed))
        s = windows.shape[-1]
        assert windows.shape == (6, 3, s, s) and 30 <= s <= 40 and len(offsets) == 6
        for w, v, (oy, ox) in zip(windows, hi, offsets, strict=True):
            assert 0 <= oy <= 40 - s and 0 <= ox <= 40 - s
            assert torch.equal(w, v[:, oy : oy + s, ox : ox + s])
        sides.add(s)
        corners.update(offsets)
    assert len(sides) > 3 and len(corners) > 10


def test_training_with_the_motion_term(tmp_path: Path) -> None:
    """``motion`` adds the pan term (logged as ``pan``, recorded in the stats, as are ``tv`` and
    ``lights``); bad weights, zooms or lamp shares are refused, on the command line with a usage
    error and no weights written."""
    from streamfix.cli import main

    cv2.imwrite(str(tmp_path / "clean.png"), _scene(72, 96))
    write_synthetic_pairs([tmp_path / "clean.png"], tmp_path / "syn", per_image=4, black_white=1, long_side=96)
    lines: list[str] = []
    kw = dict(synthetic=[tmp_path / "syn"], iterations=2, batch_size=3, crop=32, config=SMALL, threads=1,
              log_every=1)
    _, stats = train_backlitnet(motion=5.0, motion_zoom=0.2, consistency=1.0, tv=0.5, log=lines.append,
                                **kw)  # type: ignore[arg-type]
    assert stats["motion"] == 5.0 and stats["motion_zoom"] == 0.2 and stats["tv"] == 0.5
    pans = [float(line.split("pan ")[1].split("]")[0]) for line in lines if line.startswith("train ")]
    assert len(pans) == 2 and all(math.isfinite(p) and p >= 0 for p in pans)
    assert all("cons " in line for line in lines if line.startswith("train "))
    plain: list[str] = []
    train_backlitnet(log=plain.append, **kw)  # type: ignore[arg-type]
    assert [line for line in plain if line.startswith("train ")] and not any("pan" in line for line in plain)
    for bad in ({"motion": -1.0}, {"tv": -1.0}, {"motion": 1.0, "motion_zoom": 0.0},
                {"motion": 1.0, "motion_zoom": 0.6}):
        with pytest.raises(ValueError, match="must be ≥ 0"):
            train_backlitnet(log=None, **kw, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lights"):
        train_backlitnet(log=None, lights=1.5, **kw)  # type: ignore[arg-type]
    out = tmp_path / "w.safetensors"
    for flags in (["--motion", "1", "--motion-zoom", "0.9"], ["--lights", "-0.1"]):
        assert main(["train", "backlitnet", "--synthetic", str(tmp_path / "syn"), "--iterations", "1", "--crop",
                     "32", *flags, "--out", str(out)]) == 2
    assert not out.exists()


def test_next_batch_is_cut_ahead_without_changing_the_seeds_draws(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The next batch is cut on another thread while a step trains, but only after the step's
    own random draws (the jittered copy, the pan windows): the seed's stream is the one a
    sequential loop consumes, so the weights equal those of cutting each batch in turn."""
    import concurrent.futures

    import streamfix.train.backlitnet as tb

    cv2.imwrite(str(tmp_path / "clean.png"), _scene(72, 96))
    write_synthetic_pairs([tmp_path / "clean.png"], tmp_path / "syn", per_image=4, black_white=1, long_side=96)
    kw = dict(synthetic=[tmp_path / "syn"], iterations=3, batch_size=2, crop=32, config=SMALL, threads=1,
              consistency=1.0, motion=1.0, lights=0.5, log=None)
    events: list[tuple[str, bool]] = []

    def recorded(name: str, fn):  # type: ignore[no-untyped-def]
        def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            events.append((name, threading.current_thread() is threading.main_thread()))
            return fn(*args, **kwargs)
        return call

    monkeypatch.setattr(tb.PairSampler, "batch", recorded("batch", tb.PairSampler.batch))
    monkeypatch.setattr(tb, "jitter_frames", recorded("jitter", tb.jitter_frames))
    monkeypatch.setattr(tb, "zoom_pan_views", recorded("pan", tb.zoom_pan_views))
    ahead, _ = train_backlitnet(**kw)  # type: ignore[arg-type]
    assert [name for name, _ in events] == ["batch", "jitter", "pan"] * 3
    assert not any(on_main for name, on_main in events if name == "batch")

    class InTurn(concurrent.futures.Executor):
        """Runs each submitted call at once, on the caller's thread."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
            done: concurrent.futures.Future = concurrent.futures.Future()
            done.set_result(fn(*args, **kwargs))
            return done

    monkeypatch.setattr(tb, "ThreadPoolExecutor", InTurn)
    events.clear()
    in_turn, _ = train_backlitnet(**kw)  # type: ignore[arg-type]
    assert all(on_main for _, on_main in events)
    for (name, a), b in zip(ahead.state_dict().items(), in_turn.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_add_lights_puts_the_same_lights_in_every_image() -> None:
    """The same lights land in input and target; they only brighten, clip at their core, and
    leave most of the frame as it was."""
    from streamfix.train.synthetic import add_lights

    dark, bright = np.full((60, 80, 3), 20, np.uint8), np.full((60, 80, 3), 120, np.uint8)
    lit_dark, lit_bright = add_lights([dark, bright], np.random.default_rng(4), count=(2, 2), radius=(0.05, 0.08))
    assert lit_dark.shape == dark.shape and lit_dark.dtype == np.uint8
    assert int(dark[0, 0, 0]) == 20  # the inputs are not modified
    for before, after in ((dark, lit_dark), (bright, lit_bright)):
        assert bool((after >= before).all()) and int(after.max()) == 255  # a clipped core
        assert float((after[..., 1] > before[..., 1]).mean()) < 0.5  # most of the frame untouched

    def light(before: np.ndarray, after: np.ndarray) -> np.ndarray:  # undo the screen blend
        return 1.0 - (255.0 - after.astype(np.float64)) / (255.0 - before.astype(np.float64))

    assert float(np.abs(light(dark, lit_dark) - light(bright, lit_bright)).max()) < 0.02  # the same lights in both


def test_sampler_lights_share() -> None:
    """``lights`` is the share of crops that get lights, in input and target alike; the black and
    white pairs (flat targets) never get them."""
    from streamfix.train.backlitnet import PairSampler

    ramp = np.repeat(np.linspace(20, 60, 48, dtype=np.float32)[None, :, None], 48, 0).repeat(3, 2).astype(np.uint8)
    for share, expected in ((0.0, (0, 0)), (1.0, (40, 40)), (0.5, (8, 32))):
        sampler = PairSampler([[(ramp, ramp)]], [1.0], 24, 16, np.random.default_rng(2), lights=share)
        _, hi, tg = sampler.batch(40)
        lit = (hi.amax(dim=(1, 2, 3)) * 255 > 70).numpy()
        assert np.array_equal(lit, (tg.amax(dim=(1, 2, 3)) * 255 > 70).numpy())
        assert expected[0] <= int(lit.sum()) <= expected[1]
    black = (np.full((48, 48, 3), 2, np.uint8), np.zeros((48, 48, 3), np.uint8))  # a black-to-black pair
    _, hi, tg = PairSampler([[black]], [1.0], 24, 16, np.random.default_rng(2), lights=1.0).batch(20)
    assert float(hi.max()) * 255 < 3 and float(tg.max()) == 0.0  # flat targets never get lamps


def test_lamp_probe_reports_the_gain_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tools/lamp_probe.py decodes a frame, runs the engine with and without lamps and prints one
    table row per weights file, with a finite gain and a change for every lamp count."""
    import importlib.util

    import av

    video = tmp_path / "night.mp4"
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray((_scene(64, 96, seed=i) // 3).astype(np.uint8), format="rgb24")
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    spec = importlib.util.spec_from_file_location("lamp_probe", Path(__file__).parents[1] / "tools" / "lamp_probe.py")
    probe = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(probe)  # type: ignore[union-attr]
    assert probe.main(["--video", str(video), "--frame", "2", "--trials", "2", "--lamps", "1,2"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| shipped")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert math.isfinite(float(cells[1])) and float(cells[1]) > 0
    assert all(c.endswith("%") and math.isfinite(float(c[:-1])) for c in cells[2:]) and len(cells) == 4
    for bad in (["--video", str(tmp_path / "none.mp4")], ["--video", str(video), "--frame", "9"]):
        with pytest.raises(SystemExit, match="cannot decode|has no frame 9"):
            probe.main(bad)


def test_train_script_refuses_a_bad_out_name_and_missing_data(tmp_path: Path) -> None:
    """tools/train_backlitnet.sh (the shipped weights' chain) checks its arguments and data before
    any work: one line naming the problem, a non-zero exit, nothing written."""
    import os
    import subprocess

    script = Path(__file__).parents[1] / "tools" / "train_backlitnet.sh"
    work = tmp_path / "work"
    runs = {
        2: ([str(tmp_path / "w.pt"), str(work)], {}),
        1: ([str(tmp_path / "w.safetensors"), str(work)], {"DATA": str(tmp_path / "no_data")}),
    }
    for code, (argv, env) in runs.items():
        done = subprocess.run(["bash", str(script), *argv], capture_output=True, text=True,
                              env={**os.environ, **env})
        assert done.returncode == code, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "train_backlitnet:" in done.stderr
    assert "no_data/fivek_dpe_expertc_deeplpf: no such folder" in done.stderr
    assert not work.exists() and not (tmp_path / "w.safetensors").exists()
