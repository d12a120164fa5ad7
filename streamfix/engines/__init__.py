"""Engines: thumbnail in, bilateral grid out. One registry, one card per engine (timm-style).

    >>> from streamfix.engines import create_engine
    >>> engine = create_engine("identity")
    >>> engine.card.name
    'identity'

An engine knows nothing of files, streams or threads. Its defaults (thumbnail size, grid
shape, weights file, how the weights were trained) live in its card, ``engines/<name>.toml``.
"""

from streamfix.engines.registry import (
    Engine,
    EngineCard,
    available_engines,
    create_engine,
    load_card,
    register_engine,
)

__all__ = ["Engine", "EngineCard", "available_engines", "create_engine", "load_card", "register_engine"]
