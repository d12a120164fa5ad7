"""SCI engine network, weight I/O, training and fine-tuning (fast: tiny images, few iterations)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamfix.engines.sci_cpu import enhance_cpu, supports
from streamfix.engines.sci_net import (
    EnhanceNetwork,
    SCITrainingNetwork,
    SmoothLoss,
    _smooth_reference,
    enhance,
    load_enhance_weights,
    read_metadata,
    save_enhance_weights,
    sci_loss,
    symmetrize_rgb_,
)
from streamfix.train.sci import finetune_sci, frames_from_video, load_training_images, main, train_sci


def _shared_data() -> Path:
    env = os.environ.get("STREAMFIX_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


SCI_WEIGHTS = _shared_data() / "sci_weights"
CHECKPOINTS = ("easy", "medium", "difficult")


def _checkpoint(name: str) -> Path:
    path = SCI_WEIGHTS / f"{name}.pt"
    if not path.is_file():
        pytest.skip(f"official SCI checkpoint not found: {path} (set STREAMFIX_SHARED_DATA)")
    return path


def _official_keys() -> set[str]:
    """The key set of an official SCI checkpoint (vis-opt-group/SCI model.py, Network)."""
    conv = ("weight", "bias")
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = {f"enhance.in_conv.0.{p}" for p in conv} | {f"enhance.out_conv.0.{p}" for p in conv}
    for base in ("enhance.conv", "enhance.blocks.0"):
        keys |= {f"{base}.0.{p}" for p in conv} | {f"{base}.1.{p}" for p in bn}
    keys |= {f"calibrate.in_conv.0.{p}" for p in conv} | {f"calibrate.in_conv.1.{p}" for p in bn}
    keys |= {f"calibrate.out_conv.0.{p}" for p in conv}
    for base in ("calibrate.convs", "calibrate.blocks.0", "calibrate.blocks.1", "calibrate.blocks.2"):
        for conv_i, bn_i in ((0, 1), (3, 4)):
            keys |= {f"{base}.{conv_i}.{p}" for p in conv} | {f"{base}.{bn_i}.{p}" for p in bn}
    return keys


def _dark_image(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """``(1, 3, h, w)`` smooth dark scene with texture, values ≈ 0.02–0.25."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = 0.03 + 0.15 * xx * (1 - 0.5 * yy)
    tint = torch.tensor([1.0, 0.9, 0.8]).view(3, 1, 1)
    img = base * tint + 0.02 * torch.rand(3, h, w, generator=g)
    return img.clamp(0, 1)[None]


def _random_bn_net(seed: int = 0) -> EnhanceNetwork:
    torch.manual_seed(seed)
    net = EnhanceNetwork()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        net.conv[1].running_mean.copy_(0.01 * torch.randn(3))
        net.conv[1].running_var.copy_(0.5 + torch.rand(3))
    return net.eval()


# ---------------------------------------------------------------------------- architecture


def test_architecture_matches_official_key_set() -> None:
    model = SCITrainingNetwork()
    assert set(model.state_dict()) == _official_keys()
    assert model.enhance.blocks[0] is model.enhance.conv
    assert all(b is model.calibrate.convs for b in model.calibrate.blocks)
    assert set(EnhanceNetwork().state_dict()) == {
        k.removeprefix("enhance.") for k in _official_keys() if k.startswith("enhance.")
    }


@pytest.mark.shared_data
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_official_checkpoint_loads_strict(name: str) -> None:
    path = _checkpoint(name)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert set(state) == _official_keys()
    model = SCITrainingNetwork(init=False)
    model.load_state_dict(state, strict=True)
    net = load_enhance_weights(path)
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    assert torch.equal(net.out_conv[0].weight, state["enhance.out_conv.0.weight"])


@pytest.mark.shared_data
@pytest.mark.parametrize("name", CHECKPOINTS)
def test_official_checkpoint_brightens_dark_image(name: str) -> None:
    net = load_enhance_weights(_checkpoint(name))
    x = _dark_image()
    with torch.inference_mode():
        illu, out = enhance(net, x)
    assert out.shape == x.shape and illu.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(illu.min()) >= 1e-4 and float(illu.max()) <= 1.0
    assert float(out.mean()) > float(x.mean()) * 1.2


def test_symmetrized_network_is_rgb_equivariant() -> None:
    import itertools

    net = symmetrize_rgb_(_random_bn_net(3))
    assert set(net.state_dict()) == set(EnhanceNetwork().state_dict())
    x = _dark_image(20, 24)
    with torch.inference_mode():
        ref = net(x)
        for perm in itertools.permutations(range(3)):
            torch.testing.assert_close(net(x[:, list(perm)]), ref[:, list(perm)])
        grey = net(torch.full((1, 3, 8, 8), 0.1))
    assert float(grey.std(dim=1).max()) < 1e-6


def _randomised(layers: int, channels: int, seed: int) -> EnhanceNetwork:
    """A network with random weights and batch-norm statistics far from the identity, in eval mode."""
    torch.manual_seed(seed)
    net = EnhanceNetwork(layers=layers, channels=channels)
    bn = net.conv[1]
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.5)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.2, 2.0)
    return net.eval()


@pytest.mark.parametrize(("layers", "channels", "size"), [(1, 3, (144, 256)), (3, 5, (9, 7)), (1, 3, (4, 1)),
                                                          (2, 3, (1, 6))])
@pytest.mark.parametrize("channel_max", [False, True])
def test_numba_network_matches_torch(layers: int, channels: int, size: tuple[int, int], channel_max: bool) -> None:
    """The thumbnail path's one-pass network (batch norm folded) gives the torch module's output."""
    net = _randomised(layers, channels, seed=layers * 10 + channels)
    assert supports(net)
    x = torch.rand(3, *size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        illu, ref = enhance(net, x[None])
        if channel_max:
            ref = torch.clamp(x[None] / illu.amax(dim=1, keepdim=True), 0.0, 1.0)
    out = enhance_cpu(net, x, channel_max=channel_max)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float((out - ref[0]).abs().max()) < 1e-5


def test_numba_network_follows_new_weights_and_declines_training_mode() -> None:
    """Weights loaded in place (online adaptation) are picked up; a module in training mode
    (batch statistics) or one whose blocks are not SCI's shared block goes to torch."""
    net = _randomised(1, 3, seed=0)
    x = torch.rand(3, 16, 24, generator=torch.Generator().manual_seed(2))
    before = enhance_cpu(net, x)
    net.load_state_dict(_randomised(1, 3, seed=5).state_dict())
    after = enhance_cpu(net, x)
    with torch.inference_mode():
        _, ref = enhance(net, x[None])
    assert float((after - before).abs().max()) > 1e-3 and float((after - ref[0]).abs().max()) < 1e-5
    assert not supports(net.train()) and not supports(torch.nn.Conv2d(3, 3, 3))
    net.eval().blocks.append(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1)))
    assert not supports(net)


def test_enhance_rejects_bad_input() -> None:
    net = EnhanceNetwork().eval()
    with pytest.raises(ValueError, match="B, 3, H, W"):
        enhance(net, torch.rand(3, 8, 8))
    with pytest.raises(ValueError):
        enhance(net, torch.rand(1, 4, 8, 8))


# ---------------------------------------------------------------------------- loss


def test_smooth_loss_fast_backward_matches_reference() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    i = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    results = []
    for fn in (lambda a, b: _smooth_reference(a, b, sigma=0.3), SmoothLoss(sigma=0.3)):
        xa, ia = x.clone().requires_grad_(), i.clone().requires_grad_()
        loss = fn(xa, ia)
        (2.5 * loss).backward()
        results.append((loss.detach(), xa.grad, ia.grad))
    for ref, fast in zip(*results, strict=True):
        torch.testing.assert_close(fast, ref)
    xs = x[:1, :, :6, :5].clone().requires_grad_()
    is_ = i[:1, :, :6, :5].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: SmoothLoss(sigma=0.3)(a, b), (xs, is_))


def test_sci_loss_prefers_smooth_faithful_illumination() -> None:
    x = _dark_image()
    smooth = torch.nn.functional.avg_pool2d(x, 5, 1, 2, count_include_pad=False)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(1e-4, 1)
    assert float(sci_loss(x, smooth)) < float(sci_loss(x, noisy))
    assert float(SmoothLoss()(x, torch.full_like(x, 0.3))) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------------- weight I/O


def test_safetensors_round_trip_identical(tmp_path: Path) -> None:
    net = _random_bn_net()
    path = tmp_path / "sci.safetensors"
    save_enhance_weights(net, path, {"iterations": "7", "note": "test"})
    loaded = load_enhance_weights(path)
    x = _dark_image()
    with torch.inference_mode():
        a = enhance(net, x)
        b = enhance(loaded, x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    meta = read_metadata(path)
    assert meta["iterations"] == "7" and meta["format"] == "streamfix-sci-enhance"
    assert not list(tmp_path.glob("*.tmp")), "temporary file left behind"


@pytest.mark.shared_data
def test_official_to_safetensors_round_trip(tmp_path: Path) -> None:
    net = load_enhance_weights(_checkpoint("medium"))
    path = tmp_path / "medium.safetensors"
    save_enhance_weights(net, path, {})
    x = _dark_image()
    with torch.inference_mode():
        assert torch.equal(enhance(net, x)[1], enhance(load_enhance_weights(path), x)[1])


def _write_bad_files(tmp_path: Path) -> list[Path]:
    from safetensors.torch import save_file

    files = []
    for name, data in (
        ("garbage.safetensors", os.urandom(300)),
        ("garbage.pt", b"this is not a checkpoint" * 10),
        ("empty.safetensors", b""),
        ("noext", b"\x00" * 64),
    ):
        p = tmp_path / name
        p.write_bytes(data)
        files.append(p)
    good = tmp_path / "truncated.safetensors"
    save_enhance_weights(_random_bn_net(), good, {})
    good.write_bytes(good.read_bytes()[:-40])
    files.append(good)
    wrong_keys = tmp_path / "wrong_keys.safetensors"
    save_file({"foo": torch.zeros(3)}, str(wrong_keys))
    files.append(wrong_keys)
    wrong_shape = tmp_path / "wrong_shape.safetensors"
    state = {k: v for k, v in _random_bn_net().state_dict().items() if not k.startswith("blocks.")}
    state["in_conv.0.weight"] = torch.zeros(3, 3, 5, 5)
    save_file(state, str(wrong_shape))
    files.append(wrong_shape)
    wrong_pt = tmp_path / "other_model.pt"
    torch.save({"enhance.in_conv.0.weight": torch.zeros(3, 3, 3, 3)}, wrong_pt)
    files.append(wrong_pt)
    return files


def test_corrupt_or_wrong_weights_raise_value_error_naming_file(tmp_path: Path) -> None:
    for path in [*_write_bad_files(tmp_path), tmp_path / "missing.safetensors"]:
        with pytest.raises(ValueError) as info:
            load_enhance_weights(path)
        assert str(path) in str(info.value), str(info.value)
        assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------- training


def _dark_dataset(root: Path, n: int = 6) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for k in range(n):
        h, w = 40 + 4 * k, 56
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = 20 + 30 * xx / w + 10 * np.sin(yy / 5 + k)
        img = np.stack([base * 0.8, base, base * 1.1], axis=-1) + rng.normal(0, 3, (h, w, 3))
        ext = (".png", ".jpg", ".bmp")[k % 3]
        assert cv2.imwrite(str(root / f"img{k}{ext}"), np.clip(img, 0, 255).astype(np.uint8))
    (root / "notes.txt").write_text("not an image")
    return root


def test_training_loss_decreases(tmp_path: Path) -> None:
    data = _dark_dataset(tmp_path / "dark")
    net, stats = train_sci([data], iterations=30, batch_size=2, crop=32, seed=0, log=None, threads=1)
    hist = stats["loss_history"]
    assert isinstance(net, EnhanceNetwork) and not net.training
    assert stats["iterations"] == 30 and stats["images"] == 6 and stats["image_dirs"] == [str(data)]
    assert np.mean(hist[-5:]) < 0.8 * np.mean(hist[:5]), hist
    assert stats["final_loss"] == pytest.approx(np.mean(hist[-50:]))


def test_training_images_filter_and_resize(tmp_path: Path) -> None:
    data = _dark_dataset(tmp_path / "dark", n=3)
    bright = np.full((600, 900, 3), 200, dtype=np.uint8)
    assert cv2.imwrite(str(data / "bright.png"), bright)
    images, used = load_training_images([data], long_side=512)
    assert len(images) == 4 and max(images[used.index(data / "bright.png")].shape[:2]) == 512
    lines: list[str] = []
    images, used = load_training_images([data], max_mean=0.5, min_short=64, log=lines.append)
    assert [p.name for p in used] == ["img0.png", "img1.jpg", "img2.bmp"]
    assert all(min(im.shape[:2]) >= 64 and im.dtype == np.float32 for im in images)
    assert any("bright.png" in line for line in lines)


def test_crop_sampler_flips_and_channel_shuffle() -> None:
    from streamfix.train.sci import _CropSampler

    img = np.zeros((40, 50, 3), dtype=np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.1, 0.2, 0.3
    plain = _CropSampler([img], 16, np.random.default_rng(0)).batch(8)
    assert plain.shape == (8, 3, 16, 16)
    assert torch.allclose(plain.mean((0, 2, 3)), torch.tensor([0.1, 0.2, 0.3]))
    shuffled = _CropSampler([img], 16, np.random.default_rng(0), channel_shuffle=True).batch(16)
    orders = {tuple(round(float(v), 1) for v in b.mean((1, 2))) for b in shuffled}
    assert len(orders) > 1 and all(sorted(o) == [0.1, 0.2, 0.3] for o in orders)


def test_training_is_deterministic(tmp_path: Path) -> None:
    data = _dark_dataset(tmp_path / "dark", n=3)
    a, _ = train_sci([data], iterations=3, batch_size=2, crop=24, seed=5, log=None, threads=1)
    b, _ = train_sci([data], iterations=3, batch_size=2, crop=24, seed=5, log=None, threads=1)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka


@pytest.mark.parametrize(("self_calibrated", "symmetric"), [(False, False), (True, False), (False, True)])
def test_finetune_runs_and_returns_network(self_calibrated: bool, symmetric: bool) -> None:
    start = _random_bn_net()
    before = {k: v.clone() for k, v in start.state_dict().items()}
    frames = [_dark_image(24, 32, seed=s)[0] for s in range(3)]
    lines: list[str] = []
    net = finetune_sci(
        start, frames, iterations=3, batch_size=2, seed=0, log=lines.append, log_every=1,
        self_calibrated=self_calibrated, channel_symmetric=symmetric, threads=1,
    )  # fmt: skip
    assert isinstance(net, EnhanceNetwork) and not net.training
    assert len(lines) == 3
    assert any(not torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in before.items()), "input modified"
    with torch.inference_mode():
        out = enhance(net, frames[0][None])[1]
    assert torch.isfinite(out).all()
    if symmetric:
        with torch.inference_mode():
            grey = net(torch.full((1, 3, 8, 8), 0.2))
        assert float(grey.std(dim=1).max()) < 1e-6


# ---------------------------------------------------------------------------- video


def _tiny_clip(path: Path, n: int = 10, w: int = 64, h: int = 48, fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for k in range(n):
            img = np.full((h, w, 3), 10 + 8 * k, dtype=np.uint8)
            img[:, : w // 2, 0] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_frames_from_video_count_and_shape(tmp_path: Path) -> None:
    clip = _tiny_clip(tmp_path / "tiny.mp4")
    frames = frames_from_video(clip)
    assert len(frames) == 10
    assert all(f.shape == (3, 48, 64) and f.dtype == torch.float32 for f in frames)
    assert float(frames[0].min()) >= 0.0 and float(frames[-1].max()) <= 1.0
    assert float(frames[0][0, :, :20].mean()) > 0.6  # red half survives the RGB conversion
    assert len(frames_from_video(clip, max_frames=4)) == 4
    assert len(frames_from_video(clip, seconds=0.2)) == 5  # 25 fps
    small = frames_from_video(clip, long_side=32)
    assert small[0].shape == (3, 24, 32)


def test_cli_train_then_finetune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _dark_dataset(tmp_path / "dark", n=3)
    out = tmp_path / "w.safetensors"
    args = ["--images", str(data), "--iterations", "2", "--batch-size", "1", "--crop", "24"]
    assert main([*args, "--out", str(out), "--threads", "1"]) == 0
    meta = read_metadata(out)
    assert meta["iterations"] == "2" and str(data) in meta["data_dirs"] and "--images" in meta["command"]
    assert {"seconds", "torch_version", "date", "final_loss"} <= set(meta)
    clip = _tiny_clip(tmp_path / "tiny.mp4", n=4)
    tuned = tmp_path / "tuned.safetensors"
    ft = ["--finetune", str(clip), "--weights", str(out), "--iterations", "2", "--out", str(tuned)]
    assert main([*ft, "--threads", "1"]) == 0
    assert read_metadata(tuned)["mode"] == "finetune"
    load_enhance_weights(tuned)
    capsys.readouterr()
    assert main(["--iterations", "2", "--out", str(tuned)]) == 2
    assert main(["--finetune", str(clip), "--weights", str(tmp_path / "nope.pt"), "--out", str(tuned)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("streamfix: error: ") and "nope.pt" in err[-1]
