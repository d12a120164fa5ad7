"""One frame's enhancement: thumbnail → engine → temporal → strength → slice → denoise.

The :class:`Enhancer` is what every face shares (enhance, live, bench, eval); it holds the
engine, the temporal state and per-stage timings, and knows nothing of files or threads.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from streamfix.denoise import TemporalDenoiser
from streamfix.engines import Engine
from streamfix.grid.bilateral import BilateralGrid, Thumbnail
from streamfix.grid.kernels import slice_rgb_cpu
from streamfix.grid.planes import Planes
from streamfix.grid.thumbnail import thumbnail_from_planes, thumbnail_from_rgb
from streamfix.temporal import TemporalFilter, TemporalStep

STAGES = ("thumbnail", "engine", "temporal", "slice", "denoise")


@dataclass
class StageClock:
    """Per-stage times in ms, one list per stage: ``ms`` wall time, ``cpu_ms`` CPU time of the
    thread that ran the stage (the enhancement runs on its own threads with one numba / torch
    thread, so this is its CPU cost even while the codecs compete for the cores)."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, stage: str, seconds: float, cpu_seconds: float | None = None) -> None:
        self.ms[stage].append(seconds * 1000.0)
        if cpu_seconds is not None:
            self.cpu_ms[stage].append(cpu_seconds * 1000.0)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time the ``with`` block (wall and thread CPU) as one sample of ``stage``."""
        t0, c0 = time.perf_counter(), time.thread_time()
        yield
        self.add(stage, time.perf_counter() - t0, time.thread_time() - c0)

    def mean(self, stage: str) -> float:
        v = self.ms.get(stage, [])
        return float(np.mean(v)) if v else 0.0


class Enhancer:
    """Applies an engine to frames.

    Args:
        engine: any registered engine.
        device: ``cpu`` or ``cuda`` (see :func:`streamfix.backends.select_device`).
        strength: 0 (no change) … 1 (the engine's full effect).
        temporal: the temporal filter, or None for per-frame grids.
        threads: CPU threads for the engine and the slicing kernels. In a pipeline the stages
            already run side by side with the codecs' own threads, and idle thread pools spin, so
            the default is 1; a lone image or a benchmark of the enhancement alone can use more.
        passthrough: the pipeline hands decoded frames to the encoder untouched (no thumbnail,
            engine or slicing): the I/O floor that benchmarks compare against.
        engine_every: run the engine on every N-th frame only; the frames between reuse its last
            grid, which the temporal filter still blends, brightness-locks and resets per frame
            (a grid describes the lighting of a scene, which changes over many frames). A scene
            cut, the first frame and a still (``new_scene``) always run the engine. 1: every frame.
        denoiser: temporal noise reduction of the sliced frames (video only: frames must reach
            :meth:`apply` in order), or None. Frames an identity grid leaves unchanged are not
            denoised either.
    """

    def __init__(
        self,
        engine: Engine,
        device: str = "cpu",
        strength: float = 1.0,
        temporal: TemporalFilter | None = None,
        threads: int = 1,
        passthrough: bool = False,
        engine_every: int = 1,
        denoiser: TemporalDenoiser | None = None,
    ) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        if engine_every < 1:
            raise ValueError(f"engine_every must be ≥ 1, got {engine_every}")
        self.engine = engine
        engine.carry_scene(temporal is not None)  # held scene decisions belong to temporal propagation
        self.device = device
        self.strength = strength
        self.temporal = temporal
        self.threads = max(1, threads)
        self.passthrough = passthrough
        self.engine_every = engine_every
        self.denoiser = denoiser
        self.engine_runs = 0  # frames the engine ran on (the rest reused its last grid)
        self._held: BilateralGrid | None = None  # the engine's last grid
        self._held_at = 0  # … and the frame it was made on
        self.clock = StageClock()
        self.scene_cuts: list[int] = []
        self.frames = 0
        self.last_step: TemporalStep | None = None

    def bind_thread(self) -> None:
        """Apply the thread budget on the calling thread (numba's setting is per thread)."""
        import numba

        # numba first: starting its OpenMP pool can reset torch's thread count
        numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(self.threads)

    def grid_for(self, thumb: Thumbnail) -> BilateralGrid:
        """Engine + temporal + strength for one thumbnail (timed)."""
        t0, c0 = time.perf_counter(), time.thread_time()
        cut = self.temporal is not None and self.temporal.observe(thumb)
        if cut:
            self.scene_cuts.append(self.frames)
            self.engine.scene_cut()  # stateful engines (excnet, warm-started fits) restart
        t1, c1 = time.perf_counter(), time.thread_time()
        if cut or self._held is None or self.frames - self._held_at >= self.engine_every:
            grid = self._held = self.engine.predict(thumb)
            self._held_at = self.frames
            self.engine_runs += 1
        else:
            grid = self._held
        t2, c2 = time.perf_counter(), time.thread_time()
        if self.temporal is not None:
            self.last_step = self.temporal.blend(grid, thumb)
            grid = self.last_step.grid
        t3, c3 = time.perf_counter(), time.thread_time()
        self.clock.add("engine", t2 - t1, c2 - c1)
        self.clock.add("temporal", (t1 - t0) + (t3 - t2), (c1 - c0) + (c3 - c2))
        self.frames += 1
        return grid.with_strength(self.strength)

    def plan(self, planes: Planes) -> BilateralGrid:
        """The grid for a YUV frame: thumbnail → engine → temporal → strength (timed). The first
        half of :meth:`enhance_planes`; frames must be planned in order (temporal state)."""
        with self.clock.timed("thumbnail"):
            thumb = thumbnail_from_planes(planes, self.engine.card.thumbnail)
        return self.grid_for(thumb)

    def apply(self, planes: Planes, grid: BilateralGrid, out: Planes) -> None:
        """Slice ``grid`` into ``out`` (same shapes as ``planes``) and denoise it (timed). The
        second half of :meth:`enhance_planes`; its only state is the denoiser's, so it may run on
        another thread than :meth:`plan`, one frame after the other."""
        from streamfix.backends import slice_into

        with self.clock.timed("slice"):
            slice_into(planes, grid, out, self.device)
        if (denoiser := self._denoiser_for(grid)) is not None:
            with self.clock.timed("denoise"):
                denoiser.planes(planes, out)

    def denoise_tensors(self, grid: BilateralGrid, src: tuple[torch.Tensor, ...],
                        out: tuple[torch.Tensor, ...], bits: int) -> tuple[torch.Tensor, ...]:
        """The device path's denoising (timed): ``out``, planes sliced with ``grid`` from ``src``
        and held as tensors, denoised into new tensors (or returned as they are, as :meth:`apply`
        would leave them)."""
        if (denoiser := self._denoiser_for(grid)) is None:
            return out
        with self.clock.timed("denoise"):
            return denoiser.tensors(src, out, bits)

    def _denoiser_for(self, grid: BilateralGrid) -> TemporalDenoiser | None:
        """The denoiser for a frame just sliced with ``grid``, or None: a frame the grid left
        unchanged (the ``identity`` engine, strength 0) is left alone and restarts its history."""
        if self.denoiser is not None and grid.is_identity():
            self.denoiser.reset()
            return None
        return self.denoiser

    def enhance_planes(self, planes: Planes, out: Planes) -> BilateralGrid:
        """Enhance a YUV frame into ``out`` (same shapes). Returns the grid that was sliced."""
        grid = self.plan(planes)
        self.apply(planes, grid, out)
        return grid

    def enhance_rgb(self, rgb: np.ndarray, new_scene: bool = False) -> np.ndarray:
        """Enhance a packed ``(H, W, 3)`` uint8 RGB image; returns a new uint8 image.

        ``new_scene``: the image is unrelated to the previous call (a still, not the next frame):
        the engine forgets what it carried over (warm starts, iteration budgets)."""
        if new_scene:
            self.engine.scene_cut()
            self._held = None
            if self.denoiser is not None:
                self.denoiser.reset()
        with self.clock.timed("thumbnail"):
            thumb = thumbnail_from_rgb(rgb, self.engine.card.thumbnail)
        grid = self.grid_for(thumb)
        with self.clock.timed("slice"):
            out = slice_rgb_cpu(np.ascontiguousarray(rgb), grid)
        if (denoiser := self._denoiser_for(grid)) is not None:
            with self.clock.timed("denoise"):
                denoiser.rgb(rgb, out)
        return out
