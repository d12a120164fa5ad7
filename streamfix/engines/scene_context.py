"""A network's global context held across the frames of a shot (an auto exposure's lock).

BacklitNet decides how much to lift a frame from two things: the local features of each grid
cell and one global vector of the whole thumbnail (GLADNet's global illumination awareness).
On a still that is what a retoucher does. On video it pumps: when a camera pans and a dark
building enters the frame, the global vector says "a darker picture" and the whole frame is
lifted — the rest of the scene brightens although its light did not change. On
../shared/data/video_night_city/dark.mp4 (a pan that brings a dark tower block into the frame)
that pumping put the BacklitNet weights shipped on 2026-12-08 over issue 4's bound (MABD/gain
1.121 with adaptive+denoise and each frame's own context; 0.790 with the context held —
``python tools/temporal_report.py --sections real --engines backlitnet``).

:class:`SceneContext` holds the vector per shot, as a camera's auto exposure holds within a
tolerance: each call blends the frame's vector into the held one with the weight

    w = FOLLOW + (1 − FOLLOW) · clip((d − HOLD_STOPS) / (FOLLOW_STOPS − HOLD_STOPS), 0, 1)

where ``d`` is how far, in stops, the frame's mean luma is from the held vector's (itself
blended with the same weight). Within 1/6 stop the vector drifts at FOLLOW a call (a time
constant of 50 calls, 1.7 s at 30 fps); beyond 1/2 stop (a light switched on, a pan into the sun) it
is the frame's own at once, and between the two the weight ramps. The cells' local features
are never held: a subject that darkens or enters the frame is still lifted where it is.

The owner calls :meth:`reset` at a scene cut and before an unrelated image.

Example:
    >>> import torch
    >>> ctx = SceneContext()
    >>> a, b = torch.zeros(4), torch.ones(4)
    >>> float(ctx.update(a, 0.20)[0])  # the first frame's own vector
    0.0
    >>> round(float(ctx.update(b, 0.21)[0]), 3)  # 0.07 stops away: held, drifting at FOLLOW
    0.02
    >>> float(ctx.update(b, 0.40)[0])  # a stop brighter: followed at once
    1.0
"""

from __future__ import annotations

import math

import torch

#: weight of the frame's vector per call while its exposure is within HOLD_STOPS of the held one
FOLLOW = 0.02
#: exposure distance (stops) below which the vector is held (drifting at FOLLOW)
HOLD_STOPS = 1.0 / 6.0
#: exposure distance (stops) from which the frame's vector is taken whole
FOLLOW_STOPS = 0.5
#: the darkest mean luma whose logarithm is taken (a black frame)
_FLOOR = 1.0 / 1024.0


class SceneContext:
    """Holds a global vector across a shot; see the module docs.

    Args:
        follow: :data:`FOLLOW`. hold_stops: :data:`HOLD_STOPS`. follow_stops: :data:`FOLLOW_STOPS`
            (must exceed ``hold_stops``).
    """

    def __init__(self, follow: float = FOLLOW, hold_stops: float = HOLD_STOPS,
                 follow_stops: float = FOLLOW_STOPS) -> None:
        if not 0.0 <= follow <= 1.0:
            raise ValueError(f"follow must be in [0, 1], got {follow}")
        if not 0.0 <= hold_stops < follow_stops:
            raise ValueError(f"need 0 ≤ hold_stops < follow_stops, got {hold_stops} and {follow_stops}")
        self.follow = follow
        self.hold_stops = hold_stops
        self.follow_stops = follow_stops
        self._held: torch.Tensor | None = None
        self._stops = 0.0  # the held vector's exposure: log2 of the mean luma
        self.last_weight = 1.0  # the weight of the last update (1 at a shot's first frame)

    def reset(self) -> None:
        """Forget the held vector: the next frame's own is taken."""
        self._held = None
        self.last_weight = 1.0

    def weight(self, stops: float) -> float:
        """The blending weight for a frame whose exposure is ``stops`` (log2 mean luma)."""
        if self._held is None:
            return 1.0
        d = abs(stops - self._stops)
        ramp = (d - self.hold_stops) / (self.follow_stops - self.hold_stops)
        return self.follow + (1.0 - self.follow) * min(max(ramp, 0.0), 1.0)

    def update(self, vector: torch.Tensor, mean_luma: float) -> torch.Tensor:
        """Blend this frame's ``vector`` (any shape) in; returns the vector to use (a new tensor).

        ``mean_luma``: the frame's mean luma in ``[0, 1]`` (of the thumbnail the vector came from).
        """
        stops = math.log2(max(float(mean_luma), _FLOOR))
        same_shape = self._held is not None and self._held.shape == vector.shape
        w = self.last_weight = self.weight(stops) if same_shape else 1.0
        if w >= 1.0:
            self._held = vector.detach().clone()
            self._stops = stops
        else:
            self._held = self._held + w * (vector.detach() - self._held)
            self._stops += w * (stops - self._stops)
        return self._held.clone()
