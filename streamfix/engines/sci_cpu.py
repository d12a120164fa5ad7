"""SCI's illumination network on one CPU thread as one numba pass: the thumbnail path's engine.

On a 256 × 144 thumbnail the network is three 3 × 3 convolutions of three channels (≈ 9 M
multiply-adds); PyTorch spends most of its ≈ 1.7 ms on per-operator overhead (oneDNN
reorders, batch norm, activations, clamps as separate passes). Here batch norm is folded into
its convolution (eval mode: running statistics), activations and the residual are applied as
each output row is finished, and the enhanced image — ``x / i`` or ``x / max_c i`` — is made in
the same call. The math is :class:`~streamfix.engines.sci_net.EnhanceNetwork`'s (tests hold the
two within 1e-5); training and online adaptation keep using the torch module, whose current
weights are read on every call.

Example:
    >>> import torch
    >>> from streamfix.engines.sci_net import EnhanceNetwork
    >>> net = EnhanceNetwork().eval()
    >>> out = enhance_cpu(net, torch.rand(3, 8, 12), channel_max=True)
    >>> tuple(out.shape), bool(((0 <= out) & (out <= 1)).all())
    ((3, 8, 12), True)
"""

from __future__ import annotations

import weakref

import numba
import numpy as np
import torch
from torch import nn

from streamfix.engines.sci_net import ILLU_MIN, EnhanceNetwork

#: activations applied to a convolution's output as it is written
_RELU, _SIGMOID = 1, 2


@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _sigmoid_row(row, bits):  # pragma: no cover - compiled
    """``row = 1 / (1 + exp(−row))`` in place, exp as Cephes' expf (2^k · a degree-7 polynomial of
    the remainder, within 2 ulp) written out so that it vectorises; ``bits``: int32 scratch."""
    n = row.shape[0]
    pow2 = bits.view(np.float32)
    for j in range(n):
        z = min(max(-row[j], np.float32(-87.0)), np.float32(88.0))
        k = np.floor(z * np.float32(1.44269504) + np.float32(0.5))
        r = z - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * r + np.float32(1.3981999507e-3)
        p = p * r + np.float32(8.3334519073e-3)
        p = p * r + np.float32(4.1665795894e-2)
        p = p * r + np.float32(1.6666665459e-1)
        p = p * r + np.float32(5.0000001201e-1)
        row[j] = p * r * r + r + np.float32(1.0)
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for j in range(n):
        row[j] = np.float32(1.0) / (np.float32(1.0) + row[j] * pow2[j])


@numba.njit(cache=True, nogil=True, fastmath=True)
def _conv3x3(x, w, b, act, out):  # pragma: no cover - compiled
    """``out = act(conv3x3(x, w) + b)`` with zero padding 1: ``x (cin, h, w)``, ``w (cout, cin, 3, 3)``,
    ``out (cout, h, w)``, float32. Per output row, each of the (up to) 3·cin input rows it reads is
    loaded once and added into every output channel's row with its three taps (vectorisable)."""
    cout, cin = w.shape[0], w.shape[1]
    h, wd = x.shape[1], x.shape[2]
    scale = np.empty(wd, np.int32)
    for i in range(h):
        for o in range(cout):
            out[o, i, :] = b[o]
        for c in range(cin):
            for dy in range(3):
                r = i + dy - 1
                if r < 0 or r >= h:
                    continue
                xr = x[c, r]
                for o in range(cout):
                    orow = out[o, i]
                    w0, w1, w2 = w[o, c, dy, 0], w[o, c, dy, 1], w[o, c, dy, 2]
                    for j in range(1, wd - 1):
                        orow[j] += w0 * xr[j - 1] + w1 * xr[j] + w2 * xr[j + 1]
                    if wd > 1:
                        orow[0] += w1 * xr[0] + w2 * xr[1]
                        orow[wd - 1] += w0 * xr[wd - 2] + w1 * xr[wd - 1]
                    else:
                        orow[0] += w1 * xr[0]
        for o in range(cout):
            orow = out[o, i]
            if act == _RELU:
                for j in range(wd):
                    orow[j] = max(orow[j], np.float32(0.0))
            elif act == _SIGMOID:
                _sigmoid_row(orow, scale)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _network(x, w_in, b_in, w_blk, b_blk, layers, w_out, b_out, illu_min, channel_max, out):  # pragma: no cover
    """The whole :class:`EnhanceNetwork` forward and the division; ``out`` gets the enhanced image."""
    c, h, wd = w_in.shape[0], x.shape[1], x.shape[2]
    fea = np.empty((c, h, wd), np.float32)
    tmp = np.empty((c, h, wd), np.float32)
    illu = np.empty((3, h, wd), np.float32)
    _conv3x3(x, w_in, b_in, _RELU, fea)
    for _ in range(layers):
        _conv3x3(fea, w_blk, b_blk, _RELU, tmp)
        fea += tmp
    _conv3x3(fea, w_out, b_out, _SIGMOID, illu)
    one = np.float32(1.0)
    for i in range(h):
        for j in range(wd):
            i0 = min(max(illu[0, i, j] + x[0, i, j], illu_min), one)
            i1 = min(max(illu[1, i, j] + x[1, i, j], illu_min), one)
            i2 = min(max(illu[2, i, j] + x[2, i, j], illu_min), one)
            if channel_max:
                i0 = i1 = i2 = max(i0, i1, i2)
            out[0, i, j] = min(max(x[0, i, j] / i0, np.float32(0.0)), one)
            out[1, i, j] = min(max(x[1, i, j] / i1, np.float32(0.0)), one)
            out[2, i, j] = min(max(x[2, i, j] / i2, np.float32(0.0)), one)


def _conv_params(conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A convolution's float32 weight and bias, with an eval-mode batch norm after it folded in."""
    w = conv.weight.detach().to("cpu", torch.float64)
    b = torch.zeros(w.shape[0], dtype=torch.float64)
    if conv.bias is not None:
        b = conv.bias.detach().to("cpu", torch.float64)
    if bn is not None and bn.running_mean is not None and bn.running_var is not None:
        scale = torch.ones_like(b) if bn.weight is None else bn.weight.detach().to("cpu", torch.float64)
        shift = torch.zeros_like(b) if bn.bias is None else bn.bias.detach().to("cpu", torch.float64)
        scale = scale / torch.sqrt(bn.running_var.detach().to("cpu", torch.float64) + bn.eps)
        w = w * scale.view(-1, 1, 1, 1)
        b = (b - bn.running_mean.detach().to("cpu", torch.float64)) * scale + shift
    return w.to(torch.float32).numpy(), b.to(torch.float32).numpy()


def supports(net: nn.Module) -> bool:
    """True when :func:`enhance_cpu` can stand in for ``net``: an :class:`EnhanceNetwork` in eval
    mode whose blocks are the one shared conv + BN + ReLU module (SCI's layout)."""
    return (
        isinstance(net, EnhanceNetwork)
        and not net.training
        and net.in_conv[0].weight.device.type == "cpu"
        and all(block is net.conv for block in net.blocks)
        and net.conv[1].running_mean is not None
        and net.in_conv[0].kernel_size == (3, 3)
    )


def _params(net: EnhanceNetwork) -> tuple[np.ndarray, ...]:
    """The three convolutions' weights and biases (batch norm folded), remade only when a tensor
    of ``net`` changed: online adaptation loads new weights in place, which bumps their version."""
    tensors = (*net.parameters(), *net.buffers())
    key = tuple((t.data_ptr(), t._version) for t in tensors)
    cached = _PARAMS.get(net)
    if cached is None or cached[0] != key:
        params = (*_conv_params(net.in_conv[0]), *_conv_params(net.conv[0], net.conv[1]),
                  *_conv_params(net.out_conv[0]))
        _PARAMS[net] = cached = (key, params)
    return cached[1]


_PARAMS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[tuple[int, int], ...], tuple[np.ndarray, ...]]] = (
    weakref.WeakKeyDictionary())


def enhance_cpu(net: EnhanceNetwork, rgb: torch.Tensor, channel_max: bool = False) -> torch.Tensor:
    """The enhanced image ``(3, h, w)`` float32 in ``[0, 1]`` for ``rgb (3, h, w)`` in ``[0, 1]``:
    ``clamp(x / i, 0, 1)``, or with ``channel_max`` every channel divided by ``max_c i`` (the
    SCI engine's ``illumination = "channel-max"``). ``net`` must pass :func:`supports`."""
    x = np.ascontiguousarray(rgb.detach().to("cpu", torch.float32).numpy())
    w_in, b_in, w_blk, b_blk, w_out, b_out = _params(net)
    out = np.empty_like(x)
    _network(x, w_in, b_in, w_blk, b_blk, len(net.blocks), w_out, b_out, np.float32(ILLU_MIN), channel_max, out)
    return torch.from_numpy(out)
