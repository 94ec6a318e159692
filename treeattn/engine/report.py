"""The final evaluation of a run: one JSON + markdown table per test set, and a summary line.

Test sets made by on-the-fly degradation go through :func:`treeattn.data.benchmark.evaluate_folder`,
paired test folders through :func:`treeattn.data.benchmark.evaluate_pairs` (the same protocol,
metrics and table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from treeattn.engine.curves import save_curves
from treeattn.engine.data import EvalSet
from treeattn.engine.evaluate import Restorer, make_restorer
from treeattn.engine.model import training_record
from treeattn.engine.trainer import Run
from treeattn.models.registry import RUN_MODEL_FOLDER

__all__ = ["final_report"]


def final_report(run: Run) -> dict[str, dict[str, float]]:
    """Evaluate the final weights on every test set (main process) and write the report.

    Writes ``report/<test set>.json`` and ``.md``, ``report/summary.md`` and the PNG curves
    ``report/loss.png`` and ``report/val_psnr.png`` under the run folder, prints the PSNR gain
    over the degraded input, and saves the evaluated weights of registry models (EMA when
    enabled) to ``model/`` with ``save_pretrained``, with how they were trained
    (:func:`treeattn.engine.model.training_record`).

    Returns:
        ``{test set: mean metrics}`` on the main process, ``{}`` elsewhere.
    """
    accelerator, cfg = run.accelerator, run.cfg
    accelerator.wait_for_everyone()
    means: dict[str, dict[str, float]] = {}
    if accelerator.is_main_process:
        model = run.eval_model.eval()
        base = make_restorer(model, tile=cfg.tile, overlap=cfg.tile_overlap)

        def restore(lq: torch.Tensor) -> torch.Tensor:
            with accelerator.autocast():
                return base(lq).float()

        folder = Path(cfg.output_dir) / "report"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"# {run.spec.name}: {cfg.model}, {run.progress.step} steps", ""]
        for test in run.data.tests:
            table = _evaluate(run, test, restore, protocol=run.spec.protocol_for(model.meta.scale))
            table.to_json(folder / f"{test.name}.json")
            (folder / f"{test.name}.md").write_text(table.to_markdown() + "\n")
            means[test.name] = table.mean
            gain = table.mean["psnr"] - table.mean["input_psnr"]
            summary = (
                f"{test.name} ({len(table.rows)} images): input {table.mean['input_psnr']:.2f} dB "
                f"-> restored {table.mean['psnr']:.2f} dB (PSNR gain {gain:+.2f} dB)"
            )
            accelerator.print(summary)
            lines += [f"## {test.name}", "", summary, "", table.to_markdown(), ""]
        (folder / "summary.md").write_text("\n".join(lines))
        save_curves(cfg.output_dir, folder)
        accelerator.print(f"report written to {folder}")
        _save_model(run, model)
    accelerator.wait_for_everyone()
    return means


def _evaluate(run: Run, test: EvalSet, restore: Restorer, *, protocol: Any) -> Any:
    """The table of one test set: paired items as loaded, clean folders degraded as in tests."""
    from treeattn.data.benchmark import evaluate_folder, evaluate_pairs

    device = run.accelerator.device
    if test.degradation is None:
        items = (test.dataset[i] for i in range(len(test.dataset)))
        return evaluate_pairs(
            restore,
            ((item["name"], item["lq"], item["gt"]) for item in items),
            protocol=protocol,
            device=device,
        )
    return evaluate_folder(
        restore,
        test.folder,
        degradation=test.degradation,
        protocol=protocol,
        channels=run.cfg.channels,
        gray_method=run.spec.gray_method,
        device=device,
    )


def _save_model(run: Run, model: nn.Module) -> None:
    """Save a registry model (safetensors + JSON config) with how it was trained."""
    if not hasattr(model, "save_pretrained"):
        return
    model.provenance = training_record(
        run.spec, run.cfg, model.meta, steps=run.progress.step, init_from=run.init_from
    )
    folder = Path(run.cfg.output_dir) / RUN_MODEL_FOLDER
    model.save_pretrained(folder)
    run.accelerator.print(f"weights in {folder} (load with treeattn.models.from_pretrained)")
