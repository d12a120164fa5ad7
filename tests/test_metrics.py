"""Tests for streamfix.metrics: hand-computable cases, plus the EVAL.md reference numbers on the
shared data (skipped when ``../shared/data`` is absent)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfix import metrics as M

# ---------------------------------------------------------------------------------------------
# shared data
# ---------------------------------------------------------------------------------------------


def _shared_data_dir() -> Path:
    env = os.environ.get("STREAMFIX_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED = _shared_data_dir()


def _need(*parts: str) -> Path:
    """The shared-data path, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED} (set STREAMFIX_SHARED_DATA to use it)")
    if not path.exists():
        pytest.skip(f"shared test data lacks {path}")
    return path


def _pairs(set_dir: Path) -> list[tuple[Path, Path]]:
    """(input, target) files of a paired set, matched by file stem (extensions may differ)."""
    inputs = {p.stem: p for p in (set_dir / "input").iterdir() if p.is_file()}
    targets = {p.stem: p for p in (set_dir / "target").iterdir() if p.is_file()}
    assert inputs.keys() == targets.keys(), "input/ and target/ names differ"
    return [(inputs[k], targets[k]) for k in sorted(inputs)]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _flat(value: int, shape: tuple[int, int] = (8, 8)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def _texture(size: int = 200, seed: int = 0) -> np.ndarray:
    """A smooth random colour texture, float32 values in [20, 120]."""
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(tex, None, 20, 120, cv2.NORM_MINMAX)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# conversion and reading
# ---------------------------------------------------------------------------------------------


def test_to_uint8_rounds_and_clips_floats() -> None:
    x = np.array([-0.5, 0.0, 1.4 / 255, 1.6 / 255, 0.5, 1.0, 2.0, np.nan], dtype=np.float32)
    assert M.to_uint8(x).tolist() == [0, 0, 1, 2, 128, 255, 255, 0]
    assert M.to_uint8(x).dtype == np.uint8


def test_to_uint8_passes_uint8_through_and_rejects_other_ints() -> None:
    a = np.arange(256, dtype=np.uint8)
    assert M.to_uint8(a) is a
    with pytest.raises(TypeError):
        M.to_uint8(np.arange(4, dtype=np.uint16))


def test_read_rgb_formats(tmp_path: Path) -> None:
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30  # R, G, B
    bgr = np.ascontiguousarray(rgb[..., ::-1])

    for ext in ("png", "bmp", "tif"):
        cv2.imwrite(str(tmp_path / f"c.{ext}"), bgr)
        out = M.read_rgb(tmp_path / f"c.{ext}")
        assert out.shape == (5, 7, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rgb)

    cv2.imwrite(str(tmp_path / "c.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert np.abs(M.read_rgb(tmp_path / "c.jpg").astype(int) - rgb).max() <= 3

    bgra = np.dstack([bgr, np.full((5, 7), 7, np.uint8)])  # alpha is dropped, not composited
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    np.testing.assert_array_equal(M.read_rgb(tmp_path / "a.png"), rgb)

    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    out = M.read_rgb(tmp_path / "g.png")
    assert out.shape == (5, 7, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_read_rgb_16bit_scales_by_257(tmp_path: Path) -> None:
    vals = np.array([[0, 257 * 100, 32896, 65535]], np.uint16)  # 32896 / 257 = 128.0
    cv2.imwrite(str(tmp_path / "d.png"), np.dstack([vals] * 3))
    out = M.read_rgb(tmp_path / "d.png")
    assert out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 100, 128, 255]


def test_read_rgb_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        M.read_rgb(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError):
        M.read_rgb(tmp_path / "junk.png")


# ---------------------------------------------------------------------------------------------
# PSNR / SSIM
# ---------------------------------------------------------------------------------------------


def test_psnr_of_known_mse() -> None:
    ref = _flat(100)
    assert M.psnr(_flat(110), ref) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-9)
    # MSE over all pixels and channels together: one channel of one pixel off by 255 in 8x8x3
    out = ref.copy()
    out[0, 0, 1] = 255
    mse = 155**2 / (8 * 8 * 3)
    assert M.psnr(out, ref) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)
    assert M.psnr(ref, out) == pytest.approx(M.psnr(out, ref))


def test_psnr_identical_is_inf_and_floats_are_quantised() -> None:
    a = _flat(37)
    assert M.psnr(a, a.copy()) == math.inf
    # a float output in [0, 1] is rounded to uint8 first: 37.4 / 255 -> 37
    assert M.psnr(np.full(a.shape, 37.4 / 255, np.float32), a) == math.inf
    assert M.psnr(np.full(a.shape, 38.0 / 255), a) == pytest.approx(10 * math.log10(255**2))


def test_psnr_ssim_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        M.psnr(_flat(1, (8, 8)), _flat(1, (8, 9)))
    with pytest.raises(ValueError):
        M.ssim(_flat(1, (8, 8)), _flat(1, (9, 8)))
    with pytest.raises(ValueError):
        M.psnr(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))


def test_ssim_identity_and_degradation() -> None:
    pytest.importorskip("skimage")
    img = _u8(_texture(64) * 2)
    assert M.ssim(img, img.copy()) == pytest.approx(1.0)
    noisy = _u8(img.astype(np.float32) + np.random.default_rng(1).normal(0, 25, img.shape))
    s = M.ssim(noisy, img)
    assert 0.0 < s < 0.9


# ---------------------------------------------------------------------------------------------
# luma and exposure
# ---------------------------------------------------------------------------------------------


def test_luma709_weights() -> None:
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [51, 51, 51]]], np.uint8)
    y = M.luma709(px)
    assert y.shape == (1, 5) and y.dtype == np.float32
    np.testing.assert_allclose(y[0], [0.2126, 0.7152, 0.0722, 1.0, 0.2], atol=1e-6)


def test_exposure_stats_thresholds() -> None:
    # 40 gray pixels: Y = v / 255. crushed: Y < 0.1 <=> v <= 25; clipped: Y > 0.95 <=> v >= 243
    img = np.full((4, 10, 3), 128, np.uint8)
    flat = img.reshape(-1, 3)
    flat[:6] = 25  # crushed (0.098)
    flat[6:10] = 26  # not crushed (0.102)
    flat[10:13] = 243  # clipped (0.953)
    flat[13:17] = 242  # not clipped (0.949)
    s = M.exposure_stats(img)
    assert s["crushed_pct"] == pytest.approx(100 * 6 / 40)
    assert s["clipped_pct"] == pytest.approx(100 * 3 / 40)
    expected_mean = (6 * 25 + 4 * 26 + 3 * 243 + 4 * 242 + 23 * 128) / 40 / 255
    assert s["mean_y"] == pytest.approx(expected_mean, abs=1e-6)
    assert M.exposure_stats(_flat(0))["crushed_pct"] == 100.0
    assert M.exposure_stats(_flat(255))["clipped_pct"] == 100.0


# ---------------------------------------------------------------------------------------------
# temporal metrics
# ---------------------------------------------------------------------------------------------


def _brightness_sequence(n: int = 8) -> list[np.ndarray]:
    """Frames of a texture whose brightness and position drift: real frame-to-frame change."""
    tex = _texture(96, seed=3)
    scales = [0.7, 0.8, 0.75, 0.9, 1.0, 0.85, 0.95, 0.8][:n]
    return [_u8(np.roll(tex, t, axis=1)[:64, :64] * s) for t, s in enumerate(scales)]


def test_global_gain_scores_one_over_gain() -> None:
    frames_in = _brightness_sequence()
    k = 2.0
    frames_out = [_u8(f.astype(np.float32) * k) for f in frames_in]
    r = M.temporal_report(frames_in, frames_out)
    assert r["frames"] == 8
    assert r["gain"] == pytest.approx(k, rel=0.01)
    assert r["flicker_over_gain"] == pytest.approx(1.0, abs=0.02)
    assert r["mabd_over_gain"] == pytest.approx(1.0, abs=0.02)
    assert r["flicker_ratio"] == pytest.approx(k, rel=0.02)
    assert r["mabd_ratio"] == pytest.approx(k, rel=0.02)


def test_identity_scores_one() -> None:
    frames = _brightness_sequence()
    r = M.temporal_report(frames, frames)
    for key in ("flicker_ratio", "gain", "flicker_over_gain", "mabd_ratio", "mabd_over_gain"):
        assert r[key] == pytest.approx(1.0, abs=1e-9), key


def test_oscillating_output_on_static_input_flickers() -> None:
    rng = np.random.default_rng(5)
    base = _texture(64, seed=4)
    # nearly static input: only +-1 code-value sensor noise
    frames_in = [_u8(base + rng.integers(-1, 2, base.shape)) for _ in range(10)]
    # output pumps by +-15 % every frame
    frames_out = [_u8(f.astype(np.float32) * (1.15 if t % 2 else 0.85)) for t, f in enumerate(frames_in)]
    r = M.temporal_report(frames_in, frames_out)
    assert r["flicker_ratio"] > 10
    assert r["flicker_over_gain"] > 10
    assert r["mabd_over_gain"] > 10
    assert r["gain"] == pytest.approx(1.0, abs=0.05)


def test_zero_change_steps_are_skipped_by_flicker_ratio_only() -> None:
    # uniform gray frames, so every quantity is hand-computable (Y = v / 255)
    vin, vout = [100, 100, 110, 120], [100, 110, 120, 130]
    meter = M.TemporalMeter()
    for a, b in zip(vin, vout, strict=True):
        meter.update(_flat(a), _flat(b))
    r = meter.report()
    assert r["frames"] == 4
    # per-step ratios: step 1 skipped (input unchanged), then 10/10 and 10/10
    assert r["flicker_ratio"] == pytest.approx(1.0, abs=1e-5)
    gain = np.mean(vout) / np.mean(vin)  # 115 / 107.5
    assert r["gain"] == pytest.approx(gain, rel=1e-6)
    # ratio of means over all steps, none skipped: (10 + 10 + 10) / (0 + 10 + 10) = 1.5
    assert r["flicker_over_gain"] == pytest.approx(1.5 / gain, rel=1e-5)
    assert r["mabd_ratio"] == pytest.approx(1.5, rel=1e-5)
    assert r["mabd_over_gain"] == pytest.approx(1.5 / gain, rel=1e-5)


def test_too_few_frames_give_nan() -> None:
    meter = M.TemporalMeter()
    r = meter.report()
    assert r["frames"] == 0 and math.isnan(r["gain"]) and math.isnan(r["flicker_ratio"])
    meter.update(_flat(50), _flat(100))
    r = meter.report()
    assert r["frames"] == 1
    assert r["gain"] == pytest.approx(2.0)
    assert math.isnan(r["flicker_ratio"]) and math.isnan(r["mabd_ratio"])


def test_temporal_size_mismatch_raises() -> None:
    meter = M.TemporalMeter()
    with pytest.raises(ValueError, match="differ in size"):
        meter.update(_flat(1, (8, 8)), _flat(1, (8, 10)))
    meter.update(_flat(1, (8, 8)), _flat(1, (8, 8)))
    with pytest.raises(ValueError, match="changed"):
        meter.update(_flat(1, (6, 8)), _flat(1, (6, 8)))
    with pytest.raises(ValueError, match="length"):
        M.temporal_report([_flat(1)] * 3, [_flat(1)] * 2)


def test_temporal_report_streams_generators() -> None:
    frames = _brightness_sequence()
    consumed = []

    def gen():
        for f in frames:
            consumed.append(1)
            yield f

    r = M.temporal_report(gen(), (_u8(f.astype(np.float32) * 1.5) for f in frames))
    assert r["frames"] == len(frames) == len(consumed)


# ---------------------------------------------------------------------------------------------
# warping error
# ---------------------------------------------------------------------------------------------


def _translated_sequence(n: int = 4) -> list[np.ndarray]:
    tex = _texture(200, seed=7) * 1.5  # values in [30, 180]
    return [_u8(tex[10 + 2 * t : 10 + 2 * t + 128, 10 + t : 10 + t + 128]) for t in range(n)]


def test_warping_error_near_zero_for_consistent_output() -> None:
    frames_in = _translated_sequence()
    frames_out = [_u8(f.astype(np.float32) * 1.3) for f in frames_in]  # pure brightness scaling
    naive = np.mean((frames_out[1] / 255.0 - frames_out[0] / 255.0) ** 2)  # without motion compensation
    for t in range(1, len(frames_in)):
        e = M.warping_error(frames_in[t - 1], frames_in[t], frames_out[t - 1], frames_out[t])
        assert 0 <= e < 1e-5
        assert e < naive / 100


def test_warping_error_grows_with_injected_noise() -> None:
    rng = np.random.default_rng(11)
    frames_in = _translated_sequence()
    sigma = 10.0
    frames_out = [_u8(f.astype(np.float32) * 1.3 + rng.normal(0, sigma, f.shape)) for f in frames_in]
    meter = M.TemporalMeter(warping=True)
    for a, b in zip(frames_in, frames_out, strict=True):
        meter.update(a, b)
    r = meter.report()
    # independent noise in both frames: E[(n1 - n2)^2] = 2 sigma^2
    assert r["warping_error"] == pytest.approx(2 * (sigma / 255) ** 2, rel=0.25)
    assert "warping_error" not in M.TemporalMeter().report()


def test_warping_error_shape_mismatch_raises() -> None:
    a = _flat(10, (32, 32))
    with pytest.raises(ValueError):
        M.warping_error(a, a, a, _flat(10, (32, 30)))


# ---------------------------------------------------------------------------------------------
# NIQE
# ---------------------------------------------------------------------------------------------


def test_matlab_imresize_half_reproduces_a_ramp() -> None:
    # bicubic (a = -0.5) reproduces linear signals; output k (0-based) samples input 2k + 0.5
    ramp = np.tile(np.arange(40, dtype=np.float32)[:, None], (1, 3))
    out = M._imresize(ramp, 0.5)
    assert out.shape == (20, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[3:-3, 0], 2 * np.arange(3, 17) + 0.5, atol=1e-4)
    flat = M._imresize(np.full((30, 20), 7.0, np.float32), 0.5)
    assert np.ptp(flat) == 0 and flat[0, 0] == pytest.approx(7.0, abs=1e-5)  # stays exactly flat


def test_niqe_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        M.niqe(_flat(10, (50, 200)), tmp_path / "p.npz")
    with pytest.raises(FileNotFoundError):
        M.niqe(_flat(10, (200, 200)), tmp_path / "missing.npz")


@pytest.mark.shared_data
def test_niqe_lime1_matches_eval_md() -> None:
    params = _need("niqe_params", "niqe_pris_params.npz")
    img = M.read_rgb(_need("lime", "1.bmp"))
    score = M.niqe(img, params)
    assert abs(score - 4.003) <= 0.01
    # NIQE rises with noise
    noisy = _u8(img.astype(np.float32) + np.random.default_rng(0).normal(0, 20, img.shape))
    assert M.niqe(noisy, params) > score + 1


# ---------------------------------------------------------------------------------------------
# EVAL.md "input unchanged" rows
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("set_name", "psnr_ref", "ssim_ref"),
    [("fivek_dpe_expertc_deeplpf", 18.31, 0.784), ("lol_v1_train_pairs_subset", 5.91, 0.147)],
)
def test_input_unchanged_psnr_ssim(set_name: str, psnr_ref: float, ssim_ref: float) -> None:
    pytest.importorskip("skimage")
    pairs = _pairs(_need(set_name))
    ps, ss = [], []
    for inp, tgt in pairs:
        a, b = M.read_rgb(inp), M.read_rgb(tgt)
        ps.append(M.psnr(a, b))
        ss.append(M.ssim(a, b))
    assert abs(np.mean(ps) - psnr_ref) <= 0.01
    assert abs(np.mean(ss) - ssim_ref) <= 0.002


@pytest.mark.shared_data
def test_input_unchanged_backlit_exposure() -> None:
    files = sorted(p for p in _need("backlit_web_ovd0312").iterdir() if p.is_file())
    assert len(files) == 25
    stats = [M.exposure_stats(M.read_rgb(p)) for p in files]
    assert abs(np.mean([s["crushed_pct"] for s in stats]) - 30.9) <= 0.05
    assert abs(np.mean([s["clipped_pct"] for s in stats]) - 6.4) <= 0.05
