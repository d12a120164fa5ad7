"""The lifting is faithful: sci via thumbnail → grid → slice stays close to SCI at full resolution."""

from __future__ import annotations

import numpy as np
import pytest

from streamfix.engines import create_engine
from streamfix.enhancer import Enhancer
from streamfix.metrics import psnr, read_rgb
from tests.shared_data import shared

# Measured (tools/lifting_fidelity.py, official medium.pt): 30.9–37 dB per set mean; the floor
# below is conservative so that a broken fit, guide or slice (typically < 20 dB) fails.
FLOOR_DB = 27.0


@pytest.mark.shared_data
@pytest.mark.parametrize("folder", ["lime", "backlit_cliplit", "lol_eval15_low_only"])
def test_lifted_sci_matches_full_resolution_sci(folder: str) -> None:
    weights = shared("sci_weights", "medium.pt")
    engine = create_engine("sci", weights)
    enhancer = Enhancer(engine)
    files = sorted(p for p in shared(folder).iterdir() if p.suffix.lower() in (".bmp", ".jpg", ".png"))[:3]
    vals = []
    for p in files:
        rgb = read_rgb(p)
        if max(rgb.shape) > 1200:  # keep the test fast: the full-res reference costs O(pixels)
            rgb = np.ascontiguousarray(rgb[::2, ::2])
        vals.append(psnr(enhancer.enhance_rgb(rgb), engine.enhance_full_resolution(rgb)))
    assert float(np.mean(vals)) >= FLOOR_DB, vals
