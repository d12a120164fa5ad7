"""The ``streamfix`` command: thin faces over the pipeline.

Every user-caused failure ends as one line ``streamfix: error: …`` and exit code 2 (usage) or
1 (everything else); a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from streamfix import __version__
from streamfix.errors import StreamfixError, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _unit_float(name: str):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in [0, 1], got {text!r}") from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {text}")
        return v

    return parse


def _seconds(text: str) -> float:
    """Seconds as ``12.5`` or ``[HH:]MM:SS[.ms]`` (ffmpeg style)."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (use seconds or HH:MM:SS)") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r}")
    total = 0.0
    for p in parts:
        total = total * 60 + p
    return total


def _add_enhance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enhance",
        help="enhance a video, an image or a folder of images",
        description="Enhance a backlit or dark video (or image, or folder of images). "
        "Defaults come from --pipeline (built in: pipelines/transcode.toml); flags override them.",
    )
    p.add_argument("-i", "--input", required=True, type=Path, help="input video, image, or folder of images")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output file (format follows the extension) or folder (for a folder input)")
    ow = p.add_mutually_exclusive_group()
    ow.add_argument("-y", dest="overwrite", action="store_const", const=True, help="overwrite the output")
    ow.add_argument("-n", dest="overwrite", action="store_const", const=False,
                    help="never overwrite: fail if the output exists (the default behaviour, made explicit)")
    p.add_argument("-ss", "--start", type=_seconds, help="start at this time (seconds or HH:MM:SS)")
    p.add_argument("-t", "--duration", type=_seconds, help="enhance this many seconds")
    p.add_argument("--pipeline", type=Path, help="preset TOML (see pipelines/)")
    p.add_argument("--engine", help="engine name (see `streamfix engines`; default sci)")
    p.add_argument("--weights", type=Path, help="weights file for the engine (.safetensors, or an official SCI .pt)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the engine and slicing run (default auto)")
    p.add_argument("--strength", type=_unit_float("--strength"), help="0 = unchanged … 1 = full effect (default 1)")
    p.add_argument("--temporal", choices=("on", "off"),
                   help="carry the grid across frames, reset at scene cuts (default on)")
    p.add_argument("--temporal-strength", type=_unit_float("--temporal-strength"),
                   help="weight of the previous frame's grid, [0, 1) (default 0.6)")
    p.add_argument("--codec", help="video encoder (default libx264; h264_nvenc falls back to libx264 without a GPU)")
    p.add_argument("--crf", type=float, help="constant rate factor for x264/x265/svtav1/vp9 (default 20)")
    p.add_argument("--preset", help="encoder preset, e.g. ultrafast…veryslow (default veryfast)")
    p.add_argument("--pix-fmt", help="output pixel format (default yuv420p; yuv420p10le with libx265 keeps 10 bits)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="exit 0 when the input is damaged (the output holds what decoded either way)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_enhance)


def _run_enhance(args: argparse.Namespace) -> int:
    from streamfix.faces.enhance import run

    return run(args)


def _add_engines(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engines", help="list the engines", description="List the registered engines and their cards.")
    p.set_defaults(func=_run_engines)


def _run_engines(args: argparse.Namespace) -> int:
    from streamfix.engines import available_engines

    for card in available_engines():
        if card.weights is None:
            weights = "no weights"
        else:
            weights = card.weights.name + ("" if card.weights.exists() else " (missing)")
        d, h, w = card.grid
        print(f"{card.name:<10} grid {d}x{h}x{w}  thumbnail {card.thumbnail}px  {weights:<22} {card.summary}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    from streamfix.train import sci as train_sci

    p = sub.add_parser("train", help="train an engine's weights", description="Train an engine's weights.")
    engines = p.add_subparsers(dest="engine", required=True, parser_class=_Parser, metavar="ENGINE")
    ps = engines.add_parser(
        "sci", help="SCI self-calibrated training, or per-video fine-tuning (--finetune VIDEO)",
        description="Train SCI (Ma et al. 2022) on unpaired low-light images, or fine-tune it on a video.",
    )
    train_sci.add_arguments(ps)
    ps.set_defaults(func=train_sci.run)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="make a synthetic backlit clip with audio and enhance it",
        description="Write a short synthetic backlit clip (with audio) and its enhanced version; print both paths.",
    )
    p.add_argument("--out", type=Path, default=Path("streamfix-demo"), help="folder for the two files")
    p.add_argument("--engine", default="sci", help="engine (default sci)")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length (default 3)")
    p.add_argument("--size", default="640x360", help="WxH (default 640x360)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from streamfix.faces.demo import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="streamfix",
        description="Real-time enhancement of backlit and low-light video: a small network predicts a "
        "bilateral grid of colour transforms from a thumbnail; the grid is applied at full resolution.",
    )
    parser.add_argument("--version", action="version", version=f"streamfix {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    _add_enhance(sub)
    _add_engines(sub)
    _add_train(sub)
    _add_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except StreamfixError as e:
        if debug:
            raise
        print(f"streamfix: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("streamfix: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place a bug becomes one line
        if debug:
            raise
        print(f"streamfix: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
