"""The grid core: colour algebra, slicing kernels against the grid_sample reference, BGU fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.colour import PlaneFormat, affine_to_code_cells, affine_to_code_domain
from streamfix.grid.fit import GridFitter, fit_grid
from streamfix.grid.kernels import is_neutral, slice_planes_cpu, slice_rgb_cpu
from streamfix.grid.planes import Planes
from streamfix.grid.slicing import slice_planes, slice_rgb
from streamfix.grid.thumbnail import (
    resample_weights,
    shrink_plane,
    thumbnail_from_planes,
    thumbnail_from_rgb,
    thumbnail_size,
)


def random_grid(shape=(16, 16, 16), scale=0.15, seed=0, curved=True) -> BilateralGrid:
    g = torch.Generator().manual_seed(seed)
    ident = BilateralGrid.identity(*shape)
    coeffs = ident.coeffs + scale * torch.randn(ident.coeffs.shape, generator=g)
    guide = torch.linspace(0, 1, 9) ** 0.8 if curved else None
    return BilateralGrid(coeffs, guide)


def random_planes(h: int, w: int, fmt: PlaneFormat, seed: int = 0) -> Planes:
    rng = np.random.default_rng(seed)
    dt = np.uint8 if fmt.bit_depth == 8 else np.uint16
    sy, sx = fmt.chroma_shift
    hc, wc = -(-h // (1 << sy)), -(-w // (1 << sx))
    top = fmt.max_code + 1
    return Planes(rng.integers(0, top, (h, w)).astype(dt), rng.integers(0, top, (hc, wc)).astype(dt),
                  rng.integers(0, top, (hc, wc)).astype(dt), fmt)


FORMATS = [
    pytest.param(PlaneFormat(8, "bt709", False, (1, 1)), id="420-8bit-709-limited"),
    pytest.param(PlaneFormat(8, "bt601", True, (1, 1)), id="420-8bit-601-full"),
    pytest.param(PlaneFormat(10, "bt2020", False, (1, 1)), id="420-10bit-2020"),
    pytest.param(PlaneFormat(8, "bt709", False, (0, 1)), id="422-8bit"),
    pytest.param(PlaneFormat(8, "bt601", False, (0, 0)), id="444-8bit"),
    pytest.param(PlaneFormat(12, "bt709", True, (0, 0)), id="444-12bit"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [(72, 128), (45, 67), (1, 1), (2, 3)])
def test_fused_kernel_matches_grid_sample_reference(fmt: PlaneFormat, size: tuple[int, int]) -> None:
    planes = random_planes(*size, fmt)
    grid = random_grid()
    out = slice_planes_cpu(planes, grid)
    ref = slice_planes(*(torch.from_numpy(p.astype(np.int64)) for p in (planes.y, planes.u, planes.v)), grid, fmt)
    tol = 1 << (fmt.bit_depth - 8)  # one 8-bit step: 1/255
    for got, want in zip((out.y, out.u, out.v), ref, strict=True):
        assert got.dtype == planes.y.dtype
        assert np.abs(got.astype(np.int64) - want.numpy()).max() <= tol


def neutral_grid(shape=(16, 16, 16), seed=0) -> BilateralGrid:
    """Per cell a random gain in [0.5, 3] and offset in [-0.1, 0.1], the same for r, g and b."""
    g = torch.Generator().manual_seed(seed)
    gain = 0.5 + 2.5 * torch.rand(shape, generator=g)
    offset = 0.2 * torch.rand(shape, generator=g) - 0.1
    coeffs = torch.zeros(12, *shape)
    for c in range(3):
        coeffs[5 * c] = gain
        coeffs[4 * c + 3] = offset
    return BilateralGrid(coeffs, torch.linspace(0, 1, 9) ** 0.8)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("size", [(72, 128), (45, 67), (1, 1)])
def test_neutral_fast_path_matches_grid_sample_reference(fmt: PlaneFormat, size: tuple[int, int]) -> None:
    """Brightness-only grids take the one-lookup kernels; they agree with the reference as the general ones do."""
    planes = random_planes(*size, fmt, seed=3)
    grid = neutral_grid()
    assert is_neutral(grid, fmt)
    out = slice_planes_cpu(planes, grid)
    ref = slice_planes(*(torch.from_numpy(p.astype(np.int64)) for p in (planes.y, planes.u, planes.v)), grid, fmt)
    tol = 1 << (fmt.bit_depth - 8)
    for got, want in zip((out.y, out.u, out.v), ref, strict=True):
        assert np.abs(got.astype(np.int64) - want.numpy()).max() <= tol


@pytest.mark.parametrize("fmt", [FORMATS[0], FORMATS[2], FORMATS[3]])
@pytest.mark.parametrize("neutral", [True, False])
def test_rows_of_few_codes_match_the_reference(fmt: PlaneFormat, neutral: bool) -> None:
    """Each row holds a narrow run of codes, a different one per row (the kernels interpolate each
    row's tables only for the codes it holds): neutral and general grids still match the reference."""
    h, w = 40, 61
    top = fmt.max_code
    rng = np.random.default_rng(3)
    sy, sx = fmt.chroma_shift
    hc, wc = -(-h // (1 << sy)), -(-w // (1 << sx))
    dt = np.uint8 if fmt.bit_depth == 8 else np.uint16
    base = (np.arange(h)[:, None] * top // h + rng.integers(0, max(top // 40, 2), (h, w))).clip(0, top)
    base[h // 2] = top  # a row of one code, at the top …
    base[h // 2 + 1] = 0  # … and at the bottom
    chroma = rng.integers(0, top + 1, (hc, wc))
    planes = Planes(base.astype(dt), chroma.astype(dt), chroma[::-1].copy().astype(dt), fmt)
    grid = neutral_grid() if neutral else random_grid()
    assert is_neutral(grid, fmt) == neutral
    out = slice_planes_cpu(planes, grid)
    ref = slice_planes(*(torch.from_numpy(p.astype(np.int64)) for p in (planes.y, planes.u, planes.v)), grid, fmt)
    tol = 1 << (fmt.bit_depth - 8)
    for got, want in zip((out.y, out.u, out.v), ref, strict=True):
        assert np.abs(got.astype(np.int64) - want.numpy()).max() <= tol


def test_is_neutral_only_for_grids_that_keep_hue() -> None:
    from streamfix.engines.excnet import curve_grid

    grid = neutral_grid((4, 2, 2))
    assert is_neutral(grid) and is_neutral(BilateralGrid.identity(4, 2, 2))
    assert is_neutral(grid.blend(BilateralGrid.identity(4, 2, 2), 0.3)) and is_neutral(grid.with_strength(0.5))
    for k in (1, 3):  # a cross-channel weight; an offset on red only
        c = grid.coeffs.clone()
        c[k] += 0.01
        assert not is_neutral(BilateralGrid(c))
    assert not is_neutral(random_grid((4, 2, 2)))
    assert is_neutral(curve_grid(0.4, 0.1, depth=8), PlaneFormat(8, "bt709"))  # ExCNet: luma curve, chroma gain


def test_gain_fit_recovers_a_spatially_varying_gain() -> None:
    """The gain model fits a brightness-only target as well as the affine model, with a neutral grid."""
    torch.manual_seed(0)
    x = torch.rand(3, 96, 128) * 0.5
    luma = (0.2126 * x[0] + 0.7152 * x[1] + 0.0722 * x[2]).clamp(0, 1)
    thumb = Thumbnail(x, luma)
    target = (x * torch.linspace(1.2, 2.4, 128).view(1, 1, 128) + 0.02).clamp(0, 1)
    gain = fit_grid(thumb, target, shape=(8, 8, 8), model="gain")
    affine = fit_grid(thumb, target, shape=(8, 8, 8))
    assert is_neutral(gain) and not is_neutral(affine)
    err_gain = float((slice_rgb(x, gain) - target).abs().mean())
    err_affine = float((slice_rgb(x, affine) - target).abs().mean())
    assert err_gain < 0.01 and err_gain < 1.5 * err_affine
    with pytest.raises(ValueError, match="unknown fit model"):
        fit_grid(thumb, target, shape=(8, 8, 8), model="spline")


def test_gain_fit_regularised_on_the_output_follows_a_near_black_frames_gain() -> None:
    """A near-black frame (mean ≈ 1.5 codes) brightened ×2 … ×4 from left to right: with the gains'
    pulls weighed by the frame's mean square input (``output``) the fitted grid reproduces the
    target within 1 %; pulled as if the input were 1 (``coefficients``) the gains are set by the
    regularisation, which flattens them (≈ 7 % off per pixel)."""
    torch.manual_seed(2)
    x = torch.rand(3, 72, 128) * (3.0 / 255.0)
    luma = (0.2126 * x[0] + 0.7152 * x[1] + 0.0722 * x[2]).clamp(0, 1)
    thumb = Thumbnail(x, luma)
    target = x * torch.linspace(2.0, 4.0, 128).view(1, 1, 128)

    def relative_error(regularise: str) -> float:
        grid = GridFitter((16, 16, 16), model="gain", regularise=regularise).fit(thumb, target)
        return float((slice_rgb(x, grid) - target).abs().mean() / target.mean())

    assert relative_error("output") < 0.01
    assert relative_error("coefficients") > 0.05
    with pytest.raises(ValueError, match="unknown regularisation"):
        GridFitter(model="gain", regularise="pixels")
    with pytest.raises(ValueError, match="gain model only"):
        GridFitter(model="affine", regularise="output")


@pytest.mark.parametrize("model", ["affine", "gain"])
def test_warm_started_fit_converges_further_than_a_cold_one(model: str) -> None:
    """On a slowly changing sequence the warm-started fitter stays about as close to the exact
    solution of each frame's system as the cold solve with its fixed sweep budget, in fewer sweeps."""
    from streamfix.grid.fit import COLD_SWEEPS

    torch.manual_seed(1)
    base = torch.rand(3, 72, 128) * 0.4
    fitter = GridFitter((16, 8, 8), model=model)
    sweeps = []
    for t in range(8):
        x = (base * (1 + 0.01 * t) + 0.005 * torch.rand(3, 72, 128)).clamp(0, 1)
        thumb = Thumbnail(x, x.mean(0))
        target = (x / (0.1 + x.mean(0, keepdim=True)) ** 0.5).clamp(0, 1)
        warm = fitter.fit(thumb, target)
        sweeps.append(fitter.last_sweeps)
        exact = GridFitter((16, 8, 8), model=model, sweeps=400, tol=0.0).fit(thumb, target)
        cold = fit_grid(thumb, target, shape=(16, 8, 8), model=model)
        if t >= 2:
            assert (warm.coeffs - exact.coeffs).abs().max() <= 1.25 * (cold.coeffs - exact.coeffs).abs().max()
    assert sweeps[0] == COLD_SWEEPS and max(sweeps[2:]) < COLD_SWEEPS
    fitter.reset()
    fitter.fit(thumb, target)
    assert fitter.last_sweeps == COLD_SWEEPS


def test_fused_kernel_reads_strided_views() -> None:
    fmt = PlaneFormat()
    base = random_planes(40, 64, fmt, seed=3)
    padded = Planes(np.pad(base.y, ((0, 0), (0, 16)))[:, :64], np.pad(base.u, ((0, 0), (0, 8)))[:, :32],
                    np.pad(base.v, ((0, 0), (0, 8)))[:, :32], fmt)
    assert not padded.y.flags.c_contiguous
    grid = random_grid(seed=4)
    a, b = slice_planes_cpu(base, grid), slice_planes_cpu(padded, grid)
    assert np.array_equal(a.y, b.y) and np.array_equal(a.u, b.u) and np.array_equal(a.v, b.v)
    # every other column of twice as wide planes: rows not contiguous, read through a copy
    wide = Planes(np.repeat(base.y, 2, axis=1)[:, ::2], np.repeat(base.u, 2, axis=1)[:, ::2],
                  np.repeat(base.v, 2, axis=1)[:, ::2], fmt)
    c = slice_planes_cpu(wide, grid)
    assert np.array_equal(a.y, c.y) and np.array_equal(a.u, c.u) and np.array_equal(a.v, c.v)
    with pytest.raises(ValueError, match="contiguous rows"):
        slice_planes_cpu(base, grid, Planes(np.empty((40, 128), np.uint8)[:, ::2], a.u, a.v, fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_identity_grid_leaves_planes_unchanged(fmt: PlaneFormat) -> None:
    planes = random_planes(33, 50, fmt, seed=1)
    # keep codes inside the nominal range so RGB stays representable
    lo, hi = (0, fmt.max_code) if fmt.full_range else (16 << (fmt.bit_depth - 8), 235 << (fmt.bit_depth - 8))
    for p in (planes.y, planes.u, planes.v):
        np.clip(p, lo, hi, out=p)
    out = slice_planes_cpu(planes, BilateralGrid.identity(8, 16, 16))
    for a, b in zip((out.y, out.u, out.v), (planes.y, planes.u, planes.v), strict=True):
        assert np.abs(a.astype(np.int64) - b).max() <= 1


def test_rgb_kernel_matches_reference() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (61, 93, 3)).astype(np.uint8)
    grid = random_grid(seed=2)
    got = slice_rgb_cpu(rgb, grid)
    ref = slice_rgb(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255, grid)
    want = (ref.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.int64)
    assert np.abs(got.astype(np.int64) - want).max() <= 1


def test_code_domain_affine_equals_rgb_affine() -> None:
    """Rewriting a transform for YUV codes commutes with converting colours."""
    fmt = PlaneFormat(8, "bt709", False)
    grid = random_grid((2, 1, 1), seed=5, curved=False)
    c = affine_to_code_domain(grid.coeffs, fmt)[:, 0, 0, 0].view(3, 4).double()
    a = grid.coeffs[:, 0, 0, 0].view(3, 4).double()
    t = fmt.code_to_rgb()
    yuv = torch.tensor([90.0, 140.0, 100.0, 1.0], dtype=torch.float64)
    rgb = t @ yuv
    out_rgb = a @ rgb
    out_yuv = c @ yuv
    back = (t @ torch.cat([out_yuv, torch.ones(1, dtype=torch.float64)]))[:3]
    assert torch.allclose(back, out_rgb, atol=1e-9)


@pytest.mark.parametrize("fmt", [PlaneFormat(8, "bt709", False), PlaneFormat(10, "bt2020", True)])
def test_code_domain_cells_equal_the_torch_rewrite(fmt: PlaneFormat) -> None:
    """The CPU kernels' compiled rewrite (cells last) gives the torch one's coefficients."""
    grid = random_grid((4, 3, 5), seed=7, curved=True)
    want = affine_to_code_domain(grid.coeffs, fmt).permute(1, 2, 3, 0).numpy()
    got = affine_to_code_cells(grid.coeffs, fmt)
    assert got.shape == (4, 3, 5, 12) and got.dtype == np.float32
    assert np.allclose(got, want, rtol=1e-6, atol=1e-4 * float(np.abs(want).max()))


def test_colour_matrices_map_white_and_black() -> None:
    for fmt in (PlaneFormat(8, m, r) for m in ("bt601", "bt709", "bt2020") for r in (False, True)):
        t = fmt.code_to_rgb()
        yo, ys = fmt.luma_scale()
        co, _ = fmt.chroma_scale()
        white = t @ torch.tensor([yo + ys, co, co, 1.0], dtype=torch.float64)
        black = t @ torch.tensor([yo, co, co, 1.0], dtype=torch.float64)
        assert torch.allclose(white[:3], torch.ones(3, dtype=torch.float64), atol=1e-9)
        assert torch.allclose(black[:3], torch.zeros(3, dtype=torch.float64), atol=1e-9)


def test_thumbnail_keeps_aspect_and_reads_planes() -> None:
    assert thumbnail_size(1080, 1920) == (144, 256)
    assert thumbnail_size(100, 50) == (100, 50)  # never upscales
    fmt = PlaneFormat()
    h, w = 180, 320
    y = np.full((h, w), 16, np.uint8)
    y[:, w // 2:] = 235  # right half white
    planes = Planes(y, np.full((h // 2, w // 2), 128, np.uint8), np.full((h // 2, w // 2), 128, np.uint8), fmt)
    t = thumbnail_from_planes(planes, 64)
    assert t.size == (36, 64)
    assert float(t.rgb[:, :, :30].max()) < 0.01 and float(t.rgb[:, :, 34:].min()) > 0.99
    assert torch.allclose(t.luma[:, :30], torch.zeros(36, 30)) and torch.allclose(t.luma[:, 34:], torch.ones(36, 30))
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[..., 1] = 255
    tr = thumbnail_from_rgb(rgb, 16)
    assert tr.size == (8, 16) and abs(float(tr.luma.mean()) - 0.7152) < 1e-3


@pytest.mark.parametrize(("shape", "size"), [((1080, 1920), (144, 256)), ((540, 960), (144, 256)),
                                             ((361, 641), (37, 64)), ((7, 5), (3, 2)), ((64, 48), (64, 48))])
def test_shrink_plane_is_opencv_inter_area(shape: tuple[int, int], size: tuple[int, int]) -> None:
    """The one-pass resampler gives OpenCV's area average, whole and fractional factors, for
    8- and 10-bit codes and for strided views of a plane."""
    import cv2

    rng = np.random.default_rng(3)
    for codes in (rng.integers(0, 256, shape).astype(np.uint8), rng.integers(0, 1024, shape).astype(np.uint16)):
        ref = cv2.resize(codes.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(shrink_plane(codes, size) - ref).max() < 2e-4 * codes.max()
    wide = rng.integers(0, 256, (shape[0], shape[1] + 16)).astype(np.uint8)
    view = wide[:, 8:8 + shape[1]]
    ref = cv2.resize(np.ascontiguousarray(view).astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrink_plane(view, size) - ref).max() < 0.05


def test_resample_weights_enlarge_linearly_between_centres() -> None:
    m = resample_weights(4, 2)
    assert np.allclose(m.sum(1), 1.0)
    assert np.allclose(m, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    ramp = np.arange(2, dtype=np.uint8)[None, :].repeat(3, 0) * 100  # 3×2 plane, columns 0 and 100
    assert np.allclose(shrink_plane(ramp, (3, 4)), [[0, 25, 75, 100]] * 3)


def test_fit_recovers_a_spatially_varying_affine() -> None:
    """A target made by slicing a smooth grid is fitted back closely."""
    torch.manual_seed(0)
    x = torch.rand(3, 96, 128)
    luma = (0.2126 * x[0] + 0.7152 * x[1] + 0.0722 * x[2]).clamp(0, 1)
    thumb = Thumbnail(x, luma)
    truth = BilateralGrid.identity(8, 8, 8)
    ramp = torch.linspace(0.6, 1.4, 8).view(1, 1, 8)
    coeffs = truth.coeffs.clone()
    coeffs[0] *= ramp  # red gain varies left → right
    coeffs[3] += 0.05  # red offset
    target = slice_rgb(x, BilateralGrid(coeffs))
    fitted = fit_grid(thumb, target, shape=(8, 8, 8))
    err = float((slice_rgb(x, fitted) - target).abs().mean())
    baseline = float((x - target).abs().mean())
    assert err < 0.01 and err < 0.2 * baseline


def test_fit_is_defined_where_no_pixel_falls() -> None:
    """Empty luma bins inherit the global fit instead of zeros (a dark image has no bright bins)."""
    x = torch.rand(3, 32, 32) * 0.2
    thumb = Thumbnail(x, x.mean(0))
    grid = fit_grid(thumb, (x * 2).clamp(0, 1), shape=(8, 4, 4))
    top_bin = grid.coeffs[:, -1]
    assert torch.allclose(top_bin[0], torch.full_like(top_bin[0], 2.0), atol=0.05)


def test_strength_and_blend() -> None:
    g = random_grid((4, 2, 2), seed=7)
    ident = BilateralGrid.identity(4, 2, 2)
    assert torch.allclose(g.with_strength(0.0).coeffs, ident.coeffs)
    assert g.with_strength(1.0) is g
    half = g.with_strength(0.5).coeffs
    assert torch.allclose(half, (g.coeffs + ident.coeffs) / 2, atol=1e-6)
    with pytest.raises(ValueError):
        g.blend(BilateralGrid.identity(4, 4, 4), 0.5)
    with pytest.raises(ValueError):
        BilateralGrid(torch.zeros(11, 2, 2, 2))


def test_lookup_intrinsics_reject_arrays_of_other_dtypes() -> None:
    """The 8-lane bodies read int32 offsets and float32 tables: anything else is a typing error,
    not garbage reads."""
    import numba
    from numba.core.errors import TypingError

    from streamfix.grid.simd import LANES, neutral_luma8

    @numba.njit
    def body(row, y, xa, wx, out):  # pragma: no cover - compiled
        neutral_luma8(row, y, xa, xa, wx, out, 0, np.float32(255))

    row, y, out = np.arange(256, dtype=np.float32), np.arange(LANES, dtype=np.uint8), np.zeros(LANES, np.uint8)
    wx = np.zeros(LANES, np.float32)
    body(row, y, np.zeros(LANES, np.int32), wx, out)
    assert np.array_equal(out, y)  # offset 0, weight 0: the table's own code values
    with pytest.raises(TypingError):
        body(row, y, np.zeros(LANES, np.int64), wx, out)
