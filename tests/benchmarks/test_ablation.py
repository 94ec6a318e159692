"""``benchmarks/ablation.py``: the grid's rows, a --quick run through the engine, resuming."""

from __future__ import annotations

import json

import pytest
from bench_scripts import load_benchmark

from treeattn.models import from_pretrained

pytest.importorskip("accelerate")


ablation = load_benchmark("ablation")


def test_rows_share_the_base_width_and_change_one_thing():
    widths = {tuple(row.model_settings()["dims"]) for row in ablation.ROWS}
    assert widths == {ablation.BASE["dims"]}
    names = {row.name for row in ablation.ROWS}
    required = {"depth1", "depth2", "depth3", "no_l3", "v1", "v2", "v4", "swin8"}
    assert required | {"depth2_seed1", "depth2_seed2"} == names
    for row in ablation.ROWS:
        trees = row.model_settings().get("patch_sizes")
        if row.depth is None:
            assert trees is None and row.model == "swin_unet_tiny"
        else:
            assert {len(tree) for tree in trees} == {row.depth}
    seeds = sorted(row.seed for row in ablation.ROWS if row.overrides == {})
    assert seeds == [0, 1, 2]


def test_every_row_fits_the_training_patch_without_padding():
    patch = ablation.SETTINGS["patch_size"]
    for row in ablation.ROWS:
        for level, tree in enumerate(row.model_settings().get("patch_sizes", ())):
            assert (patch >> level) % tree[-1] == 0, (row.name, level, tree)


def test_training_time_leaves_out_validation_steps():
    # steps take 1 s, the validating steps 3 and 6 take 10 s more; step 1 has no start stamp
    durations = [1, 1, 11, 1, 1, 11]
    stamps = [sum(durations[: k + 1]) for k in range(len(durations))]
    assert ablation._train_seconds(stamps, every=3) == pytest.approx(6.0)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ablation")
    argv = ["--quick", "--rows", "depth1", "depth2"]
    argv += ["--results", str(folder / "grid.json"), "--work", str(folder / "work")]
    return folder, argv, ablation.main(argv)


def test_quick_rows_are_trained_evaluated_and_saved(quick):
    folder, argv, results = quick
    assert json.loads((folder / "grid.json").read_text()) == results
    assert results["meta"]["settings"] == dict(ablation.QUICK)
    assert results["meta"]["commands"] == ["python benchmarks/ablation.py " + " ".join(argv)]
    rows = results["rows"]
    assert list(rows) == ["depth1", "depth2"]
    assert rows["depth1"]["params"] < rows["depth2"]["params"]  # depth 2 adds L2's q/k/v
    for name, row in rows.items():
        assert row["steps"] == 2 and row["depth"] == int(name[-1])
        assert row["macs_256"] > 0 and row["train_s"] > 0
        test = row["test"]["gray_test"]
        assert 0 < test["psnr"] < 60 and 0 < test["ssim"] <= 1
        assert [point["step"] for point in row["val_curve"]] == [2]
        assert row["val_curve"][-1]["gray_test/psnr"] == pytest.approx(test["psnr"], abs=1e-3)
        model = from_pretrained(folder / row["weights"])
        assert model.config.patch_sizes == tuple(
            tuple(tree) for tree in row["overrides"]["patch_sizes"]
        )
        assert (folder / "work" / name / "report" / "val_psnr.png").is_file()


def test_rows_in_the_results_are_not_retrained(quick, capsys):
    folder, argv, results = quick
    log = folder / "work" / "depth1" / "log.jsonl"
    stamp = log.stat().st_mtime_ns
    again = ablation.main(argv)
    assert again["rows"] == results["rows"]
    assert capsys.readouterr().out.count("skipped") == 2
    assert log.stat().st_mtime_ns == stamp  # a retrained row would start a new run folder


def test_other_settings_do_not_mix_into_a_results_file(quick):
    _, argv, _ = quick
    with pytest.raises(SystemExit, match="other settings"):
        ablation.main([*argv, "--steps", "3"])
