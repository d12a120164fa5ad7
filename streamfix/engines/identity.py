"""The passthrough engine: the identity grid. Measures the I/O floor in benchmarks."""

from __future__ import annotations

from streamfix.engines.registry import Engine, register_engine
from streamfix.grid.bilateral import BilateralGrid, Thumbnail


@register_engine
class IdentityEngine(Engine):
    """Returns the identity grid for every frame (the output equals the input up to rounding)."""

    name = "identity"

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        return BilateralGrid.identity(*self.card.grid)
