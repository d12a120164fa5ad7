"""Training and per-video fine-tuning of streamfix's learned engines."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from streamfix.errors import OutputError, UsageError


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


def weights_out(path: str | os.PathLike[str]) -> Path:
    """The ``--out`` weights file, checked before any training: a ``.safetensors`` name in an
    existing, writable folder (usage / output errors otherwise)."""
    out = Path(path)
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"--out must end in .safetensors, got {out}")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent}: output folder does not exist")
    if out.is_dir():
        raise OutputError(f"{out}: is a folder")
    if not os.access(out.parent, os.W_OK):
        raise OutputError(f"{out.parent}: not writable")
    return out
