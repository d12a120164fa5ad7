"""The ``streamfix`` command: thin faces over the pipeline.

Each face is a module ``streamfix.faces.<name>`` with ``add_parser(subparsers)``; the parser it
adds sets ``func(args) -> int``. Every user-caused failure ends as one line
``streamfix: error: …`` and exit code 2 (usage) or 1 (everything else); a traceback is shown
only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streamfix import __version__
from streamfix.errors import StreamfixError
from streamfix.faces.args import Parser

#: the faces, in the order ``streamfix --help`` lists them
FACES = ("enhance", "live", "bench", "engines", "build_engines", "train", "eval", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="streamfix",
        description="Real-time enhancement of backlit and low-light video: a small network predicts a "
        "bilateral grid of colour transforms from a thumbnail; the grid is applied at full resolution.",
    )
    parser.add_argument("--version", action="version", version=f"streamfix {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for face in FACES:
        importlib.import_module(f"streamfix.faces.{face}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
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
