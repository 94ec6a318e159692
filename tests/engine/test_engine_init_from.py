"""``--init-from``: a run starts from trained weights (shipped, saved, run folder or step_N)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from engine_testlib import base_args, train

from treeattn.engine import fit, parse_config, prepare_run, run_recipe
from treeattn.engine.checkpoint import CheckpointError, list_checkpoints
from treeattn.engine.init_from import read_init_source
from treeattn.engine.rundir import CONFIG_FILE, RUN_FILE
from treeattn.models import (
    InitRecord,
    TrainingRecord,
    create_model,
    from_pretrained,
    save_pretrained,
)
from treeattn.models.configs import config_to_dict
from treeattn.models.registry import build_model

# A U-shape small enough to train in a second; 3 levels of 2-wide trees.
SMALL = {"dims": [4, 8, 16], "depths": [1, 1, 1], "decoder_depths": [1, 1],
         "num_heads": [1, 1, 1], "patch_sizes": [[2, 4], [2, 4], [2, 4]]}  # fmt: skip
SMALL_FLAGS = ["--model-overrides", *(f"{k}={json.dumps(v)}" for k, v in SMALL.items())]
SOURCE_RECORD = TrainingRecord(
    task="denoise", in_chans=1, out_chans=1, degradation="awgn", level_name="sigma",
    level=(0, 50), data="clean images in DFWB", steps=300,
)  # fmt: skip


def _weights(run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.accelerator.unwrap_model(run.model).state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].to(a[k].dtype)) for k in a)


def _small_model(name: str = "hiir_unet_tiny", seed: int = 5):
    torch.manual_seed(seed)
    return create_model(name, task="denoise", in_chans=1, out_chans=1, **SMALL)


@pytest.fixture(scope="module")
def sources(denoise_spec, image_dirs, tmp_path_factory) -> dict[str, Path]:
    """A saved folder, a run folder (its ``model/``) and a checkpoint of the SMALL model."""
    root = tmp_path_factory.mktemp("sources")
    model = _small_model()
    model.provenance = SOURCE_RECORD
    save_pretrained(model, root / "saved")
    shutil.copytree(root / "saved", root / "run" / "model")
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, root / "ckpt_run"), *SMALL_FLAGS, "--max-steps", "1"]
    run = prepare_run(denoise_spec, parse_config(denoise_spec, args))
    fit(run)
    run.accelerator.end_training()
    return {"saved": root / "saved", "run": root / "run", "ckpt": root / "ckpt_run" / "step_1"}


def _args(image_dirs, out: Path, *extra: str) -> list[str]:
    train_dir, test_dir = image_dirs
    return [*base_args(train_dir, test_dir, out), "--patch-size", "32", *extra]


@pytest.mark.parametrize("kind", ["shipped", "folder", "run", "checkpoint"])
def test_each_kind_of_source_gives_its_weights_and_architecture(
    kind, sources, denoise_spec, image_dirs, tmp_path
) -> None:
    source = {
        "shipped": "hiir_dn_gray_cpu",
        "folder": str(sources["saved"]),
        "run": str(sources["run"]),
        "checkpoint": str(sources["ckpt"]),
    }[kind]
    run = prepare_run(
        denoise_spec, parse_config(denoise_spec, _args(image_dirs, tmp_path, "--init-from", source))
    )
    read = read_init_source(source)
    assert read.record.kind == kind and run.init_from == read.record
    assert _same(_weights(run), read.weights)
    if kind == "shipped":
        expected = from_pretrained("hiir_dn_gray_cpu")
        assert run.cfg.model == "hiir_unet_tiny_dn_gray" and run.cfg.model_overrides == {}
        assert read.record.training == expected.provenance
    else:  # no --model: the SMALL architecture of the source, under its registry name
        expected = _small_model()
        assert run.cfg.model == "hiir_unet_tiny" and run.cfg.model_overrides == SMALL
    model = run.accelerator.unwrap_model(run.model)
    assert model.config == dataclasses.replace(expected.config, backend=model.config.backend)
    if kind in ("folder", "run"):
        assert read.record.training == SOURCE_RECORD
    if kind == "checkpoint":
        assert read.record.training is None and read.record.model == "hiir_unet_tiny"


def test_overrides_apply_on_top_of_the_sources_architecture(
    denoise_spec, image_dirs, tmp_path, capsys
) -> None:
    """The continuous position bias owns no tensor tied to the patch sizes: they may change."""
    trees = [[8, 64], [8, 64], [8, 32], [8, 32]]
    args = _args(image_dirs, tmp_path, "--init-from", "hiir_dn_gray_cpu")
    run = prepare_run(
        denoise_spec,
        parse_config(denoise_spec, [*args, "--model-overrides", f"patch_sizes={trees}"]),
    )
    assert "initialised from hiir_dn_gray_cpu (shipped model" in capsys.readouterr().out
    model = run.accelerator.unwrap_model(run.model)
    assert [list(t) for t in model.config.patch_sizes] == trees
    assert _same(_weights(run), read_init_source("hiir_dn_gray_cpu").weights)
    # what the run records is the architecture it trains, and where it started
    written = yaml.safe_load((tmp_path / CONFIG_FILE).read_text())
    assert written["model"] == "hiir_unet_tiny_dn_gray"
    assert written["model_overrides"] == {"patch_sizes": trees}
    assert written["init_from"] == "hiir_dn_gray_cpu"
    settings = json.loads((tmp_path / RUN_FILE).read_text())["settings"]
    assert settings["model"] == "hiir_unet_tiny_dn_gray"
    assert settings["model_overrides"] == {"patch_sizes": trees}


def test_a_saved_model_of_an_unregistered_name_is_rebuilt_from_the_closest_name(tmp_path) -> None:
    config = _small_model().config
    save_pretrained(build_model(config, name="my_denoiser"), tmp_path / "saved")
    source = read_init_source(str(tmp_path / "saved"))
    assert source.record.model == "my_denoiser"
    channels = {"task": "denoise", "in_chans": 1, "out_chans": 1}
    rebuilt = create_model(source.model, **channels, **source.overrides)
    assert config_to_dict(rebuilt.config) == config_to_dict(config)


def test_weights_that_do_not_fit_name_the_tensors_and_both_configs(
    denoise_spec, image_dirs, tmp_path
) -> None:
    out = tmp_path / "out"
    args = _args(image_dirs, out, "--init-from", "hiir_dn_gray_cpu")
    with pytest.raises(ValueError) as caught:
        prepare_run(
            denoise_spec,
            parse_config(denoise_spec, [*args, "--model-overrides", "ffn_ratio=3"]),
        )
    message = str(caught.value)
    assert "--init-from hiir_dn_gray_cpu: its weights do not fit" in message
    assert re.search(r"\d+ shape mismatches \['[\w.]+: file \(\d+,.*?\) vs model \(\d+", message)
    assert "and " in message and "more" in message  # a few named, the rest counted
    assert "The configs differ in: ffn_ratio 2.0 vs 3.0" in message
    assert 'Source config (hiir_unet_tiny_dn_gray): {"layer_type"' in message
    assert "This run's config (hiir_unet_tiny_dn_gray): {" in message
    assert not (out / RUN_FILE).exists() and not (out / CONFIG_FILE).exists()  # before anything
    # other channels than the source's: its first and last convolutions; the fix names --channels
    with pytest.raises(ValueError, match=r"3 shape mismatches \['embed.weight.*pass --channels 1"):
        prepare_run(denoise_spec, parse_config(denoise_spec, [*args, "--channels", "3"]))


def test_a_missing_or_damaged_source_is_refused(sources, tmp_path) -> None:
    with pytest.raises(ValueError, match="--init-from nope: model 'nope' not found"):
        read_init_source("nope")
    run_without_model = sources["ckpt"].parent
    with pytest.raises(FileNotFoundError, match=r"holds no model.*pass RUN/step_N"):
        read_init_source(str(run_without_model))
    damaged = tmp_path / "saved"
    shutil.copytree(sources["saved"], damaged)
    data = bytearray((damaged / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (damaged / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        read_init_source(str(damaged))
    step = tmp_path / "step_1"
    shutil.copytree(sources["ckpt"], step)
    data = bytearray((step / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (step / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"--init-from {re.escape(str(step))}: .*checksum"):
        read_init_source(str(step))


def test_only_the_weights_are_taken(denoise_spec, image_dirs, sources, tmp_path) -> None:
    args = _args(image_dirs, tmp_path, "--init-from", str(sources["ckpt"]), "--ema-decay", "0.9")
    run = prepare_run(denoise_spec, parse_config(denoise_spec, args))
    source = read_init_source(str(sources["ckpt"])).weights
    assert _same(_weights(run), source)
    assert _same(run.ema.module.state_dict(), source) and run.ema.updates == 0
    assert run.progress == type(run.progress)()
    assert run.scheduler.last_epoch == 0  # the source stopped at step 1: its schedule is not taken
    assert not run.optimizer.state  # the source run's Adam moments are not carried over


def _tiny_checkpoint(denoise_spec, image_dirs, out: Path, seed: int) -> Path:
    train_dir, test_dir = image_dirs
    args = [*base_args(train_dir, test_dir, out), "--max-steps", "1", "--seed", str(seed)]
    train(denoise_spec, args)
    return out / "step_1"


def test_a_resumed_checkpoint_wins_over_init_from(
    denoise_spec, image_dirs, tmp_path, capsys
) -> None:
    first = _tiny_checkpoint(denoise_spec, image_dirs, tmp_path / "src_a", seed=1)
    other = _tiny_checkpoint(denoise_spec, image_dirs, tmp_path / "src_b", seed=2)
    train_dir, test_dir = image_dirs
    straight = train(
        denoise_spec, [*base_args(train_dir, test_dir, tmp_path / "a"), "--init-from", str(first)]
    )
    args = [*base_args(train_dir, test_dir, tmp_path / "b"), "--checkpointing-steps", "2"]
    train(denoise_spec, [*args, "--init-from", str(first)], stop_at=2)
    assert [s for s, _ in list_checkpoints(tmp_path / "b")] == [2]
    capsys.readouterr()
    resume = [*args, "--resume-from-checkpoint", "latest", "--init-from", str(other)]
    resumed = train(denoise_spec, resume)
    out = capsys.readouterr().out
    assert f"its weights win over --init-from {other} (the run started from {first})" in out
    assert out.count("resumed from") == 1 and "initialised from" not in out
    assert resumed.progress.step == straight.progress.step == 4
    assert _same(_weights(straight), _weights(resumed))  # resumed exactly
    # the record keeps where the run started
    assert resumed.cfg.init_from == str(first) and resumed.init_from.source == str(first)
    written = yaml.safe_load((tmp_path / "b" / CONFIG_FILE).read_text())
    assert written["init_from"] == str(first)
    state = json.loads((tmp_path / "b" / "step_4" / "trainer_state.json").read_text())
    assert InitRecord.from_dict(state["init_from"]).source == str(first)


def test_provenance_round_trip_and_the_chain_in_info(
    denoise_spec, image_dirs, sources, tmp_path, capsys
) -> None:
    from treeattn.cli import main as cli

    # a run folder whose model was itself initialised from the saved folder
    parent = from_pretrained(sources["saved"])
    parent.provenance = dataclasses.replace(
        SOURCE_RECORD,
        steps=40,
        init_from=InitRecord(source="base_model", kind="folder", model="hiir_unet_tiny",
                             training=SOURCE_RECORD),
    )  # fmt: skip
    save_pretrained(parent, tmp_path / "parent" / "model")
    out = tmp_path / "child"
    args = [*_args(image_dirs, out, "--max-steps", "1"), "--init-from", str(tmp_path / "parent")]
    run_recipe(denoise_spec, args)
    saved = from_pretrained(out / "model")
    record = saved.provenance
    assert record.steps == 1 and record.init_from.kind == "run"
    assert record.init_from.source == str(tmp_path / "parent")
    assert record.init_from.training == parent.provenance  # its own record, its chain included
    assert record.init_from.training.init_from.training == SOURCE_RECORD
    assert yaml.safe_load((out / CONFIG_FILE).read_text())["init_from"] == str(tmp_path / "parent")
    capsys.readouterr()
    assert cli(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    parent_line = rf"\ninitialised from +{re.escape(str(tmp_path / 'parent'))} \(run folder, model"
    assert re.search(parent_line, printed)
    assert re.search(r"\n  initialised from +base_model \(saved model hiir_unet_tiny\)", printed)
    assert re.search(r"\n    steps +300\n", printed)  # the grandparent's rows, indented twice
    assert printed.count("trained on") == 3
