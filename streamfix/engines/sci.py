"""SCI (Ma et al., CVPR 2022): a 3-conv illumination estimator, lifted into a grid by BGU fitting.

On the thumbnail the network estimates the illumination ``i``; the enhanced thumbnail is
``clamp(x / i, 0, 1)``; :func:`streamfix.grid.fit.fit_grid` turns the pair (x, x / i) into the
grid that is sliced at full resolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamfix.engines.registry import Engine, EngineCard, register_engine
from streamfix.engines.sci_cpu import enhance_cpu, supports
from streamfix.engines.sci_net import EnhanceNetwork, enhance, load_enhance_weights
from streamfix.errors import StreamfixError
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.fit import GridFitter


@register_engine
class SCIEngine(Engine):
    """SCI's illumination network on the thumbnail + BGU fitting."""

    name = "sci"

    def __init__(self, card: EngineCard, weights: Path | None = None, device: str = "cpu") -> None:
        super().__init__(card, weights, device)
        if weights is None:
            raise StreamfixError("engine 'sci' has no weights: pass --weights or ship engines/sci.safetensors")
        try:
            self.net: EnhanceNetwork = load_enhance_weights(weights).to(self.device).eval()
        except ValueError as e:
            raise StreamfixError(str(e)) from None
        fit = card.raw.get("fit", {})
        self._fit_kw = {k: float(fit[k]) for k in ("prior_weight", "smoothness") if k in fit}
        try:
            self.fitter = GridFitter(card.grid, model=str(fit.get("model", "affine")),
                                     regularise=str(fit.get("regularise", "coefficients")), **self._fit_kw)
        except ValueError as e:
            raise StreamfixError(f"engine card sci: {e}") from None
        self.illumination = str(card.raw.get("illumination", "per-channel"))
        if self.illumination not in ("per-channel", "channel-max"):
            raise StreamfixError(f"engine card sci: unknown illumination {self.illumination!r}")

    def network(self) -> torch.nn.Module:
        return self.net

    @torch.inference_mode()
    def enhance_thumbnail(self, rgb: torch.Tensor) -> torch.Tensor:
        """The enhanced image ``(3, h, w)`` in [0, 1] for an image ``(3, h, w)`` in [0, 1].

        With the card's ``illumination = "channel-max"`` every channel is divided by the largest
        of the three illumination estimates, so hue is kept (per-channel division turned a blue
        sky pink with this project's weights); ``"per-channel"`` is SCI's own ``x / i``.
        """
        x = rgb[None].to(self.device)
        if x.device.type == "cpu":  # oneDNN runs the 3-channel convolutions ≈ 25 % faster channels-last
            x = x.contiguous(memory_format=torch.channels_last)
        illu, out = enhance(self.net, x)
        if self.illumination == "channel-max":
            out = torch.clamp(x / illu.amax(dim=1, keepdim=True), 0.0, 1.0)
        return out[0].float().cpu()

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        if thumb.rgb.device.type == "cpu" and supports(self.net):  # one numba pass, same math
            target = enhance_cpu(self.net, thumb.rgb, channel_max=self.illumination == "channel-max")
        else:
            target = self.enhance_thumbnail(thumb.rgb)
        return self.fitter.fit(thumb, target)

    def scene_cut(self) -> None:
        """The next fit starts cold (from the global affine fit), not from this frame's grid."""
        self.fitter.reset()

    def enhance_full_resolution(self, rgb: np.ndarray) -> np.ndarray:
        """SCI the seed's way: the network on every pixel. ``(H, W, 3)`` uint8 in, uint8 out.

        The reference for the lifting fidelity and the per-frame peer in benchmarks.
        """
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).to(torch.float32) / 255.0
        out = self.enhance_thumbnail(x)
        return (out.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
