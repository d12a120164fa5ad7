"""Where the third-party test data lives (../shared/data beside the checkout, or $STREAMFIX_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("STREAMFIX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared(*parts: str) -> Path:
    """Path under the shared data, skipping the test with a reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared test data not present: {p} (set STREAMFIX_SHARED_DATA)")
    return p
