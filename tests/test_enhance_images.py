"""End-to-end: ``streamfix enhance`` on still images and folders of images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import FAST, leftovers

H, W = 45, 67  # odd on purpose

#: what each format's file starts with
MAGIC = {
    ".png": b"\x89PNG", ".jpg": b"\xff\xd8\xff", ".jpeg": b"\xff\xd8\xff", ".bmp": b"BM",
    ".tif": (b"II*\x00", b"MM\x00*"), ".tiff": (b"II*\x00", b"MM\x00*"), ".webp": b"RIFF",
}
LOSSY = {".jpg", ".jpeg"}  # OpenCV writes WebP losslessly by default


def _pattern(seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR: gradients, a dark corner and some noise."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(seed)
    img = np.stack([xx / W * 255, yy / H * 255, (xx + yy) / (W + H) * 180 + 40], axis=-1)
    img[: H // 3, : W // 3] *= 0.1
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _write(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def _is_format(path: Path, ext: str) -> bool:
    magic = MAGIC[ext]
    head = path.read_bytes()[:8]
    return any(head.startswith(m) for m in (magic if isinstance(magic, tuple) else (magic,)))


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape, (a.shape, b.shape)
    return np.abs(a.astype(np.int32) - b.astype(np.int32))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"])
def test_same_format_in_and_out(cli, tmp_path, ext):
    src = _write(tmp_path / f"in{ext}", _pattern())
    out = tmp_path / f"out{ext}"
    res = cli("enhance", "-i", src, "-o", out, *FAST)
    assert res.rc == 0, res.err
    assert "1 image" in res.out
    assert _is_format(out, ext)
    d = _diff(_read(src), _read(out))
    if ext in LOSSY:
        assert d.mean() < 2  # re-encoded at high quality
    else:
        assert d.max() <= 1  # identity: the same pixels
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("src_ext", "dst_ext"), [(".png", ".jpg"), (".jpg", ".png"), (".bmp", ".webp")])
def test_format_follows_output_extension(cli, tmp_path, src_ext, dst_ext):
    src = _write(tmp_path / f"in{src_ext}", _pattern())
    out = tmp_path / f"out{dst_ext.upper()}"  # the extension decides, whatever its case
    res = cli("enhance", "-i", src, "-o", out, *FAST)
    assert res.rc == 0, res.err
    assert _is_format(out, dst_ext)
    assert _read(out).shape == (H, W, 3)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_alpha_kept(cli, tmp_path, ext):
    img = np.dstack([_pattern(), np.tile(np.linspace(0, 255, W, dtype=np.uint8), (H, 1))])
    src = _write(tmp_path / f"rgba{ext}", img)
    out = tmp_path / f"out{ext}"
    res = cli("enhance", "-i", src, "-o", out, *FAST)
    assert res.rc == 0, res.err
    got = _read(out)
    assert got.shape == (H, W, 4)
    assert np.array_equal(got[:, :, 3], img[:, :, 3])
    # (compare colour with the decoded input: lossless WebP drops the colour of transparent pixels)
    assert _diff(got[:, :, :3], _read(src)[:, :, :3]).max() <= 1


def test_grayscale_image(cli, tmp_path):
    gray = cv2.cvtColor(_pattern(), cv2.COLOR_BGR2GRAY)
    src = _write(tmp_path / "gray.png", gray)
    out = tmp_path / "out.png"
    res = cli("enhance", "-i", src, "-o", out, *FAST)
    assert res.rc == 0, res.err
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    channels = [got] if got.ndim == 2 else [got[:, :, c] for c in range(got.shape[2])]
    for c in channels:
        assert _diff(c, gray).max() <= 1


def test_16bit_png(cli, tmp_path):
    img16 = _pattern().astype(np.uint16) * 257
    src = _write(tmp_path / "deep.png", img16)
    out = tmp_path / "out.png"
    res = cli("enhance", "-i", src, "-o", out, *FAST)
    assert res.rc == 0, res.err
    assert _diff(_read(out), _pattern()).max() <= 1  # read as 8 bits (>> 8)


def test_sci_engine_on_image(cli, tmp_path, tiny_sci_weights):
    src = _write(tmp_path / "in.png", _pattern())
    out = tmp_path / "out.png"
    res = cli("enhance", "-i", src, "-o", out, "--engine", "sci", "--weights", tiny_sci_weights,
              "--device", "cpu")
    assert res.rc == 0, res.err
    got = _read(out)
    assert got.shape == (H, W, 3)
    assert _diff(got, _read(src)).mean() > 1  # identity: < 0.5; channel-max SCI keeps hue


def test_folder_of_images(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    names = ["a.png", "b.JPG", "c.bmp", "d.tif", "e.webp"]
    for i, name in enumerate(names):
        _write(src / name, _pattern(i))
    (src / "notes.txt").write_text("not an image")
    (src / "sub").mkdir()
    dst = tmp_path / "out"  # created
    res = cli("enhance", "-i", src, "-o", dst, *FAST)
    assert res.rc == 0, res.err
    assert "5 images" in res.out
    assert sorted(p.name for p in dst.iterdir()) == sorted(names)
    for name in names:
        ext = Path(name).suffix.lower()
        assert _is_format(dst / name, ext)
        d = _diff(_read(src / name), _read(dst / name))
        assert d.mean() < 2 if ext in LOSSY else d.max() <= 1

    # again: refused without -y (nothing changed), done with -y
    before = {p.name: p.read_bytes() for p in dst.iterdir()}
    (dst / "a.png").write_bytes(b"stale")
    res = cli("enhance", "-i", src, "-o", dst, *FAST)
    assert res.rc == 1
    assert "already exists" in res.one_error()
    assert (dst / "a.png").read_bytes() == b"stale"
    res = cli("enhance", "-i", src, "-o", dst, "-y", *FAST)
    assert res.rc == 0, res.err
    assert (dst / "a.png").read_bytes() == before["a.png"]
    assert leftovers(dst) == []


def test_folder_with_an_unreadable_image(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "good.png", _pattern())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    dst = tmp_path / "out"
    res = cli("enhance", "-i", src, "-o", dst, *FAST)
    assert res.rc == 1
    assert "Traceback" not in res.err
    errors = [line for line in res.err_lines if line.startswith("streamfix: error:")]
    assert len(errors) == 1 and "broken.png" in errors[0] and "1 of 2" in errors[0]
    assert (dst / "good.png").is_file()  # the readable one is done
    assert not (dst / "broken.png").exists()
