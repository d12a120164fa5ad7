"""SCI: self-calibrated illumination learning for low-light enhancement.

Re-implementation of the network and loss of Ma et al., "Toward Fast, Flexible, and Robust
Low-Light Image Enhancement", CVPR 2022 (reference code: vis-opt-group/SCI, MIT licence). The
module layout and parameter names follow the official ``model.py`` so its checkpoints
(``easy.pt``, ``medium.pt``, ``difficult.pt``) load unchanged.

Retinex view: a low-light image ``x`` is ``x = i ⊙ r`` with illumination ``i`` and
reflectance ``r``. The *enhance* network estimates ``i`` (three 3×3 convolutions); the output
is ``r = clamp(x / i, 0, 1)``. Training adds a *calibrate* network that maps ``r`` back to an
input correction, so the three weight-shared stages of :class:`SCITrainingNetwork` converge to
a single-stage estimator; only :class:`EnhanceNetwork` is needed at test time.

Example:
    >>> net = EnhanceNetwork().eval()
    >>> x = torch.rand(1, 3, 32, 48) * 0.2
    >>> with torch.inference_mode():
    ...     illu, out = enhance(net, x)
    >>> tuple(out.shape), bool(out.min() >= 0 and out.max() <= 1)
    ((1, 3, 32, 48), True)
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CalibrateNetwork",
    "EnhanceNetwork",
    "SCITrainingNetwork",
    "SmoothLoss",
    "enhance",
    "load_enhance_weights",
    "read_metadata",
    "rgb_to_ycbcr",
    "save_enhance_weights",
    "sci_loss",
    "symmetrize_rgb_",
    "weights_init",
]

#: lower bound of the estimated illumination (official ``torch.clamp(illu, 0.0001, 1)``)
ILLU_MIN = 1e-4

#: weight of the fidelity (MSE) term in the official ``LossFunction``
FIDELITY_WEIGHT = 1.5

#: colour sigma of the smoothness weights in the official ``SmoothLoss``
SMOOTH_SIGMA = 10.0

#: the 12 distinct offsets ``(dy, dx)`` of a 5×5 window up to sign; the official loss visits
#: each in both directions (24 neighbours), which gives two identical terms per offset
_OFFSETS: tuple[tuple[int, int], ...] = (
    (1, 0), (0, 1), (1, 1), (1, -1),
    (2, 0), (0, 2), (2, 1), (2, -1),
    (1, 2), (1, -2), (2, 2), (2, -2),
)  # fmt: skip

#: BT.601 studio-swing RGB→YCbCr (the official constants); rows: output Y, Cb, Cr
_YCBCR_MATRIX = torch.tensor(
    [
        [0.257, 0.564, 0.098],
        [-0.148, -0.291, 0.439],
        [0.439, -0.368, -0.071],
    ],
    dtype=torch.float32,
)
_YCBCR_BIAS = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float32) / 255.0

#: metadata key/value that marks a streamfix SCI safetensors file
#: SCI's official optimiser settings (train.py / finetune.py): learning rates, Adam betas,
#: weight decay and gradient-norm clip; streamfix's training and online adaptation use them
TRAIN_LR = 3e-4
FINETUNE_LR = 5e-4
BETAS = (0.9, 0.999)
WEIGHT_DECAY = 3e-4
GRAD_CLIP = 5.0

FORMAT_KEY = "format"
FORMAT_VALUE = "streamfix-sci-enhance"


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1)


class EnhanceNetwork(nn.Module):
    """Illumination estimator (the only network used at test time).

    ``in_conv`` (conv + ReLU) → ``layers`` residual blocks that all share one
    conv + BN + ReLU module (``conv``, registered again as ``blocks[k]``) → ``out_conv``
    (conv + sigmoid); the illumination is ``clamp(out + x, 1e-4, 1)``.

    Args:
        layers: number of residual applications of the shared block (official: 1).
        channels: feature width (official: 3).
    """

    def __init__(self, layers: int = 1, channels: int = 3) -> None:
        super().__init__()
        self.in_conv = nn.Sequential(_conv3x3(3, channels), nn.ReLU())
        self.conv = nn.Sequential(_conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU())
        self.blocks = nn.ModuleList([self.conv for _ in range(layers)])
        self.out_conv = nn.Sequential(_conv3x3(channels, 3), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Estimate the illumination.

        Args:
            x: ``(B, 3, H, W)`` float RGB in ``[0, 1]`` (or a calibrated input, any range).

        Returns:
            ``(B, 3, H, W)`` illumination in ``[1e-4, 1]``.
        """
        fea = self.in_conv(x)
        for block in self.blocks:
            fea = fea + block(fea)
        fea = self.out_conv(fea)
        return torch.clamp(fea + x, ILLU_MIN, 1.0)


class CalibrateNetwork(nn.Module):
    """Self-calibration module (training only).

    ``in_conv`` (conv + BN + ReLU) → ``layers`` residual applications of one shared
    (conv + BN + ReLU) × 2 module (``convs``, registered again as ``blocks[k]``) →
    ``out_conv`` (conv + sigmoid); returns ``r − out``.

    Args:
        layers: number of residual applications of the shared block (official: 3).
        channels: feature width (official: 16).
    """

    def __init__(self, layers: int = 3, channels: int = 16) -> None:
        super().__init__()
        self.in_conv = nn.Sequential(_conv3x3(3, channels), nn.BatchNorm2d(channels), nn.ReLU())
        self.convs = nn.Sequential(
            _conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            _conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.blocks = nn.ModuleList([self.convs for _ in range(layers)])
        self.out_conv = nn.Sequential(_conv3x3(channels, 3), nn.Sigmoid())

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Compute the input correction for the next stage.

        Args:
            r: ``(B, 3, H, W)`` reflectance in ``[0, 1]``.

        Returns:
            ``(B, 3, H, W)`` correction ``r − σ(·)`` in ``[−1, 1]``.
        """
        fea = self.in_conv(r)
        for block in self.blocks:
            fea = fea + block(fea)
        fea = self.out_conv(fea)
        return r - fea


def weights_init(module: nn.Module) -> None:
    """Official initialisation: conv ``N(0, 0.02)`` with zero bias, BN weight ``N(1, 0.02)``.

    Use with :meth:`torch.nn.Module.apply`. BN biases keep PyTorch's default (zero).
    """
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)


@torch.no_grad()
def symmetrize_rgb_(net: EnhanceNetwork) -> EnhanceNetwork:
    """Project a 3-channel :class:`EnhanceNetwork` onto the RGB-permutation-equivariant nets, in place.

    Every 3→3 convolution becomes ``a·I + b·(J − I)`` per kernel tap (one weight for the same
    channel, one shared by the other two; the means of the diagonal and off-diagonal
    entries), and every per-channel vector (biases, BatchNorm affine parameters and running
    statistics) becomes its mean. The result treats R, G and B alike: a grey input gives a
    grey illumination, and permuting the input channels permutes the output. Keys and shapes
    are unchanged, so the result loads wherever an official checkpoint does.

    Args:
        net: an :class:`EnhanceNetwork` with ``channels=3``.

    Returns:
        ``net``.
    """
    eye = torch.eye(3, dtype=torch.bool)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            if module.weight.shape[:2] != (3, 3):
                raise ValueError(f"symmetrize_rgb_ needs 3→3 convolutions, got {tuple(module.weight.shape)}")
            w = module.weight
            diag = w[eye].mean(dim=0)
            off = w[~eye].mean(dim=0)
            w.copy_(torch.where(eye[:, :, None, None], diag, off))
            if module.bias is not None:
                module.bias.fill_(float(module.bias.mean()))
        elif isinstance(module, nn.BatchNorm2d):
            for t in (module.weight, module.bias, module.running_mean, module.running_var):
                if t is not None:
                    t.fill_(float(t.mean()))
    return net


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-swing RGB → YCbCr, per pixel (the official ``SmoothLoss`` constants).

    The official code reshapes the NCHW tensor with ``view(-1, 3)``, which mixes neighbouring
    pixels of one channel instead of the three channels of one pixel; this function applies
    the conversion the constants describe.

    Args:
        x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

    Returns:
        ``(B, 3, H, W)`` Y, Cb, Cr with Y in ``[16/255, 235/255]``, Cb/Cr in ``[16/255, 240/255]``.
    """
    mat = _YCBCR_MATRIX.to(device=x.device, dtype=x.dtype)
    bias = _YCBCR_BIAS.to(device=x.device, dtype=x.dtype)
    return torch.einsum("oc,bchw->bohw", mat, x) + bias.view(1, 3, 1, 1)


def _shifted_pair(t: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Views ``(t[p], t[p + (dy, dx)])`` over all positions where both exist (``dy ≥ 0``)."""
    h, w = t.shape[-2:]
    x0, x1 = (0, w - dx) if dx >= 0 else (-dx, w)
    a = t[..., 0 : h - dy, x0:x1]
    b = t[..., dy:h, x0 + dx : x1 + dx]
    return a, b


def _smooth_reference(x: torch.Tensor, illu: torch.Tensor, sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """Plain-autograd form of :class:`SmoothLoss` (slow; kept as the specification and for tests)."""
    ycc = rgb_to_ycbcr(x)
    coef = -1.0 / (2.0 * sigma * sigma)
    total = illu.new_zeros(())
    for dy, dx in _OFFSETS:
        ya, yb = _shifted_pair(ycc, dy, dx)
        ia, ib = _shifted_pair(illu, dy, dx)
        w = torch.exp((ya - yb).pow(2).sum(dim=1, keepdim=True) * coef)
        grad = (ia - ib).abs().sum(dim=1, keepdim=True)
        total = total + (w * grad).mean()
    return 2.0 * total


class _SmoothFn(torch.autograd.Function):
    """:func:`_smooth_reference` of YCbCr ``ycc`` with a hand-written backward.

    Autograd through 24 shifted views allocates and fills a full-size zero gradient per view,
    which made this term most of the training step on CPU; the backward here accumulates the
    12 offsets in place into one buffer per input.
    """

    @staticmethod
    def forward(ctx, ycc: torch.Tensor, illu: torch.Tensor, coef: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(ycc, illu)
        ctx.coef = coef
        total = illu.new_zeros(())
        for dy, dx in _OFFSETS:
            ya, yb = _shifted_pair(ycc, dy, dx)
            ia, ib = _shifted_pair(illu, dy, dx)
            w = torch.exp((ya - yb).square_().sum(dim=1, keepdim=True).mul_(coef))
            total += (w * (ia - ib).abs_().sum(dim=1, keepdim=True)).mean()
        return 2.0 * total

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:  # type: ignore[override]
        ycc, illu = ctx.saved_tensors
        coef: float = ctx.coef
        need_y, need_i = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g_y = torch.zeros_like(ycc) if need_y else None
        g_i = torch.zeros_like(illu) if need_i else None
        for dy, dx in _OFFSETS:
            ya, yb = _shifted_pair(ycc, dy, dx)
            ia, ib = _shifted_pair(illu, dy, dx)
            n = ia.numel() // ia.shape[1]
            scale = grad_out * (2.0 / n)
            d_y = ya - yb
            w = torch.exp(d_y.square().sum(dim=1, keepdim=True).mul_(coef))
            d_i = ia - ib
            if g_i is not None:
                gi = torch.sign(d_i).mul_(w * scale)
                ga, gb = _shifted_pair(g_i, dy, dx)
                ga += gi
                gb -= gi
            if g_y is not None:
                gy = d_y.mul_(d_i.abs_().sum(dim=1, keepdim=True).mul_(w).mul_(scale * (2.0 * coef)))
                ga, gb = _shifted_pair(g_y, dy, dx)
                ga += gy
                gb -= gy
        return g_y, g_i, None


class SmoothLoss(nn.Module):
    """Edge-aware smoothness of the illumination over a 5×5 neighbourhood.

    For each of the 24 neighbours ``q`` of a pixel ``p`` (a 5×5 window without its centre):
    ``mean_p  w(p, q) · ‖i(p) − i(q)‖₁`` with ``w = exp(−‖YCbCr(x)(p) − YCbCr(x)(q)‖² / (2σ²))``,
    σ = 10, summed over the 24 neighbours (the official ``SmoothLoss``; the mean runs over the
    pixels where the neighbour exists). Opposite neighbours give identical terms, so 12
    offsets are evaluated and doubled. Gradients reach both ``illu`` and ``x``.

    Note: with inputs in ``[0, 1]`` and σ = 10 the weights stay above 0.98, so the term is
    close to an unweighted total variation; this is the official behaviour.
    """

    def __init__(self, sigma: float = SMOOTH_SIGMA) -> None:
        super().__init__()
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor, illu: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            x: ``(B, 3, H, W)`` the stage input (guides the weights), H, W ≥ 3.
            illu: ``(B, 3, H, W)`` the estimated illumination.

        Returns:
            scalar tensor ≥ 0.
        """
        if x.shape != illu.shape or x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 3:
            raise ValueError(f"SmoothLoss needs two (B, 3, H≥3, W≥3) tensors, got {x.shape}, {illu.shape}")
        coef = -1.0 / (2.0 * self.sigma * self.sigma)
        return _SmoothFn.apply(rgb_to_ycbcr(x), illu, coef)


_SMOOTH = SmoothLoss()


def sci_loss(x: torch.Tensor, illu: torch.Tensor) -> torch.Tensor:
    """Per-stage SCI loss: ``1.5 · MSE(illu, x) + SmoothLoss(x, illu)`` (official ``LossFunction``).

    Args:
        x: ``(B, 3, H, W)`` the stage input.
        illu: ``(B, 3, H, W)`` the illumination estimated from it.

    Returns:
        scalar tensor.
    """
    return FIDELITY_WEIGHT * F.mse_loss(illu, x) + _SMOOTH(x, illu)


class SCITrainingNetwork(nn.Module):
    """The self-calibrated training model: enhance + calibrate, weight-shared over stages.

    Stage ``s``: ``i_s = enhance(u_s)``, ``r_s = clamp(x / i_s, 0, 1)``,
    ``u_{s+1} = x + calibrate(r_s)`` with ``u_0 = x``; the loss is
    ``Σ_s sci_loss(u_s, i_s)``.

    Args:
        stages: number of stages (official: 3).
        init: apply :func:`weights_init` to both networks.
    """

    def __init__(self, stages: int = 3, init: bool = True) -> None:
        super().__init__()
        self.stages = int(stages)
        self.enhance = EnhanceNetwork(layers=1, channels=3)
        self.calibrate = CalibrateNetwork(layers=3, channels=16)
        if init:
            self.apply(weights_init)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Run all stages.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            ``(illus, reflectances, inputs, |corrections|)``: per-stage lists of
            ``(B, 3, H, W)`` tensors.
        """
        illus: list[torch.Tensor] = []
        refls: list[torch.Tensor] = []
        inputs: list[torch.Tensor] = []
        atts: list[torch.Tensor] = []
        u = x
        for _ in range(self.stages):
            inputs.append(u)
            i = self.enhance(u)
            r = torch.clamp(x / i, 0.0, 1.0)
            att = self.calibrate(r)
            u = x + att
            illus.append(i)
            refls.append(r)
            atts.append(att.abs())
        return illus, refls, inputs, atts

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Training loss summed over the stages.

        Args:
            x: ``(B, 3, H, W)`` RGB in ``[0, 1]``.

        Returns:
            scalar tensor.
        """
        illus, _, inputs, _ = self(x)
        total = x.new_zeros(())
        for u, i in zip(inputs, illus, strict=True):
            total = total + sci_loss(u, i)
        return total


def enhance(net: EnhanceNetwork, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Enhance a batch with the illumination network (SCI test time).

    Call under :func:`torch.inference_mode` with ``net.eval()`` for inference; gradients flow
    otherwise.

    Args:
        net: an :class:`EnhanceNetwork`.
        x: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.

    Returns:
        ``(illumination, out)``: ``(B, 3, H, W)`` each; illumination in ``[1e-4, 1]``,
        ``out = clamp(x / illumination, 0, 1)``.

    Raises:
        ValueError: ``x`` is not ``(B, 3, H, W)`` floating point.
    """
    if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise ValueError(f"SCI expects a (B, 3, H, W) float tensor, got {tuple(x.shape)} {x.dtype}")
    illu = net(x)
    return illu, torch.clamp(x / illu, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# weight I/O


def _canonical_keys(net: EnhanceNetwork) -> dict[str, torch.Size]:
    """State-dict keys without the ``blocks.*`` aliases of ``conv``, with their shapes."""
    return {k: v.shape for k, v in net.state_dict().items() if not k.startswith("blocks.")}


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint into a flat tensor dict (+ safetensors metadata); ValueError on failure."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise ValueError(f"{path}: empty file, not SCI weights")
    suffix = path.suffix.lower()
    looks_torch = head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"
    looks_safetensors = len(head) > 8 and head[8:9] == b"{"
    if suffix == ".safetensors" or (suffix not in (".pt", ".pth") and not looks_torch):
        if not looks_safetensors:
            raise ValueError(f"{path}: not a weights file (neither safetensors nor a PyTorch checkpoint)")
        from safetensors import safe_open

        try:
            tensors: dict[str, torch.Tensor] = {}
            with safe_open(str(path), framework="pt", device="cpu") as f:
                metadata = dict(f.metadata() or {})
                for k in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    tensors[k] = f.get_tensor(k)
        except Exception as exc:  # safetensors raises its own error types and OSError
            raise ValueError(f"{path}: damaged safetensors file ({exc})") from exc
        return tensors, metadata
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), EOFError, ...
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ValueError(f"{path}: checkpoint is not a state dict of tensors")
    return dict(obj), {}


def load_enhance_weights(path: str | os.PathLike[str]) -> EnhanceNetwork:
    """Load an :class:`EnhanceNetwork` for inference (eval mode, no gradients).

    Accepts an official SCI checkpoint (``.pt``: a full-model state dict; only ``enhance.*``
    is kept) or a ``.safetensors`` file from :func:`save_enhance_weights`. A bare enhance state
    dict (no prefix) is accepted too.

    Args:
        path: the weights file.

    Returns:
        the network in eval mode with ``requires_grad`` off.

    Raises:
        ValueError: the file is missing, unreadable, or holds other tensors than the SCI
            enhance network (the message names the file and the problem).
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such weights file")
    try:
        state, _ = _read_state(p)
    except OSError as exc:
        raise ValueError(f"{p}: cannot read weights ({exc.strerror or exc})") from exc
    if any(k.startswith("enhance.") for k in state):
        state = {k[len("enhance.") :]: v for k, v in state.items() if k.startswith("enhance.")}
    state = {k: v for k, v in state.items() if not k.startswith("blocks.")}

    net = EnhanceNetwork()
    expected = _canonical_keys(net)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}{' …' if len(unexpected) > 4 else ''}")
        raise ValueError(f"{p}: not SCI enhance-network weights ({'; '.join(parts)})")
    for k, shape in expected.items():
        if state[k].shape != shape:
            raise ValueError(f"{p}: tensor {k} has shape {tuple(state[k].shape)}, expected {tuple(shape)}")
        if state[k].is_floating_point():
            if not torch.isfinite(state[k]).all():
                raise ValueError(f"{p}: tensor {k} holds NaN or infinite values")
            state[k] = state[k].float()
    full = dict(state)
    for k in net.state_dict():
        if k.startswith("blocks."):
            # blocks.<n>.<rest> is the same module as conv.<rest>
            full[k] = state["conv." + k.split(".", 2)[2]]
    net.load_state_dict(full, strict=True)
    net.eval()
    net.requires_grad_(False)
    return net


def save_enhance_weights(
    net: EnhanceNetwork, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> None:
    """Write the enhance network as safetensors, atomically (temp file + ``os.replace``).

    Only the canonical tensors are stored (``in_conv.*``, ``conv.*``, ``out_conv.*``; the
    ``blocks.*`` aliases are rebuilt on load). ``metadata`` values must be strings; the key
    ``format`` is set to ``streamfix-sci-enhance``.

    Args:
        net: the network to save.
        path: destination; its folder must exist.
        metadata: free-form provenance (command line, data, iterations, …).
    """
    from safetensors.torch import save_file

    p = Path(path)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    meta[FORMAT_KEY] = FORMAT_VALUE
    state = {
        k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items() if not k.startswith("blocks.")
    }
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata=meta)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # safetensors creates 0600 files
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a safetensors weights file (``{}`` for a ``.pt`` checkpoint).

    Raises:
        ValueError: the file is missing or unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such weights file")
    try:
        return _read_state(p)[1]
    except OSError as exc:
        raise ValueError(f"{p}: cannot read weights ({exc.strerror or exc})") from exc
