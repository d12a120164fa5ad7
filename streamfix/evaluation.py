"""``streamfix eval``: the metrics of ``shared/EVAL.md`` for an engine next to baselines.

Three kinds of data:

* **pairs** (``DIR/input/NAME`` + ``DIR/target/NAME``): PSNR, SSIM and exposure statistics per
  image; a set is reported as the mean of the per-image values. ``split`` picks a half
  (:func:`streamfix.train.backlitnet.split_names`: sorted names, even positions ``train``, odd
  ``val``), so a trained engine is scored on pairs it never saw.
* **images** (a folder, no ground truth): NIQE (when the parameter file is there), mean Y,
  crushed % and clipped %.
* **video** (a file): flicker ratio, gain, flicker/gain, MABD ratio, MABD/gain. Engines run as
  ``streamfix enhance`` does (YUV planes, temporal filter); baselines per frame on RGB.

Methods: the engine (sliced at full resolution by :class:`~streamfix.enhancer.Enhancer`, the path
every face uses) and the baselines of EVAL.md: ``identity`` (the input unchanged), ``gamma``
(per-channel power ``x^γ`` with ``γ = log 0.45 / log mean Y``), ``clahe`` (OpenCV CLAHE on Lab L,
clip 2.0, 8×8 tiles) and ``sci-official`` (the official SCI checkpoints ``difficult.pt`` and
``medium.pt`` run on every pixel, as the seed does). These reproduce EVAL.md's table to
±0.01 dB / ±0.001 SSIM on the shared sets.

Outputs: a markdown table (returned and printed by the face), ``eval.json`` with every per-image
value, and a contact sheet PNG per set (input | engine | baselines | target).

A PSNR of identical images (infinite) enters set means as 100 dB; in ``eval.json`` NaN and
infinite values are written as ``null``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfix import metrics as M
from streamfix.errors import InputError, UsageError
from streamfix.presets import DEFAULTS

__all__ = [
    "BASELINES",
    "Method",
    "SetResult",
    "clahe_baseline",
    "contact_sheet",
    "default_shared_data",
    "engine_method",
    "evaluate_images",
    "evaluate_pairs",
    "evaluate_video",
    "gamma_baseline",
    "make_baselines",
    "markdown",
    "run_eval",
]

#: baseline names accepted by ``--baselines`` (``sci-official`` = ``sci-difficult`` + ``sci-medium``)
BASELINES = ("identity", "gamma", "clahe", "sci-official", "sci-difficult", "sci-medium")
DEFAULT_BASELINES = ("identity", "gamma", "clahe", "sci-official")
#: infinite PSNR (identical images) counts as this in set means
PSNR_CAP = 100.0
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

Frame = np.ndarray
FrameFn = Callable[[Frame], Frame]


def default_shared_data() -> Path:
    """``$STREAMFIX_SHARED_DATA``, else ``../shared/data`` beside the checkout (may not exist)."""
    env = os.environ.get("STREAMFIX_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------------------------
# baselines


def gamma_baseline(rgb: np.ndarray, target_mean: float = 0.45) -> np.ndarray:
    """Auto gamma: every channel to the power ``γ = log(target) / log(mean Y)`` (uint8 in and out)."""
    m = float(np.mean(M.luma709(rgb), dtype=np.float64))
    if m <= 0.0 or m >= 1.0:
        return rgb.copy()
    g = math.log(target_mean) / math.log(m)
    lut = M.to_uint8((np.arange(256, dtype=np.float64) / 255.0) ** g)  # the same values, one per code
    return lut[rgb]


def clahe_baseline(rgb: np.ndarray, clip: float = 2.0, tiles: int = 8) -> np.ndarray:
    """CLAHE on the L channel of OpenCV's 8-bit Lab (clip limit 2.0, 8×8 tiles)."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(tiles, tiles)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


class SCIOfficial:
    """An official SCI checkpoint applied at full resolution (uint8 RGB in and out)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from streamfix.engines.sci_net import load_enhance_weights

        self.net = load_enhance_weights(path)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        from streamfix.engines.sci_net import enhance

        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float()[None] / 255.0
        with torch.inference_mode():
            _, out = enhance(self.net, x)
        return M.to_uint8(out[0].permute(1, 2, 0).numpy())


@dataclass
class Method:
    """One column of the evaluation.

    Attributes:
        name: label in tables and sheets.
        image: ``uint8 (H, W, 3) RGB → uint8 RGB`` for still images.
        video: makes a fresh per-video function of a decoded ``av.VideoFrame`` returning
            ``(input RGB, output RGB)`` (state such as the temporal filter starts anew).
        timing: returns ``{stage: mean ms}`` measured so far (engines), or None.
    """

    name: str
    image: FrameFn
    video: Callable[[], Callable[[object], tuple[Frame, Frame]]]
    timing: Callable[[], dict[str, float]] | None = None
    seconds: float = 0.0


def _per_frame(fn: FrameFn) -> Callable[[], Callable[[object], tuple[Frame, Frame]]]:
    def make() -> Callable[[object], tuple[Frame, Frame]]:
        def step(frame: object) -> tuple[Frame, Frame]:
            rgb = frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
            return rgb, fn(rgb)

        return step

    return make


def make_baselines(names: Sequence[str], sci_dir: Path | None, notes: list[str]) -> list[Method]:
    """Baseline methods by name; SCI checkpoints that are absent are skipped with a note."""
    wanted: list[str] = []
    for n in names:
        if n not in BASELINES:
            raise UsageError(f"unknown baseline {n!r}; known: {', '.join(BASELINES)}")
        for m in ("sci-difficult", "sci-medium") if n == "sci-official" else (n,):
            if m not in wanted:
                wanted.append(m)
    out: list[Method] = []
    for n in wanted:
        if n == "identity":
            out.append(Method("identity", lambda x: x, _per_frame(lambda x: x)))
        elif n == "gamma":
            out.append(Method("gamma", gamma_baseline, _per_frame(gamma_baseline)))
        elif n == "clahe":
            out.append(Method("clahe", clahe_baseline, _per_frame(clahe_baseline)))
        else:
            level = n.split("-", 1)[1]
            path = (sci_dir / f"{level}.pt") if sci_dir is not None else None
            if path is None or not path.is_file():
                notes.append(f"{n}: skipped, official checkpoint {path or f'{level}.pt'} not found")
                continue
            sci = SCIOfficial(path)
            out.append(Method(n, sci, _per_frame(sci)))
    return out


def engine_method(
    name: str, weights: str | os.PathLike[str] | None = None, temporal: bool = True,
    temporal_strength: float = DEFAULTS["temporal"]["strength"], denoise: float = DEFAULTS["denoise"]["strength"],
) -> Method:
    """The engine as a method: images via :meth:`Enhancer.enhance_rgb`, video via the pipeline's
    :func:`~streamfix.pipeline.enhance_frame` (YUV planes) with a temporal filter and the temporal
    denoiser of strength ``denoise`` (0: none)."""
    from streamfix.denoise import TemporalDenoiser
    from streamfix.engines import create_engine
    from streamfix.enhancer import Enhancer
    from streamfix.temporal import TemporalFilter

    engine = create_engine(name, weights)
    still = Enhancer(engine)
    clocks = [still.clock]

    def make_video() -> Callable[[object], tuple[Frame, Frame]]:
        from streamfix.pipeline import enhance_frame

        enh = Enhancer(engine, temporal=TemporalFilter(temporal_strength) if temporal else None,
                       denoiser=TemporalDenoiser(denoise) if denoise > 0 else None)
        clocks.append(enh.clock)
        engine.scene_cut()  # a new video: nothing carries over from the previous one

        def step(frame: object) -> tuple[Frame, Frame]:
            out = enhance_frame(enh, frame)  # type: ignore[arg-type]
            return frame.to_ndarray(format="rgb24"), out.to_ndarray(format="rgb24")  # type: ignore[attr-defined]

        return step

    def timing() -> dict[str, float]:
        res = {}
        for stage in ("thumbnail", "engine", "slice", "denoise"):
            vals = [v for c in clocks for v in c.ms.get(stage, [])]
            if vals:
                res[stage] = float(np.mean(vals))
        return res

    def still_image(rgb: np.ndarray) -> np.ndarray:
        return still.enhance_rgb(rgb, new_scene=True)

    return Method(name, still_image, make_video, timing)


# --------------------------------------------------------------------------------------------
# sets


@dataclass
class SetResult:
    """The scores of one set: ``per_item[method] = [per-image dicts]``, ``summary[method] = means``."""

    name: str
    kind: str  # "pairs", "images" or "video"
    path: str
    items: list[str] = field(default_factory=list)
    per_item: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "path": self.path, "items": self.items, "summary": self.summary,
                "per_item": self.per_item, "sheet": self.sheet, "notes": self.notes}


def _mean(vals: Sequence[float]) -> float:
    v = [x for x in vals if not math.isnan(x)]
    return float(np.mean(v)) if v else math.nan


def _summarise(res: SetResult) -> None:
    for m, rows in res.per_item.items():
        keys = [k for k in rows[0] if k != "psnr"] if rows else []
        s = {k: _mean([r[k] for r in rows]) for k in keys}
        if rows and "psnr" in rows[0]:
            s["psnr"] = _mean([min(r["psnr"], PSNR_CAP) for r in rows])
        if rows and "niqe" in rows[0]:
            s["niqe_n"] = float(sum(not math.isnan(r["niqe"]) for r in rows))
        res.summary[m] = s


def _images_in(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _timed(m: Method, x: np.ndarray) -> np.ndarray:
    t = time.perf_counter()
    out = m.image(x)
    m.seconds += time.perf_counter() - t
    if out.shape != x.shape or out.dtype != np.uint8:
        raise RuntimeError(f"method {m.name} returned {out.shape} {out.dtype} for {x.shape}")
    return out


def evaluate_pairs(
    root: str | os.PathLike[str], methods: Sequence[Method], split: str = "all", sheet_rows: int = 6
) -> tuple[SetResult, list[list[np.ndarray]]]:
    """PSNR / SSIM / exposure of every method on a paired set (its ``split`` half).

    Returns:
        ``(result, sheet)`` with ``sheet`` the rows of (input, method outputs…, target) images for
        :func:`contact_sheet` (the first ``sheet_rows`` pairs).
    """
    from streamfix.train.backlitnet import list_pairs

    root = Path(root)
    pairs = list_pairs(root, split)
    label = root.name if split == "all" else f"{root.name}[{split}]"
    res = SetResult(label, "pairs", str(root), [n for n, _, _ in pairs], {m.name: [] for m in methods})
    sheet: list[list[np.ndarray]] = []
    for i, (_, pin, ptg) in enumerate(pairs):
        inp, tgt = M.read_rgb(pin), M.read_rgb(ptg)
        if inp.shape != tgt.shape:
            raise InputError(f"{pin}: input {inp.shape[:2]} and target {tgt.shape[:2]} differ in size")
        row = [inp]
        for m in methods:
            out = _timed(m, inp)
            res.per_item[m.name].append({"psnr": M.psnr(out, tgt), "ssim": M.ssim(out, tgt), **M.exposure_stats(out)})
            row.append(out)
        if i < sheet_rows:
            sheet.append([*row, tgt])
    _summarise(res)
    return res, sheet


def evaluate_images(
    root: str | os.PathLike[str], methods: Sequence[Method], niqe_params: Path | None = None, sheet_rows: int = 6
) -> tuple[SetResult, list[list[np.ndarray]]]:
    """NIQE (when ``niqe_params`` is given) and exposure statistics on a folder of images."""
    root = Path(root)
    files = _images_in(root)
    res = SetResult(root.name, "images", str(root), [p.name for p in files], {m.name: [] for m in methods})
    sheet: list[list[np.ndarray]] = []
    for i, p in enumerate(files):
        inp = M.read_rgb(p)
        row = [inp]
        for m in methods:
            out = _timed(m, inp)
            d = M.exposure_stats(out)
            if niqe_params is not None:
                try:
                    d["niqe"] = M.niqe(out, niqe_params)
                except ValueError:  # smaller than one NIQE block
                    d["niqe"] = math.nan
            res.per_item[m.name].append(d)
            row.append(out)
        if i < sheet_rows:
            sheet.append(row)
    _summarise(res)
    return res, sheet


def _decode(path: Path, max_frames: int | None) -> Iterator[object]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot open video ({e})") from None
    with container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for k, frame in enumerate(container.decode(stream)):
            if max_frames is not None and k >= max_frames:
                break
            yield frame


def _count_frames(path: Path, max_frames: int | None) -> int:
    """Video packets of the file (one per frame), without decoding; capped at ``max_frames``."""
    import av

    try:
        with av.open(str(path)) as c:
            n = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    except (av.FFmpegError, OSError, IndexError) as e:
        raise InputError(f"{path}: cannot read video ({e})") from None
    return min(n, max_frames) if max_frames is not None else n


def evaluate_video(
    path: str | os.PathLike[str], methods: Sequence[Method], max_frames: int | None = None, sheet_rows: int = 3
) -> tuple[SetResult, list[list[np.ndarray]]]:
    """Temporal metrics of every method on a video (decoded once per method, streamed)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such video")
    res = SetResult(path.name, "video", str(path))
    total = _count_frames(path, max_frames)
    keep = sorted({0, total // 2, max(0, total - 1)})[:sheet_rows]  # first, middle and last frames
    picks: dict[int, list[np.ndarray]] = {}
    n_frames = 0
    for m in methods:
        meter = M.TemporalMeter()
        step = m.video()
        t_total = 0.0
        count = 0
        for k, frame in enumerate(_decode(path, max_frames)):
            t = time.perf_counter()
            rgb_in, rgb_out = step(frame)
            t_total += time.perf_counter() - t
            meter.update(rgb_in, rgb_out)
            count += 1
            if k in keep:
                picks.setdefault(k, [rgb_in]).append(rgb_out)
        n_frames = count
        r = meter.report()
        r["ms_per_frame"] = 1000.0 * t_total / max(1, count)
        res.per_item[m.name] = [{k: float(v) for k, v in r.items()}]
        res.summary[m.name] = res.per_item[m.name][0]
    res.items = [f"{n_frames} frames"]
    return res, [picks[k] for k in sorted(picks)]


# --------------------------------------------------------------------------------------------
# output


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], path: str | os.PathLike[str], tile_height: int = 200
) -> Path:
    """Write a PNG grid: one row per image, one column per label (uint8 RGB tiles, any sizes).

    Each tile is scaled (INTER_AREA) to ``tile_height`` and the column's width; a header row
    carries the labels.
    """
    if not rows:
        raise ValueError("contact sheet without rows")
    aspect = max(r[0].shape[1] / r[0].shape[0] for r in rows)
    tw = int(round(tile_height * min(aspect, 2.0)))
    head = 26
    gap = 4
    ncol = len(labels)
    sheet = np.full((head + len(rows) * (tile_height + gap), ncol * (tw + gap), 3), 32, np.uint8)
    for c, lab in enumerate(labels):
        cv2.putText(sheet, lab[:28], (c * (tw + gap) + 4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 235, 235), 1,
                    cv2.LINE_AA)
    for r, row in enumerate(rows):
        for c, img in enumerate(row[:ncol]):
            h, w = img.shape[:2]
            s = min(tile_height / h, tw / w)
            small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            y0 = head + r * (tile_height + gap) + (tile_height - small.shape[0]) // 2
            x0 = c * (tw + gap) + (tw - small.shape[1]) // 2
            sheet[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    path = Path(path)
    if not cv2.imwrite(str(path), sheet[..., ::-1]):
        raise OSError(f"cannot write {path}")
    return path


def _fmt(v: float | None, digits: int) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def markdown(results: Sequence[SetResult]) -> str:
    """One markdown table per set."""
    out: list[str] = []
    for res in results:
        out.append(f"### {res.name} ({res.kind}, {len(res.items) if res.kind != 'video' else res.items[0]})")
        out.append("")
        if res.kind == "pairs":
            out += ["| method | PSNR | SSIM | mean Y | crushed % | clipped % |", "|---|---|---|---|---|---|"]
            for m, s in res.summary.items():
                out.append(f"| {m} | {_fmt(s.get('psnr'), 2)} | {_fmt(s.get('ssim'), 3)} | {_fmt(s.get('mean_y'), 3)} "
                           f"| {_fmt(s.get('crushed_pct'), 1)} | {_fmt(s.get('clipped_pct'), 1)} |")
        elif res.kind == "images":
            out += ["| method | NIQE | mean Y | crushed % | clipped % |", "|---|---|---|---|---|"]
            for m, s in res.summary.items():
                out.append(f"| {m} | {_fmt(s.get('niqe'), 2)} | {_fmt(s.get('mean_y'), 3)} "
                           f"| {_fmt(s.get('crushed_pct'), 1)} | {_fmt(s.get('clipped_pct'), 1)} |")
        else:
            out += ["| method | flicker | gain | flicker/gain | MABD | MABD/gain | ms/frame |",
                    "|---|---|---|---|---|---|---|"]
            for m, s in res.summary.items():
                out.append(f"| {m} | {_fmt(s.get('flicker_ratio'), 2)} | {_fmt(s.get('gain'), 2)} "
                           f"| {_fmt(s.get('flicker_over_gain'), 2)} | {_fmt(s.get('mabd_ratio'), 2)} "
                           f"| {_fmt(s.get('mabd_over_gain'), 2)} | {_fmt(s.get('ms_per_frame'), 0)} |")
        out += _per_item_table(res)
        for n in res.notes:
            out.append(f"\n_{n}_")
        if res.sheet:
            out.append(f"\ncontact sheet: {res.sheet}")
        out.append("")
    return "\n".join(out)


#: sets of at most this many items also get a per-item table
PER_ITEM_ROWS = 30


def _per_item_table(res: SetResult) -> list[str]:
    """Per item, each method's PSNR (pairs) or NIQE (images): a mean over a few images can hide
    one that a method gets badly wrong. Empty for videos and for sets of more than
    :data:`PER_ITEM_ROWS` items."""
    key = {"pairs": "psnr", "images": "niqe"}.get(res.kind)
    if key is None or not res.per_item or len(res.items) > PER_ITEM_ROWS:
        return []
    methods = list(res.per_item)
    lines = ["", f"| item | {' | '.join(f'{m} {key.upper()}' for m in methods)} |",
             "|---|" + "---|" * len(methods)]
    for i, item in enumerate(res.items):
        cells = [_fmt(res.per_item[m][i].get(key), 2) if i < len(res.per_item[m]) else "–" for m in methods]
        lines.append(f"| {item} | {' | '.join(cells)} |")
    return lines


def _finite(obj: object) -> object:
    """JSON-safe copy: NaN and ±inf become None."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def run_eval(
    methods: Sequence[Method],
    out_dir: str | os.PathLike[str],
    pairs: Sequence[str | os.PathLike[str]] = (),
    images: Sequence[str | os.PathLike[str]] = (),
    videos: Sequence[str | os.PathLike[str]] = (),
    split: str = "all",
    niqe_params: Path | None = None,
    sheet_rows: int = 6,
    max_frames: int | None = None,
    notes: Sequence[str] = (),
    meta: dict[str, object] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[str, dict[str, object]]:
    """Evaluate every set, write ``eval.json``, ``eval.md`` and the contact sheets into ``out_dir``.

    Returns:
        ``(markdown, report)``.
    """
    if not (pairs or images or videos):
        raise UsageError("nothing to evaluate: give --pairs, --images and/or --video")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = ["input", *[m.name for m in methods]]
    results: list[SetResult] = []
    jobs: list[tuple[str, object]] = ([("pairs", p) for p in pairs] + [("images", p) for p in images]
                                      + [("video", p) for p in videos])
    for kind, p in jobs:
        t = time.perf_counter()
        if kind == "pairs":
            res, rows = evaluate_pairs(p, methods, split, sheet_rows)  # type: ignore[arg-type]
            cols = [*labels, "target"]
        elif kind == "images":
            res, rows = evaluate_images(p, methods, niqe_params, sheet_rows)  # type: ignore[arg-type]
            cols = labels
        else:
            res, rows = evaluate_video(p, methods, max_frames)  # type: ignore[arg-type]
            cols = labels
        if rows:
            res.sheet = str(contact_sheet(rows, cols, out / f"sheet_{_slug(res.name)}.png"))
        results.append(res)
        if log is not None:
            log(f"{res.name}: {len(res.items)} item(s) in {time.perf_counter() - t:.0f} s")
    timing = {m.name: m.timing() for m in methods if m.timing is not None}
    md = markdown(results)
    lines = []
    for name, t in timing.items():
        if t:
            lines.append(f"- {name}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in t.items()) + " (mean per frame)")
    if lines:
        md += "\n**timing**\n" + "\n".join(lines) + "\n"
    if notes:
        md += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    report = {"meta": meta or {}, "notes": list(notes), "timing_ms": timing, "sets": [r.to_json() for r in results]}
    tmp = out / f".eval.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(_finite(report), indent=1, allow_nan=False))
    os.replace(tmp, out / "eval.json")
    (out / "eval.md").write_text(md)
    return md, report
