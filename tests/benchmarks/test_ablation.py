"""``benchmarks/ablation.py``: the grid's rows, a --quick run through the engine, resuming; the
long budget (``ablation_long.py``) at tiny sizes: seeds, per-image scores, resuming, the pilot."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from bench_scripts import load_benchmark
from safetensors.torch import load_file

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


# --- the long budget (ablation_long.py) ---------------------------------------------------------

long = load_benchmark("ablation_long")


def test_long_rows_fit_the_crop_and_reach_five_times_the_training_pixels():
    settings = long.LONG
    pixels = settings["max_steps"] * settings["batch_size"] * settings["patch_size"] ** 2
    assert pixels >= 5 * long.SHORT_PIXELS
    for name in long.LONG_ROWS:
        row = ablation._BY_NAME[name]
        trees = row.model_settings().get("patch_sizes", ())
        for level, tree in enumerate(trees):  # the largest region fits the crop at every level
            assert (settings["patch_size"] >> level) % tree[-1] == 0, (name, level, tree)
    assert {name for name, count in long.MIN_SEEDS.items() if count >= 2} >= {
        "depth1",
        "depth2",
        "swin8",
    }
    assert long.URBAN_REPORT[0] == "img_001.png" and long.URBAN_REPORT[-1] == "img_040.png"
    assert len(long.URBAN_REPORT) == settings["urban_images"] > long.PILOT_URBAN_IMAGES


def test_the_step_clock_counts_busy_and_lost_steps_as_the_median_step(tmp_path):
    path = tmp_path / "timing.json"
    path.write_text(
        json.dumps({"durations": [1.0, 1.2, 5.0, 0.8, 1.0], "busy": [3], "segments": 1})
    )
    cfg = SimpleNamespace(val_every=3, checkpointing_steps=4, max_steps=10)
    clock = long.StepClock(path, step=6, cfg=cfg)  # resumed at 6: step 5 kept, step 6 lost
    assert clock.segments == 2 and 7 in clock.busy  # the segment's first step has no start
    assert clock.filled() == [1.0, 1.2, 1.0, 0.8, 1.0, 1.0]
    assert clock.train_seconds() == pytest.approx(6.0) and clock.train_seconds(2) == 2.2
    assert clock.other_seconds() == pytest.approx(4.0)  # step 3 validated: 5 s for a 1 s step
    resumed_early = long.StepClock(path, step=2, cfg=cfg)  # a checkpoint before the file's end
    assert resumed_early.durations == [1.0, 1.2]


def test_seed_counts_parse_and_refuse_bad_items():
    assert long._seeds(["depth2=3"], ["depth1", "depth2"]) == {"depth1": 2, "depth2": 3}
    for bad in (["depth2"], ["depth2=0"], ["v1=2"]):
        with pytest.raises(SystemExit, match="--seeds"):
            long._seeds(bad, ["depth1", "depth2"])
    with pytest.raises(SystemExit, match="belong to --budget long"):
        ablation.main(["--quick", "--seeds", "depth2=2"])
    with pytest.raises(SystemExit, match="--seeds, not rows"):
        ablation.main(["--budget", "long", "--quick", "--rows", "depth2_seed1"])


@pytest.mark.skipif(not long.URBAN100.is_dir(), reason="needs ../shared/data/test/Urban100")
def test_urban100_folders_hold_the_report_subset_and_centred_crops(tmp_path):
    from PIL import Image

    report, val = long._urban_folders(tmp_path, len(long.URBAN_REPORT))
    assert report.name == f"Urban100_{len(long.URBAN_REPORT)}"
    assert sorted(p.name for p in report.iterdir()) == list(long.URBAN_REPORT)
    assert (report / "img_001.png").resolve() == (long.URBAN100 / "img_001.png").resolve()
    assert sorted(p.name for p in val.iterdir()) == list(long.URBAN_VAL)
    with Image.open(val / "img_091.png") as crop, Image.open(long.URBAN100 / "img_091.png") as full:
        assert crop.size == (256, 256) and crop.mode == "L"
        left, top = (full.width - 256) // 2, (full.height - 256) // 2
        expected = full.convert("L").crop((left, top, left + 256, top + 256))
        assert crop.tobytes() == expected.tobytes()


@pytest.fixture(scope="module")
def long_quick(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ablation_long")
    argv = ["--budget", "long", "--quick", "--rows", "depth1", "depth2"]
    argv += ["--seeds", "depth1=1", "depth2=2"]
    argv += ["--results", str(folder / "long.json"), "--work", str(folder / "work")]
    return folder, argv, ablation.main(argv)


def test_long_runs_record_per_image_scores_curves_costs_and_weights(long_quick):
    folder, argv, results = long_quick
    assert json.loads((folder / "long.json").read_text()) == results
    meta = results["meta"]
    assert meta["settings"] == dict(long.LONG_QUICK)
    assert meta["commands"] == ["python benchmarks/ablation.py " + " ".join(argv)]
    assert meta["hardware"]["cores"] >= 1
    assert meta["comparisons"] == [list(c) for c in (*long.COMPARISONS, *long.POST_HOC_COMPARISONS)]
    rows = results["rows"]
    assert {name: list(row["seeds"]) for name, row in rows.items()} == {
        "depth1": ["0"],
        "depth2": ["0", "1"],
    }
    assert rows["depth1"]["macs_per_pixel"] < rows["depth2"]["macs_per_pixel"]
    assert rows["depth2"]["macs_per_pixel"] == round(rows["depth2"]["macs_256"] / 256**2)
    scores = {}
    for name, row in rows.items():
        for seed, run in row["seeds"].items():
            assert run["seed"] == int(seed) and run["steps"] == 2 and run["segments"] == 1
            assert run["s_per_step"] == pytest.approx(run["train_s"] / 2, abs=0.05)  # rounded
            table = run["per_image"]["gray_test"]
            assert len(table["names"]) == len(table["psnr"]) == len(table["ssim"]) == 4
            assert np.mean(table["psnr"]) == pytest.approx(
                run["test"]["gray_test"]["psnr"], abs=1e-3
            )
            point = run["val_curve"][-1]
            assert point["step"] == 2 and 0 < point["train_time_s"] <= run["train_s"] + 0.05
            assert from_pretrained(folder / run["weights"]).config.patch_sizes == tuple(
                tuple(tree) for tree in row["overrides"]["patch_sizes"]
            )
            saved = load_file(folder / run["weights"] / "model.safetensors")
            assert {tensor.dtype for tensor in saved.values()} == {torch.float16}
            scores[name, seed] = table["psnr"]
    assert scores["depth2", "0"] != scores["depth2", "1"]  # the seeds train different models


def test_long_runs_resume_seed_by_seed(long_quick, capsys):
    _, argv, results = long_quick
    more = [*argv[: argv.index("--seeds")], "--seeds", "depth1=1", "depth2=3", *argv[-4:]]
    again = ablation.main(more)
    out = capsys.readouterr().out
    assert out.count("skipped") == 3 and "depth2 seed 2:" in out
    assert list(again["rows"]["depth2"]["seeds"]) == ["0", "1", "2"]
    assert again["rows"]["depth2"]["seeds"]["0"] == results["rows"]["depth2"]["seeds"]["0"]
    assert len(again["meta"]["commands"]) == 2
    with pytest.raises(SystemExit, match="other settings"):
        ablation.main([*argv, "--steps", "3"])


class _Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    settings = {**long.LONG_QUICK, "max_steps": 4, "checkpoint_every": 2, "val_points": 2}
    row = dataclasses.replace(ablation._BY_NAME["depth1"], seed=0)
    real_fit = long.fit

    def killed_at_step_3(run, *, on_step_end):
        def tick(run):
            on_step_end(run)
            if run.progress.step == 3:  # logged step 3, checkpointed only step 2
                raise _Killed

        return real_fit(run, on_step_end=tick)

    monkeypatch.setattr(long, "fit", killed_at_step_3)
    kwargs = {"work": tmp_path / "work", "weights": tmp_path / "weights", "quick": True}
    with pytest.raises(_Killed):
        long.run_long(row, settings, **kwargs)
    monkeypatch.setattr(long, "fit", real_fit)
    record = long.run_long(row, settings, **kwargs)
    assert record["steps"] == 4 and record["segments"] == 2
    assert [p["step"] for p in record["loss_curve"]] == [1, 2, 3, 4]  # step 3 logged twice
    assert [p["step"] for p in record["val_curve"]] == [2, 4]
    times = [p["train_time_s"] for p in record["val_curve"]]
    assert 0 < times[0] < times[1]


def test_the_pilot_plans_the_study_from_two_runs(tmp_path, capsys):
    argv = ["--pilot", "--quick", "--rows", "depth1", "depth2", "--hours", "1"]
    argv += ["--results", str(tmp_path / "pilot.json"), "--work", str(tmp_path / "work")]
    results = ablation.main(argv)
    runs = list(results["rows"]["depth2"]["seeds"].values())
    assert [run["seed"] for run in runs] == [0, 1] and list(results["rows"]) == ["depth2"]
    plan = results["plan"]
    assert plan["seeds"]["depth1"] >= 2 and plan["seeds"]["depth2"] >= 2
    assert plan["seconds"] <= plan["inputs"]["budget_s"] < 3600
    noise = plan["inputs"]["noise"]["gray_test"]
    means = [run["test"]["gray_test"]["psnr"] for run in runs]
    assert noise["seed_sd"] == pytest.approx(abs(means[0] - means[1]) / 2**0.5)
    assert noise["images"] == 4
    assert plan["command"].startswith(
        f"python benchmarks/ablation.py --budget long --steps {plan['steps']} --seeds"
    )
    assert plan["command"] in capsys.readouterr().out


def test_the_plan_scales_timed_steps_to_the_engine_and_overhead_by_macs():
    run = {
        "s_per_step": 2.0,
        "val_ckpt_s": 10.0,
        "eval_s": 30.0,
        "test": {"set": {"psnr": 28.0}},
        "per_image": {"set": {"names": ["a", "b", "c"], "psnr": [28.0, 27.0, 29.0]}},
    }
    other = {**run, "test": {"set": {"psnr": 28.1}}}
    other["per_image"] = {"set": {"names": ["a", "b", "c"], "psnr": [28.1, 27.2, 29.0]}}
    pilot = {"rows": {"depth2": {"seeds": {"0": run, "1": other}}}}
    timed = {"depth1": 0.5, "depth2": 1.0, "depth3": 1.5, "swin8": 0.4, "no_l3": 0.6}
    macs = {"depth1": 50, "depth2": 100, "depth3": 150, "swin8": 40, "no_l3": 60}
    plan, inputs = long.pilot_plan(
        pilot, timed, macs=macs, budget_s=1e6, step_options=[10], target=10.0
    )
    assert inputs["seconds_per_step"] == {row: 2 * t for row, t in timed.items()}
    assert inputs["overhead_s"]["depth3"] == pytest.approx(60.0)  # 40 s × 150 / 100
    assert inputs["noise"]["set"]["seed_sd"] == pytest.approx(0.1 / 2**0.5)
    assert plan.meets_target and plan.seeds == dict(long.MIN_SEEDS)
    # the plan resolves the planned comparisons only, not those added after the runs
    assert set(plan.half_widths) == {f"{a}-{b}" for a, b, *_ in long.COMPARISONS}
    _, fixed = long.pilot_plan(
        pilot, timed, macs=macs, budget_s=1e6, step_options=[10], seed_sd=0.3
    )
    assert fixed["noise"]["set"]["seed_sd"] == 0.3


@pytest.mark.skipif(not long.URBAN100.is_dir(), reason="needs ../shared/data/test/Urban100")
def test_a_study_scoring_more_urban_images_plans_with_them_and_their_time():
    from PIL import Image

    def run(shift):
        names = {"Set12": ["01", "02"], "Urban100_2": ["img_001", "img_002"]}
        return {
            "s_per_step": 1.0,
            "val_ckpt_s": 0.0,
            "eval_s": 20.0,
            "test": {test: {"psnr": 28.0 + shift} for test in names},
            "per_image": {
                test: {"names": n, "psnr": [28.0 + shift, 28.1 + 3 * shift]}
                for test, n in names.items()
            },
        }

    pilot = {"rows": {"depth2": {"seeds": {"0": run(0.0), "1": run(0.1)}}}}
    timed = dict.fromkeys(long.LONG_ROWS, 1.0)
    macs = dict.fromkeys(long.LONG_ROWS, 100)

    def megapixels(folder, names):
        sizes = []
        for name in names:
            with Image.open(folder / name) as image:
                sizes.append(image.width * image.height / 1e6)
        return sum(sizes)

    urban = [long.URBAN100 / f"img_{i:03d}.png" for i in range(1, 6)]
    pilot_mp = megapixels(long.ablation.DATA / "test" / "Set12", ["01.png", "02.png"])
    pilot_mp += megapixels(long.URBAN100, [p.name for p in urban[:2]])
    added = megapixels(long.URBAN100, [p.name for p in urban[2:]])
    same, inputs = long.pilot_plan(pilot, timed, macs=macs, budget_s=1e6, step_options=[10])
    more, scaled = long.pilot_plan(
        pilot, timed, macs=macs, budget_s=1e6, step_options=[10], urban_images=5
    )
    assert list(inputs["noise"]) == ["Set12", "Urban100_2"] and inputs["urban_eval_s_added"] == 0
    assert list(scaled["noise"]) == ["Set12", "Urban100_5"]
    assert scaled["noise"]["Urban100_5"] == {**inputs["noise"]["Urban100_2"], "images": 5}
    assert scaled["urban_eval_s_added"] == pytest.approx(20.0 / pilot_mp * added, abs=0.05)
    extra = scaled["overhead_s"]["depth2"] - inputs["overhead_s"]["depth2"]
    assert extra == pytest.approx(20.0 / pilot_mp * added, abs=0.1)
    assert more.by_set["depth2-depth1"]["Urban100_5"] < same.by_set["depth2-depth1"]["Urban100_2"]
