"""End-to-end behaviour of the training loop: resume bit-exactness, checkpoints, logs, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from engine_testlib import TinyNet, base_args
from engine_testlib import train as _run

from treeattn.engine import parse_config, prepare_run
from treeattn.engine.checkpoint import latest_checkpoint, list_checkpoints
from treeattn.engine.report import final_report


def _weights(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.accelerator.unwrap_model(run.model).state_dict().items()}


@pytest.mark.parametrize("accumulation", [1, 2])
def test_resume_is_bit_identical(denoise_spec, image_dirs, tmp_path: Path, accumulation) -> None:
    train, test = image_dirs
    # 6 images / batch 2 = 3 batches per epoch. Without accumulation the checkpoint at step 2 is
    # in the middle of epoch 0; with 2 micro-batches per step, step 2 ends epoch 0 on a short
    # accumulation (the epoch's last batch always steps). Dropout makes the global RNG matter.
    extra = ["--gradient-accumulation-steps", str(accumulation), "--ema-decay", "0.9"]
    extra += ["--grad-clip", "1"]
    straight = _run(denoise_spec, [*base_args(train, test, tmp_path / "a"), *extra])
    args = [*base_args(train, test, tmp_path / "b"), *extra, "--checkpointing-steps", "2"]
    _run(denoise_spec, args, stop_at=2)
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [2]
    resumed = _run(denoise_spec, [*args, "--resume_from_checkpoint", "latest"])
    assert resumed.progress.step == straight.progress.step == 4
    assert resumed.progress.epoch == straight.progress.epoch
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ema_a, ema_b = straight.ema.module.state_dict(), resumed.ema.module.state_dict()
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    # the weights really changed during training
    torch.manual_seed(0)  # the run's seed: the same initial weights
    fresh = TinyNet().state_dict()
    assert any(not torch.equal(fresh[k], a[k]) for k in a)


def test_resume_without_checkpoints_starts_fresh(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--max-steps", "1", "--resume_from_checkpoint"]
    run = _run(denoise_spec, [*args, "latest"])
    assert run.progress.step == 1
    assert latest_checkpoint(tmp_path).name == "step_1"  # the end of a run is always saved


def test_partial_checkpoint_is_never_latest(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    _run(denoise_spec, [*base_args(train, test, tmp_path), "--max-steps", "2"])
    # a save killed half-way: tmp folder, and a step folder without its state file
    (tmp_path / ".tmp-step_9").mkdir()
    (tmp_path / "step_7").mkdir()
    assert latest_checkpoint(tmp_path) == tmp_path / "step_2"
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        parse_and_prepare(
            denoise_spec,
            train,
            test,
            tmp_path,
            "--resume_from_checkpoint",
            str(tmp_path / "step_7"),
        )


def parse_and_prepare(spec, train, test, out, *extra):
    cfg = parse_config(spec, [*base_args(train, test, out), *extra])
    return prepare_run(spec, cfg, model_fn=TinyNet)


def test_logs_samples_and_report(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--val-every", "2", "--save-images", "2"]
    run = _run(denoise_spec, args)
    means = final_report(run)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]
    val = [r for r in rows if r["kind"] == "val"]
    assert [r["step"] for r in val] == [2, 4]
    assert all(r["test/images"] == 3 for r in val)
    assert (tmp_path / "train.csv").read_text().startswith("step,time_s,loss,lr")
    assert len(list((tmp_path / "samples" / "step_4" / "test").glob("*.png"))) == 2
    report = json.loads((tmp_path / "report" / "test.json").read_text())
    assert len(report["rows"]) == 3
    assert means["test"]["psnr"] == pytest.approx(report["mean"]["psnr"])
    # validation scores the same degraded inputs as the final evaluate_folder report
    assert val[-1]["test/psnr"] == pytest.approx(report["mean"]["psnr"], abs=1e-6)
    assert "PSNR gain" in (tmp_path / "report" / "summary.md").read_text()
    curves = {p.name for p in (tmp_path / "report").glob("*.png")}
    assert curves == {"loss.png", "val_psnr.png"}


def test_time_budget_ends_the_run_resumably(denoise_spec, image_dirs, tmp_path) -> None:
    train, test = image_dirs
    args = [*base_args(train, test, tmp_path), "--max-minutes", "1e-9"]
    run = _run(denoise_spec, args)
    assert run.progress.step == 1  # every step is past the budget: the first one ends the run
    assert latest_checkpoint(tmp_path).name == "step_1"
    resumed = _run(
        denoise_spec, [*base_args(train, test, tmp_path), "--resume_from_checkpoint", "latest"]
    )
    assert resumed.progress.step == 4


def test_validation_has_a_bar_and_writes_above_the_training_bar(
    denoise_spec, image_dirs, tmp_path, capsys, monkeypatch
) -> None:
    import treeattn.engine.trainer as trainer

    written = []
    monkeypatch.setattr(trainer.tqdm, "write", lambda line, **kw: written.append(line))
    train, test = image_dirs
    _run(denoise_spec, [*base_args(train, test, tmp_path), "--max-steps", "2", "--val-every", "1"])
    assert [line.split(":")[0] for line in written] == ["step 1", "step 2"]
    assert "test/psnr" in written[-1]
    captured = capsys.readouterr()
    assert "validate test" in captured.err  # the validation progress bar
    assert "step 1: test/psnr" not in captured.out  # not printed over the training bar
