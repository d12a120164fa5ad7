"""How much a BacklitNet dims (or lifts) the rest of a frame when lamps appear in it.

    python tools/lamp_probe.py [--video FILE] [--frame N] [--lamps 1,3] [--trials 8] \
        [--weights W …]

A night video pumps when the network's rendering of a scene depends on the lights in view: a
street lamp entering the frame should not darken the street. The probe takes one decoded frame
(PyAV), makes the pipeline's thumbnail of it, and runs the engine on that thumbnail as it is and
with ``k`` lamps added (:func:`streamfix.train.synthetic.add_lights`, the lamps ``train
backlitnet --lights`` pastes, radius 2–8 % of the short side), ``trials`` random placements each.
The gain is mean BT.709 luma out / in over the pixels no lamp touched; the table gives it without
lamps and its mean relative change with them (0 %: the lamps change nothing elsewhere). Weights
default to the shipped engine's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from streamfix.engines import create_engine
from streamfix.engines.registry import load_card
from streamfix.enhancer import Enhancer
from streamfix.faces.args import whole_number
from streamfix.grid.thumbnail import thumbnail_size
from streamfix.metrics import luma709
from streamfix.train.synthetic import add_lights

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "video_night_city" / "dark.mp4"


def read_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of the video as packed uint8 RGB."""
    try:
        with av.open(str(path)) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k == index:
                    return frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, OSError) as e:
        raise SystemExit(f"{path}: cannot decode ({e})") from None
    raise SystemExit(f"{path}: has no frame {index}")


def lamp_counts(text: str) -> list[int]:
    """argparse type: comma-separated lamp counts, each ≥ 1."""
    return [whole_number("--lamps", 1)(c) for c in text.split(",")]


def gain(y_out: np.ndarray, y_in: np.ndarray, keep: np.ndarray) -> float:
    """Mean luma out / in over the ``keep`` pixels (``y_*``: BT.709 luma planes)."""
    return float(y_out[keep].mean() / max(y_in[keep].mean(), 1e-6))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--frame", type=int, default=10)
    p.add_argument("--lamps", type=lamp_counts, default=[1, 3], help="lamp counts to try (default 1,3)")
    p.add_argument("--trials", type=whole_number("--trials", 1), default=8,
                   help="random lamp placements per count (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, action="append", default=[],
                   help="BacklitNet weights (repeatable; default: the shipped engine)")
    args = p.parse_args(argv)
    counts = args.lamps
    rgb = read_frame(args.video, args.frame)
    h, w = thumbnail_size(*rgb.shape[:2], load_card("backlitnet").thumbnail)
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)  # the pipeline's thumbnail, kept in uint8
    rng = np.random.default_rng(args.seed)
    lit = {k: [add_lights([small], rng, count=(k, k))[0] for _ in range(args.trials)] for k in counts}
    print(f"{args.video.name} frame {args.frame}, thumbnail {small.shape[1]}×{small.shape[0]}, "
          f"{args.trials} placements per lamp count\n")
    heads = " | ".join(f"{k} lamp{'s' if k > 1 else ''}: Δ gain" for k in counts)
    print(f"| weights | gain, no lamps | {heads} |")
    print("|---|---|" + "---|" * len(counts))
    for weights in args.weights or [None]:
        enhancer = Enhancer(create_engine("backlitnet", weights=weights))
        y_plain, y_small = luma709(enhancer.enhance_rgb(small, new_scene=True)), luma709(small)
        base = gain(y_plain, y_small, np.ones(small.shape[:2], bool))
        cells = []
        for k in counts:
            changes = []
            for img in lit[k]:
                keep = (img == small).all(axis=2)
                out = enhancer.enhance_rgb(img, new_scene=True)
                changes.append(gain(luma709(out), luma709(img), keep) / gain(y_plain, y_small, keep) - 1.0)
            cells.append(f"{100 * np.mean(changes):+.1f} %")
        name = weights.name if weights else "shipped"
        print(f"| {name} | {base:.3f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
