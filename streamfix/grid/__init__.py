"""The grid core: representation, fitting (BGU) and slicing. Knows no engine, container or CLI."""

from streamfix.grid.bilateral import BilateralGrid, Thumbnail

__all__ = ["BilateralGrid", "Thumbnail"]
