"""Defaults for ``streamfix live`` and the ``[live]`` section of a pipeline preset.

``pipelines/live.toml`` states the same values as :data:`LIVE_DEFAULTS` and :data:`LIVE_ENCODE`
(a test keeps them equal). With ``--pipeline FILE`` the file's sections override these; an
``[encode]`` key the file leaves out keeps its live default (ultrafast), not the transcode one.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from streamfix.errors import UsageError
from streamfix.presets import load_preset, pipelines_dir

#: the ``[live]`` section: key → default (types are checked against these)
LIVE_DEFAULTS: dict[str, Any] = {
    "preview": "browser",   # browser | window | none
    "host": "127.0.0.1",    # preview server address (loopback unless said otherwise)
    "port": 8080,           # preview server port (0: any free port)
    "jpeg_quality": 80,     # preview JPEG quality, 1-100
    "preview_width": 1280,  # wider pictures are scaled down for the preview
    "timeout": 5.0,         # seconds before a silent network source counts as lost
    "reconnect_min": 0.25,  # first delay between reconnection attempts, seconds (doubles per failure)
    "reconnect_max": 1.0,   # longest delay between reconnection attempts, seconds
    "stall": 2.0,           # seconds without frames before the status says "stalled"
    "strength_step": 0.1,   # how much one strength key press changes the strength
    "threads": 1,           # CPU threads of the engine and the slicing kernel (Enhancer.threads)
}

#: ``[encode]`` defaults for ``--out``: fast enough to keep up with a live source on a CPU
LIVE_ENCODE: dict[str, Any] = {"codec": "libx264", "crf": 23, "preset": "ultrafast", "pix_fmt": None}

PREVIEWS = ("browser", "window", "none")


def _resolve(path: Path) -> Path:
    if not path.exists() and not path.is_absolute() and (pipelines_dir() / path.name).exists():
        return pipelines_dir() / path.name
    return path


def load_live_preset(path: Path | None) -> dict[str, dict[str, Any]]:
    """Sections ``enhance``, ``temporal``, ``encode`` and ``live``: built-in live defaults, then ``path``."""
    merged = load_preset(path)  # validates enhance/temporal/encode and reports bad files
    raw: dict[str, Any] = tomllib.loads(_resolve(path).read_text()) if path is not None else {}
    given_encode = raw.get("encode", {}) if isinstance(raw.get("encode"), dict) else {}
    for key, value in LIVE_ENCODE.items():
        if key not in given_encode:
            merged["encode"][key] = value
    live = dict(LIVE_DEFAULTS)
    section = raw.get("live", {})
    if not isinstance(section, dict):
        raise UsageError(f"pipeline preset {path}: [live] must be a table")
    unknown = set(section) - set(LIVE_DEFAULTS)
    if unknown:
        raise UsageError(f"pipeline preset {path}: unknown key(s) in [live]: {', '.join(sorted(unknown))}")
    for key, value in section.items():
        want = type(LIVE_DEFAULTS[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool):
            kind = {int: "an integer", float: "a number", str: "a string"}[want]
            raise UsageError(f"pipeline preset {path}: [live] {key} must be {kind}, got {value!r}")
        live[key] = value
    if live["threads"] < 1:
        raise UsageError(f"pipeline preset {path}: [live] threads must be at least 1")
    if live["preview"] not in PREVIEWS:
        raise UsageError(f"pipeline preset {path}: [live] preview must be one of {', '.join(PREVIEWS)}")
    merged["live"] = live
    return merged
