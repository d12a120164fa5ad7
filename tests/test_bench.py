"""`streamfix bench` smoke test: the report's structure (benchmarks are not tests: no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamfix.cli import main


@pytest.mark.slow
def test_bench_report_structure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_png = tmp_path / "bench.json", tmp_path / "bench.png"
    rc = main(["bench", "--synthetic", "320x180", "--frames", "10", "--rounds", "1", "--engine", "sci",
               "--scaling", "320x180,640x360", "--engine-every", "2", "--denoise", "0.4", "--json", str(out_json),
               "--plot", str(out_png)])
    assert rc == 0
    report = json.loads(out_json.read_text())
    for key in ("fps", "floor_fps", "ratio_to_floor", "enhance_ms", "enhance_overlapped_ms", "stages", "latency_ms",
                "resolution", "engine", "backend", "peers"):
        assert key in report, key
    assert report["resolution"] == "320x180" and report["engine"] == "sci" and report["backend"] == "cpu"
    assert report["engine_every"] == 2 and report["denoise"] == 0.4
    assert report["temporal"] == "adaptive" and report["temporal_strength"] == 0.85  # the built-in preset
    assert set(report["runs"]) == {"identity", "sci"}  # the engine and the passthrough floor, same run
    assert report["enhance_ms"] > 0 and report["enhance_overlapped_ms"] > 0
    assert report["stages"]["slice"]["mean_ms"] > 0 and report["stages"]["engine"]["mean_ms"] > 0
    assert report["stages"]["slice"]["cpu_ms"] > 0 and "cpu_ms" not in report["stages"]["encode"]
    assert report["frames"] == 10 and report["fps"] > 0 and report["floor_fps"] > 0
    assert report["cpu_ms_per_frame"] > 0 and report["floor_cpu_ms_per_frame"] > 0
    assert set(report["stages"]) >= {"decode", "thumbnail", "engine", "temporal", "slice", "denoise", "encode"}
    assert report["stages"]["denoise"]["cpu_ms"] > 0
    assert all(v["mean_ms"] >= 0 and v["p95_ms"] >= v["mean_ms"] * 0 for v in report["stages"].values())
    assert report["stages"]["encode"]["mean_ms"] > 0 and report["stages"]["decode"]["mean_ms"] > 0
    assert set(report["latency_ms"]) == {"p50", "p95", "p99"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    assert {"clahe", "ffmpeg_curves"} <= set(report["peers"])
    assert set(report["scaling_ms"]) == set(report["scaling_overlapped_ms"]) == {"320x180", "640x360"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = capsys.readouterr().out
    assert "| decode |" in table and "passthrough floor" in table and "run on 1 frame in 2" in table
    assert "denoise 0.4" in table


def test_bench_rejects_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--synthetic", "12p"]) == 2
    assert "unknown resolution" in capsys.readouterr().err
    assert main(["bench", "--frames", "1"]) == 2
    assert main(["bench", "--engine-every", "0"]) == 2
    assert "--engine-every must be at least 1" in capsys.readouterr().err


def test_bench_takes_the_presets_strength_and_temporal_filter(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text('[enhance]\nstrength = 0.5\n[temporal]\nmode = "smooth"\nstrength = 0.5\n'
                      '[denoise]\nstrength = 0\n')
    out_json = tmp_path / "bench.json"
    assert main(["bench", "--pipeline", str(preset), "--synthetic", "160x90", "--frames", "4", "--rounds", "1",
                 "--no-peers", "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert (report["temporal"], report["temporal_strength"], report["denoise"]) == ("smooth", 0.5, 0.0)
    assert report["strength"] == 0.5
    assert "temporal smooth 0.5, no denoise" in capsys.readouterr().out
    preset.write_text('[temporal]\nmode = "wobbly"\n')
    assert main(["bench", "--pipeline", str(preset), "--synthetic", "160x90", "--frames", "4"]) == 2
    assert "wobbly" in capsys.readouterr().err
