"""BacklitNet's network (after Lv et al., CVIU 2022): thumbnail in, bilateral grid + guide curve out.

BacklitNet's code and weights were never released; this is this project's design from the paper's
description, shaped by the grid contract (:mod:`streamfix.grid.bilateral`):

* **Nested U-structure** (U²-Net's residual U-blocks, RSU): an encoder of RSU blocks at 1/2 … 1/16
  of the network input and a decoder back to 1/4, extracting multi-scale features.
* **Saliency head**: U²-Net-style side outputs of three stages, fused into one map in ``[0, 1]``
  (1/4 resolution) — where the image needs fixing. It feeds the grid head and, in training,
  weights the loss together with the backlit brightness prior.
* **Global branch** (GLADNet's global illumination awareness): pooled bottleneck features plus
  the thumbnail's luma histogram and moments → an MLP → one global vector, added to the local
  features (HDRNet's fusion) and used alone to predict the guide curve.
* **Grid head**: local (1/8 resolution = the grid's 16×16 cells) + saliency + global → ``12·D``
  coefficients per cell, predicted as a *residual around the identity* (the last layer starts
  near zero), so an untrained network leaves frames unchanged and a well-exposed frame needs
  only small corrections. Affines per luma bin can both lift shadows and pull highlights back.
* **Guide**: a monotone curve of the pixel's luma with ``K`` uniform knots,
  ``cumsum(softplus(·))`` normalised to run from 0 to 1 — exactly the ``(K,)`` guide the fused
  CPU kernels slice with, at no extra cost per pixel.

The network input is the thumbnail resized to a fixed ``input_size``² square (see the engine
card for why); any size works (the local path ends in an adaptive pool to the grid size).

Example:
    >>> import torch
    >>> net = BacklitNet().eval()
    >>> coeffs, guide, sal = net(torch.rand(2, 3, 128, 128))
    >>> tuple(coeffs.shape), tuple(guide.shape), tuple(sal.shape)
    ((2, 12, 8, 16, 16), (2, 16), (2, 1, 32, 32))
    >>> bool(torch.allclose(guide[:, 0], torch.zeros(2))) and bool(torch.allclose(guide[:, -1], torch.ones(2)))
    True
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streamfix.grid.bilateral import N_COEFFS
from streamfix.grid.slicing import RGB_LUMA

__all__ = [
    "BacklitNet",
    "BacklitNetConfig",
    "FORMAT_VALUE",
    "batched_interp1d",
    "load_backlitnet",
    "luma_histogram_features",
    "soft_max_pool",
    "save_backlitnet",
    "slice_batch",
]

FORMAT_KEY = "format"
FORMAT_VALUE = "streamfix-backlitnet"
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass(frozen=True)
class BacklitNetConfig:
    """Shape of the network; stored in the weights' metadata so a file describes itself.

    Attributes:
        input_size: side of the square the thumbnail is resized to.
        depth: luma bins ``D`` of the grid.
        grid: spatial cells ``(Gh, Gw)``.
        knots: knots ``K`` of the guide curve.
        width: base channel count (the stages use 1×, 1.5×, 2×, 3×, 4× of it).
        hist_bins: bins of the luma histogram fed to the global branch.
        smooth_stats: the global branch's inputs made continuous in the pixels: a histogram
            with linear (triangular) binning, sigmoid-soft crushed / clipped shares, and a
            soft maximum (log-mean-exp) of the bottleneck in place of its maximum. With hard
            bins and a hard maximum a little noise or one small light moving in a dark frame
            moves those inputs by steps (brightness pumping on night video). False in weights
            trained before the option existed.
    """

    input_size: int = 128
    depth: int = 8
    grid: tuple[int, int] = (16, 16)
    knots: int = 16
    width: int = 16
    hist_bins: int = 16
    smooth_stats: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BacklitNetConfig:
        raw = json.loads(text)
        if "grid" in raw:
            raw["grid"] = tuple(raw["grid"])
        return cls(**raw)


# --------------------------------------------------------------------------------------------
# building blocks (U²-Net)


class ConvReLU(nn.Sequential):
    """3×3 convolution (optionally dilated) + LeakyReLU; no normalisation (batches are small and
    mixed; instance statistics would erase the exposure the network has to see)."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.LeakyReLU(0.1, inplace=True))


def _up_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """U²-Net's residual U-block of height ``height``: an input conv, a small U-Net of ``mid``
    channels (pooling by 2 between levels, a dilated conv at the bottom), and a residual add.

    Shapes: ``(B, cin, H, W)`` → ``(B, cout, H, W)``.
    """

    def __init__(self, height: int, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.inp = ConvReLU(cin, cout)
        self.enc = nn.ModuleList([ConvReLU(cout, mid)] + [ConvReLU(mid, mid) for _ in range(height - 2)])
        self.bottom = ConvReLU(mid, mid, dilation=2)
        self.dec = nn.ModuleList([ConvReLU(2 * mid, mid) for _ in range(height - 2)] + [ConvReLU(2 * mid, cout)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hin = self.inp(x)
        skips = []
        h = hin
        for i, conv in enumerate(self.enc):
            h = conv(h)
            skips.append(h)
            if i < len(self.enc) - 1:
                h = F.max_pool2d(h, 2, ceil_mode=True)
        h = self.bottom(h)
        for i, conv in enumerate(self.dec):
            s = skips[-1 - i]
            h = conv(torch.cat([_up_to(h, s), s], 1))
        return h + hin


class RSUF(nn.Module):
    """RSU-4F: the flat variant (dilations 1, 2, 4, 8 instead of pooling), for the coarsest stage."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.inp = ConvReLU(cin, cout)
        self.e1, self.e2, self.e3 = ConvReLU(cout, mid, 1), ConvReLU(mid, mid, 2), ConvReLU(mid, mid, 4)
        self.bottom = ConvReLU(mid, mid, 8)
        self.d3, self.d2, self.d1 = ConvReLU(2 * mid, mid, 4), ConvReLU(2 * mid, mid, 2), ConvReLU(2 * mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hin = self.inp(x)
        h1 = self.e1(hin)
        h2 = self.e2(h1)
        h3 = self.e3(h2)
        h = self.bottom(h3)
        h = self.d3(torch.cat([h, h3], 1))
        h = self.d2(torch.cat([h, h2], 1))
        h = self.d1(torch.cat([h, h1], 1))
        return h + hin


def luma_histogram_features(x: torch.Tensor, bins: int = 16, smooth: bool = False) -> torch.Tensor:
    """Global exposure statistics of ``(B, 3, H, W)`` images in ``[0, 1]``.

    Returns ``(B, bins + 4)``: the normalised BT.709 luma histogram and the luma mean, standard
    deviation, and the shares of pixels below 0.1 and above 0.95 (no gradient is needed through
    them: they describe the input). ``smooth``: each pixel splits its count between the two
    nearest bin centres in proportion to its distance (so the histogram moves continuously with
    the pixels), and the shares count through sigmoids 0.02 / 0.01 wide.
    """
    w = x.new_tensor(RGB_LUMA).view(1, 3, 1, 1)
    y = (x * w).sum(1).clamp(0, 1).flatten(1)
    hist = torch.zeros(y.shape[0], bins, device=x.device, dtype=x.dtype)
    if smooth:
        pos = (y * bins - 0.5).clamp(0, bins - 1)  # 0 at the first bin's centre, bins − 1 at the last's
        lo = pos.floor().long().clamp(max=bins - 2)
        frac = pos - lo.to(x.dtype)
        hist = hist.scatter_add_(1, lo, 1.0 - frac).scatter_add_(1, lo + 1, frac)
        crushed, clipped = torch.sigmoid((0.1 - y) / 0.02), torch.sigmoid((y - 0.95) / 0.01)
    else:
        idx = (y * bins).long().clamp(max=bins - 1)
        hist = hist.scatter_add_(1, idx, torch.ones_like(y))
        crushed, clipped = (y < 0.1).to(x.dtype), (y > 0.95).to(x.dtype)
    hist = hist / y.shape[1]
    stats = torch.stack([y.mean(1), y.std(1, unbiased=False), crushed.mean(1), clipped.mean(1)], 1)
    return torch.cat([hist, stats], 1)


def soft_max_pool(h: torch.Tensor, sharpness: float = 4.0) -> torch.Tensor:
    """Log-mean-exp over the spatial positions of ``(B, C, H, W)``: ``(B, C)`` between the mean
    (``sharpness`` → 0) and the maximum (→ ∞), differentiable in every position."""
    flat = h.flatten(2) * sharpness
    return (torch.logsumexp(flat, 2) - math.log(flat.shape[2])) / sharpness


# --------------------------------------------------------------------------------------------
# the network


class BacklitNet(nn.Module):
    """Thumbnail → (grid coefficients, guide curve, saliency).

    Args:
        config: the network's shape (:class:`BacklitNetConfig`).

    Forward:
        x: ``(B, 3, H, W)`` RGB in ``[0, 1]`` (normally ``input_size``² square).

    Returns:
        ``coeffs (B, 12, D, Gh, Gw)`` (RGB-domain 3×4 affines), ``guide (B, K)`` in ``[0, 1]``,
        monotone from 0 to 1, and ``saliency (B, 1, H/4, W/4)`` in ``[0, 1]``.
    """

    def __init__(self, config: BacklitNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or BacklitNetConfig()
        c = cfg.width
        c1, c2, c3, c4 = c + c // 2, 2 * c, 3 * c, 4 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True))  # 1/2
        self.en1 = RSU(4, c, c // 2, c1)  # 1/2
        self.en2 = RSU(4, c1, c // 2 + c // 4, c2)  # 1/4
        self.en3 = RSU(3, c2, c, c3)  # 1/8
        self.en4 = RSUF(c3, c + c // 2, c4)  # 1/16
        self.de3 = RSU(3, c4 + c3, c, c3)  # 1/8: the grid's resolution
        self.de2 = RSU(3, c3 + c2, c // 2 + c // 4, c2)  # 1/4
        # saliency: U²-Net side outputs + fusion
        self.side4, self.side3, self.side2 = nn.Conv2d(c4, 1, 3, padding=1), nn.Conv2d(c3, 1, 3, padding=1), \
            nn.Conv2d(c2, 1, 3, padding=1)
        self.sal_fuse = nn.Conv2d(3, 1, 1)
        # global branch (GLADNet): pooled bottleneck + luma statistics
        gdim = c4
        self.global_mlp = nn.Sequential(
            nn.Linear(c4 * 2 + cfg.hist_bins + 4, gdim), nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(gdim, gdim), nn.LeakyReLU(0.1, inplace=True),
        )
        # grid head
        self.local_proj = nn.Conv2d(c3 + 1, gdim, 1)
        self.global_proj = nn.Linear(gdim, gdim)
        self.head = nn.Sequential(
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(gdim, gdim, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(gdim, N_COEFFS * cfg.depth, 1),
        )
        self.guide_head = nn.Linear(gdim, cfg.knots - 1)
        self.register_buffer("identity", torch.tensor(_IDENTITY).view(1, N_COEFFS, 1, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        # residual around the identity: the coefficient and guide heads start (almost) silent
        last = self.head[-1]
        nn.init.normal_(last.weight, std=1e-4)
        nn.init.zeros_(last.bias)
        nn.init.normal_(self.guide_head.weight, std=1e-4)
        nn.init.zeros_(self.guide_head.bias)
        nn.init.constant_(self.sal_fuse.weight, 1.0 / 3.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cells, context, saliency = self.encode(x)
        coeffs, guide = self.decode(cells, context)
        return coeffs, guide, saliency

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The heavy part: ``x (B, 3, H, W)`` → ``(cells (B, C, Gh, Gw), context (B, C), saliency)``.

        ``cells`` are the grid cells' local features (with the saliency, projected), ``context``
        the global branch's vector (the whole thumbnail's exposure: pooled features and luma
        statistics, GLADNet's global illumination awareness). :meth:`decode` turns the two into
        the grid; a video engine may hold ``context`` across the frames of a shot
        (:class:`~streamfix.engines.scene_context.SceneContext`).
        """
        cfg = self.config
        h0 = self.stem(x)
        e1 = self.en1(h0)
        e2 = self.en2(F.max_pool2d(e1, 2, ceil_mode=True))
        e3 = self.en3(F.max_pool2d(e2, 2, ceil_mode=True))
        e4 = self.en4(F.max_pool2d(e3, 2, ceil_mode=True))
        d3 = self.de3(torch.cat([_up_to(e4, e3), e3], 1))
        d2 = self.de2(torch.cat([_up_to(d3, e2), e2], 1))

        s2 = self.side2(d2)
        s3 = _up_to(self.side3(d3), s2)
        s4 = _up_to(self.side4(e4), s2)
        saliency = torch.sigmoid(self.sal_fuse(torch.cat([s2, s3, s4], 1)))

        stats = luma_histogram_features(x, cfg.hist_bins, cfg.smooth_stats)
        peak = soft_max_pool(e4) if cfg.smooth_stats else e4.amax((2, 3))
        context = self.global_mlp(torch.cat([e4.mean((2, 3)), peak, stats], 1))

        gh, gw = cfg.grid
        local = torch.cat([d3, F.adaptive_avg_pool2d(saliency, d3.shape[-2:])], 1)
        local = F.adaptive_avg_pool2d(local, (gh, gw)) if local.shape[-2:] != (gh, gw) else local
        return self.local_proj(local), context, saliency

    def decode(self, cells: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The grid head (cheap: a few convolutions on the ``Gh × Gw`` cells): :meth:`encode`'s
        ``cells`` and ``context`` → ``(coeffs (B, 12, D, Gh, Gw), guide (B, K))``."""
        cfg = self.config
        b, _, gh, gw = cells.shape
        fused = cells + self.global_proj(context).view(b, -1, 1, 1)
        delta = self.head(fused).view(b, N_COEFFS, cfg.depth, gh, gw)
        coeffs = self.identity + delta

        inc = F.softplus(self.guide_head(context) + _SOFTPLUS_ONE)
        cum = torch.cumsum(inc, 1)
        guide = torch.cat([torch.zeros_like(cum[:, :1]), cum / cum[:, -1:]], 1)
        return coeffs, guide


class BacklitNetEncoder(nn.Module):
    """:meth:`BacklitNet.encode` as a module of its own: what TensorRT compiles for the engine
    (the head runs eagerly after it, on a context the engine may have held). Shares ``net``'s
    parameters."""

    def __init__(self, net: BacklitNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net.encode(x)


#: softplus(_SOFTPLUS_ONE) = 1: equal increments (the identity guide) at initialisation
_SOFTPLUS_ONE = 0.5413248546129181


# --------------------------------------------------------------------------------------------
# differentiable batched slicing (the training path; same maths as streamfix.grid.slicing)


def batched_interp1d(curves: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Evaluate per-sample uniform-knot curves ``(B, K)`` at ``x`` ``(B, …)`` in ``[0, 1]``.

    Differentiable in the curve values (as :func:`streamfix.grid.bilateral.interp1d`).
    """
    b, k = curves.shape
    flat = x.reshape(b, -1)
    pos = flat.clamp(0.0, 1.0) * (k - 1)
    i0 = pos.detach().floor().clamp(max=k - 2).long()
    w = pos - i0.to(pos.dtype)
    lo = torch.gather(curves, 1, i0)
    hi = torch.gather(curves, 1, i0 + 1)
    return (lo * (1 - w) + hi * w).view_as(x)


def slice_batch(rgb: torch.Tensor, coeffs: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
    """Apply per-sample grids to a batch of images (differentiable in ``coeffs`` and ``guide``).

    The same lookup as :func:`streamfix.grid.slicing.slice_rgb` (cell centres at integer grid
    coordinates, borders clamped, depth ``guide(luma)·D − ½``), batched.

    Args:
        rgb: ``(B, 3, H, W)`` in ``[0, 1]``.
        coeffs: ``(B, 12, D, Gh, Gw)``.
        guide: ``(B, K)`` curves, or None for the identity curve.

    Returns:
        ``(B, 3, H, W)`` clamped to ``[0, 1]``.
    """
    b, _, h, w = rgb.shape
    d = coeffs.shape[2]
    wts = rgb.new_tensor(RGB_LUMA).view(1, 3, 1, 1)
    luma = (rgb * wts).sum(1).clamp(0, 1)
    g = luma if guide is None else batched_interp1d(guide, luma)
    z = (g * d - 0.5).clamp(0, d - 1)
    zn = (z + 0.5) / d * 2.0 - 1.0
    xs = (torch.arange(w, device=rgb.device, dtype=rgb.dtype) + 0.5) / w * 2.0 - 1.0
    ys = (torch.arange(h, device=rgb.device, dtype=rgb.dtype) + 0.5) / h * 2.0 - 1.0
    coords = torch.stack([xs.view(1, 1, w).expand(b, h, w), ys.view(1, h, 1).expand(b, h, w), zn], -1)
    c = F.grid_sample(coeffs, coords.view(b, 1, h, w, 3), mode="bilinear", padding_mode="border",
                      align_corners=False)
    a = c.view(b, 3, 4, h, w)
    out = (a[:, :, :3] * rgb[:, None]).sum(2) + a[:, :, 3]
    return out.clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# weights


def save_backlitnet(net: BacklitNet, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> None:
    """Write the network as safetensors, atomically; the config goes into the metadata."""
    from safetensors.torch import save_file

    p = Path(path)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[FORMAT_KEY] = FORMAT_VALUE
    meta["config"] = net.config.to_json()
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata=meta)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_backlitnet(path: str | os.PathLike[str]) -> tuple[BacklitNet, dict[str, str]]:
    """Load weights written by :func:`save_backlitnet` (eval mode, no gradients).

    Returns:
        ``(net, metadata)``.

    Raises:
        ValueError: missing or unreadable file, another format, or tensors that do not match.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such weights file")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise ValueError(f"{p}: not a safetensors file ({exc})") from None
    if meta.get(FORMAT_KEY) != FORMAT_VALUE:
        raise ValueError(f"{p}: not BacklitNet weights (format {meta.get(FORMAT_KEY)!r})")
    try:
        config = BacklitNetConfig.from_json(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{p}: bad BacklitNet config in metadata ({exc})") from None
    net = BacklitNet(config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise ValueError(f"{p}: weights do not match the network ({first})") from None
    net.eval().requires_grad_(False)
    return net, meta
