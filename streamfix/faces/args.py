"""Argument types and the one-line-error parser shared by the faces."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from streamfix.errors import UsageError
from streamfix.presets import DEFAULTS


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors become :class:`UsageError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def unit_float(name: str) -> Callable[[str], float]:
    """A float in [0, 1] named ``name`` in its error message."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number in [0, 1], got {text!r}") from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {text}")
        return v

    return parse


def seconds(text: str) -> float:
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


def whole_number(name: str, minimum: int) -> Callable[[str], int]:
    """An integer ≥ ``minimum`` named ``name`` in its error message."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}, got {v}")
        return v

    return parse


#: ``--engine-every``: a whole number of frames ≥ 1
engine_every = whole_number("--engine-every", 1)


#: help of ``--engine-every``, the same in every face
ENGINE_EVERY_HELP = ("run the engine on every N-th frame only (scene cuts always); the frames between reuse its "
                     "grid, still blended and brightness-locked per frame — less CPU per frame (default 1)")


def pick_engine_every(flag: int | None, pick: Callable[[Any, str, str], Any]) -> int:
    """``--engine-every`` over the preset's ``[enhance] engine_every``, checked."""
    v = pick(flag, "enhance", "engine_every")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise UsageError(f"[enhance] engine_every must be a whole number ≥ 1, got {v!r}")
    return v


#: help of ``--denoise``, the same in every face
DENOISE_HELP = ("temporal noise reduction of the enhanced frames: weight of a still pixel's history, [0, 1); "
                f"moving pixels pass untouched; 0 = off (default {DEFAULTS['denoise']['strength']:g})")


def pick_denoise(flag: float | None, pick: Callable[[Any, str, str], Any]) -> float:
    """``--denoise`` over the preset's ``[denoise] strength``, checked."""
    v = pick(flag, "denoise", "strength")
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1:
        raise UsageError(f"--denoise / [denoise] strength must be in [0, 1), got {v!r}")
    return float(v)


def pick_temporal_mode(flag: str | None, pick: Callable[[Any, str, str], Any]) -> str:
    """``--temporal`` over the preset's ``[temporal] mode``, checked (returned as given: ``on`` stays ``on``)."""
    from streamfix.temporal import resolve_mode

    mode = str(pick(flag, "temporal", "mode"))
    try:
        resolve_mode(mode)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return mode


def preset_picker(preset: dict[str, Any]) -> Callable[[Any, str, str], Any]:
    """``pick(flag, section, key)``: an explicit flag when given, else ``preset[section][key]``."""

    def pick(flag: Any, section: str, key: str) -> Any:
        return flag if flag is not None else preset[section][key]

    return pick


def blend_and_crf(args: argparse.Namespace, pick: Callable[[Any, str, str], Any]) -> tuple[float, Any]:
    """``(temporal strength, crf)`` from the flags over the preset, range-checked."""
    ts = float(pick(args.temporal_strength, "temporal", "strength"))
    crf = pick(args.crf, "encode", "crf")
    check_blend_and_crf(ts, crf)
    return ts, crf


def check_blend_and_crf(temporal_strength: float, crf: float | None) -> None:
    """Range checks shared by the faces that take ``--temporal-strength`` and ``--crf``."""
    if temporal_strength >= 1.0:
        raise UsageError("--temporal-strength must be below 1 (1 would freeze the first frame's grid)")
    if crf is not None and not 0 <= float(crf) <= 63:
        raise UsageError(f"--crf must be in [0, 63], got {crf:g}")
