"""``streamfix engines``: the registry, one line per engine card."""

from __future__ import annotations

import argparse

from streamfix.engines import available_engines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="list the engines", description="List the registered engines and their cards.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for card in available_engines():
        if card.weights is None:
            weights = "no weights"
        else:
            weights = card.weights.name + ("" if card.weights.exists() else " (missing)")
        d, h, w = card.grid
        print(f"{card.name:<10} grid {d}x{h}x{w}  thumbnail {card.thumbnail}px  {weights:<22} {card.summary}")
    return 0
