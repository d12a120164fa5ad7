"""The temporal denoiser: still noise averaged, motion and lighting changes passed, brightness kept."""

from __future__ import annotations

import numpy as np
import pytest

from streamfix.denoise import MOTION_HIGH, TemporalDenoiser
from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.grid.colour import PlaneFormat
from streamfix.grid.planes import Planes
from streamfix.temporal import TemporalFilter


def noisy(scene: np.ndarray, sigma: float, rng: np.random.Generator, top: int = 255) -> np.ndarray:
    dtype = np.uint8 if top <= 255 else np.uint16
    return np.clip(np.rint(scene + rng.normal(0.0, sigma, scene.shape)), 0, top).astype(dtype)


def run(den: TemporalDenoiser, frames: list[np.ndarray], made: list[np.ndarray] | None = None,
        bits: int = 8) -> list[np.ndarray]:
    """Denoise copies of ``made`` (default: the frames themselves) made of ``frames``."""
    outs = [m.copy() for m in (made if made is not None else frames)]
    for f, o in zip(frames, outs, strict=True):
        den((f,), (o,), bits)
    return outs


def step_noise(frames: list[np.ndarray], region: tuple[slice, slice] = (slice(None), slice(None))) -> float:
    a = np.array([f[region] for f in frames], np.float64)
    return float(np.abs(np.diff(a, axis=0)).mean())


def test_still_noise_is_averaged_and_rows_keep_their_mean() -> None:
    rng = np.random.default_rng(1)
    scene = np.tile(np.linspace(20, 200, 128), (96, 1))
    frames = [noisy(scene, 3.0, rng) for _ in range(12)]
    outs = run(TemporalDenoiser(0.5), frames)
    # steady state leaves (1 − k)/(1 + k) = 1/3 of the variance: frame-to-frame steps ≈ 2.4× smaller
    assert step_noise(outs[4:]) < 0.55 * step_noise(frames[4:])
    # each row keeps its mean up to the rounding of its samples (half to even: the blend of two
    # codes at weight 0.5 leaves few distinct fractions in a row, so the errors do not average out)
    for f, o in zip(frames, outs, strict=True):
        assert np.abs(o.astype(float).mean(axis=1) - f.astype(float).mean(axis=1)).max() < 0.3
        assert abs(float(o.mean()) - float(f.mean())) < 0.05
    assert abs(float(np.mean(outs)) - float(np.mean(frames))) < 0.01


def test_noise_estimate_follows_the_footage() -> None:
    rng = np.random.default_rng(2)
    scene = np.full((64, 256), 80.0)
    for sigma in (1.5, 4.0):
        den = TemporalDenoiser(0.5)
        run(den, [noisy(scene, sigma, rng) for _ in range(6)])
        # the estimate is of the difference of two frames: σ·√2
        assert den.noise[0] == pytest.approx(sigma * np.sqrt(2.0), rel=0.15)


def test_motion_and_light_changes_pass_untouched() -> None:
    """A bright square moving 6 px per frame and, at frame 8, a light switched on (+60 codes):
    every sample whose input changed by more than T2 is exactly what the enhancement made."""
    rng = np.random.default_rng(3)
    frames = []
    for t in range(12):
        scene = np.full((64, 96), 40.0 if t < 8 else 100.0)
        scene[20:36, 6 * t:6 * t + 16] = 200.0
        frames.append(noisy(scene, 2.0, rng))
    made = [np.clip(f.astype(np.int32) * 2 - 30, 0, 255).astype(np.uint8) for f in frames]  # a curve
    den = TemporalDenoiser(0.5)
    outs = [m.copy() for m in made]
    for t, (f, o) in enumerate(zip(frames, outs, strict=True)):
        high = MOTION_HIGH * (den.noise[0] if den.noise else 0.0)
        den((f,), (o,))
        if t == 0:
            continue
        moved = np.abs(f.astype(float) - frames[t - 1]) > high
        assert moved.any()
        assert np.array_equal(o[moved], made[t][moved]), t
        if t == 8:  # the light: everything but the square (200 before and after) changed
            assert moved.mean() > 0.9
    # no trail: where the square was two frames ago the output is background again
    t = 10
    gone = np.zeros((64, 96), bool)
    gone[20:36, 6 * (t - 2):6 * (t - 2) + 6] = True
    assert abs(float(outs[t][gone].mean()) - float(made[t][gone].mean())) < 3.0


def test_deep_planes_strided_views_and_restarts() -> None:
    rng = np.random.default_rng(4)
    scene = np.full((32, 80), 400.0)
    frames = [noisy(scene, 8.0, rng, top=1023) for _ in range(8)]
    outs = run(TemporalDenoiser(0.5), frames, bits=10)
    assert outs[0].dtype == np.uint16 and int(max(o.max() for o in outs)) <= 1023
    assert step_noise(outs[3:]) < 0.6 * step_noise(frames[3:])
    # a strided view (a plane with line padding) is denoised in place like a contiguous one
    padded = [np.zeros((32, 96), np.uint16) for _ in frames]
    views = []
    for p, f in zip(padded, frames, strict=True):
        p[:, :80] = f
        views.append(p[:, :80])
    den = TemporalDenoiser(0.5)
    for f, v in zip(frames, views, strict=True):
        den((f,), (v,), 10)
    assert all(np.array_equal(v, o) for v, o in zip(views, outs, strict=True))
    assert all((p[:, 80:] == 0).all() for p in padded)
    # a new size restarts the history: its first frame passes untouched
    small = noisy(np.full((16, 16), 400.0), 8.0, rng, top=1023)
    out = small.copy()
    den((small,), (out,), 10)
    assert np.array_equal(out, small)
    den.reset()
    out = frames[0].copy()
    den((frames[1],), (out,), 10)
    assert np.array_equal(out, frames[0])


def test_strength_zero_and_bad_strengths() -> None:
    rng = np.random.default_rng(5)
    frames = [noisy(np.full((8, 8), 50.0), 3.0, rng) for _ in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(run(TemporalDenoiser(0.0), frames), frames, strict=True))
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="denoise strength"):
            TemporalDenoiser(bad)


def test_enhancer_denoises_video_frames_but_not_identity_or_stills() -> None:
    rng = np.random.default_rng(6)
    scene = np.zeros((72, 128, 3))
    scene[..., :] = np.linspace(10, 60, 128)[None, :, None]
    frames = [noisy(scene, 3.0, rng) for _ in range(6)]

    def outputs(engine: str, denoise: bool, new_scene: bool = False) -> list[np.ndarray]:
        enh = Enhancer(create_engine(engine), temporal=TemporalFilter(),
                       denoiser=TemporalDenoiser(0.5) if denoise else None)
        return [enh.enhance_rgb(f, new_scene=new_scene) for f in frames]

    plain, cleaned = outputs("excnet", False), outputs("excnet", True)
    assert step_noise(cleaned[2:]) < 0.7 * step_noise(plain[2:])
    assert abs(float(np.mean(cleaned)) - float(np.mean(plain))) < 0.05
    # stills (new_scene) restart the history: each comes out as without the denoiser
    assert all(np.array_equal(a, b) for a, b in zip(outputs("excnet", True, new_scene=True),
                                                    outputs("excnet", False, new_scene=True), strict=True))
    # the identity engine changes nothing, and neither does the denoiser behind it
    assert all(np.array_equal(o, f) for o, f in zip(outputs("identity", True), frames, strict=True))


def test_enhancer_denoises_yuv_planes_and_times_it() -> None:
    rng = np.random.default_rng(7)
    fmt = PlaneFormat()
    frames = [Planes(noisy(np.full((64, 96), 30.0), 3.0, rng), noisy(np.full((32, 48), 128.0), 2.0, rng),
                     noisy(np.full((32, 48), 128.0), 2.0, rng), fmt) for _ in range(6)]
    ys = {}
    for denoise in (False, True):
        enh = Enhancer(create_engine("excnet"), temporal=TemporalFilter(),
                       denoiser=TemporalDenoiser(0.5) if denoise else None)
        ys[denoise] = []
        for p in frames:
            out = Planes.empty_like(p)
            enh.enhance_planes(p, out)
            ys[denoise].append(out.y.copy())
        assert len(enh.clock.ms.get("denoise", [])) == (6 if denoise else 0)
    assert step_noise(ys[True][2:]) < 0.7 * step_noise(ys[False][2:])


def test_torch_planes_are_denoised_as_the_numba_kernel_does() -> None:
    """The device path's torch version (run here on CPU tensors) against the numba kernel: the
    same codes but for rare float-summation ties, the same noise estimates."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    scene = np.tile(np.linspace(5, 120, 96), (64, 1))
    frames = [noisy(scene, 3.0, rng) for _ in range(6)]
    made = [np.clip(f.astype(np.int32) * 2, 0, 255).astype(np.uint8) for f in frames]
    made[3][10:20, 10:40] = 250  # something moved
    ref = TemporalDenoiser(0.5)
    dev = TemporalDenoiser(0.5)
    for f, m in zip(frames, made, strict=True):
        a = m.copy()
        ref((f,), (a,))
        m_before = m.copy()
        (b,) = dev.tensors((torch.from_numpy(f),), (torch.from_numpy(m),))
        assert np.array_equal(m, m_before)  # tensors() returns new planes, ``out`` is left as it was
        assert b.dtype == torch.uint8
        diff = np.abs(a.astype(int) - b.numpy().astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        assert dev.noise[0] == pytest.approx(ref.noise[0], rel=1e-4)


def test_the_presets_state_the_denoisers_default() -> None:
    """The built-in defaults, every shipped pipeline preset and the module agree on the strength."""
    from pathlib import Path

    from streamfix.denoise import DEFAULT_STRENGTH
    from streamfix.presets import DEFAULTS, load_preset

    assert DEFAULTS["denoise"]["strength"] == DEFAULT_STRENGTH
    for preset in sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.toml")):
        assert load_preset(preset)["denoise"]["strength"] == DEFAULT_STRENGTH, preset.name
