"""Train BacklitNet end to end on (input, target) pairs: the loss is computed after slicing.

Each step takes a batch of random crops (random position, area 30–100 % of the image, aspect
0.6–1.67, random horizontal flip). A crop is resized twice: to the network's square input (the
engine's own :func:`~streamfix.engines.backlitnet.network_input`) and to a ``crop``² "full
resolution" view. The predicted grid and guide are sliced onto the full-resolution view with
:func:`~streamfix.engines.backlitnet_net.slice_batch` (differentiable in both), so the grid and
the guide curve are learned through the same lookup the fused kernels do (HDRNet's recipe).

Loss, per batch (``x`` input view, ``ŷ`` sliced output, ``y`` target):

* ``L1(ŷ, y) + 0.5 · (1 − SSIM(ŷ, y))`` — SICE's pair of losses (SSIM with an 11×11 Gaussian
  window, σ 1.5);
* ``0.5 · Σ w·|ŷ − y| / (Σ w + ε)`` with ``w = S · (1 − Y(x))²`` — BacklitNet's term: the predicted
  saliency ``S`` (detached) times the backlit brightness prior (the dark part of a backlit frame is
  the subject that needs restoring), so errors on the subject count more;
* ``0.1 · BCE(S, clip(|Y(y) − Y(x)| / 0.2, 0, 1))`` — the saliency head learns where the image
  needs fixing (BAID has no saliency labels; the pairs say where the retouch acts);
* ``1e-3 ·`` total variation of the coefficients across cells and luma bins (no seams, no
  ringing tone curves);
* ``1.0 ·`` :func:`monotonicity_penalty`: every cell's tone curve for grey must rise with a slope
  of at least 0.2 (no tone inversions or posterised patches where dark regions are lifted);
* optionally (``--crush W``) ``W · mean(relu(0.1 − Y(ŷ)) · [Y(y) ≥ 0.1]) / 0.1``: pixels pushed
  into the crushed range (EVAL.md's Y < 0.1) where the target is not crushed count again — a
  contrast boost learned from retouched pairs must not bury a backlit subject's shadows;
* optionally (``--toe W``) ``W ·`` :func:`toe_penalty`: tone curves no steeper than their own gain
  in the shadows (an S-curve's toe amplifies noise — flicker on video — and crushes shadows);
* optionally (``--consistency W``) ``W ·`` the L1 difference of the grids and guides predicted for
  a crop and for a copy shifted by ≤ 2 pixels with noise added (:func:`jitter_frames`);
* optionally (``--motion W``) ``W ·`` the L1 difference between the output of a window of the
  view (:func:`zoom_pan_views`: up to ``--motion-zoom`` smaller, anywhere in it) and the same
  pixels of the whole view's output — a camera panning or zooming moves content in and out of
  the frame, and what stays must keep its rendering (no brightness pumping on video).

Data: paired folders ``DIR/input/NAME`` + ``DIR/target/NAME`` (``--pairs``, split by
:func:`split_names`: only the ``train`` half is used unless ``--split all``) and synthetic pairs
(``--synthetic``, all used; written by ``streamfix train synth-pairs``). Each folder is one
group; real groups share ``real_share`` of the samples equally, synthetic groups the rest.
``--exposure-jitter S`` re-exposes the real pairs' input crops by up to ±S stops, their targets
kept (off by default; stop 15's trainings with it are in engines/backlitnet.toml). ``--lights P``
puts the same lamps into a share ``P`` of the input and target crops
(:func:`~streamfix.train.synthetic.add_lights`; off by default).

Command line::

    streamfix train synth-pairs --images DIR … --out SYNTH
    streamfix train backlitnet --pairs FIVEK --pairs LOL --synthetic SYNTH --out engines/backlitnet.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfix.engines.backlitnet import network_input
from streamfix.engines.backlitnet_net import (
    BacklitNet,
    BacklitNetConfig,
    batched_interp1d,
    load_backlitnet,
    save_backlitnet,
    slice_batch,
)
from streamfix.errors import InputError, Interrupted, OutputError, StreamfixError, UsageError
from streamfix.grid.slicing import RGB_LUMA
from streamfix.train import provenance, weights_out
from streamfix.train.heap import keep_heap
from streamfix.train.synthetic import DEFAULT_SCHEDULE, KINDS, add_lights

__all__ = [
    "SPLITS",
    "add_arguments",
    "add_synth_arguments",
    "backlitnet_loss",
    "grey_curves",
    "jitter_frames",
    "list_pairs",
    "monotonicity_penalty",
    "run",
    "run_synth",
    "split_names",
    "ssim_torch",
    "toe_penalty",
    "train_backlitnet",
]

#: file extensions read as images (case-insensitive)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: the halves of a paired set: sorted names, even positions train, odd positions validation
SPLITS = ("train", "val", "all")
DEFAULT_OUT = "engines/backlitnet.safetensors"
DEFAULT_ITERATIONS = 3000

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# data


def split_names(names: Sequence[str], part: str) -> list[str]:
    """The deterministic train/validation split of a paired set.

    Names are sorted as plain strings; positions 0, 2, 4, … form the ``train`` half and 1, 3, 5, …
    the ``val`` half (``all``: every name). FiveK's 8 pairs split 4/4, LOL's 25 split 13/12.

    >>> split_names(["b", "a", "d", "c", "e"], "val")
    ['b', 'd']
    """
    if part not in SPLITS:
        raise ValueError(f"unknown split {part!r}; use one of {', '.join(SPLITS)}")
    ordered = sorted(names)
    if part == "all":
        return ordered
    start = 0 if part == "train" else 1
    return ordered[start::2]


def list_pairs(root: str | os.PathLike[str], part: str = "all") -> list[tuple[str, Path, Path]]:
    """``(name, input path, target path)`` for the names present in both ``input/`` and ``target/``.

    Raises:
        InputError: the folder lacks ``input/`` or ``target/``, or no name is in both.
    """
    root = Path(root)
    dirs = root / "input", root / "target"
    for d in dirs:
        if not d.is_dir():
            raise InputError(f"{root}: not a paired set (no {d.name}/ folder)")
    found = [{p.name for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS} for d in dirs]
    names = sorted(found[0] & found[1])
    if not names:
        raise InputError(f"{root}: no image is in both input/ and target/")
    return [(n, dirs[0] / n, dirs[1] / n) for n in split_names(names, part)]


def _fit_long_side(img: np.ndarray, long_side: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = long_side / max(h, w)
    if s >= 1.0:
        return img
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _load_group(root: Path, part: str, long_side: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from streamfix.metrics import read_rgb

    out = []
    for name, pin, ptg in list_pairs(root, part):
        a, b = read_rgb(pin), read_rgb(ptg)
        if a.shape != b.shape:
            raise InputError(f"{root}: {name} input {a.shape[:2]} and target {b.shape[:2]} differ in size")
        out.append((_fit_long_side(a, long_side), _fit_long_side(b, long_side)))
    return out


class PairSampler:
    """Random crops of (input, target) pairs from several groups, drawn with fixed group shares.

    Args:
        groups: per group, a list of uint8 ``(H, W, 3)`` (input, target) pairs.
        shares: probability of drawing from each group (normalised).
        crop: side of the square full-resolution view.
        input_size: side of the network's square input.
        rng: the random generator.
        exposure_jitter: for the groups in ``jittered``, the input crop's exposure is changed by a
            uniform random ``u ∈ [−exposure_jitter, +exposure_jitter]`` stops (codes × 2^(u / 2.2):
            a gain in linear light under a 2.2 gamma, clipped) while the target stays: the same
            retouch must be reached from a range of exposures, as in Afifi et al.'s
            multi-exposure rendering of FiveK (CVPR 2021), instead of one input memorised.
        jittered: indices of the groups whose inputs are jittered.
        lights: share of crops that get the same lights added to input and target
            (:func:`~streamfix.train.synthetic.add_lights`); crops whose target is flat (the black
            and white pairs) never do.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]],
        shares: Sequence[float],
        crop: int,
        input_size: int,
        rng: np.random.Generator,
        exposure_jitter: float = 0.0,
        jittered: Sequence[int] = (),
        lights: float = 0.0,
    ) -> None:
        self.groups = [list(g) for g in groups]
        self.lights = lights
        self.exposure_jitter = exposure_jitter
        self.jittered = frozenset(jittered)
        p = np.asarray(shares, np.float64)
        self.shares = p / p.sum()
        self.crop = crop
        self.input_size = input_size
        self.rng = rng

    def _window(self, h: int, w: int) -> tuple[int, int, int, int]:
        area = self.rng.uniform(0.3, 1.0) * h * w
        aspect = math.exp(self.rng.uniform(math.log(0.6), math.log(1.0 / 0.6)))
        ch = int(round(min(h, math.sqrt(area / aspect))))
        cw = int(round(min(w, math.sqrt(area * aspect))))
        ch, cw = max(8, ch), max(8, cw)
        y = int(self.rng.integers(0, h - ch + 1))
        x = int(self.rng.integers(0, w - cw + 1))
        return y, x, ch, cw

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(lo (n, 3, S, S), hi (n, 3, crop, crop), target (n, 3, crop, crop))`` float32 in [0, 1]."""
        lo, hi, tg = [], [], []
        for _ in range(n):
            k = int(self.rng.choice(len(self.groups), p=self.shares))
            g = self.groups[k]
            a, b = g[int(self.rng.integers(0, len(g)))]
            y, x, ch, cw = self._window(*a.shape[:2])
            pa, pb = a[y : y + ch, x : x + cw], b[y : y + ch, x : x + cw]
            if self.exposure_jitter > 0 and k in self.jittered:
                gain = 2.0 ** (self.rng.uniform(-self.exposure_jitter, self.exposure_jitter) / 2.2)
                pa = np.clip(np.rint(pa.astype(np.float32) * gain), 0, 255).astype(np.uint8)
            # a flat target is a black-to-black or white-to-white pair: with lamps in it, it would
            # teach that a lamp keeps a dark frame dark (a near-black night clip left unlifted)
            if self.lights > 0 and self.rng.random() < self.lights and int(pb.max()) - int(pb.min()) > 8:
                pa, pb = add_lights([pa, pb], self.rng)
            if self.rng.random() < 0.5:
                pa, pb = pa[:, ::-1], pb[:, ::-1]
            native = torch.from_numpy(np.ascontiguousarray(pa)).permute(2, 0, 1).float() / 255.0
            lo.append(network_input(native, self.input_size))
            size = (self.crop, self.crop)
            hi.append(cv2.resize(np.ascontiguousarray(pa), size, interpolation=cv2.INTER_AREA))
            tg.append(cv2.resize(np.ascontiguousarray(pb), size, interpolation=cv2.INTER_AREA))

        def stack(xs: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0

        return torch.cat(lo), stack(hi), stack(tg)


# --------------------------------------------------------------------------------------------
# losses


def _gauss_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


_WINDOW = _gauss_window()


def ssim_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of ``(B, C, H, W)`` images in ``[0, 1]`` (11×11 Gaussian window, σ 1.5, valid region)."""
    c = a.shape[1]
    win = _WINDOW.to(a).expand(c, 1, -1, -1)

    def f(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, win, groups=c)

    mu_a, mu_b = f(a), f(b)
    saa = f(a * a) - mu_a**2
    sbb = f(b * b) - mu_b**2
    sab = f(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


#: EVAL.md's crushed level: luma below this counts as crushed
CRUSHED = 0.1


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * x.new_tensor(RGB_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def grey_curves(coeffs: torch.Tensor, guide: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
    """Every cell's output for grey inputs ``y`` ``(L,)`` in [0, 1], ``(B, 3, L, Gh, Gw)``: per channel
    the guide-selected blend of the cell's luma bins' affines, as slicing computes it.

    Args:
        coeffs: ``(B, 12, D, Gh, Gw)``.
        guide: ``(B, K)`` curves or None (identity).
        y: ``(L,)`` grey levels.
    """
    b, _, d, gh, gw = coeffs.shape
    levels = y.shape[0]
    g = y.expand(b, levels) if guide is None else batched_interp1d(guide, y.expand(b, levels).contiguous())
    z = (g * d - 0.5).clamp(0, d - 1)
    z0 = z.detach().floor().long().clamp(max=d - 2) if d > 1 else torch.zeros_like(z, dtype=torch.long)
    t = (z - z0.to(z.dtype)).view(b, 1, levels, 1, 1)
    idx0 = z0.view(b, 1, levels, 1, 1).expand(b, 12, levels, gh, gw)
    c0 = torch.gather(coeffs, 2, idx0)
    c1 = torch.gather(coeffs, 2, (idx0 + 1).clamp(max=d - 1))
    a = ((1 - t) * c0 + t * c1).view(b, 3, 4, levels, gh, gw)
    return a[:, :, :3].sum(2) * y.view(1, 1, levels, 1, 1) + a[:, :, 3]


def monotonicity_penalty(
    coeffs: torch.Tensor, guide: torch.Tensor | None, levels: int = 33, min_slope: float = 0.2
) -> torch.Tensor:
    """How far each cell's tone curve falls short of rising with a slope of at least ``min_slope``.

    For grey inputs ``y`` at ``levels`` uniform values, every cell's output (:func:`grey_curves`)
    must rise by at least ``min_slope · Δy`` per step; the penalty is the mean summed shortfall.
    Without it a grid can lift dark bins past bright ones — dark clouds turning brighter than
    light ones — and flatten regions into posterised patches.

    Args:
        coeffs: ``(B, 12, D, Gh, Gw)``.
        guide: ``(B, K)`` curves or None (identity).
    """
    y = torch.linspace(0.0, 1.0, levels, device=coeffs.device, dtype=coeffs.dtype)
    step = grey_curves(coeffs, guide, y).diff(dim=2)
    return F.relu(min_slope / (levels - 1) - step).sum(2).mean()


def toe_penalty(coeffs: torch.Tensor, guide: torch.Tensor | None, levels: int = 33, upto: float = 0.25,
                min_gain: float = 0.0) -> torch.Tensor:
    """How much steeper each cell's tone curve is than its own gain in the shadows, in [0, 1].

    A pixel of luma ``x`` mapped by a curve ``f`` changes by ``f′(x)·Δx`` when its input changes
    by ``Δx`` (sensor noise, frame to frame), while the frame as a whole is brightened by about
    ``f(x)/x``: where ``f′(x) > f(x)/x`` — the toe of an S-curve, a contrast boost that pushes
    shadows down — noise is amplified more than the picture (EVAL.md's flicker/gain > 1 on video)
    and shadows head for black (crushed %). For grey levels ``y = upto·t²`` (``levels`` of them,
    dense in the shadows) the penalty is the mean over intervals, cells and channels of
    ``relu(1 − gain / slope)``, with the slope ``Δf/Δy`` of the interval and the secant gain
    ``max(f(y), 0)/y`` at its upper end: 0 where the curve is no steeper than its gain, 1 where it
    maps the level to black or below.

    Args:
        coeffs: ``(B, 12, D, Gh, Gw)``.
        guide: ``(B, K)`` curves or None (identity).
        levels: grey levels.
        upto: the brightest level.
        min_gain: only intervals whose secant gain is at least this count (1: brightening curves
            only — a black point pulled down, as a retoucher's contrast does, is then free; the
            noise a brightening toe lifts into view is not).
    """
    y = upto * torch.linspace(0.0, 1.0, levels, device=coeffs.device, dtype=coeffs.dtype) ** 2
    out = grey_curves(coeffs, guide, y)
    slope = (out.diff(dim=2) / y.diff().view(1, 1, -1, 1, 1)).clamp_min(1e-3)
    gain = out[:, :, 1:].clamp_min(0.0) / y[1:].view(1, 1, -1, 1, 1)
    steep = F.relu(1.0 - gain / slope)
    if min_gain > 0:
        steep = steep * (gain.detach() >= min_gain).to(steep.dtype)
    return steep.mean()


def backlitnet_loss(
    out: torch.Tensor,
    target: torch.Tensor,
    inp: torch.Tensor,
    saliency: torch.Tensor,
    coeffs: torch.Tensor,
    weights: dict[str, float] | None = None,
    guide: torch.Tensor | None = None,
    toe_min_gain: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (see the module docstring) and its terms.

    Args:
        out, target, inp: ``(B, 3, H, W)`` sliced output, target, and input at full resolution.
        saliency: ``(B, 1, h, w)`` predicted saliency.
        coeffs: ``(B, 12, D, Gh, Gw)`` predicted grid.
        weights: overrides of ``{"l1", "ssim", "saliency", "bce", "tv", "mono", "crush", "toe"}`` (crush,
            toe: 0 = off).
        guide: ``(B, K)`` predicted guide curves (for the monotonicity and toe terms; None: identity).
        toe_min_gain: :func:`toe_penalty`'s ``min_gain``.

    Returns:
        ``(loss, terms)`` with ``terms`` the detached value of each term.
    """
    w = {"l1": 1.0, "ssim": 0.5, "saliency": 0.5, "bce": 0.1, "tv": 1e-3, "mono": 1.0, "crush": 0.0,
         "toe": 0.0, **(weights or {})}
    err = (out - target).abs()
    l1 = err.mean()
    l_ssim = 1.0 - ssim_torch(out, target)
    y_in, y_tg = _luma(inp), _luma(target)
    prior = (1.0 - y_in).clamp(0, 1) ** 2
    sal_full = F.interpolate(saliency.detach(), size=out.shape[-2:], mode="bilinear", align_corners=False)
    wmap = sal_full * prior
    l_sal = (wmap * err.mean(1, keepdim=True)).sum((1, 2, 3)) / (wmap.sum((1, 2, 3)) + 0.05 * wmap[0].numel())
    l_sal = l_sal.mean()
    pseudo = F.adaptive_avg_pool2d(((y_tg - y_in).abs() / 0.2).clamp(0, 1), saliency.shape[-2:])
    l_bce = F.binary_cross_entropy(saliency.clamp(1e-4, 1 - 1e-4), pseudo)
    tv = (
        (coeffs[..., 1:, :] - coeffs[..., :-1, :]).abs().mean()
        + (coeffs[..., 1:] - coeffs[..., :-1]).abs().mean()
        + (coeffs[:, :, 1:] - coeffs[:, :, :-1]).abs().mean()
    )
    mono = monotonicity_penalty(coeffs, guide)
    loss = (w["l1"] * l1 + w["ssim"] * l_ssim + w["saliency"] * l_sal + w["bce"] * l_bce + w["tv"] * tv
            + w["mono"] * mono)
    named = {"l1": l1, "ssim": l_ssim, "saliency": l_sal, "bce": l_bce, "tv": tv, "mono": mono}
    if w["crush"]:
        y_out = _luma(out)
        crush = (F.relu(CRUSHED - y_out) * (y_tg >= CRUSHED).to(y_out.dtype)).mean() / CRUSHED
        loss = loss + w["crush"] * crush
        named["crush"] = crush
    if w["toe"]:
        toe = toe_penalty(coeffs, guide, min_gain=toe_min_gain)
        loss = loss + w["toe"] * toe
        named["toe"] = toe
    terms = {k: float(v.detach()) for k, v in named.items()}
    return loss, terms


# --------------------------------------------------------------------------------------------
# training


def jitter_frames(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """What the next video frame might look like: ``(B, 3, S, S)`` shifted by up to 2 pixels
    (edges replicated) plus Gaussian noise of σ ≤ 0.01."""
    out = []
    for img in x:
        dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
        pad = F.pad(img[None], (2, 2, 2, 2), mode="replicate")[0]
        s = img.shape[-1]
        out.append(pad[:, 2 + dy : 2 + dy + s, 2 + dx : 2 + dx + s])
    y = torch.stack(out)
    sigma = float(rng.uniform(0.0, 0.01))
    noise = torch.from_numpy(rng.standard_normal(y.shape, dtype=np.float32)) * sigma
    return (y + noise).clamp(0, 1)


def crop_at(x: torch.Tensor, offsets: Sequence[tuple[int, int]], side: int) -> torch.Tensor:
    """``(B, C, side, side)``: the square of ``x[b]`` (``(B, C, H, W)``) at ``offsets[b] = (oy, ox)``."""
    return torch.stack([v[:, oy : oy + side, ox : ox + side] for v, (oy, ox) in zip(x, offsets, strict=True)])


def zoom_pan_views(
    hi: torch.Tensor, max_zoom: float, rng: np.random.Generator
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """What the next frame of a camera that pans and zooms sees: square windows of the
    ``(B, 3, C, C)`` views, all of side ``s = round(C · (1 − z))`` with ``z ~ U[0, max_zoom]`` drawn
    once, each at its own random offset ``(oy, ox)`` — content leaves at the edges (a light that
    drifts out of frame), the rest is the same scene at the same pixel scale.

    Returns ``(windows (B, 3, s, s), offsets)``; ``hi[b, :, oy:oy + s, ox:ox + s]`` is window ``b``.
    """
    c = hi.shape[-1]
    s = max(8, min(c, int(round(c * (1.0 - rng.uniform(0.0, max_zoom))))))
    offsets = [(int(rng.integers(0, c - s + 1)), int(rng.integers(0, c - s + 1))) for _ in range(hi.shape[0])]
    return crop_at(hi, offsets, s), offsets


def _lr_at(it: int, total: int, lr: float, warmup: int) -> float:
    if it <= warmup:
        return lr * it / warmup
    t = (it - warmup) / max(1, total - warmup)
    return 1e-2 * lr + (lr - 1e-2 * lr) * 0.5 * (1.0 + math.cos(math.pi * t))


def _ema_update(averaged: nn.Module, net: nn.Module, decay: float) -> None:
    """``averaged ← decay·averaged + (1 − decay)·net``, parameters and buffers alike."""
    with torch.no_grad():
        for a, p in zip(averaged.state_dict().values(), net.state_dict().values(), strict=True):
            if a.dtype.is_floating_point:
                a.lerp_(p, 1.0 - decay)
            else:
                a.copy_(p)


def train_backlitnet(
    pairs: Sequence[str | os.PathLike[str]] = (),
    synthetic: Sequence[str | os.PathLike[str]] = (),
    iterations: int = DEFAULT_ITERATIONS,
    batch_size: int = 8,
    crop: int = 160,
    seed: int = 0,
    log: Log | None = _stderr,
    *,
    split: str = "train",
    real_share: float = 0.4,
    identity_share: float = 0.0,
    consistency: float = 0.0,
    motion: float = 0.0,
    motion_zoom: float = 0.15,
    crush: float = 0.0,
    toe: float = 0.0,
    tv: float = 1e-3,
    lights: float = 0.0,
    toe_min_gain: float = 0.0,
    ema: float = 0.0,
    exposure_jitter: float = 0.0,
    lr: float = 1e-3,
    long_side: int = 512,
    config: BacklitNetConfig | None = None,
    init: BacklitNet | None = None,
    log_every: int = 50,
    threads: int | None = 2,
    max_minutes: float | None = None,
) -> tuple[BacklitNet, dict[str, object]]:
    """Train BacklitNet; returns ``(net in eval mode, stats)``.

    Args:
        pairs: real paired folders (``input/`` + ``target/``); only the ``split`` half is used.
        synthetic: synthetic paired folders; every pair is used.
        iterations: optimiser steps (Adam, linear warm-up then cosine decay to 1 % of ``lr``).
        batch_size: crops per step.
        crop: side of the full-resolution view the loss is computed on.
        seed: seeds initialisation and sampling.
        log: progress callback (None: silent).
        split: which half of each real paired set to train on (see :func:`split_names`).
        real_share: share of samples drawn from the real folders (0 with none given).
        identity_share: share of samples that are (target, target) identity pairs made from the
            real folders' targets (their ``split`` half): well-exposed, retouched frames must come
            out unchanged. Taken from the synthetic share.
        consistency: weight of the temporal-consistency term: for half the batch the network also
            sees a slightly changed copy of its input (:func:`jitter_frames`: a shift of up to 2
            pixels and sensor-like noise, as between consecutive video frames) and the L1
            difference of the two grids and guides is penalised (no brightness pumping on video).
        motion: weight of the pan-and-zoom term: for the other half of the batch the network also
            sees a window of the view (:func:`zoom_pan_views`, up to ``motion_zoom`` smaller, at a
            random offset) and the L1 difference between that window's output and the same pixels
            of the whole view's output is penalised: the same scene content keeps its rendering
            when other content enters or leaves the frame (no pumping while a camera pans).
        motion_zoom: the largest zoom of those windows (fraction of the view's side).
        crush: weight of the crush term of :func:`backlitnet_loss` (0: off).
        toe: weight of :func:`toe_penalty` (0: off).
        tv: weight of the grid's total variation across cells and luma bins (larger: the grid's
            curves vary less across the frame — a global look, less local tone mapping).
        toe_min_gain: its ``min_gain`` (0: every curve; 1: brightening ones only).
        ema: decay of an exponential moving average of the weights (0: off); with it, the
            averaged weights are returned (Polyak averaging: less dependent on the last batches
            than the final iterate). The decay ramps up as ``min(ema, (1 + it) / (10 + it))``.
        exposure_jitter: the real pairs' inputs re-exposed by up to this many stops either way,
            their targets kept (:class:`PairSampler`); 0: off.
        lights: share of crops that get the same lights (lamps, windows) added to input and
            target: the rest of the frame keeps its rendering when a light enters it (no pumping).
        lr: peak learning rate.
        long_side: images are downscaled to this long side when loaded.
        config: the network's shape (ignored with ``init``).
        init: start from a copy of these weights instead of a fresh initialisation (fine-tuning;
            the schedule, warm-up included, is the same); ``init`` itself is left unchanged.
        log_every: progress interval.
        threads: torch intra-op threads.
        max_minutes: stop early (keeping the weights so far) after this much wall time.

    Raises:
        InputError: no pairs, unreadable or mismatched images.
        FloatingPointError: the loss became NaN/inf.
    """
    if not pairs and not synthetic:
        raise InputError("no training data: give --pairs and/or --synthetic folders")
    if iterations < 1 or batch_size < 1 or crop < 16:
        raise ValueError("iterations and batch_size must be ≥ 1 and crop ≥ 16")
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema decay must be in [0, 1), got {ema}")
    if min(motion, consistency, tv) < 0 or not 0.0 < motion_zoom <= 0.5:
        raise ValueError("consistency, motion and tv weights must be ≥ 0 and motion zoom in (0, 0.5]")
    if not 0.0 <= lights <= 1.0:
        raise ValueError(f"lights share must be in [0, 1], got {lights}")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    prefetch: ThreadPoolExecutor | None = None
    try:
        t_load = time.perf_counter()
        real = [_load_group(Path(p), split, long_side) for p in pairs]
        synth = [_load_group(Path(p), "all", long_side) for p in synthetic]
        ident = [[(t, t) for g in real for _, t in g]] if (real and identity_share > 0) else []
        groups = real + ident + synth
        if real and synth:
            id_share = identity_share if ident else 0.0
            shares = ([real_share / len(real)] * len(real) + [id_share] * len(ident)
                      + [(1 - real_share - id_share) / len(synth)] * len(synth))
        else:
            shares = [1.0 / len(groups)] * len(groups)
        counts = [len(g) for g in groups]
        if log is not None:
            log(f"BacklitNet training: groups {counts} pairs (shares {[round(s, 3) for s in shares]}), loaded in "
                f"{time.perf_counter() - t_load:.0f} s; {iterations} iterations × batch {batch_size}, crop {crop}, "
                f"seed {seed}, {torch.get_num_threads()} threads")
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = copy.deepcopy(init).requires_grad_(True) if init is not None else BacklitNet(config or BacklitNetConfig())
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        averaged = copy.deepcopy(net).requires_grad_(False) if ema > 0 else None
        sampler = PairSampler(groups, shares, crop, net.config.input_size, rng, exposure_jitter,
                              jittered=range(len(real)), lights=lights)
        warmup = min(100, max(1, iterations // 10))
        t0 = time.perf_counter()
        losses: list[float] = []
        term_sums: dict[str, float] = {}
        done = 0
        # the next batch is cut on the second core while this one trains: it is drawn after every
        # other use of ``rng`` in the step, so a seed's stream — and its weights — stay the same
        prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backlitnet-batches")
        next_batch = prefetch.submit(sampler.batch, batch_size)
        for it in range(1, iterations + 1):
            for g in opt.param_groups:
                g["lr"] = _lr_at(it, iterations, lr, warmup)
            lo, hi, tg = next_batch.result()
            n_jit = batch_size // 2 if consistency > 0 else 0
            n_mot = batch_size - batch_size // 2 if motion > 0 else 0
            extra = [lo] + ([jitter_frames(lo[:n_jit], rng)] if n_jit else [])
            if n_mot:
                windows, offsets = zoom_pan_views(hi[batch_size - n_mot :], motion_zoom, rng)
                extra.append(network_input(windows, net.config.input_size))
            if it < iterations:
                next_batch = prefetch.submit(sampler.batch, batch_size)
            coeffs_all, guide_all, sal_all = net(torch.cat(extra))
            coeffs, guide, sal = coeffs_all[:batch_size], guide_all[:batch_size], sal_all[:batch_size]
            out = slice_batch(hi, coeffs, guide)
            loss, terms = backlitnet_loss(out, tg, hi, sal, coeffs, guide=guide,
                                          weights={"crush": crush, "toe": toe, "tv": tv}, toe_min_gain=toe_min_gain)
            if n_jit:
                jit = slice(batch_size, batch_size + n_jit)
                cons = ((coeffs_all[jit] - coeffs[:n_jit]).abs().mean()
                        + (guide_all[jit] - guide[:n_jit]).abs().mean())
                loss = loss + consistency * cons
                terms["cons"] = float(cons.detach())
            if n_mot:
                mot = slice(batch_size + n_jit, None)
                moved = slice_batch(windows, coeffs_all[mot], guide_all[mot])
                same = crop_at(out[batch_size - n_mot :], offsets, windows.shape[-1])
                pan = (moved - same).abs().mean()
                loss = loss + motion * pan
                terms["pan"] = float(pan.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            if averaged is not None:
                _ema_update(averaged, net, min(ema, (1.0 + it) / (10.0 + it)))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"loss became {value} at iteration {it}")
            losses.append(value)
            for k, v in terms.items():
                term_sums[k] = term_sums.get(k, 0.0) + v
            done = it
            elapsed = time.perf_counter() - t0
            if log is not None and (it % log_every == 0 or it == iterations):
                mean_terms = " ".join(f"{k} {v / log_every:.4f}" for k, v in term_sums.items())
                log(f"train {it}/{iterations}  loss {np.mean(losses[-log_every:]):.4f}  [{mean_terms}]  "
                    f"lr {opt.param_groups[0]['lr']:.2e}  {it / elapsed:.2f} it/s  {elapsed / 60:.1f} min")
                term_sums = {}
            if max_minutes is not None and elapsed > max_minutes * 60:
                if log is not None:
                    log(f"stopping at iteration {it}: --max-minutes {max_minutes} reached")
                break
    finally:
        if prefetch is not None:
            prefetch.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(old_threads)
    if averaged is not None:
        net = averaged
    net.eval().requires_grad_(False)
    stats: dict[str, object] = {
        "iterations": done,
        "planned_iterations": iterations,
        "batch_size": batch_size,
        "crop": crop,
        "seed": seed,
        "split": split,
        "groups": {str(p): n for p, n in zip([*pairs, *(["identity pairs of the targets"] if ident else []),
                                                 *synthetic], counts, strict=True)},
        "shares": shares,
        "minutes": round((time.perf_counter() - t0) / 60.0, 1),
        "final_loss": float(np.mean(losses[-100:])),
        "first_loss": losses[0],
        "threads": threads,
        "identity_share": identity_share,
        "consistency": consistency,
        "motion": motion,
        "motion_zoom": motion_zoom,
        "crush": crush,
        "toe": toe,
        "tv": tv,
        "lights": lights,
        "toe_min_gain": toe_min_gain,
        "ema": ema,
        "exposure_jitter": exposure_jitter,
        "real_share": real_share,
    }
    return net, stats


# --------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train backlitnet`` flags to ``parser``."""
    parser.add_argument("--pairs", metavar="DIR", action="append", default=[],
                        help="real paired set DIR/input + DIR/target (repeatable); only its --split half is used")
    parser.add_argument("--synthetic", metavar="DIR", action="append", default=[],
                        help="synthetic pairs from `streamfix train synth-pairs` (repeatable; all used)")
    parser.add_argument("--split", choices=SPLITS, default="train",
                        help="half of each --pairs set to train on: sorted names, even positions = train, "
                        "odd = val (default train)")
    parser.add_argument("--real-share", type=float, default=0.4,
                        help="share of samples drawn from the --pairs sets (default 0.4)")
    parser.add_argument("--identity-share", type=float, default=0.0,
                        help="share of (target, target) identity pairs from the --pairs sets' targets (default 0)")
    parser.add_argument("--consistency", type=float, default=0.0,
                        help="weight of the grid consistency term between a crop and a jittered copy (default 0)")
    parser.add_argument("--motion", type=float, default=0.0,
                        help="weight of the term that keeps a crop's rendering when the view pans and zooms "
                             "(content entering and leaving the frame; default 0)")
    parser.add_argument("--motion-zoom", type=float, default=0.15,
                        help="largest zoom of the pan-and-zoom term's windows, fraction of the view (default 0.15)")
    parser.add_argument("--crush", type=float, default=0.0,
                        help="weight of the term against pushing pixels below luma 0.1 where the target is not "
                             "(default 0)")
    parser.add_argument("--toe", type=float, default=0.0,
                        help="weight of the term against tone curves steeper than their gain in the shadows "
                             "(noise amplified, shadows crushed; default 0)")
    parser.add_argument("--tv", type=float, default=1e-3,
                        help="weight of the grid's total variation across cells and luma bins (default 0.001)")
    parser.add_argument("--lights", type=float, default=0.0, metavar="SHARE",
                        help="share of crops given the same lights in input and target (a frame's rendering must "
                             "not depend on the lamps in it; default 0)")
    parser.add_argument("--toe-min-gain", type=float, default=0.0,
                        help="the toe term counts only where a curve's gain is at least this (1: brightening "
                             "curves only, a pulled-down black point is free; default 0: everywhere)")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="decay of a moving average of the weights, which is what gets saved "
                             "(e.g. 0.999; default 0: the last iterate)")
    parser.add_argument("--exposure-jitter", type=float, default=0.0, metavar="STOPS",
                        help="re-expose the real pairs' inputs by up to this many stops either way, targets "
                             "kept (the retouch learned from a range of exposures; default 0: off)")
    parser.add_argument("--smooth-stats", action="store_true",
                        help="a network whose global inputs move continuously with the pixels (soft histogram "
                             "bins and shares, soft maximum; BacklitNetConfig.smooth_stats)")
    parser.add_argument("--init", metavar="W.safetensors", default=None,
                        help="fine-tune: start from these BacklitNet weights (their network shape; default: "
                             "a fresh initialisation)")
    parser.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                        help=f"optimiser steps (default {DEFAULT_ITERATIONS})")
    parser.add_argument("--batch-size", type=int, default=8, help="crops per step (default 8)")
    parser.add_argument("--crop", type=int, default=160, help="side of the full-resolution training view (default 160)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop early after this wall time")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--log-every", type=int, default=50, help="progress interval in iterations (default 50)")
    parser.add_argument("--out", metavar="PATH.safetensors", default=DEFAULT_OUT,
                        help=f"output weights (default {DEFAULT_OUT})")


def run(args: argparse.Namespace) -> int:
    """``streamfix train backlitnet``."""
    out = weights_out(args.out)
    for name in ("iterations", "batch_size", "log_every", "threads"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be ≥ 1")
    if not 0.0 <= args.real_share <= 1.0 or not 0.0 <= args.identity_share <= 1.0 - args.real_share:
        raise UsageError("--real-share must be in [0, 1] and --identity-share in [0, 1 − real share]")
    if not 0.0 <= args.exposure_jitter <= 4.0:
        raise UsageError(f"--exposure-jitter must be in [0, 4] stops, got {args.exposure_jitter:g}")
    init = None
    if args.init is not None:
        try:
            init, _ = load_backlitnet(args.init)
        except ValueError as exc:
            raise InputError(f"--init {exc}") from None
        if args.smooth_stats and not init.config.smooth_stats:
            raise UsageError(f"--smooth-stats: {args.init} is a network without it (fine-tuning keeps its shape)")
    keep_heap()
    try:
        net, stats = train_backlitnet(
            args.pairs, args.synthetic, iterations=args.iterations, batch_size=args.batch_size, crop=args.crop,
            seed=args.seed, split=args.split, real_share=args.real_share, identity_share=args.identity_share,
            consistency=args.consistency, motion=args.motion, motion_zoom=args.motion_zoom,
            crush=args.crush, toe=args.toe, tv=args.tv, lights=args.lights, toe_min_gain=args.toe_min_gain,
            ema=args.ema, exposure_jitter=args.exposure_jitter, lr=args.lr,
            config=BacklitNetConfig(smooth_stats=args.smooth_stats), init=init,
            log_every=args.log_every, threads=args.threads, max_minutes=args.max_minutes,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except FloatingPointError as exc:
        raise StreamfixError(str(exc)) from exc
    except KeyboardInterrupt as exc:
        raise Interrupted("interrupted; no weights written") from exc
    meta = {
        **provenance("backlitnet", args),
        **{k: json.dumps(v) if not isinstance(v, str) else v for k, v in stats.items()},
    }
    try:
        save_backlitnet(net, out, meta)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    _stderr(f"wrote {out} ({stats['iterations']} iterations, {stats['minutes']} min)")
    return 0


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train synth-pairs`` flags to ``parser``."""
    parser.add_argument("--images", metavar="PATH", action="append", required=True,
                        help="clean, well-exposed photo or folder of photos (repeatable)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (input/, target/, manifest.json)")
    parser.add_argument("--per-image", type=int, default=9, help="pairs per photo (default 9)")
    parser.add_argument("--long-side", type=int, default=512, help="downscale photos to this long side (default 512)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--kinds", metavar="K,K,…",
                        help="degradations cycled through per photo (default "
                             f"{','.join(DEFAULT_SCHEDULE)}; known: {', '.join(KINDS)})")
    parser.add_argument("--black-white", type=int, default=4,
                        help="black-to-black and white-to-white pairs of each (default 4)")


def run_synth(args: argparse.Namespace) -> int:
    """``streamfix train synth-pairs``."""
    from streamfix.train.synthetic import write_synthetic_pairs

    files: list[Path] = []
    for p in map(Path, args.images):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise InputError(f"{p}: no images")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if args.per_image < 1 or args.long_side < 16 or args.black_white < 0:
        raise UsageError("--per-image must be ≥ 1, --long-side ≥ 16 and --black-white ≥ 0")
    schedule = DEFAULT_SCHEDULE if args.kinds is None else tuple(k.strip() for k in args.kinds.split(","))
    unknown = sorted(set(schedule) - set(KINDS))
    if unknown:
        raise UsageError(f"--kinds: unknown kind {', '.join(map(repr, unknown))}; known: {', '.join(KINDS)}")
    try:
        manifest = write_synthetic_pairs(files, args.out, per_image=args.per_image, seed=args.seed,
                                         long_side=args.long_side, black_white=args.black_white,
                                         schedule=schedule, log=_stderr)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{args.out}: {exc}") from exc
    _stderr(f"wrote {len(manifest['pairs'])} pairs from {len(files)} photos to {args.out}")  # type: ignore[arg-type]
    return 0
