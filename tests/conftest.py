"""Shared fixtures for the end-to-end tests of ``streamfix enhance``.

* ``clips``: test media (tests/media.py), each file made on first use and kept for the session.
* ``cli``: runs ``streamfix.cli.main([...])`` in-process and returns exit code, stdout and stderr.
* ``tiny_sci_weights``: a randomly initialised SCI enhance network saved as safetensors.

The tests run with one numba and one PyTorch thread: their frames are tiny, and on the 2 shared
cores the test machines have, thread pools that spin while waiting for a descheduled peer make
a 96x64 frame take ~100 ms instead of ~3 ms.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # read when numba is first imported

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from streamfix.cli import main  # noqa: E402
from tests import media  # noqa: E402

torch.set_num_threads(1)

#: flags that keep a test run fast and its stderr free of the device note
FAST = ("--engine", "identity", "--device", "cpu", "--preset", "ultrafast", "-q")


@dataclass
class CliResult:
    rc: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def one_error(self) -> str:
        """Assert stderr is exactly one ``streamfix: error:`` line and no traceback; return it."""
        assert "Traceback" not in self.err, self.err
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("streamfix: error: "), line
        return line


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """``cli("enhance", "-i", ...)`` → :class:`CliResult` (captured output of that call only)."""

    def run(*argv: object) -> CliResult:
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return CliResult(rc, captured.out, captured.err)

    return run


class Clips:
    """Test media, generated lazily into one session folder (each property made once)."""

    def __init__(self, directory: Path) -> None:
        self.d = directory

    @functools.cached_property
    def audio(self) -> media.MediaInfo:
        return media.h264_clip(self.d, audio=True)

    @functools.cached_property
    def long_audio(self) -> media.MediaInfo:
        return media.h264_clip(self.d, "long_audio.mp4", frames=30, audio=True, bframes=True)

    @functools.cached_property
    def long_ts(self) -> media.MediaInfo:
        return media.h264_clip(self.d, "long.ts", frames=30, audio=True, bframes=True, container="ts")

    @functools.cached_property
    def vfr_mp4(self) -> media.MediaInfo:
        return media.h264_clip(self.d, vfr=True, bframes=True)

    @functools.cached_property
    def vfr_mkv(self) -> media.MediaInfo:
        return media.h264_clip(self.d, vfr=True, container="mkv")

    @functools.cached_property
    def subs_mkv(self) -> media.MediaInfo:
        return media.subtitle_clip(self.d, audio=True, frames=15)

    @functools.cached_property
    def subs_mp4(self) -> media.MediaInfo:
        return media.subtitle_clip(self.d, container="mp4", frames=15)

    @functools.cached_property
    def rotated(self) -> media.MediaInfo:
        return media.h264_clip(self.d, rotation=90, frames=6)

    @functools.cached_property
    def rotated_270(self) -> media.MediaInfo:
        return media.h264_clip(self.d, rotation=270, frames=6)

    def color(self, preset: str) -> media.MediaInfo:
        return _cached(self, f"color_{preset}", lambda: media.h264_clip(self.d, color=preset, frames=6))

    @functools.cached_property
    def odd(self) -> media.MediaInfo:
        return media.h264_clip(self.d, width=67, height=45, frames=6)

    @functools.cached_property
    def ffv1_odd(self) -> media.MediaInfo:
        return media.ffv1_clip(self.d, frames=6)

    @functools.cached_property
    def hevc10(self) -> media.MediaInfo:
        return media.hevc10_clip(self.d, frames=8)

    @functools.cached_property
    def hevc10_pq(self) -> media.MediaInfo:
        return media.hevc10_clip(self.d, color="bt2020_pq", frames=6)

    @functools.cached_property
    def gray(self) -> media.MediaInfo:
        return media.gray_clip(self.d, frames=6)

    @functools.cached_property
    def bframes(self) -> media.MediaInfo:
        return media.h264_clip(self.d, bframes=True)

    @functools.cached_property
    def one_frame(self) -> media.MediaInfo:
        return media.one_frame_clip(self.d)

    @functools.cached_property
    def truncated_ts(self) -> media.MediaInfo:
        return media.truncated_clip(self.d)

    @functools.cached_property
    def truncated_mkv(self) -> media.MediaInfo:
        return media.truncated_clip(self.d, container="mkv")

    @functools.cached_property
    def truncated_mp4(self) -> media.MediaInfo:
        return media.truncated_clip(self.d, "truncated_moov_at_end.mp4", container="mp4")

    @functools.cached_property
    def corrupt_ts(self) -> media.MediaInfo:
        return media.corrupt_middle_clip(self.d)

    @functools.cached_property
    def corrupt_mkv(self) -> media.MediaInfo:
        return media.corrupt_middle_clip(self.d, container="mkv")

    @functools.cached_property
    def audio_only(self) -> media.MediaInfo:
        return media.audio_only(self.d)

    @functools.cached_property
    def empty(self) -> media.MediaInfo:
        return media.zero_byte(self.d)

    @functools.cached_property
    def text(self) -> media.MediaInfo:
        return media.text_as_video(self.d)


def _cached(obj: object, key: str, make: Callable[[], media.MediaInfo]) -> media.MediaInfo:
    store = obj.__dict__.setdefault("_made", {})
    if key not in store:
        store[key] = make()
    return store[key]


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> Clips:
    return Clips(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def tiny_sci_weights(tmp_path_factory) -> Path:
    """A randomly initialised (seeded) SCI enhance network: its output visibly differs from its input."""
    sci_net = pytest.importorskip("streamfix.engines.sci_net")
    if not (hasattr(sci_net, "EnhanceNetwork") and hasattr(sci_net, "save_enhance_weights")):
        pytest.skip("streamfix.engines.sci_net has no EnhanceNetwork/save_enhance_weights")
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny_sci.safetensors"
    sci_net.save_enhance_weights(sci_net.EnhanceNetwork(), path, {"purpose": "tests"})
    return path


# ------------------------------------------------------------------------------------------------
# reading outputs back


def seconds(pts: list[int], time_base: Fraction) -> list[float]:
    return [float(p * time_base) for p in pts]


def assert_same_times(got: list[int], got_tb: Fraction, want: list[int], want_tb: Fraction) -> None:
    """Same number of timestamps, each equal in seconds to within half a tick of the coarser base."""
    assert len(got) == len(want), (len(got), len(want))
    tol = float(max(got_tb, want_tb)) / 2 + 1e-9
    for i, (g, w) in enumerate(zip(seconds(got, got_tb), seconds(want, want_tb), strict=True)):
        assert abs(g - w) <= tol, f"timestamp {i}: {g:.6f} s != {w:.6f} s (tolerance {tol:.6f})"


def decoded(path: Path, fmt: str | None = None) -> list[np.ndarray]:
    """Every video frame of ``path`` as an array (``fmt``: convert first, e.g. ``gray``, ``rgb24``)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) if fmt else f.to_ndarray() for f in c.decode(video=0)]


def mean_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    diffs = [np.abs(x.astype(np.float64) - y.astype(np.float64)).mean() for x, y in zip(a, b, strict=True)]
    return float(np.mean(diffs))


def leftovers(folder: Path) -> list[str]:
    """Partial or temporary files streamfix may have left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name or p.name.startswith("."))
