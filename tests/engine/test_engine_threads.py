"""The thread default: every available core, shared by the local processes; --threads wins. And
the run keeps freed memory (treeattn.allocator) unless --no-keep-freed-memory."""

import os

import pytest
import torch
from engine_testlib import TinyNet

import treeattn.engine.trainer as trainer
from treeattn.engine import parse_config, prepare_run
from treeattn.threads import available_cores, local_process_count, resolve_threads


def test_explicit_threads_win():
    assert resolve_threads(3, cores=16, processes=4) == 3


@pytest.mark.parametrize(
    ("cores", "processes", "expected"), [(2, 1, 2), (8, 1, 8), (8, 2, 4), (8, 3, 2), (2, 4, 1)]
)
def test_default_shares_cores_among_local_processes(cores, processes, expected):
    assert resolve_threads(0, cores=cores, processes=processes) == expected


def test_negative_threads_name_the_flag():
    with pytest.raises(ValueError, match="--threads"):
        resolve_threads(-1)


def test_available_cores_follows_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 1), ({"WORLD_SIZE": "4"}, 4), ({"LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "8"}, 2)],
)
def test_local_process_count_reads_launcher_env(env, expected):
    assert local_process_count(env) == expected


@pytest.mark.parametrize(("flag", "expected"), [((), available_cores()), (("--threads", "1"), 1)])
def test_prepare_run_ignores_launcher_omp_default(
    denoise_spec, image_dirs, tmp_path, monkeypatch, flag, expected
):
    """`accelerate launch` exports OMP_NUM_THREADS=1; a run still uses every core by default."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    train, test = image_dirs
    args = ["--train-dir", str(train), "--test-dir", str(test), "--smoke", "--output-dir"]
    cfg = parse_config(denoise_spec, [*args, str(tmp_path / "run"), *flag])
    prepare_run(denoise_spec, cfg, model_fn=TinyNet)
    assert torch.get_num_threads() == expected


@pytest.mark.parametrize(("flag", "expected"), [((), [1]), (("--no-keep-freed-memory",), [])])
def test_run_keeps_freed_memory_unless_told_not_to(
    denoise_spec, image_dirs, tmp_path, monkeypatch, flag, expected
):
    calls: list = []
    monkeypatch.setattr(trainer, "keep_freed_memory", lambda: calls.append(1) or True)
    train, test = image_dirs
    args = ["--train-dir", str(train), "--test-dir", str(test), "--smoke", "--output-dir"]
    cfg = parse_config(denoise_spec, [*args, str(tmp_path / "run"), *flag])
    prepare_run(denoise_spec, cfg, model_fn=TinyNet)
    assert calls == expected
    # how this process keeps memory, not what the run is: not in the run's config.yaml
    assert "keep_freed_memory" not in (tmp_path / "run" / "config.yaml").read_text()
