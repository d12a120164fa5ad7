"""Pipeline presets (``pipelines/*.toml``): defaults for a use, overridden by explicit flags."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from streamfix.errors import UsageError

#: built-in defaults; ``pipelines/transcode.toml`` states the same values
DEFAULTS: dict[str, dict[str, Any]] = {
    "enhance": {"engine": "sci", "strength": 1.0, "device": "auto", "engine_every": 1},
    "temporal": {"mode": "adaptive", "strength": 0.85},
    "denoise": {"strength": 0.5},
    "encode": {"codec": "libx264", "crf": 20, "preset": "veryfast", "pix_fmt": None},
}


def pipelines_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "pipelines"


def load_preset(path: Path | None) -> dict[str, dict[str, Any]]:
    """The defaults updated with the sections of ``path`` (unknown sections or keys are errors)."""
    merged = {k: dict(v) for k, v in DEFAULTS.items()}
    if path is None:
        return merged
    if not path.exists() and not path.is_absolute() and (pipelines_dir() / path.name).exists():
        path = pipelines_dir() / path.name
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"pipeline preset {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"pipeline preset {path} is not valid TOML: {e}") from None
    for section, values in raw.items():
        if section not in merged or not isinstance(values, dict):
            continue
        unknown = set(values) - set(merged[section])
        if unknown:
            raise UsageError(f"pipeline preset {path}: unknown key(s) in [{section}]: {', '.join(sorted(unknown))}")
        merged[section].update(values)
    return merged
