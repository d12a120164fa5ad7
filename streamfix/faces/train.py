"""``streamfix train ENGINE``: train an engine's weights with this project's own code."""

from __future__ import annotations

import argparse

from streamfix.faces.args import Parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    from streamfix.train import backlitnet as train_backlitnet
    from streamfix.train import sci as train_sci

    p = sub.add_parser("train", help="train an engine's weights", description="Train an engine's weights.")
    engines = p.add_subparsers(dest="engine", required=True, parser_class=Parser, metavar="ENGINE")
    ps = engines.add_parser(
        "sci", help="SCI self-calibrated training, or per-video fine-tuning (--finetune VIDEO)",
        description="Train SCI (Ma et al. 2022) on unpaired low-light images, or fine-tune it on a video.",
    )
    train_sci.add_arguments(ps)
    ps.set_defaults(func=train_sci.run)
    pb = engines.add_parser(
        "backlitnet", help="BacklitNet end to end on paired images (real halves + synthetic pairs)",
        description="Train BacklitNet (Lv et al. 2022): grid and guide learned through slicing, "
        "L1 + SSIM + saliency-weighted backlit-prior loss.",
    )
    train_backlitnet.add_arguments(pb)
    pb.set_defaults(func=train_backlitnet.run)
    pp = engines.add_parser(
        "synth-pairs", help="write synthetic (degraded, clean) pairs from clean photos",
        description="Write GLADNet-style low-light, backlit, over-exposed, mild, identity, black/white and "
        "grey pairs from clean photos into OUT/input + OUT/target.",
    )
    train_backlitnet.add_synth_arguments(pp)
    pp.set_defaults(func=train_backlitnet.run_synth)
