"""``benchmarks/ship_pretrained.py``: a run folder becomes a shipped model folder, or is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_scripts import load_benchmark

from treeattn.models import TrainingRecord, create_model, from_pretrained, save_pretrained

ship = load_benchmark("ship_pretrained")
bench = load_benchmark("denoise_bench")


def _row(method: str, checksum: str, level: float, psnr: float) -> dict:
    return {
        "method": method,
        "model": method,
        "checksum": checksum,
        "mode": "x8" if method.endswith("x8") else "1",
        "set": "Set12",
        "level": level,
        "seed": 0,
        "images": 12,
        "psnr": psnr,
        "ssim": 0.85,
        "seconds_per_megapixel": 5.0,
        "threads": 2,
        "timed_images": 12,
        "command": f"python benchmarks/denoise_bench.py --{method}",
    }


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A finished run folder of two resumed pieces, and its benchmark file."""
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, dims=(8, 16, 32, 64))
    model.provenance = TrainingRecord(
        task="denoise",
        in_chans=1,
        out_chans=1,
        degradation="awgn",
        level_name="sigma",
        level=(0.0, 50.0),
        data="../shared/data/train/Train400",
        steps=40,
    )
    run = tmp_path / "run"
    save_pretrained(model, run / "model")
    records = [
        {"kind": "train", "step": 10, "time_s": 5.0, "loss": 0.2, "lr": 1e-3},
        {"kind": "train", "step": 20, "time_s": 10.0, "loss": 0.1, "lr": 1e-3},
        {"kind": "val", "step": 20, "time_s": 12.0, "Set12/psnr": 27.0},
        {"kind": "train", "step": 30, "time_s": 4.0, "loss": 0.09, "lr": 5e-4},  # resumed
        {"kind": "train", "step": 40, "time_s": 8.0, "loss": 0.08, "lr": 1e-4},
        {"kind": "val", "step": 40, "time_s": 9.0, "Set12/psnr": 28.0},
    ]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "config.yaml").write_text("test_level:\n- 25.0\n")
    ours = bench.model_checksum(run / "model")
    rows = [
        _row("bm3d", "bm3d==4.0.3", 25.0, 29.9),
        _row("bm3d", "bm3d==4.0.3", 50.0, 26.7),  # a σ the model was not scored at
        _row("dncnn_s25", "dncnn", 25.0, 30.4),
        _row("treeattn", ours, 25.0, 30.0),
        _row("treeattn_x8", ours, 25.0, 30.1),
        _row("treeattn", "another model", 25.0, 28.0),
    ]
    record = {"format": bench.FORMAT, "rows": rows}
    (tmp_path / "bench.json").write_text(json.dumps(record))
    monkeypatch.setattr(ship, "ROOT", tmp_path / "repo")
    argv = ["--run", str(run), "--name", "shipped", "--summary", "a test model", "--command", "go"]
    return [*argv, "--bench", str(tmp_path / "bench.json")], tmp_path / "repo"


def test_a_run_is_shipped_with_record_benchmark_and_curves(run):
    argv, repo = run
    assert ship.main([*argv, "--sigma-range", "0", "50", "--data", "Train400 (test)"]) == 0
    target = repo / "treeattn" / "pretrained" / "shipped"
    model = from_pretrained(target)
    assert model.provenance.data == "Train400 (test)"
    assert list(model.provenance.level) == [0.0, 50.0]
    benchmark = json.loads((target / "benchmark.json").read_text())
    assert benchmark["sigma_range"] == [0, 50] and benchmark["steps"] == 40
    # this model's rows and the peers' on the same images, read as `treeattn list` reads them
    assert [(r["method"], r["psnr"]) for r in benchmark["rows"]] == [
        ("bm3d", 29.9),
        ("dncnn_s25", 30.4),
        ("treeattn", 30.0),
        ("treeattn_x8", 30.1),
    ]
    assert len(benchmark["benchmark_commands"]) == 4
    # the run's rows carry the shipped name, in the benchmark and in the results file
    results = bench.read_rows(Path(argv[-1]))
    assert {r["model"] for r in benchmark["rows"] if r["method"].startswith("treeattn")} == {
        "shipped"
    }
    assert sorted(r["model"] for r in results if r["method"] == "treeattn") == [
        "shipped",
        "treeattn",
    ]
    assert Path(argv[-1]).with_suffix(".md").is_file()
    assert bench.model_checksum(target) == bench.model_checksum(Path(argv[1]) / "model")
    # wall time sums the pieces: 12 s before the resume, then 8 s to the last training step
    records = ship.read_log(Path(argv[1]))
    assert [r["wall_s"] for r in records][-3:] == [16.0, 20.0, 21.0]
    assert (target / "curves.png").stat().st_size > 0
    training = json.loads((repo / "benchmarks" / "results" / "shipped_training.json").read_text())
    assert training["command"] == "go" and training["steps"] == 40
    assert [(p["from_step"], p["to_step"]) for p in training["pieces"]] == [(10, 20), (30, 40)]
    assert [v["Set12/psnr"] for v in training["validation"]] == [27.0, 28.0]


def test_refresh_rewrites_the_rows_of_a_shipped_model(run, tmp_path):
    argv, repo = run
    assert ship.main([*argv, "--sigma-range", "0", "50"]) == 0
    path = repo / "treeattn" / "pretrained" / "shipped" / "benchmark.json"
    before = json.loads(path.read_text())
    record = json.loads((tmp_path / "bench.json").read_text())
    ours = bench.model_checksum(Path(argv[1]) / "model")
    record["rows"] += [
        {**_row("bm3d", "bm3d==4.0.3", 25.0, 28.0), "set": "Urban100", "images": 20},
        {**_row("treeattn", ours, 25.0, 28.7), "set": "Urban100", "images": 20},
        {**_row("treeattn", "another model", 50.0, 20.0), "set": "Urban100", "images": 20},
    ]
    (tmp_path / "bench.json").write_text(json.dumps(record))
    bench_flag = ["--bench", str(tmp_path / "bench.json")]
    assert ship.main(["--name", "shipped", "--refresh", *bench_flag]) == 0
    after = json.loads(path.read_text())
    assert after["summary"] == before["summary"] and after["steps"] == before["steps"]
    assert [(r["method"], r["set"], r["psnr"]) for r in after["rows"]][-2:] == [
        ("bm3d", "Urban100", 28.0),
        ("treeattn", "Urban100", 28.7),
    ]
    assert len(after["rows"]) == len(before["rows"]) + 2
    with pytest.raises(SystemExit):
        ship.main(["--name", "no_such_model", "--refresh", *bench_flag])
    with pytest.raises(SystemExit):  # shipping a run needs the run's flags
        ship.main(["--name", "shipped", "--run", argv[1], *bench_flag])


def test_log_drops_repeated_steps_and_pauses(tmp_path):
    """A piece resumed from an earlier checkpoint replaces its predecessor's later records; a
    stopped process's pause counts as a typical interval; the repeated work still counts."""
    records = [
        {"kind": "train", "step": 10, "time_s": 5.0, "loss": 0.3, "lr": 1e-3},
        {"kind": "train", "step": 20, "time_s": 10.0, "loss": 0.2, "lr": 1e-3},
        {"kind": "train", "step": 30, "time_s": 1015.0, "loss": 0.1, "lr": 1e-3},  # paused 1000 s
        {"kind": "train", "step": 40, "time_s": 1020.0, "loss": 0.05, "lr": 1e-3},
        {"kind": "train", "step": 30, "time_s": 6.0, "loss": 0.09, "lr": 5e-4},  # from step 20
        {"kind": "train", "step": 40, "time_s": 11.0, "loss": 0.08, "lr": 1e-4},
    ]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    history = ship.read_log(tmp_path, pause_s=100.0)
    assert [(r["step"], r["loss"], r["piece"]) for r in history] == [
        (10, 0.3, 0),
        (20, 0.2, 0),
        (30, 0.09, 1),
        (40, 0.08, 1),
    ]
    # 5 + 5 + 5 (the pause, as the median interval) + 5, then 6 + 5 in the resumed piece
    assert [r["wall_s"] for r in history] == [5.0, 10.0, 26.0, 31.0]
    assert ship.read_log(tmp_path, pause_s=2000.0)[-1]["wall_s"] == 1031.0
    assert ship.training_pieces(tmp_path, pause_s=100.0) == [
        {"from_step": 10, "to_step": 40, "work_s": 20.0, "paused_s": 1000.0},
        {"from_step": 30, "to_step": 40, "work_s": 11.0, "paused_s": 0.0},
    ]


def test_wrong_sigma_range_or_benchmark_of_another_model_is_refused(run, tmp_path):
    argv, repo = run
    with pytest.raises(SystemExit):
        ship.main([*argv, "--sigma-range", "0", "75"])
    other = json.loads((tmp_path / "bench.json").read_text())
    ours = bench.model_checksum(Path(argv[1]) / "model")
    other["rows"] = [r for r in other["rows"] if r["checksum"] != ours]
    (tmp_path / "bench.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit):
        ship.main([*argv, "--sigma-range", "0", "50"])
    assert not (repo / "treeattn" / "pretrained" / "shipped").exists()
