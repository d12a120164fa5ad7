"""Temporal behaviour of streamfix's engines: the numbers of issue 4, reproducibly.

    python tools/temporal_report.py [--sections real,synthetic,cuts,excnet,adapt]
        [--engines identity,sci,excnet] [--sci-weights PATH] [--backlitnet-weights PATH]
        [--max-frames N] [--engine-every N] [--modes off,smooth,…] [--warping] [--json OUT]

Sections:
  real       EVAL.md temporal metrics (streamfix.metrics.TemporalMeter) on
             ../shared/data/video_night_city/dark.mp4 (the pipeline's YUV path) and on every
             lowlight_phone_frames scene (RGB path), each engine with temporal off / smooth /
             adaptive / adaptive with the temporal denoiser (streamfix.denoise; the default of
             `streamfix enhance`).
  synthetic  a static dark scene where a light is switched on (frame 60), a pan from shadow
             into sun (brightness ramp over frames 60-80) and an engine that changes its mind
             with no change in the input (frame 60); every engine wrapped in a ±10 % brightness
             jitter (alternating, and random). Reports the output oscillation (MABD over the
             steady frames) and its reduction against temporal off, and the delay after which
             the output stays within 10 % of the initial error (a grid frozen at the change)
             of the jitter-free engine's output.
  cuts       a clip concatenated from dark.mp4, normal_daytime_same_scene.mp4 and synthetic
             backlit clips (one with a light switched on inside), written with PyAV and run
             through the transcode pipeline: the frames where the grid reset vs the real cuts.
  excnet     iterations to convergence on the first frame and on later frames, warm-started
             vs restarted from scratch on every frame.
  adapt      SCI fine-tuned on the first seconds of dark.mp4: read ahead (what --adapt does) and
             while playing (the streaming variant): training loss on all frames, seconds spent,
             metrics, against plain SCI.

Runs with one torch / numba thread (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from streamfix.denoise import DEFAULT_STRENGTH as DEFAULT_DENOISE  # noqa: E402
from streamfix.denoise import TemporalDenoiser  # noqa: E402
from streamfix.engines import create_engine  # noqa: E402
from streamfix.engines.registry import Engine, EngineCard  # noqa: E402
from streamfix.enhancer import Enhancer  # noqa: E402
from streamfix.faces.args import engine_every  # noqa: E402
from streamfix.grid.bilateral import BilateralGrid, Thumbnail  # noqa: E402
from streamfix.grid.kernels import slice_rgb_cpu  # noqa: E402
from streamfix.metrics import TemporalMeter, luma709, read_rgb  # noqa: E402
from streamfix.synth import backlit_frame, write_segments  # noqa: E402
from streamfix.temporal import DEFAULT_STRENGTH, TemporalFilter  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(os.environ.get("STREAMFIX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DARK = SHARED / "video_night_city" / "dark.mp4"
DAY = SHARED / "video_night_city" / "normal_daytime_same_scene.mp4"
PHONE = SHARED / "lowlight_phone_frames"
SCI_OFFICIAL = SHARED / "sci_weights" / "difficult.pt"
#: temporal off / smooth / adaptive, and adaptive with the temporal denoiser (what `streamfix enhance` does)
MODES = ("off", "smooth", "adaptive", "adaptive+denoise")
DENOISED = "+denoise"
FPS = 30.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# engines


def sci_weights(arg: str | None) -> str | None:
    """The SCI weights to use: --sci-weights, else engines/sci.safetensors, else the official difficult.pt."""
    if arg:
        return arg
    from streamfix.engines.registry import load_card

    card = load_card("sci")
    if card.weights is not None and card.weights.is_file():
        return None
    return str(SCI_OFFICIAL) if SCI_OFFICIAL.is_file() else None


def available_engines(names: list[str]) -> list[str]:
    from streamfix.engines.registry import cards_dir

    out = []
    for n in names:
        if n == "backlitnet" and not (cards_dir() / "backlitnet.safetensors").is_file():
            log("backlitnet: skipped, engines/backlitnet.safetensors is absent")
            continue
        out.append(n)
    return out


def make_engine(name: str, args: argparse.Namespace) -> Engine:
    if name == "sci":
        return create_engine("sci", sci_weights(args.sci_weights))
    if name == "autoexposure":
        return AutoExposureEngine()
    if name == "backlitnet" and args.backlitnet_weights:
        return create_engine("backlitnet", args.backlitnet_weights)
    return create_engine(name)


def make_filter(mode: str, strength: float | None = None) -> TemporalFilter | None:
    mode = mode.removesuffix(DENOISED)
    if mode == "off":
        return None
    return TemporalFilter(DEFAULT_STRENGTH if strength is None else strength, mode=mode, fps=FPS)


def make_enhancer(engine: Engine, mode: str, every: int = 1) -> Enhancer:
    """The engine behind the ``mode`` filter, run on every ``every``-th frame (``--engine-every``);
    ``…+denoise`` modes add the temporal denoiser at its default strength."""
    denoiser = TemporalDenoiser(DEFAULT_DENOISE) if mode.endswith(DENOISED) else None
    return Enhancer(engine, temporal=make_filter(mode), engine_every=every, denoiser=denoiser)


class AutoExposureEngine(Engine):
    """A per-frame auto exposure: one gain per frame bringing the thumbnail's mean luma to ``target``."""

    name = "autoexposure"

    def __init__(self, target: float = 0.4, max_gain: float = 8.0) -> None:
        super().__init__(EngineCard("autoexposure", "test engine", 128, (8, 1, 1)))
        self.target = target
        self.max_gain = max_gain
        self.bias = 1.0  # the engine's own opinion (changed by the "engine step" scenario)

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        gain = min(self.max_gain, max(1.0, self.target / max(float(thumb.luma.mean()), 1e-3))) * self.bias
        return BilateralGrid(BilateralGrid.identity(*self.card.grid).coeffs * gain)


class JitterEngine(Engine):
    """Wraps an engine and scales its grid by ``1 ± amount`` per frame (alternating or random)."""

    name = "jitter"

    def __init__(self, inner: Engine, amount: float = 0.1, pattern: str = "alternating", seed: int = 0) -> None:
        super().__init__(inner.card)
        self.inner = inner
        self.amount = amount
        self.pattern = pattern
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def scene_cut(self) -> None:
        notify = getattr(self.inner, "scene_cut", None)
        if notify is not None:
            notify()

    def carry_scene(self, on: bool) -> None:
        self.inner.carry_scene(on)

    def predict(self, thumb: Thumbnail) -> BilateralGrid:
        g = self.inner.predict(thumb)
        self.n += 1
        if self.amount == 0.0:
            return g
        j = (1.0 if self.n % 2 else -1.0) if self.pattern == "alternating" else float(self.rng.uniform(-1, 1))
        return BilateralGrid(g.coeffs * (1.0 + self.amount * j), g.guide)


# --------------------------------------------------------------------------------------------
# media


def decode(path: Path, max_frames: int | None = None, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    with av.open(str(path)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if max_frames is not None and k >= max_frames:
                break
            rgb = f.to_ndarray(format="rgb24")
            if size is not None:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            yield rgb


def phone_scenes() -> list[tuple[str, list[Path]]]:
    if not PHONE.is_dir():
        return []
    return [(d.name, sorted(d.glob("*.png"))) for d in sorted(PHONE.iterdir(), key=lambda p: int(p.name)) if d.is_dir()]


# --------------------------------------------------------------------------------------------
# real data


def run_video_pipeline(engine: Engine, mode: str, path: Path, max_frames: int | None, every: int = 1,
                       warping: bool = False) -> dict:
    """dark.mp4 through the pipeline's YUV path (enhance_frame), metered on RGB."""
    from streamfix.pipeline import enhance_frame

    enh = make_enhancer(engine, mode, every)
    enh.bind_thread()
    meter = TemporalMeter(warping=warping)
    means: list[float] = []
    t0 = time.perf_counter()
    with av.open(str(path)) as c:
        for k, frame in enumerate(c.decode(video=0)):
            if max_frames is not None and k >= max_frames:
                break
            out = enhance_frame(enh, frame)
            rgb = frame.to_ndarray(format="rgb24")
            means.append(float(luma709(rgb).mean()))
            meter.update(rgb, out.to_ndarray(format="rgb24"))
    r = meter.report()
    r["input_mabd_codes"] = float(np.abs(np.diff(means)).mean() * 255) if len(means) > 1 else float("nan")
    r["scene_cuts"] = len(enh.scene_cuts)
    r["engine_ms"] = round(enh.clock.mean("engine"), 2)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    return r


def run_frames(engine: Engine, mode: str, frames: list[np.ndarray], every: int = 1) -> dict:
    enh = make_enhancer(engine, mode, every)
    enh.bind_thread()
    meter = TemporalMeter()
    for f in frames:
        meter.update(f, enh.enhance_rgb(f))
    r = meter.report()
    r["scene_cuts"] = len(enh.scene_cuts)
    m = [float(luma709(f).mean()) for f in frames]
    r["input_mabd_codes"] = float(np.abs(np.diff(m)).mean() * 255) if len(m) > 1 else float("nan")
    return r


def section_real(args: argparse.Namespace, engines: list[str]) -> dict:
    res: dict = {}
    keys = ("flicker_ratio", "gain", "flicker_over_gain", "mabd_ratio", "mabd_over_gain")
    print("\n## Real data: EVAL.md temporal metrics (temporal off / smooth / adaptive, strength "
          f"{DEFAULT_STRENGTH}; adaptive+denoise adds the temporal denoiser at strength {DEFAULT_DENOISE})\n")
    print("input MABD = the input's mean |Δ mean Y| per frame, in 8-bit code values (the MABD ratio's denominator)\n")
    print("| clip | input MABD | engine | temporal | flicker | gain | flicker/gain | MABD | MABD/gain | cuts"
          + (" | warping error |" if args.warping else " |"))
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.warping else ""))
    clips: list[tuple[str, Callable[[Engine, str], dict]]] = []
    if DARK.is_file():
        clips.append(("dark.mp4", lambda e, m: run_video_pipeline(e, m, DARK, args.max_frames, args.engine_every,
                                                                 args.warping)))
    else:
        log(f"real: {DARK} absent, skipped")
    for scene, files in phone_scenes():
        frames = [read_rgb(p) for p in files]
        clips.append((f"phone/{scene}", lambda e, m, fr=frames: run_frames(e, m, fr, args.engine_every)))
    for clip, fn in clips:
        for name in engines:
            for mode in args.modes:
                r = fn(make_engine(name, args), mode)
                res[f"{clip}|{name}|{mode}"] = r
                print(f"| {clip} | {r['input_mabd_codes']:.3f} | {name} | {mode} | "
                      + " | ".join(f"{r[k]:.3f}" for k in keys)
                      + f" | {r['scene_cuts']} |"
                      + (f" {r['warping_error'] * 1e4:.2f}e-4 |" if "warping_error" in r
                         else " — |" if args.warping else ""), flush=True)
    worst = {}
    for key, r in res.items():
        if not key.endswith("|off"):
            mode = key.rsplit("|", 1)[1]
            w = worst.setdefault(mode, [0.0, 0.0])
            w[0] = max(w[0], r["flicker_over_gain"])
            w[1] = max(w[1], r["mabd_over_gain"])
    for mode, (fg, mg) in worst.items():
        print(f"\nworst with temporal {mode}: flicker/gain {fg:.3f}, MABD/gain {mg:.3f}")
    return res


# --------------------------------------------------------------------------------------------
# synthetic jitter and lighting changes

SYN_W, SYN_H, SYN_N, T0 = 480, 270, 120, 60


def _lamp() -> np.ndarray:
    yy, xx = np.mgrid[0:SYN_H, 0:SYN_W]
    return np.exp(-((xx - 0.3 * SYN_W) ** 2 + (yy - 0.45 * SYN_H) ** 2) / (2 * (0.15 * SYN_W) ** 2))[..., None]


def synthetic_clip(kind: str) -> list[np.ndarray]:
    """``light``: a dark static scene, a lamp switched on at T0 (×2.5 plus its glow); ``ramp``: a
    pan from shadow into sun (×0.3 → ×1 over frames T0 … T0+20); ``engine``: steady input."""
    base = backlit_frame(SYN_W, SYN_H, 0.0, seed=7).astype(np.float32)
    lamp = _lamp().astype(np.float32)
    frames = []
    for t in range(SYN_N):
        f = backlit_frame(SYN_W, SYN_H, t / FPS, seed=7).astype(np.float32) if kind != "engine" else base
        if kind == "light":
            f = f * 0.3 if t < T0 else f * 0.75 + 90.0 * lamp
        elif kind == "ramp":
            f = f * (0.3 + 0.7 * min(1.0, max(0.0, (t - T0) / 20.0)))
        else:
            f = f * 0.3
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return frames


def _means(engine: Engine, mode: str, frames: list[np.ndarray], change_at: int,
           on_change: Callable[[], None] | None = None, every: int = 1) -> np.ndarray:
    """Per-frame output mean luma (``on_change`` runs just before frame ``change_at``)."""
    enh = make_enhancer(engine, mode, every)
    out = []
    for t, f in enumerate(frames):
        if t == change_at and on_change is not None:
            on_change()
        out.append(float(luma709(enh.enhance_rgb(f)).mean()))
    return np.array(out)


def _frozen_reference(engine_factory: Callable[[], Engine], frames: list[np.ndarray], start: int, end: int,
                      on_change: Callable[[Engine], None] | None) -> tuple[np.ndarray, float]:
    """Jitter-free engine, temporal off: its output means, and the output mean at frame ``end`` of the
    grid it had before frame ``start`` (what a filter that never follows would show)."""
    from streamfix.grid.thumbnail import thumbnail_from_rgb

    eng = engine_factory()
    out = []
    before: BilateralGrid | None = None
    frozen = float("nan")
    for t, f in enumerate(frames):
        if t == start and on_change is not None:
            on_change(eng)
        g = eng.predict(thumbnail_from_rgb(f, eng.card.thumbnail))
        if t == start - 1:
            before = g
        if t == end and before is not None:
            frozen = float(luma709(slice_rgb_cpu(f, before)).mean())
        out.append(float(luma709(slice_rgb_cpu(f, g)).mean()))
    return np.array(out), frozen


def settle_frames(m: np.ndarray, ref: np.ndarray, start: int, tol: float, window: int = 1, rel: float = 0.0) -> int:
    """Frames after ``start`` until |mean over a centred ``window`` of (m − ref)| stays within
    ``max(tol, rel · ref)``."""
    err = m - ref
    if window > 1:  # signed mean: residual jitter averages out, a lag does not
        err = np.convolve(err, np.ones(window) / window, mode="same")
    bad = np.nonzero(np.abs(err[start:]) > np.maximum(tol, rel * ref[start:]))[0]
    return 0 if len(bad) == 0 else int(bad[-1]) + 1


def oscillation(m: np.ndarray, change: int, settle_end: int) -> float:
    """MABD of the output over the steady frames (before the change, and after ``settle_end``)."""
    d = np.abs(np.diff(m))
    keep = [i for i in range(len(d)) if (5 <= i < change - 1) or i >= settle_end]
    return float(d[keep].mean())


#: the output counts as following once within this share of the initial error (a frozen grid) …
FOLLOW_SHARE = 0.1
#: … or within this much mean luma (about 2.5 code values) when the initial error is smaller
FOLLOW_FLOOR = 0.01
#: with jitter, the error is averaged over this many frames (centred) before the test
JITTER_WINDOW = 5


def section_synthetic(args: argparse.Namespace, engines: list[str]) -> dict:
    res: dict = {}
    print("\n## Synthetic: ±10 % engine jitter and real changes (30 fps)\n")
    print("light: lamp switched on at frame 60; ramp: pan from shadow into sun, frames 60-80; engine: the engine's "
          "output steps ×1.5 at frame 60 with no change in the input.\n"
          "oscillation = MABD of the output mean luma over the steady frames; reduction = the jittered engine with "
          "temporal off ÷ with the filter. e0 = error of the grid frozen before the change, at the change's end, "
          "against the jitter-free engine (temporal off); delay = frames after the change's end until the output "
          f"stays within max({FOLLOW_SHARE:g}·e0, {FOLLOW_FLOOR:g}) of it; for the jittered engine the error is "
          f"averaged over {JITTER_WINDOW} centred frames and the band is at least 3 std of that error "
          "relative to the output before the change (the residual jitter, which scales with brightness).\n")
    print("| scenario | engine | jitter | temporal | oscillation | reduction | e0 | delay jittered (s) | "
          "delay jitter-free (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in ("light", "ramp", "engine"):
        frames = synthetic_clip(kind)
        start, end = T0, (T0 + 20 if kind == "ramp" else T0)
        for name in [*engines, "autoexposure"]:
            if kind == "engine" and name != "autoexposure":
                continue  # only the test engine can be told to change its mind

            def factory(name: str = name) -> Engine:
                return make_engine(name, args)

            def bump(e: Engine) -> None:
                e.bias = 1.5  # type: ignore[attr-defined]

            on_change = bump if kind == "engine" else None
            ref, frozen = _frozen_reference(factory, frames, start, end, on_change)
            e0 = abs(frozen - ref[end])
            tol = max(FOLLOW_SHARE * e0, FOLLOW_FLOOR)
            for pattern in ("alternating", "random"):
                base_osc = None
                for mode in MODES:
                    runs = {}
                    for amount in (0.1, 0.0):
                        inner = factory()
                        eng = JitterEngine(inner, amount, pattern, seed=1)
                        hook = (lambda inner=inner: bump(inner)) if on_change is not None else None
                        runs[amount] = _means(eng, mode, frames, start, hook, args.engine_every)
                    m = runs[0.1]
                    # with jitter, "followed" means back inside the (relative) error band the output had
                    # before the change: the residual jitter scales with the brightness
                    sm = np.convolve(m - ref, np.ones(JITTER_WINDOW) / JITTER_WINDOW, mode="same")
                    band = 3.0 * float(np.std(sm[10:start - JITTER_WINDOW] / ref[10:start - JITTER_WINDOW]))
                    delay = settle_frames(m, ref, end, tol, window=JITTER_WINDOW, rel=band)
                    delay_clean = settle_frames(runs[0.0], ref, end, tol)
                    osc = oscillation(m, start, end + 15)
                    if mode == "off":
                        base_osc = osc
                    red = base_osc / osc if osc > 0 else float("inf")
                    res[f"{kind}|{name}|{pattern}|{mode}"] = {"oscillation": osc, "reduction": red, "e0": e0,
                                                              "delay": delay, "delay_clean": delay_clean}
                    print(f"| {kind} | {name} | {pattern} | {mode} | {osc:.4f} | {red:.1f}× | {e0:.3f} | "
                          f"{delay} ({delay / FPS:.2f}) | {delay_clean} ({delay_clean / FPS:.2f}) |", flush=True)
    return res


# --------------------------------------------------------------------------------------------
# scene cuts


def cut_segments(size: tuple[int, int] = (640, 360), seg: int = 30) -> tuple[list[list[np.ndarray]], list[str]]:
    w, h = size
    lamp = cv2.resize(_lamp().astype(np.float32), (w, h))[..., None]
    light = [np.clip(backlit_frame(w, h, t / FPS, seed=3).astype(np.float32) * (0.25 if t < seg // 2 else 0.75)
                     + (0 if t < seg // 2 else 120 * lamp), 0, 255).astype(np.uint8) for t in range(seg)]
    segs: list[list[np.ndarray]] = []
    names: list[str] = []
    if DARK.is_file() and DAY.is_file():
        dark = list(decode(DARK, 180, size))
        day = list(decode(DAY, 60, size))
        segs += [dark[0:seg], [backlit_frame(w, h, t / FPS, seed=0) for t in range(seg)],
                 [backlit_frame(w, h, t / FPS, seed=1) for t in range(seg)], day[0:seg], dark[100:100 + seg], light,
                 dark[140:140 + seg]]
        names += ["dark.mp4 0-29", "synthetic backlit seed 0", "synthetic backlit seed 1 (same layout)",
                  "daytime 0-29", "dark.mp4 100-129 (jump cut)", "light switched on at its frame 15",
                  "dark.mp4 140-169"]
    else:
        log("cuts: shared videos absent, synthetic segments only")
        segs += [[backlit_frame(w, h, t / FPS, seed=0) for t in range(seg)],
                 [backlit_frame(w, h, t / FPS, seed=1) for t in range(seg)], light]
        names += ["synthetic backlit seed 0", "synthetic backlit seed 1", "light switched on at its frame 15"]
    return segs, names


def section_cuts(args: argparse.Namespace) -> dict:
    from streamfix.events import Bus
    from streamfix.io.writer import EncodeOptions
    from streamfix.pipeline import transcode

    segs, names = cut_segments()
    tmp = Path(tempfile.mkdtemp(prefix="sf-cuts-"))
    src = tmp / "concat.mp4"
    truth = write_segments(src, segs)
    enh = Enhancer(create_engine("identity"), temporal=make_filter("adaptive"))
    res = transcode(src, tmp / "out.mp4", enh, EncodeOptions(codec="libx264", preset="ultrafast"), Bus())
    found = list(res.scene_cuts)
    print("\n## Scene cuts on a concatenated clip (transcode pipeline, identity engine)\n")
    print("segments: " + "; ".join(f"{n} ({len(s)} frames)" for n, s in zip(names, segs, strict=True)))
    print(f"real cuts at frames {truth}; grid reset at {found}; "
          f"{'all found, no false cut' if found == truth else 'MISMATCH'}")
    return {"truth": truth, "found": found, "frames": res.frames}


# --------------------------------------------------------------------------------------------
# excnet iterations


def section_excnet(args: argparse.Namespace) -> dict:
    from streamfix.engines.excnet import ExCNetEngine
    from streamfix.grid.thumbnail import thumbnail_from_rgb

    res: dict = {}
    print("\n## ExCNet: optimiser steps to convergence (projected gradient of the block loss < 1e-3 on a "
          "first frame; later frames step only above the hold band, 3e-3)\n")
    print("| clip | first frame | later frames: mean / median / p95 / max | converged within budget | "
          "cold start every frame: mean / max | later frames' amounts: mean |Δφs| per frame |")
    print("|---|---|---|---|---|---|")
    clips: list[tuple[str, list[np.ndarray]]] = []
    if DARK.is_file():
        clips.append(("dark.mp4", list(decode(DARK, args.max_frames or 180, (640, 360)))))
    clips.append(("synthetic backlit", [backlit_frame(640, 360, t / FPS, seed=0) for t in range(90)]))
    clips.append(("synthetic light switch", synthetic_clip("light")))
    for clip, frames in clips:
        thumbs = [thumbnail_from_rgb(f, 256) for f in frames]
        eng = create_engine("excnet")
        assert isinstance(eng, ExCNetEngine)
        eng.set_iterations(args.excnet_iters)
        for th in thumbs:
            eng.predict(th)
        hist = eng.history
        later = [h.iterations for h in hist[1:]]
        conv = sum(h.converged for h in hist[1:]) / max(1, len(later))
        dphi = float(np.mean(np.abs(np.diff([h.phi_s for h in hist[1:]])))) if len(hist) > 2 else 0.0
        cold = []
        for th in thumbs[:: max(1, len(thumbs) // 15)]:
            fresh = create_engine("excnet")
            assert isinstance(fresh, ExCNetEngine)
            cold.append(fresh.fit(th).iterations)
        p95 = float(np.percentile(later, 95))
        res[clip] = {"first": hist[0].iterations, "later_mean": float(np.mean(later)),
                     "later_median": float(np.median(later)), "later_p95": p95, "later_max": max(later),
                     "converged_share": conv, "cold_mean": float(np.mean(cold)), "cold_max": max(cold),
                     "dphi_s": dphi}
        print(f"| {clip} | {hist[0].iterations} | {np.mean(later):.2f} / {np.median(later):.0f} / {p95:.0f} / "
              f"{max(later)} | {100 * conv:.0f} % | {np.mean(cold):.1f} / {max(cold)} | {dphi:.4f} |", flush=True)
    return res


# --------------------------------------------------------------------------------------------
# per-video adaptation


def section_adapt(args: argparse.Namespace) -> dict:
    from streamfix.adapt import OnlineAdapter
    from streamfix.engines.sci_net import sci_loss
    from streamfix.grid.thumbnail import thumbnail_from_rgb

    if not DARK.is_file():
        log("adapt: dark.mp4 absent, skipped")
        return {}
    frames = list(decode(DARK, args.max_frames or 180, (640, 360)))
    thumbs = [thumbnail_from_rgb(f, 256) for f in frames]
    res: dict = {}
    print(f"\n## SCI adapted online on the first {args.adapt_seconds:g} s of dark.mp4\n")
    print("| variant | frames adapted | steps | train s | SCI loss (all frames) | gain | flicker/gain | MABD/gain |")
    print("|---|---|---|---|---|---|---|---|")

    def eval_loss(net: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(np.mean([float(sci_loss(t.rgb[None], net(t.rgb[None]))) for t in thumbs[::6]]))

    n_ahead = int(args.adapt_seconds * FPS)
    for variant in ("sci", "sci --adapt (read ahead, as enhance)", "sci adapting while it plays (streams)"):
        eng: object = make_engine("sci", args)
        if variant != "sci":
            eng = OnlineAdapter(eng, args.adapt_seconds, FPS)
            if "read ahead" in variant:
                eng.warm_up([t.rgb for t in thumbs[:n_ahead]])
        enh = Enhancer(eng, temporal=make_filter("adaptive"))  # type: ignore[arg-type]
        meter = TemporalMeter()
        for f in frames:
            meter.update(f, enh.enhance_rgb(f))
        r = meter.report()
        rep = eng.report() if isinstance(eng, OnlineAdapter) else {"frames_adapted": 0, "steps": 0, "seconds": 0.0}
        net = eng.engine.net if isinstance(eng, OnlineAdapter) else eng.net  # type: ignore[attr-defined]
        loss = eval_loss(net)
        res[variant] = {**r, **rep, "sci_loss": loss}
        print(f"| {variant} | {rep['frames_adapted']} | {rep['steps']} | {rep['seconds']:.1f} | {loss:.4f} | "
              f"{r['gain']:.3f} | {r['flicker_over_gain']:.3f} | {r['mabd_over_gain']:.3f} |", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="real,synthetic,cuts,excnet,adapt")
    ap.add_argument("--engines", default="identity,sci,excnet,backlitnet")
    ap.add_argument("--sci-weights", help="SCI weights (default engines/sci.safetensors, else official difficult.pt)")
    ap.add_argument("--backlitnet-weights", help="BacklitNet weights (default engines/backlitnet.safetensors)")
    ap.add_argument("--max-frames", type=int, help="frames of dark.mp4 to use (default all 180)")
    ap.add_argument("--excnet-iters", type=int, default=4)
    ap.add_argument("--engine-every", type=engine_every, default=1,
                    help="run the engine on every N-th frame in the real and synthetic sections (default 1)")
    ap.add_argument("--adapt-seconds", type=float, default=2.0)
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"real section: the temporal modes to run (default {','.join(MODES)})")
    ap.add_argument("--warping", action="store_true",
                    help="real section: also the warping error (EVAL.md; optical flow on the input) on dark.mp4")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    args = ap.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        ap.error(f"unknown mode(s) {', '.join(sorted(unknown))}; known: {', '.join(MODES)}")
    import numba

    numba.set_num_threads(1)
    engines = available_engines(args.engines.split(","))
    sections = args.sections.split(",")
    out: dict = {"engines": engines, "sci_weights": sci_weights(args.sci_weights) or "engines/sci.safetensors",
                 "engine_every": args.engine_every}
    t0 = time.perf_counter()
    jobs: list[tuple[str, Callable[[], dict]]] = [
        ("real", lambda: section_real(args, engines)),
        ("synthetic", lambda: section_synthetic(args, engines)),
        ("cuts", lambda: section_cuts(args)),
        ("excnet", lambda: section_excnet(args)),
        ("adapt", lambda: section_adapt(args)),
    ]
    for name, fn in jobs:
        if name in sections:
            out[name] = fn()
    log(f"done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()

