"""``streamfix eval``: baselines reproduce EVAL.md on the shared sets; the face writes its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamfix import evaluation as E
from streamfix import metrics as M
from streamfix.cli import main
from streamfix.train.backlitnet import list_pairs
from tests.shared_data import shared

# EVAL.md: "Where public methods stand on these data"
EVAL_MD = {
    ("fivek_dpe_expertc_deeplpf", "identity"): (18.31, 0.784),
    ("fivek_dpe_expertc_deeplpf", "gamma"): (17.50, 0.762),
    ("fivek_dpe_expertc_deeplpf", "clahe"): (18.54, 0.802),
    ("fivek_dpe_expertc_deeplpf", "sci-difficult"): (9.68, 0.665),
    ("fivek_dpe_expertc_deeplpf", "sci-medium"): (6.62, 0.537),
    ("lol_v1_train_pairs_subset", "identity"): (5.91, 0.147),
    ("lol_v1_train_pairs_subset", "gamma"): (14.88, 0.641),
    ("lol_v1_train_pairs_subset", "clahe"): (7.13, 0.315),
    ("lol_v1_train_pairs_subset", "sci-difficult"): (11.06, 0.489),
    ("lol_v1_train_pairs_subset", "sci-medium"): (12.35, 0.490),
}


@pytest.mark.shared_data
def test_baselines_reproduce_eval_md_fivek() -> None:
    """The whole evaluate_pairs path (the input-unchanged row is tests/test_metrics.py's)."""
    pytest.importorskip("skimage")
    set_name = "fivek_dpe_expertc_deeplpf"
    notes: list[str] = []
    methods = E.make_baselines(["gamma", "clahe", "sci-official"], shared("sci_weights"), notes)
    assert not notes and [m.name for m in methods] == ["gamma", "clahe", "sci-difficult", "sci-medium"]
    res, _ = E.evaluate_pairs(shared(set_name), methods, "all", sheet_rows=0)
    for m in methods:
        p_ref, s_ref = EVAL_MD[(set_name, m.name)]
        assert abs(res.summary[m.name]["psnr"] - p_ref) <= 0.05, m.name
        assert abs(res.summary[m.name]["ssim"] - s_ref) <= 0.002, m.name


@pytest.mark.shared_data
def test_baselines_reproduce_eval_md_lol() -> None:
    """PSNR of every baseline; SSIM (the slow part: 25 images) for two of them."""
    pytest.importorskip("skimage")
    set_name = "lol_v1_train_pairs_subset"
    notes: list[str] = []
    methods = E.make_baselines(["gamma", "clahe", "sci-official"], shared("sci_weights"), notes)
    pairs = [(M.read_rgb(a), M.read_rgb(b)) for _, a, b in list_pairs(shared(set_name))]
    assert len(pairs) == 25
    for m in methods:
        outs = [m.image(a) for a, _ in pairs]
        p_ref, s_ref = EVAL_MD[(set_name, m.name)]
        assert abs(np.mean([M.psnr(o, b) for o, (_, b) in zip(outs, pairs, strict=True)]) - p_ref) <= 0.05, m.name
        if m.name in ("gamma", "sci-medium"):
            ssim = np.mean([M.ssim(o, b) for o, (_, b) in zip(outs, pairs, strict=True)])
            assert abs(ssim - s_ref) <= 0.002, m.name


@pytest.mark.shared_data
def test_backlit_exposure_baselines_reproduce_eval_md() -> None:
    """backlit_web crushed % / clipped % of the input, gamma and CLAHE (EVAL.md gives one decimal)."""
    files = sorted(p for p in shared("backlit_web_ovd0312").iterdir() if p.is_file())
    ref = {"gamma": (23.5, 6.3), "clahe": (25.9, 4.8)}  # the input's own row: tests/test_metrics.py
    fns = {"gamma": E.gamma_baseline, "clahe": E.clahe_baseline}
    stats: dict[str, list[dict[str, float]]] = {k: [] for k in fns}
    for p in files:
        img = M.read_rgb(p)
        for k, fn in fns.items():
            stats[k].append(M.exposure_stats(fn(img)))
    for k, (crushed, clipped) in ref.items():
        assert abs(np.mean([s["crushed_pct"] for s in stats[k]]) - crushed) <= 0.06, k
        assert abs(np.mean([s["clipped_pct"] for s in stats[k]]) - clipped) <= 0.06, k


def _pairs_dir(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for sub in ("input", "target"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        tgt = rng.integers(30, 220, (40, 56, 3), dtype=np.uint8)
        inp = (tgt * 0.5).astype(np.uint8)
        cv2.imwrite(str(root / "input" / f"{i}.png"), inp)
        cv2.imwrite(str(root / "target" / f"{i}.png"), tgt)
    return root


def test_gamma_and_clahe_baselines_behave() -> None:
    dark = np.full((16, 16, 3), 40, np.uint8)
    assert abs(M.exposure_stats(E.gamma_baseline(dark))["mean_y"] - 0.45) < 0.01
    assert E.clahe_baseline(dark).shape == dark.shape
    assert np.array_equal(E.gamma_baseline(np.zeros((4, 4, 3), np.uint8)), np.zeros((4, 4, 3), np.uint8))


def test_eval_face_pairs_images_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skimage")
    from streamfix.synth import write_backlit_clip

    pairs = _pairs_dir(tmp_path / "pairs")
    clip = tmp_path / "clip.mp4"
    write_backlit_clip(clip, width=64, height=48, seconds=0.25, fps=16, audio=False)
    out = tmp_path / "out"
    rc = main(["eval", "--engine", "identity", "--pairs", str(pairs), "--images", str(pairs / "input"),
               "--video", str(clip), "--baselines", "identity,gamma,clahe", "--no-niqe", "--out", str(out),
               "--threads", "1"])
    assert rc == 0
    md = capsys.readouterr().out
    assert "| gamma |" in md and "### pairs (pairs, 3)" in md and "flicker" in md
    rep = json.loads((out / "eval.json").read_text())
    kinds = [s["kind"] for s in rep["sets"]]
    assert kinds == ["pairs", "images", "video"]
    pair_set = rep["sets"][0]
    # the identity engine leaves the input unchanged: it scores like the identity baseline
    assert abs(pair_set["summary"]["identity (engine)"]["psnr"] - pair_set["summary"]["identity"]["psnr"]) < 0.01
    assert len(pair_set["per_item"]["gamma"]) == 3
    # small sets also get a per-item table: each item's PSNR per method, as in the JSON
    first = pair_set["items"][0]
    row = next(line for line in md.splitlines() if line.startswith(f"| {first} |"))
    assert f"{pair_set['per_item']['gamma'][0]['psnr']:.2f}" in row
    assert "| item | identity PSNR | identity (engine) PSNR | gamma PSNR | clahe PSNR |" in md
    video = rep["sets"][2]["summary"]["identity (engine)"]
    assert video["frames"] == 4 and abs(video["gain"] - 1.0) < 0.02
    for s in rep["sets"]:
        sheet = cv2.imread(s["sheet"])
        assert sheet is not None and sheet.shape[0] > 26
    assert (out / "eval.md").read_text().startswith("### pairs")


def test_eval_face_split_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skimage")
    pairs = _pairs_dir(tmp_path / "pairs", n=4)
    rc = main(["eval", "--engine", "none", "--pairs", str(pairs), "--split", "val", "--baselines", "identity",
               "--out", str(tmp_path / "o"), "--sheet-rows", "0"])
    assert rc == 0
    rep = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert rep["sets"][0]["items"] == ["1.png", "3.png"] and rep["sets"][0]["sheet"] is None
    capsys.readouterr()
    assert main(["eval", "--engine", "none", "--baselines", "identity", "--out", str(tmp_path / "o")]) == 2
    assert main(["eval", "--engine", "none", "--baselines", "sepia", "--pairs", str(pairs),
                 "--out", str(tmp_path / "o")]) == 2
    assert main(["eval", "--engine", "none", "--baselines", "identity", "--images", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "o")]) == 1
    capsys.readouterr()
    assert main(["eval", "--engine", "sci", "--pairs", str(pairs), "--denoise", "1", "--out", str(tmp_path / "o")]) == 2
    assert "--denoise must be below 1" in capsys.readouterr().err
    notes: list[str] = []
    assert E.make_baselines(["sci-official"], tmp_path, notes) == [] and len(notes) == 2
