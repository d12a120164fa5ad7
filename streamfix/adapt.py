"""Per-video adaptation: SCI fine-tuned on the first seconds of the video being processed.

SCI's ``finetune.py`` adapts the illumination network to one scene before running it. Here the
same loss and optimiser (:func:`streamfix.engines.sci_net.sci_loss`, Adam at SCI's fine-tuning
rate, gradient clipping — as :func:`streamfix.train.sci.finetune_sci`) run inside ``streamfix
enhance``, bounded in time, in one of two ways:

* :meth:`OnlineAdapter.warm_up` (files, what ``--adapt`` does): the first ``seconds`` are read
  ahead at thumbnail size, the network is fine-tuned on them (at most ``budget`` seconds of
  compute), then the whole video is enhanced with it — the picture never drifts mid-video.
* :meth:`OnlineAdapter.predict` (streams, where nothing can be read ahead): during the first
  ``seconds`` every frame's thumbnail joins a small buffer and the network takes ``steps``
  optimiser steps on thumbnails drawn from it; the engine predicts with the network as it is so
  far. The output drifts while it adapts (the temporal filter follows a persistent drift, as
  it should, so this shows in MABD); after the window or the budget the network is frozen.

Nothing is written to disk.

Example:
    >>> from streamfix.engines.registry import EngineCard
    >>> from streamfix.engines.sci_net import EnhanceNetwork
    >>> import torch
    >>> class Tiny:  # any engine with a ``net`` (EnhanceNetwork) and a ``card``
    ...     card = EngineCard("t", "", 64, (4, 4, 4))
    ...     net = EnhanceNetwork().eval()
    ...     def predict(self, thumb): return None
    >>> ad = OnlineAdapter(Tiny(), seconds=1.0, fps=2.0, steps=1)
    >>> from streamfix.grid.bilateral import Thumbnail
    >>> x = torch.rand(3, 24, 32) * 0.2
    >>> for _ in range(3): _ = ad.predict(Thumbnail(x, x.mean(0)))
    >>> ad.report()["frames_adapted"], ad.report()["steps"]
    (2, 2)
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from streamfix.engines.sci_net import BETAS, FINETUNE_LR, GRAD_CLIP, WEIGHT_DECAY, EnhanceNetwork, sci_loss
from streamfix.grid.bilateral import BilateralGrid, Thumbnail

#: long side of the thumbnails the network trains on (SCI is fully convolutional)
TRAIN_LONG_SIDE = 128
#: thumbnails kept for training (a reservoir sample of the window)
BUFFER = 16


class OnlineAdapter:
    """Wraps an SCI-like engine (``engine.net`` an :class:`EnhanceNetwork`) and fine-tunes it online.

    Args:
        engine: the engine to adapt; its ``net`` is replaced by the adapted copy as training goes.
        seconds: length of the adaptation window, in seconds of video.
        fps: the video's frame rate (converts ``seconds`` to frames).
        steps: optimiser steps per frame inside the window.
        budget: most wall-clock seconds spent training in total (None: ``2 × seconds``).
        lr: Adam learning rate.
        seed: buffer sampling seed.
    """

    def __init__(
        self,
        engine: Any,
        seconds: float,
        fps: float = 30.0,
        steps: int = 1,
        budget: float | None = None,
        lr: float = FINETUNE_LR,
        seed: int = 0,
    ) -> None:
        net = getattr(engine, "net", None)
        if not isinstance(net, EnhanceNetwork):
            raise ValueError(f"engine {getattr(engine, 'name', engine)!r} has no SCI network to adapt")
        if seconds <= 0 or fps <= 0 or steps < 1:
            raise ValueError("adaptation needs seconds > 0, fps > 0 and steps ≥ 1")
        self.engine = engine
        self.card = engine.card
        self.window = max(1, round(seconds * fps))
        self.steps = int(steps)
        self.budget = 2.0 * seconds if budget is None else float(budget)
        self.train_net: EnhanceNetwork = copy.deepcopy(net).to("cpu").train().requires_grad_(True)
        self.opt = torch.optim.Adam(self.train_net.parameters(), lr=lr, betas=BETAS, weight_decay=WEIGHT_DECAY)
        self.buffer: list[torch.Tensor] = []
        self.rng = random.Random(seed)
        self.frames = 0
        self.frames_adapted = 0
        self.steps_done = 0
        self.seconds_spent = 0.0
        self.losses: list[float] = []

    @property
    def name(self) -> str:
        return str(getattr(self.engine, "name", "engine"))

    @property
    def active(self) -> bool:
        """Still inside the window and the budget."""
        return self.frames < self.window and self.seconds_spent < self.budget

    def network(self) -> nn.Module:
        return self.engine.net

    def scene_cut(self) -> None:
        self.engine.scene_cut()

    def carry_scene(self, on: bool) -> None:
        self.engine.carry_scene(on)

    def _small(self, rgb: torch.Tensor) -> torch.Tensor:
        h, w = rgb.shape[-2:]
        s = min(1.0, TRAIN_LONG_SIDE / max(h, w))
        if s >= 1.0:
            return rgb.float().clone()
        size = (max(3, round(h * s)), max(3, round(w * s)))
        return F.interpolate(rgb[None].float(), size=size, mode="area")[0]

    def _remember(self, x: torch.Tensor) -> None:
        """Reservoir sampling: every frame of the window has the same chance to stay."""
        if len(self.buffer) < BUFFER:
            self.buffer.append(x)
        else:
            k = self.rng.randrange(self.frames_adapted + 1)
            if k < BUFFER:
                self.buffer[k] = x

    def adapt(self, thumb: Thumbnail) -> None:
        """One frame's share of the fine-tuning (called by :meth:`predict` inside the window)."""
        t0 = time.perf_counter()
        x_now = self._small(thumb.rgb.cpu())
        self._remember(x_now)
        with torch.enable_grad():
            for k in range(self.steps):
                self._step(x_now if k == 0 else self.buffer[self.rng.randrange(len(self.buffer))])
        self._publish()
        self.frames_adapted += 1
        self.seconds_spent += time.perf_counter() - t0

    def _step(self, x: torch.Tensor) -> None:
        """One optimiser step of SCI's fine-tuning loss on a ``(3, h, w)`` frame."""
        x = x[None]
        self.opt.zero_grad(set_to_none=True)
        loss = sci_loss(x, self.train_net(x))
        loss.backward()
        nn.utils.clip_grad_norm_(self.train_net.parameters(), GRAD_CLIP)
        self.opt.step()
        self.steps_done += 1
        self.losses.append(float(loss.detach()))

    def _publish(self) -> None:
        """Copy the adapted weights into the engine's inference network."""
        device = self.engine.net.in_conv[0].weight.device
        self.engine.net.load_state_dict({k: v.detach().to(device) for k, v in self.train_net.state_dict().items()})

    def warm_up(self, frames: list[torch.Tensor], iterations: int | None = None) -> None:
        """Fine-tune on frames read ahead (a file's first seconds) before any frame is enhanced.

        The picture then never drifts while the network adapts: the whole video, its first
        seconds included, is enhanced by the adapted network. Trains ``iterations`` steps (default
        ``steps × len(frames)``) on frames drawn from ``frames``, within the time ``budget``;
        afterwards the adapter is frozen.

        Args:
            frames: ``(3, h, w)`` float tensors in ``[0, 1]`` (e.g. from
                :func:`streamfix.train.sci.frames_from_video`).
            iterations: optimiser steps.
        """
        t0 = time.perf_counter()
        small = [self._small(f) for f in frames]
        n = iterations if iterations is not None else self.steps * len(small)
        with torch.enable_grad():
            for _ in range(n):
                if time.perf_counter() - t0 >= self.budget:
                    break
                self._step(small[self.rng.randrange(len(small))])
        self._publish()
        self.frames_adapted = len(small)
        self.seconds_spent += time.perf_counter() - t0
        self.frames = self.window  # frozen: predict() only delegates from now on

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        if self.active:
            self.adapt(thumb)
        self.frames += 1
        return self.engine.predict(thumb)

    def report(self) -> dict[str, float | int]:
        """What the adaptation did: frames, steps, seconds spent, first and last training losses."""
        n = min(len(self.losses), 10)
        return {
            "frames_adapted": self.frames_adapted,
            "steps": self.steps_done,
            "seconds": round(self.seconds_spent, 3),
            "first_loss": sum(self.losses[:n]) / n if n else float("nan"),
            "last_loss": sum(self.losses[-n:]) / n if n else float("nan"),
        }
