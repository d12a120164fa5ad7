"""ExCNet (Zhang et al., ACM MM 2019): a zero-shot S-curve fitted per image by test-time training.

The pieces, each a plain function plus a small module:

* :func:`s_curve` — the parametric S-curve of Yuan & Sun (ECCV 2012) that ExCNet estimates:
  ``f(x) = x + φs·fΔ(x) − φh·fΔ(1 − x)``, ``fΔ(x) = k1·x·exp(−k2·x^k3)`` (k = 5, 14, 1.6); φs
  lifts the shadows, φh pulls the highlights down. With ``φs, φh ≤ PHI_MAX`` the curve is
  monotonic (``min fΔ' ≈ −1.58``), so it never inverts tones.
* :class:`ExCNet` — a small CNN on the luminance that outputs the curve parameters: globally
  ``(2,)``, and, when ``local`` cells are asked for, a ``(2, Gh, Gw)`` map of per-cell amounts
  (global amount + a bounded per-cell offset).
* :func:`block_loss` — the MRF-inspired block loss: every block's curved mean luminance is pulled
  towards a well-exposed level (*visibility*, the unary term) while the difference between
  neighbouring blocks is kept as it was in the input (the pairwise term), so the curve cannot
  flatten the picture into grey.
* :class:`CurveEstimator` — the test-time optimisation: Adam on the network's weights against the
  block loss of one frame; the network and the optimiser state carry over to the next frame
  (ExCNet's warm start), so later frames need a few iterations instead of tens.

Example:
    >>> import torch
    >>> est = CurveEstimator(seed=0)
    >>> luma = torch.rand(72, 128) * 0.2            # a dark frame
    >>> res = est.fit(luma, max_iters=150)
    >>> bool(res.phi_s > 0.2), bool(s_curve(torch.tensor(0.1), res.phi_s, res.phi_h) > 0.1)
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PHI_MAX",
    "CurveEstimator",
    "ExCNet",
    "FitResult",
    "block_loss",
    "BlockStats",
    "block_stats",
    "curved_block_means",
    "s_curve",
    "s_curve_slope",
]

#: fΔ constants (Yuan & Sun 2012, used by ExCNet)
K1, K2, K3 = 5.0, 14.0, 1.6
#: largest shadow / highlight amount: keeps ``f`` monotonic (``1 + φ·min fΔ' > 0``, min fΔ' ≈ −1.58)
PHI_MAX = 0.6
#: long side of the network's input, pixels
NET_LONG_SIDE = 64
#: block side on the thumbnail, pixels (256 × 144 → 16 × 9 blocks)
BLOCK = 16
#: luminance bins of the per-block histograms
HIST_BINS = 32
#: well-exposed level the visibility term pulls every block towards
EXPOSURE_TARGET = 0.5
#: weight of the pairwise (neighbouring blocks) term
PAIR_WEIGHT = 10.0
#: the head's logits are clamped to this range (σ(±3) = 0.047 … 0.953 of PHI_MAX) with the gradient
#: passed straight through: a saturated sigmoid has no gradient left, and an amount stuck at a
#: bound could not follow the next frame
LOGIT_RANGE = 3.0
#: a frame has converged when no amount's loss gradient (projected at the bounds) exceeds this
GRAD_TOL = 1e-3
#: weight of the smoothness of per-cell amounts (local mode)
LOCAL_SMOOTH_WEIGHT = 0.05
#: largest per-cell offset from the global amount (local mode)
LOCAL_RANGE = 0.25


def _f_delta(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return K1 * x * torch.exp(-K2 * x.clamp(min=1e-12).pow(K3))


def _f_delta_slope(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    xp = x.clamp(min=1e-12).pow(K3)
    return K1 * torch.exp(-K2 * xp) * (1.0 - K2 * K3 * xp)


def s_curve(x: torch.Tensor, phi_s: torch.Tensor | float, phi_h: torch.Tensor | float) -> torch.Tensor:
    """The S-curve ``f(x) = x + φs·fΔ(x) − φh·fΔ(1 − x)``, clamped to ``[0, 1]``.

    Args:
        x: luminance in ``[0, 1]``, any shape.
        phi_s, phi_h: shadow and highlight amounts in ``[0, PHI_MAX]`` (scalars, or tensors that
            broadcast against ``x``).

    Returns:
        ``f(x)``, same shape as ``x``.
    """
    return (x + phi_s * _f_delta(x) - phi_h * _f_delta(1.0 - x)).clamp(0.0, 1.0)


def s_curve_slope(x: torch.Tensor, phi_s: torch.Tensor | float, phi_h: torch.Tensor | float) -> torch.Tensor:
    """``f'(x) = 1 + φs·fΔ'(x) + φh·fΔ'(1 − x)`` (positive for amounts up to ``PHI_MAX``)."""
    return 1.0 + phi_s * _f_delta_slope(x) + phi_h * _f_delta_slope(1.0 - x)


@dataclass(frozen=True)
class BlockStats:
    """One frame's luminance, summarised for the loss and the network.

    The block loss needs, per block, the mean of the *curved* luminance. Each block is kept as a
    histogram over ``K`` luminance bins (uniform in ``sqrt(Y)``, so dark tones get fine bins) and
    each bin as the mean luminance of its pixels; the curved block mean is then
    ``Σ_k weights[b, k] · f(centres[k])``: the curve is evaluated at ``K`` points, not per pixel.

    Attributes:
        net_input: ``(1, 1, h, w)`` luminance for the network (long side ``NET_LONG_SIDE``).
        weights: ``(Bh·Bw, K)`` share of each block's pixels in each bin (rows sum to 1).
        centres: ``(K,)`` mean luminance of each bin's pixels (the bin's middle when empty).
        base: ``(Bh, Bw)`` block means of the input luminance.
    """

    net_input: torch.Tensor
    weights: torch.Tensor
    centres: torch.Tensor
    base: torch.Tensor

    @property
    def blocks(self) -> tuple[int, int]:
        return int(self.base.shape[0]), int(self.base.shape[1])


def block_grid(h: int, w: int, block: int = BLOCK) -> tuple[int, int]:
    """``(Bh, Bw)``: how many blocks of about ``block`` pixels cover an ``h × w`` thumbnail."""
    return max(1, round(h / block)), max(1, round(w / block))


def block_stats(luma: torch.Tensor, bins: int = HIST_BINS) -> BlockStats:
    """Summarise an ``(h, w)`` luminance map in ``[0, 1]`` (see :class:`BlockStats`)."""
    y = luma.detach().float().clamp(0.0, 1.0)
    h, w = y.shape
    bh, bw = block_grid(h, w)
    rows = (torch.arange(h) * bh // h).view(h, 1)
    cols = (torch.arange(w) * bw // w).view(1, w)
    block = (rows * bw + cols).flatten()
    k = (y.sqrt() * bins).long().clamp(max=bins - 1).flatten()
    flat = y.flatten()
    counts = torch.bincount(block * bins + k, minlength=bh * bw * bins).view(bh * bw, bins).float()
    per_block = counts.sum(1, keepdim=True).clamp(min=1.0)
    bin_n = counts.sum(0)
    bin_sum = torch.bincount(k, weights=flat.double(), minlength=bins).float()
    mid = ((torch.arange(bins, dtype=torch.float32) + 0.5) / bins).square()
    centres = torch.where(bin_n > 0, bin_sum / bin_n.clamp(min=1.0), mid)
    base = torch.bincount(block, weights=flat.double(), minlength=bh * bw).float() / per_block[:, 0]
    nh, nw = net_size(h, w)
    net_in = F.interpolate(y.view(1, 1, h, w), size=(nh, nw), mode="area") if (h, w) != (nh, nw) else y.view(1, 1, h, w)
    return BlockStats(net_in.contiguous(), counts / per_block, centres, base.view(bh, bw))


def net_size(h: int, w: int, long_side: int = NET_LONG_SIDE) -> tuple[int, int]:
    """``(h, w)`` of the network's input: long side ``long_side``, aspect kept, multiples of 8."""
    s = long_side / max(h, w)
    return max(8, round(h * s / 8) * 8), max(8, round(w * s / 8) * 8)


def curved_block_means(stats: BlockStats, phi_s: torch.Tensor, phi_h: torch.Tensor) -> torch.Tensor:
    """``(Bh, Bw)`` block means of ``f(Y)``; amounts are scalars or ``(Bh, Bw)`` maps."""
    bh, bw = stats.blocks
    if phi_s.ndim == 0:
        return (stats.weights @ s_curve(stats.centres, phi_s, phi_h)).view(bh, bw)
    f = s_curve(stats.centres.view(1, -1), phi_s.reshape(-1, 1), phi_h.reshape(-1, 1))
    return (stats.weights * f).sum(1).view(bh, bw)


def block_loss(
    mu: torch.Tensor,
    base: torch.Tensor,
    target: float = EXPOSURE_TARGET,
    pair_weight: float = PAIR_WEIGHT,
) -> torch.Tensor:
    """ExCNet's block-based loss.

    ``E = mean_b (μ'_b − target)² + λ · mean_{b~c} ((μ'_b − μ'_c) − (μ_b − μ_c))²`` with ``μ`` the
    input's and ``μ'`` the curved block means and ``b~c`` the 4-neighbour block pairs: the unary
    term asks every block to be visible (well exposed), the pairwise (MRF) term keeps the
    relative differences between neighbouring blocks.

    Args:
        mu: ``(Bh, Bw)`` curved block means.
        base: ``(Bh, Bw)`` block means of the input luminance.
        target: the well-exposed level.
        pair_weight: λ.

    Returns:
        scalar tensor.
    """
    unary = (mu - target).square().mean()
    pair = mu.new_zeros(())
    n = 0
    if mu.shape[-1] > 1:
        d = (mu[:, 1:] - mu[:, :-1]) - (base[:, 1:] - base[:, :-1])
        pair = pair + d.square().sum()
        n += d.numel()
    if mu.shape[-2] > 1:
        d = (mu[1:, :] - mu[:-1, :]) - (base[1:, :] - base[:-1, :])
        pair = pair + d.square().sum()
        n += d.numel()
    return unary + pair_weight * pair / max(n, 1)


class _ClampST(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp(-bound, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        outward = ((x > ctx.bound) & (grad < 0)) | ((x < -ctx.bound) & (grad > 0))
        return torch.where(outward, torch.zeros_like(grad), grad), None


def _clamp_straight_through(x: torch.Tensor, bound: float) -> torch.Tensor:
    """``clamp(x, −bound, bound)`` whose gradient is the identity's where it leads back inside (and 0
    where it would push further out, so an amount resting on its bound does not drift past it)."""
    return _ClampST.apply(x, bound)


class ExCNet(nn.Module):
    """The curve-estimation CNN: luminance ``(B, 1, H, W)`` → amounts.

    Three conv + LeakyReLU + max-pool stages (1→8→16→16 channels), global average pooling and a
    linear layer give the global ``(φs, φh)`` (a sigmoid scaled to ``[0, PHI_MAX]``). With
    ``local=(Gh, Gw)`` a 1×1 conv on the last feature map, pooled to ``Gh × Gw`` cells, adds a
    per-cell offset in ``[−LOCAL_RANGE, LOCAL_RANGE]`` (the sum is clamped to ``[0, PHI_MAX]``).

    The input is ``log2`` of the luminance (ExCNet's CNN sees the image; the log makes a dark and
    a bright frame of one scene look alike to it, so a warm start transfers across exposure).
    """

    def __init__(self, local: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Linear(16, 2)
        self.local = tuple(local) if local is not None else None
        self.local_head = nn.Conv2d(16, 2, 1) if self.local is not None else None
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if self.local_head is not None:
            nn.init.zeros_(self.local_head.weight)
            nn.init.zeros_(self.local_head.bias)

    def forward(self, luma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Estimate the amounts.

        Args:
            luma: ``(B, 1, H, W)`` luminance in ``[0, 1]``.

        Returns:
            ``(global, local)``: ``(B, 2)`` amounts ``(φs, φh)`` in ``[0, PHI_MAX]``, and
            ``(B, 2, Gh, Gw)`` per-cell amounts (None without ``local``).
        """
        x = torch.log2(luma.clamp(min=1.0 / 1024.0)) / 10.0 + 0.5
        fea = self.features(x)
        glob = PHI_MAX * torch.sigmoid(_clamp_straight_through(self.head(fea.mean(dim=(2, 3))), LOGIT_RANGE))
        if self.local_head is None or self.local is None:
            return glob, None
        off = LOCAL_RANGE * torch.tanh(F.adaptive_avg_pool2d(self.local_head(fea), self.local))
        return glob, (glob[:, :, None, None] + off).clamp(0.0, PHI_MAX)



@dataclass(frozen=True)
class FitResult:
    """The outcome of fitting one frame.

    Attributes:
        phi_s, phi_h: the global amounts.
        local: ``(2, Gh, Gw)`` per-cell amounts, or None.
        iterations: optimiser steps taken on this frame.
        loss: the block loss of the returned amounts.
        converged: the last step changed no amount by more than the tolerance.
    """

    phi_s: float
    phi_h: float
    local: torch.Tensor | None
    iterations: int
    loss: float
    converged: bool


def _cells_to_blocks(amounts: torch.Tensor, blocks: tuple[int, int]) -> torch.Tensor:
    """Per-cell amounts ``(2, Gh, Gw)`` → per-block ``(2, Bh, Bw)`` (bilinear, cell centres as the slicer's)."""
    return F.interpolate(amounts[None], size=blocks, mode="bilinear", align_corners=False)[0]


class CurveEstimator:
    """Test-time optimisation of ExCNet, warm-started from frame to frame.

    Args:
        local: ``(Gh, Gw)`` for per-cell amounts (spatially varying curves), None for one curve.
        lr: Adam learning rate.
        tol: a frame has converged when the loss gradient with respect to every amount (projected
            at the bounds) is below this.
        target: the visibility term's well-exposed level.
        pair_weight: weight of the pairwise term.
        seed: initialisation seed.
    """

    def __init__(
        self,
        local: tuple[int, int] | None = None,
        lr: float = 0.02,
        tol: float = GRAD_TOL,
        target: float = EXPOSURE_TARGET,
        pair_weight: float = PAIR_WEIGHT,
        seed: int = 0,
    ) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = ExCNet(local)
        self.lr = lr
        self.tol = tol
        self.target = target
        self.pair_weight = pair_weight
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.frames = 0

    def reset(self) -> None:
        """Forget the optimiser's momentum (the network is kept: it is the warm start)."""
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)

    def loss(self, stats: BlockStats) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(loss, (2,) global amounts, (2, Gh, Gw) cell amounts or None)`` of the current network."""
        glob, local = self.net(stats.net_input)
        glob = glob[0]
        if local is None:
            mu = curved_block_means(stats, glob[0], glob[1])
            return block_loss(mu, stats.base, self.target, self.pair_weight), glob, None
        cells = local[0]
        amt = _cells_to_blocks(cells, stats.blocks)
        mu = curved_block_means(stats, amt[0], amt[1])
        loss = block_loss(mu, stats.base, self.target, self.pair_weight)
        if cells.shape[-2] > 1:
            loss = loss + LOCAL_SMOOTH_WEIGHT * (cells[:, 1:] - cells[:, :-1]).square().mean()
        if cells.shape[-1] > 1:
            loss = loss + LOCAL_SMOOTH_WEIGHT * (cells[..., 1:] - cells[..., :-1]).square().mean()
        return loss, glob, cells

    @staticmethod
    def _stationary(amounts: torch.Tensor, grad: torch.Tensor | None, tol: float) -> bool:
        """No descent direction larger than ``tol`` that stays inside ``[0, PHI_MAX]``."""
        if grad is None:
            return True
        g = grad.detach()
        lo, hi = 0.05 * PHI_MAX, 0.95 * PHI_MAX
        a = amounts.detach()
        g = torch.where((a >= hi) & (g < 0), torch.zeros_like(g), g)  # descent would raise past the top
        g = torch.where((a <= lo) & (g > 0), torch.zeros_like(g), g)  # … or lower past the bottom
        return float(g.abs().max()) < tol

    def fit(self, luma: torch.Tensor, max_iters: int, tol: float | None = None) -> FitResult:
        """Optimise on one frame, starting from the current network (the previous frame's).

        Each iteration evaluates the loss and its gradient; the frame is done when the amounts
        are stationary (see ``tol``) or after ``max_iters`` optimiser steps. A frame that is
        already converged costs one forward and backward pass and no step.

        Args:
            luma: ``(h, w)`` luminance in ``[0, 1]`` (the thumbnail's).
            max_iters: optimiser steps allowed on this frame (0: predict with the current network).
            tol: the stationarity tolerance for this frame (default ``self.tol``).

        Returns:
            the :class:`FitResult` of the network after the last step.
        """
        stats = block_stats(luma)
        tol = self.tol if tol is None else tol
        converged = False
        steps = 0
        with torch.enable_grad():
            self.net.train()
            while True:
                self.opt.zero_grad(set_to_none=True)
                loss, glob, cells = self.loss(stats)
                glob.retain_grad()
                if cells is not None:
                    cells.retain_grad()
                loss.backward()
                converged = self._stationary(glob, glob.grad, tol) and (
                    cells is None or self._stationary(cells, cells.grad, tol)
                )
                if converged or steps >= max_iters:
                    break
                self.opt.step()
                steps += 1
        if steps:
            with torch.no_grad():
                loss, glob, cells = self.loss(stats)
        loss = loss.detach()
        self.frames += 1
        if not math.isfinite(float(loss)):
            raise FloatingPointError("ExCNet loss is not finite")
        local = cells.detach() if cells is not None else None
        return FitResult(float(glob[0].detach()), float(glob[1].detach()), local, steps, float(loss), converged)
