"""Train SCI (self-calibrated illumination) weights, or fine-tune them on one video.

Training follows the official ``train.py`` of vis-opt-group/SCI: the three-stage
self-calibrated model (:class:`~streamfix.engines.sci_net.SCITrainingNetwork`) with the
official initialisation, Adam (lr 3e-4, betas (0.9, 0.999), weight decay 3e-4) and gradient
norm clipping at 5, on unpaired low-light images (no ground truth). Images are downscaled to a
long side of at most 512 and fed as random crops (default 256: the thumbnail size the engine
sees) with random flips. Only the enhance network is kept.

Two additions to the official recipe, both on by default in :func:`train_sci` and recorded in
the weights' metadata: crops get a random RGB permutation, and the enhance network is kept
RGB-permutation-equivariant (:func:`~streamfix.engines.sci_net.symmetrize_rgb_`). Without the
latter, runs on DICM/SICE learned a colour cast (one channel's illumination drifted from the
other two). ``max_mean`` (``--max-mean``) drops bright images from a training folder: SCI's
enhancement strength follows the darkness of its training data.

Fine-tuning follows the official ``finetune.py``: the enhance network, initialised from given
weights, is trained alone with the single-stage loss on the frames of one scene (lr 5e-4,
otherwise as above). ``self_calibrated=True`` trains the full three-stage model instead.

Command line::

    python -m streamfix.train.sci --images DIR [--images DIR …] --out engines/sci.safetensors
    python -m streamfix.train.sci --finetune VIDEO --weights W --out tuned.safetensors
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from streamfix.engines.sci_net import (
    BETAS,
    FINETUNE_LR,
    GRAD_CLIP,
    TRAIN_LR,
    WEIGHT_DECAY,
    EnhanceNetwork,
    SCITrainingNetwork,
    load_enhance_weights,
    save_enhance_weights,
    sci_loss,
    symmetrize_rgb_,
)
from streamfix.errors import InputError, Interrupted, OutputError, StreamfixError, UsageError
from streamfix.train import provenance, weights_out

__all__ = [
    "IMAGE_EXTENSIONS",
    "add_arguments",
    "finetune_sci",
    "frames_from_video",
    "list_images",
    "load_training_images",
    "main",
    "run",
    "train_sci",
]

#: file extensions read as training images (case-insensitive)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


DEFAULT_TRAIN_ITERATIONS = 1000
DEFAULT_FINETUNE_ITERATIONS = 100
DEFAULT_OUT = "engines/sci.safetensors"

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads (default: at most 2) for the duration of the block."""
    old = torch.get_num_threads()
    want = n if n is not None else min(2, os.cpu_count() or 1)
    torch.set_num_threads(max(1, int(want)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --------------------------------------------------------------------------------------------
# data


def list_images(image_dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """All image files under the folders (recursive, sorted, extensions :data:`IMAGE_EXTENSIONS`).

    Raises:
        InputError: a folder is missing or holds no image.
    """
    files: list[Path] = []
    for d in image_dirs:
        root = Path(d)
        if not root.is_dir():
            raise InputError(f"{root}: no such image folder")
        found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise InputError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        files.extend(found)
    return files


def _read_rgb(path: Path) -> np.ndarray | None:
    """RGB float32 ``(H, W, 3)`` in ``[0, 1]`` via cv2, or ``None`` when unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if img is None or img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 3:
        return None
    scale = 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / scale
    return np.clip(rgb, 0.0, 1.0)


def _fit_long_side(img: np.ndarray, long_side: int, min_short: int = 0) -> np.ndarray:
    """Downscale (INTER_AREA) so the long side is ≤ ``long_side``; then, if the short side is
    below ``min_short``, upscale (INTER_LINEAR) so it reaches it."""
    h, w = img.shape[:2]
    s = min(1.0, long_side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    if min(h, w) < min_short:
        s = min_short / min(h, w)
        img = cv2.resize(img, (max(min_short, math.ceil(w * s)), max(min_short, math.ceil(h * s))), cv2.INTER_LINEAR)
    return img


def load_training_images(
    image_dirs: Sequence[str | os.PathLike[str]],
    long_side: int = 512,
    min_short: int = 0,
    log: Log | None = None,
    max_mean: float | None = None,
) -> tuple[list[np.ndarray], list[Path]]:
    """Read every image of the folders as RGB float32 ``(H, W, 3)`` in ``[0, 1]``.

    Images are downscaled (INTER_AREA) so the long side is at most ``long_side``, and upscaled
    if their short side is below ``min_short``. Unreadable files are skipped with a log line;
    so are images whose mean value (over pixels and channels, in ``[0, 1]``) exceeds
    ``max_mean``, when given: SCI learns an enhancement strength matched to the darkness of
    its training data, so bright images in a low-light folder weaken it.

    Returns:
        ``(images, paths)`` of the images read.

    Raises:
        InputError: a folder is missing, or no image could be read.
    """
    images: list[np.ndarray] = []
    used: list[Path] = []
    for p in list_images(image_dirs):
        rgb = _read_rgb(p)
        if rgb is None:
            if log is not None:
                log(f"skipping unreadable image {p}")
            continue
        if max_mean is not None and float(rgb.mean()) > max_mean:
            if log is not None:
                log(f"skipping {p}: mean {float(rgb.mean()):.3f} > {max_mean:g}")
            continue
        images.append(np.ascontiguousarray(_fit_long_side(rgb, long_side, min_short)))
        used.append(p)
    if not images:
        cond = f" with mean ≤ {max_mean:g}" if max_mean is not None else ""
        raise InputError(f"no readable image{cond} in {', '.join(str(d) for d in image_dirs)}")
    return images, used


class _CropSampler:
    """Random crops with random horizontal/vertical flips (and, with ``channel_shuffle``, a
    random permutation of the RGB channels), cycling through shuffled images."""

    def __init__(
        self, images: Sequence[np.ndarray], crop: int, rng: np.random.Generator, channel_shuffle: bool = False
    ) -> None:
        self.images = images
        self.crop = crop
        self.rng = rng
        self.channel_shuffle = channel_shuffle
        self._order: list[int] = []

    def _next_index(self) -> int:
        if not self._order:
            self._order = self.rng.permutation(len(self.images)).tolist()
        return self._order.pop()

    def batch(self, n: int) -> torch.Tensor:
        """``(n, 3, crop, crop)`` float32 in ``[0, 1]``."""
        out = np.empty((n, self.crop, self.crop, 3), dtype=np.float32)
        for k in range(n):
            img = self.images[self._next_index()]
            h, w = img.shape[:2]
            y = int(self.rng.integers(0, h - self.crop + 1))
            x = int(self.rng.integers(0, w - self.crop + 1))
            patch = img[y : y + self.crop, x : x + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch[::-1]
            if self.channel_shuffle:
                patch = patch[..., self.rng.permutation(3)]
            out[k] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------
# training


def _optimiser(params: Iterator[nn.Parameter], lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=BETAS, weight_decay=WEIGHT_DECAY)


def _init_from(model: SCITrainingNetwork, init: EnhanceNetwork | str | os.PathLike[str]) -> None:
    """Copy enhance weights (and, from an official ``.pt``, calibrate weights) into ``model``."""
    net = init if isinstance(init, EnhanceNetwork) else load_enhance_weights(init)
    model.enhance.load_state_dict(net.state_dict())
    if not isinstance(init, EnhanceNetwork) and Path(init).suffix.lower() in (".pt", ".pth"):
        state = torch.load(init, map_location="cpu", weights_only=True)
        cal = {k[len("calibrate.") :]: v for k, v in state.items() if k.startswith("calibrate.")}
        if cal:
            try:
                model.calibrate.load_state_dict(cal)
            except RuntimeError as exc:
                raise ValueError(f"{init}: calibrate weights do not match ({exc})") from exc


def _final_enhance(model: SCITrainingNetwork | EnhanceNetwork) -> EnhanceNetwork:
    net = model.enhance if isinstance(model, SCITrainingNetwork) else model
    net = copy.deepcopy(net)
    net.eval()
    net.requires_grad_(False)
    return net


class _Progress:
    """Logs ``iteration, loss, it/s`` every ``every`` iterations and tracks the final loss."""

    def __init__(self, total: int, every: int, log: Log | None, label: str) -> None:
        self.total, self.every, self.log, self.label = total, max(1, every), log, label
        self.losses: list[float] = []
        self.t0 = self._t = time.perf_counter()
        self._it = 0

    def step(self, it: int, loss: float) -> None:
        if not math.isfinite(loss):
            raise FloatingPointError(f"{self.label}: loss became {loss} at iteration {it}")
        self.losses.append(loss)
        if self.log is not None and (it % self.every == 0 or it == self.total):
            now = time.perf_counter()
            rate = (it - self._it) / max(now - self._t, 1e-9)
            window = self.losses[-self.every :]
            self.log(
                f"{self.label} {it}/{self.total}  loss {loss:.4f}  (mean {np.mean(window):.4f})"
                f"  {rate:.2f} it/s  {now - self.t0:.0f} s"
            )
            self._t, self._it = now, it

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def final_loss(self) -> float:
        """Mean of the last 50 iteration losses (single-batch losses are noisy)."""
        return float(np.mean(self.losses[-50:])) if self.losses else float("nan")


def train_sci(
    image_dirs: Sequence[str | os.PathLike[str]],
    iterations: int = DEFAULT_TRAIN_ITERATIONS,
    batch_size: int = 4,
    crop: int = 256,
    seed: int = 0,
    log: Log | None = _stderr,
    *,
    lr: float = TRAIN_LR,
    long_side: int = 512,
    log_every: int = 50,
    threads: int | None = None,
    init: EnhanceNetwork | str | os.PathLike[str] | None = None,
    max_mean: float | None = None,
    channel_shuffle: bool = True,
    channel_symmetric: bool = True,
) -> tuple[EnhanceNetwork, dict[str, object]]:
    """Self-calibrated SCI training on unpaired low-light images.

    Args:
        image_dirs: folders of PNG/JPEG/BMP/TIFF images (searched recursively).
        iterations: optimiser steps.
        batch_size: crops per step.
        crop: square crop side in pixels, after downscaling to ``long_side``.
        seed: seeds the initialisation and the crop/flip sampling; equal seeds (and thread
            counts) give identical weights.
        log: called with one progress line every ``log_every`` iterations (None: silent).
        lr: Adam learning rate (official 3e-4).
        long_side: images are first downscaled so their long side is at most this.
        log_every: progress interval in iterations.
        threads: torch intra-op threads (default: at most 2).
        init: start from these enhance weights (an :class:`EnhanceNetwork` or a weights file;
            an official ``.pt`` also provides the calibrate weights) instead of the official
            random initialisation.
        max_mean: train only on images whose mean value is at most this (``None``: all).
        channel_shuffle: also permute the RGB channels of each crop at random (not in the
            official code). Without it, runs on DICM/SICE learned a per-channel illumination
            offset (a flat grey input came out magenta); the loss is symmetric in the
            channels, so permuted data push the network towards a channel-symmetric estimate.
        channel_symmetric: keep the enhance network RGB-permutation-equivariant
            (:func:`~streamfix.engines.sci_net.symmetrize_rgb_` after the initialisation and
            after every step; not in the official code). Without it the tiny network breaks
            the channel symmetry on its own (two channels pair up, the third gets a different
            illumination offset), which shows as a colour cast; channel shuffling alone
            reduced but did not remove it.

    Returns:
        ``(net, stats)``: the trained :class:`EnhanceNetwork` in eval mode, and
        ``{"iterations", "batch_size", "crop", "seed", "images", "image_dirs", "max_mean", "seconds",
        "final_loss", "last_loss", "first_loss", "loss_history"}`` (``final_loss``: mean of the
        last 50 losses; ``loss_history``: every iteration's loss).

    Raises:
        InputError: no usable image.
        ValueError: bad arguments or unreadable ``init`` weights.
        FloatingPointError: the loss became NaN/inf.
    """
    if iterations < 1 or batch_size < 1 or crop < 8:
        raise ValueError("iterations and batch_size must be ≥ 1 and crop ≥ 8")
    with _threads(threads):
        images, used = load_training_images(image_dirs, long_side=long_side, min_short=crop, log=log, max_mean=max_mean)
        if log is not None:
            log(
                f"SCI training: {len(images)} images from {len(image_dirs)} folder(s), {iterations} "
                f"iterations × batch {batch_size} × {crop}² crops, seed {seed}, "
                f"{torch.get_num_threads()} threads"
            )
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = SCITrainingNetwork(stages=3, init=True)
        if init is not None:
            _init_from(model, init)
        if channel_symmetric:
            symmetrize_rgb_(model.enhance)
        model.train()
        opt = _optimiser(model.parameters(), lr)
        sampler = _CropSampler(images, crop, rng, channel_shuffle=channel_shuffle)
        progress = _Progress(iterations, log_every, log, "train")
        for it in range(1, iterations + 1):
            x = sampler.batch(batch_size)
            opt.zero_grad(set_to_none=True)
            loss = model.loss(x)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            if channel_symmetric:
                symmetrize_rgb_(model.enhance)
            progress.step(it, float(loss.detach()))
    stats: dict[str, object] = {
        "iterations": iterations,
        "batch_size": batch_size,
        "crop": crop,
        "seed": seed,
        "images": len(used),
        "image_dirs": [str(d) for d in image_dirs],
        "max_mean": max_mean,
        "channel_shuffle": channel_shuffle,
        "channel_symmetric": channel_symmetric,
        "seconds": round(progress.seconds, 1),
        "final_loss": progress.final_loss(),
        "last_loss": progress.losses[-1],
        "first_loss": progress.losses[0],
        "loss_history": list(progress.losses),
    }
    return _final_enhance(model), stats


def finetune_sci(
    net_or_weights: EnhanceNetwork | str | os.PathLike[str],
    frames: Sequence[torch.Tensor],
    iterations: int = DEFAULT_FINETUNE_ITERATIONS,
    batch_size: int = 1,
    seed: int = 0,
    log: Log | None = None,
    *,
    lr: float = FINETUNE_LR,
    crop: int | None = None,
    self_calibrated: bool = False,
    channel_symmetric: bool = False,
    log_every: int = 10,
    threads: int | None = None,
) -> EnhanceNetwork:
    """Fine-tune SCI on the frames of one scene (official ``finetune.py``).

    Default (official): only the enhance network is trained, initialised from
    ``net_or_weights``, with the single-stage loss ``sci_loss(x, enhance(x))``, lr 5e-4, Adam
    and gradient clipping as in training. ``self_calibrated=True`` instead trains the full
    three-stage model (calibrate initialised from an official ``.pt`` when given, else at
    random) and keeps its enhance network.

    Args:
        net_or_weights: initial weights: an :class:`EnhanceNetwork` (not modified) or a file.
        frames: ``(3, H, W)`` float tensors in ``[0, 1]``; with ``crop=None`` and
            ``batch_size > 1`` they must share one size.
        iterations: optimiser steps (one batch of frames each).
        batch_size: frames per step.
        seed: seeds frame order, crops and (for ``self_calibrated``) initialisation.
        log: progress callback (None: silent).
        lr: Adam learning rate.
        crop: random square crops of this side instead of whole frames.
        self_calibrated: train the full self-calibrated model.
        channel_symmetric: keep the enhance network RGB-permutation-equivariant (see
            :func:`train_sci`); projects the initial weights first.
        log_every: progress interval in iterations.
        threads: torch intra-op threads (default: at most 2).

    Returns:
        the fine-tuned :class:`EnhanceNetwork` in eval mode.

    Raises:
        ValueError: no frames, bad frame shapes, or unreadable weights.
    """
    if not frames:
        raise ValueError("finetune_sci needs at least one frame")
    if iterations < 1 or batch_size < 1:
        raise ValueError("iterations and batch_size must be ≥ 1")
    for f in frames:
        if f.ndim != 3 or f.shape[0] != 3 or not f.is_floating_point():
            raise ValueError(f"frames must be (3, H, W) float tensors, got {tuple(f.shape)} {f.dtype}")
    shapes = {tuple(f.shape) for f in frames}
    if crop is None and batch_size > 1 and len(shapes) > 1:
        raise ValueError("frames of different sizes need batch_size 1 or a crop")
    if crop is not None and any(min(f.shape[1:]) < crop for f in frames):
        raise ValueError(f"crop {crop} is larger than a frame")

    with _threads(threads):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model: SCITrainingNetwork | EnhanceNetwork
        if self_calibrated:
            model = SCITrainingNetwork(stages=3, init=True)
            _init_from(model, net_or_weights)
        elif isinstance(net_or_weights, EnhanceNetwork):
            model = copy.deepcopy(net_or_weights)
        else:
            model = load_enhance_weights(net_or_weights)
        enh = model.enhance if isinstance(model, SCITrainingNetwork) else model
        if channel_symmetric:
            symmetrize_rgb_(enh)
        model.requires_grad_(True)
        model.train()
        opt = _optimiser(model.parameters(), lr)
        stacked = [f.detach().float().clamp(0, 1) for f in frames]
        order: list[int] = []
        progress = _Progress(iterations, log_every, log, "finetune")
        for it in range(1, iterations + 1):
            batch = []
            for _ in range(batch_size):
                if not order:
                    order = rng.permutation(len(stacked)).tolist()
                f = stacked[order.pop()]
                if crop is not None:
                    y = int(rng.integers(0, f.shape[1] - crop + 1))
                    x0 = int(rng.integers(0, f.shape[2] - crop + 1))
                    f = f[:, y : y + crop, x0 : x0 + crop]
                batch.append(f)
            x = torch.stack(batch)
            opt.zero_grad(set_to_none=True)
            loss = model.loss(x) if isinstance(model, SCITrainingNetwork) else sci_loss(x, model(x))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            opt.step()
            if channel_symmetric:
                symmetrize_rgb_(enh)
            progress.step(it, float(loss.detach()))
    return _final_enhance(model)


# --------------------------------------------------------------------------------------------
# video frames


def frames_from_video(
    path: str | os.PathLike[str], seconds: float = 3.0, max_frames: int = 48, long_side: int = 256
) -> list[torch.Tensor]:
    """Decode the first ``seconds`` of a video (at most ``max_frames`` frames) with PyAV.

    Frames are converted to RGB and downscaled with INTER_AREA so the long side is at most
    ``long_side`` (never upscaled). A decoding error after the first frame ends the clip
    early (the frames decoded so far are returned).

    Returns:
        list of ``(3, h, w)`` float32 tensors in ``[0, 1]``.

    Raises:
        InputError: the file is missing, not a video, or yields no frame.
    """
    import av

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such video")
    frames: list[torch.Tensor] = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise InputError(f"{p}: no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            t0: float | None = None
            for k, frame in enumerate(container.decode(video=0)):
                t = frame.time if frame.time is not None else (k / rate if rate else None)
                if t is not None:
                    t0 = t if t0 is None else t0
                    if t - t0 >= seconds:
                        break
                rgb = frame.to_ndarray(format="rgb24")
                rgb = _fit_long_side(rgb, long_side)
                frames.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0)
                if len(frames) >= max_frames:
                    break
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        if not frames:
            raise InputError(f"{p}: cannot decode video ({exc})") from exc
    if not frames:
        raise InputError(f"{p}: no frames decoded")
    return frames


# --------------------------------------------------------------------------------------------
# command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train sci`` flags to ``parser``."""
    src = parser.add_argument_group("data (one of)")
    src.add_argument(
        "--images",
        metavar="DIR",
        action="append",
        default=None,
        help="folder of low-light images to train on (repeatable; PNG/JPEG/BMP/TIFF, recursive)",
    )
    src.add_argument("--finetune", metavar="VIDEO", default=None, help="fine-tune on the first seconds of this video")
    parser.add_argument(
        "--weights",
        metavar="W",
        default=None,
        help="initial weights (.pt official checkpoint or .safetensors); required with --finetune",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"optimiser steps (default {DEFAULT_TRAIN_ITERATIONS}; {DEFAULT_FINETUNE_ITERATIONS} with --finetune)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="crops/frames per step (default 4; 1 with --finetune)"
    )
    parser.add_argument(
        "--crop",
        type=int,
        default=None,
        help="square crop side (default 256; whole frames with --finetune)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        metavar="PATH.safetensors",
        default=DEFAULT_OUT,
        help=f"output weights (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--max-mean",
        type=float,
        default=None,
        metavar="M",
        help="train only on images whose mean value (0-1) is at most M, e.g. 0.25 (default: all)",
    )
    parser.add_argument(
        "--no-channel-shuffle",
        dest="channel_shuffle",
        action="store_false",
        help="train without the random RGB channel permutation (the official code has none)",
    )
    parser.add_argument(
        "--channel-symmetric",
        dest="channel_symmetric",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the network RGB-permutation-equivariant (default: on for training, off for --finetune)",
    )
    parser.add_argument("--log-every", type=int, default=None, help="progress interval in iterations")
    parser.add_argument("--seconds", type=float, default=3.0, help="--finetune: seconds of video to use (default 3)")
    parser.add_argument("--max-frames", type=int, default=48, help="--finetune: most frames to use (default 48)")
    parser.add_argument(
        "--self-calibrated",
        action="store_true",
        help="--finetune: train the full three-stage model, not only the enhance network",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: at most 2)")


def _check_args(args: argparse.Namespace) -> Path:
    if bool(args.images) == bool(args.finetune):
        raise UsageError("give either --images DIR (train) or --finetune VIDEO (fine-tune)")
    if args.finetune and not args.weights:
        raise UsageError("--finetune needs --weights (the weights to start from)")
    for name in ("iterations", "batch_size", "crop", "log_every", "threads"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be ≥ 1, got {v}")
    if args.crop is not None and args.crop < 8:
        raise UsageError(f"--crop must be ≥ 8, got {args.crop}")
    if args.max_mean is not None and not 0.0 < args.max_mean <= 1.0:
        raise UsageError(f"--max-mean must be in (0, 1], got {args.max_mean}")
    if args.seconds <= 0 or args.max_frames < 1:
        raise UsageError("--seconds must be > 0 and --max-frames ≥ 1")
    return weights_out(args.out)


def run(args: argparse.Namespace) -> int:
    """Run ``train sci`` with parsed ``args``; returns the exit status.

    Raises:
        StreamfixError: bad usage, unreadable data or weights, unwritable output.
    """
    out = _check_args(args)
    log = _stderr
    try:
        if args.images:
            net, stats = train_sci(
                args.images,
                iterations=args.iterations or DEFAULT_TRAIN_ITERATIONS,
                batch_size=args.batch_size or 4,
                crop=args.crop or 256,
                seed=args.seed,
                log=log,
                log_every=args.log_every or 50,
                threads=args.threads,
                init=args.weights,
                max_mean=args.max_mean,
                channel_shuffle=args.channel_shuffle,
                channel_symmetric=args.channel_symmetric is not False,
            )
            meta = {
                "mode": "train",
                "data_dirs": json.dumps(stats["image_dirs"]),
                "images": str(stats["images"]),
                "max_mean": "" if args.max_mean is None else str(args.max_mean),
                "channel_shuffle": str(args.channel_shuffle).lower(),
                "channel_symmetric": str(args.channel_symmetric is not False).lower(),
                "iterations": str(stats["iterations"]),
                "batch_size": str(stats["batch_size"]),
                "crop": str(stats["crop"]),
                "seconds": str(stats["seconds"]),
                "final_loss": f"{stats['final_loss']:.6f}",
            }
        else:
            t0 = time.perf_counter()
            frames = frames_from_video(args.finetune, seconds=args.seconds, max_frames=args.max_frames)
            iterations = args.iterations or DEFAULT_FINETUNE_ITERATIONS
            log(f"SCI fine-tuning on {len(frames)} frames of {args.finetune}, {iterations} iterations")
            net = finetune_sci(
                args.weights,
                frames,
                iterations=iterations,
                batch_size=args.batch_size or 1,
                seed=args.seed,
                log=log,
                crop=args.crop,
                self_calibrated=args.self_calibrated,
                channel_symmetric=bool(args.channel_symmetric),
                log_every=args.log_every or 10,
                threads=args.threads,
            )
            meta = {
                "mode": "finetune-self-calibrated" if args.self_calibrated else "finetune",
                "data_dirs": json.dumps([str(args.finetune)]),
                "frames": str(len(frames)),
                "channel_symmetric": str(bool(args.channel_symmetric)).lower(),
                "iterations": str(iterations),
                "seconds": f"{time.perf_counter() - t0:.1f}",
            }
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    except FloatingPointError as exc:
        raise StreamfixError(str(exc)) from exc
    except KeyboardInterrupt as exc:
        raise Interrupted("interrupted; no weights written") from exc
    meta.update(provenance("sci", args))
    meta.update({"seed": str(args.seed), "init_weights": str(args.weights or "")})
    try:
        save_enhance_weights(net, out, meta)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    log(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m streamfix.train.sci``)."""
    parser = argparse.ArgumentParser(
        prog="python -m streamfix.train.sci", description="Train or fine-tune SCI weights."
    )
    add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.command_line = shlex.join(["python", "-m", "streamfix.train.sci", *argv])
    try:
        return run(args)
    except StreamfixError as exc:
        print(f"streamfix: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
