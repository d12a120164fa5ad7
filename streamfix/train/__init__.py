"""Training and per-video fine-tuning of streamfix's learned engines."""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime


def provenance(engine: str, args: argparse.Namespace) -> dict[str, str]:
    """What every weights file records about how it was made: the engine, the exact command
    (``args.command_line`` when the caller set one, else this process's ``streamfix`` command
    line), the torch version and the UTC date."""
    import torch

    return {
        "engine": engine,
        "command": getattr(args, "command_line", None) or shlex.join(["streamfix", *sys.argv[1:]]),
        "torch_version": torch.__version__,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
