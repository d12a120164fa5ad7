"""The engine registry and engine cards."""

from __future__ import annotations

import importlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from streamfix.errors import StreamfixError, UsageError
from streamfix.grid.bilateral import BilateralGrid, Thumbnail

#: modules that register engines when imported
_ENGINE_MODULES = ("streamfix.engines.identity", "streamfix.engines.sci", "streamfix.engines.backlitnet",
                  "streamfix.engines.excnet")


def cards_dir() -> Path:
    """Folder of engine cards and shipped weights (``engines/`` of the checkout, or $STREAMFIX_ENGINES)."""
    env = os.environ.get("STREAMFIX_ENGINES")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "engines"


@dataclass(frozen=True)
class EngineCard:
    """An engine's defaults and provenance, read from ``engines/<name>.toml``.

    Attributes:
        name: registry name.
        summary: one line for ``streamfix engines``.
        thumbnail: long side of the thumbnail, pixels.
        grid: ``(D, Gh, Gw)`` of the grid it produces.
        weights: path of the shipped weights (None for engines without weights).
        raw: the whole card (architecture, paper, training record).
    """

    name: str
    summary: str
    thumbnail: int = 256
    grid: tuple[int, int, int] = (16, 16, 16)
    weights: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def load_card(name: str) -> EngineCard:
    """Read ``engines/<name>.toml``."""
    path = cards_dir() / f"{name}.toml"
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StreamfixError(f"engine card {path} is missing") from None
    except tomllib.TOMLDecodeError as e:
        raise StreamfixError(f"engine card {path} is not valid TOML: {e}") from None
    weights = raw.get("weights")
    return EngineCard(
        name=raw.get("name", name),
        summary=raw.get("summary", ""),
        thumbnail=int(raw.get("thumbnail", 256)),
        grid=tuple(raw.get("grid", (16, 16, 16))),  # type: ignore[arg-type]
        weights=(cards_dir() / weights) if weights else None,
        raw=raw,
    )


class Engine:
    """Base class: ``predict(thumbnail) -> BilateralGrid``.

    Subclasses set ``name`` and register with :func:`register_engine`; ``__init__`` takes the
    card and an optional weights path overriding the card's.
    """

    name: ClassVar[str] = ""

    def __init__(self, card: EngineCard, weights: Path | None = None, device: str = "cpu") -> None:
        self.card = card
        self.weights = weights
        self.device = torch.device(device)

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        """Map a thumbnail to a grid. Subclasses implement this."""
        raise NotImplementedError(f"engine {self.name!r} does not implement predict()")

    def network(self) -> torch.nn.Module | None:
        """The engine's neural network (what TensorRT would compile), or None."""
        return None

    def scene_cut(self) -> None:
        """The next thumbnail starts a new scene (or is an unrelated image): forget any state
        carried from frame to frame. Stateless engines ignore it."""

    def carry_scene(self, on: bool) -> None:
        """Allow (``on``) or forbid decisions held across the frames of a scene that change what
        the engine renders, not only what it costs — BacklitNet's held exposure context
        (:mod:`streamfix.engines.scene_context`). The :class:`~streamfix.enhancer.Enhancer`
        allows them exactly when a temporal filter runs, for each new video (so nothing held
        survives the call). Engines without such decisions ignore it; warm starts (SCI's fit,
        ExCNet's curve) do not depend on it."""


_REGISTRY: dict[str, type[Engine]] = {}


def register_engine(cls: type[Engine]) -> type[Engine]:
    """Class decorator adding an engine to the registry under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for mod in _ENGINE_MODULES:
        importlib.import_module(mod)


def available_engines() -> list[EngineCard]:
    """Cards of all registered engines, sorted by name."""
    _load_all()
    return [load_card(n) for n in sorted(_REGISTRY)]


def create_engine(name: str, weights: str | Path | None = None, device: str = "cpu") -> Engine:
    """Build a registered engine with its card's defaults (``weights`` overrides the card's)."""
    _load_all()
    if name not in _REGISTRY:
        raise UsageError(f"unknown engine {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    card = load_card(name)
    path = Path(weights) if weights is not None else card.weights
    if weights is not None and not Path(weights).is_file():
        raise UsageError(f"weights file {weights} does not exist")
    return _REGISTRY[name](card, path, device)
