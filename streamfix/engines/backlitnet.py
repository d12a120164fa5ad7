"""BacklitNet (Lv et al., CVIU 2022): a saliency-guided network that predicts the bilateral grid.

The thumbnail is resized to the network's fixed square input; the network
(:mod:`streamfix.engines.backlitnet_net`) returns the grid's affines and the guide curve
directly (HDRNet-style: no fitting), so :meth:`BacklitNetEngine.predict` is one forward pass:
the encoder (what TensorRT compiles) gives the cells' features and the global context, the
small head turns them into the grid. On video with a temporal filter
(:meth:`~BacklitNetEngine.carry_scene`) the global context is held across the shot
(:class:`~streamfix.engines.scene_context.SceneContext`): content entering the frame is lifted
where it is without re-exposing the rest of the scene.

Example:
    >>> import torch
    >>> x = network_input(torch.rand(3, 144, 256), 128)
    >>> tuple(x.shape)
    (1, 3, 128, 128)
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from streamfix.engines.backlitnet_net import BacklitNet, BacklitNetEncoder, load_backlitnet
from streamfix.engines.registry import Engine, EngineCard, register_engine
from streamfix.engines.scene_context import SceneContext
from streamfix.errors import StreamfixError
from streamfix.grid.bilateral import BilateralGrid, Thumbnail


def network_input(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """The network's input: ``(3, h, w)`` in ``[0, 1]`` → ``(1, 3, size, size)``.

    The aspect ratio is not kept (a 16:9 thumbnail is squeezed into the square): each grid cell
    then sees the same number of input pixels, training crops of any aspect and frames of any
    shape look alike, and the shape is static (batching, TensorRT). Resampling is bilinear with
    antialiasing, the same in training and at inference.
    """
    x = rgb[None] if rgb.ndim == 3 else rgb
    if tuple(x.shape[-2:]) == (size, size):
        return x.contiguous()
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


@register_engine
class BacklitNetEngine(Engine):
    """BacklitNet on the thumbnail → grid (12, D, 16, 16) + guide curve."""

    name = "backlitnet"

    def __init__(self, card: EngineCard, weights: Path | None = None, device: str = "cpu") -> None:
        super().__init__(card, weights, device)
        if weights is None:
            raise StreamfixError(
                "engine 'backlitnet' has no weights: pass --weights or ship engines/backlitnet.safetensors"
            )
        try:
            net, self.metadata = load_backlitnet(weights)
        except ValueError as e:
            raise StreamfixError(str(e)) from None
        self.net: BacklitNet = net.to(self.device)
        cfg = net.config
        if (cfg.depth, *cfg.grid) != tuple(card.grid):
            raise StreamfixError(
                f"{weights}: network grid {(cfg.depth, *cfg.grid)} differs from the card's {tuple(card.grid)}"
            )
        self.input_size = cfg.input_size
        self.encoder = BacklitNetEncoder(self.net)  # TensorRT rebinds this attribute (network())
        self.context: SceneContext | None = None  # held global context (video with a temporal filter)

    def network(self) -> torch.nn.Module:
        return self.encoder

    def carry_scene(self, on: bool) -> None:
        self.context = SceneContext() if on else None  # either way, nothing of an earlier video is held

    def scene_cut(self) -> None:
        if self.context is not None:
            self.context.reset()

    @torch.inference_mode()
    def forward(self, rgb: torch.Tensor, luma_mean: float | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(coeffs (12, D, Gh, Gw), guide (K,), saliency (h, w))`` for a thumbnail ``(3, h, w)``.

        ``luma_mean``: the thumbnail's mean luma in ``[0, 1]``; with it and a held context
        (:meth:`carry_scene`), the global context is the held one (updated with this frame's).
        """
        x = network_input(rgb.to(self.device, torch.float32), self.input_size)
        if x.device.type == "cpu":  # oneDNN runs the convolutions ≈ 25 % faster channels-last (tools/bench_network.py)
            x = x.contiguous(memory_format=torch.channels_last)
        cells, context, sal = self.encoder(x)
        if self.context is not None and luma_mean is not None:
            context = self.context.update(context, luma_mean)
        coeffs, guide = self.net.decode(cells, context)
        return coeffs[0].float().cpu(), guide[0].float().cpu(), sal[0, 0].float().cpu()

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        luma_mean = float(thumb.luma.mean()) if self.context is not None else None
        coeffs, guide, _ = self.forward(thumb.rgb, luma_mean)
        return BilateralGrid(coeffs.contiguous(), guide.contiguous())
