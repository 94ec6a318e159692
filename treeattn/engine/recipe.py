"""Entry point of every recipe: parse settings, prepare (all checks), train, report."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import torch

from treeattn.engine.config import parse_config
from treeattn.engine.report import final_report
from treeattn.engine.task import TaskSpec
from treeattn.engine.trainer import fit, prepare_run

__all__ = ["InputError", "main", "run_recipe"]


class InputError(ValueError):
    """Bad user input found before training started (message names the problem and the fix)."""


def run_recipe(spec: TaskSpec, argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Run a task from command-line arguments (``sys.argv[1:]`` when ``argv`` is ``None``).

    Everything the user gave is checked before the first training step; then the model is
    trained, checkpointed, validated and finally evaluated on every test set.

    Args:
        spec: The task the recipe states.
        argv: Command-line arguments.

    Returns:
        ``{test set: mean metrics}`` of the final evaluation (main process; ``{}`` elsewhere).
    """
    start = time.perf_counter()
    try:
        cfg = parse_config(spec, argv)
        run = prepare_run(spec, cfg)
    except (ValueError, FileNotFoundError) as err:
        raise InputError(str(err)) from err
    cfg = run.cfg  # the architecture built (--init-from may take the source's)
    run.accelerator.print(
        f"{spec.name}: model {cfg.model}, {cfg.max_steps} steps, batch {cfg.batch_size} x "
        f"{run.accelerator.num_processes} process(es), patch {cfg.patch_size}, "
        f"device {run.accelerator.device}, {torch.get_num_threads()} thread(s) per process, "
        f"output {cfg.output_dir}"
    )
    for phase in run.phases[1:]:
        run.accelerator.print(f"{spec.name}: from step {phase.start}, {phase.describe()}")
    fit(run)
    means = final_report(run)
    run.accelerator.print(f"done in {time.perf_counter() - start:.0f} s")
    run.accelerator.end_training()
    return means


def main(spec: TaskSpec, argv: Sequence[str] | None = None) -> None:
    """Script entry point: like :func:`run_recipe`, but bad input exits with its message only."""
    try:
        run_recipe(spec, argv)
    except InputError as err:
        sys.exit(f"recipes/{spec.name}.py: error: {err}")
