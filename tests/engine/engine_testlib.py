"""Helpers of the engine tests: tiny image folders, a tiny conv model, recipe loading."""

from __future__ import annotations

import contextlib
import runpy
from pathlib import Path

import torch
from torch import nn

from treeattn.data.io import write_image
from treeattn.engine import TaskSpec
from treeattn.models.meta import ModelMeta

ROOT = Path(__file__).resolve().parents[2]


def write_images(folder: Path, count: int, *, size: int = 40, channels: int = 1) -> Path:
    """Smooth random images (so denoising is learnable), deterministic in their index."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        g = torch.Generator().manual_seed(i)
        low = torch.rand(channels, size // 8, size // 8, generator=g)
        img = nn.functional.interpolate(low[None], size=(size, size), mode="bilinear")[0]
        write_image(folder / f"img{i:02d}.png", img)
    return folder


class TinyNet(nn.Module):
    """Two convs with dropout (so the global RNG matters) and a residual; has ``meta``.

    With ``in_chans > channels`` (stacked views) the residual adds the first view.
    """

    def __init__(
        self,
        channels: int = 1,
        *,
        in_chans: int | None = None,
        name: str = "tiny_conv",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        in_chans = in_chans or channels
        self.body = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(8, channels, 3, padding=1),
        )
        self.meta = ModelMeta(
            name=name, task="denoise", scale=1, in_chans=in_chans, out_chans=channels,
            multiple_of=8, minimum=8, supports_bf16=True, supports_fp16=False,
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.meta.out_chans] + self.body(x)


class Stop(Exception):
    """Raised by the test hook to simulate a run killed after a step."""


def train(spec: TaskSpec, args: list[str], *, stop_at: int | None = None):
    """Train a :class:`TinyNet` with the recipe settings ``args``; stop after step ``stop_at``."""
    from treeattn.engine import fit, parse_config, prepare_run

    cfg = parse_config(spec, args)
    torch.manual_seed(1234)  # the engine must not depend on the caller's RNG state
    run = prepare_run(spec, cfg, model_fn=TinyNet)

    def hook(r) -> None:
        if stop_at is not None and r.progress.step == stop_at:
            raise Stop

    with contextlib.suppress(Stop):
        fit(run, on_step_end=hook)
    run.accelerator.end_training()
    return run


def one_step(train: Path, test: Path, out: Path, batch: int) -> None:
    """One optimizer step of the denoise task with a dropout-free TinyNet, validating after it.

    Saves the main process's weights (and the world size) to ``out/weights.pt``.
    """
    from treeattn.engine import fit, parse_config, prepare_run

    spec = load_recipe("denoise")
    args = [*base_args(train, test, out), "--max-steps", "1", "--batch-size", str(batch)]
    cfg = parse_config(spec, [*args, "--val-every", "1", "--save-images", "3"])
    run = prepare_run(spec, cfg, model_fn=lambda: TinyNet(dropout=0.0))
    fit(run)
    if run.accelerator.is_main_process:
        weights = run.accelerator.unwrap_model(run.model).state_dict()
        torch.save({**weights, "world": run.accelerator.num_processes}, out / "weights.pt")
    run.accelerator.wait_for_everyone()
    run.accelerator.end_training()


def launch_two(train: str, test: str, out: str, batch: str) -> None:
    """Run :func:`one_step` in 2 gloo CPU processes with ``accelerate.debug_launcher``.

    Called in a fresh interpreter: forking a process whose OpenMP pool is already in use (as in
    a long pytest session) can deadlock the children.
    """
    from accelerate import debug_launcher

    args = (Path(train), Path(test), Path(out), int(batch))
    debug_launcher(one_step, args=args, num_processes=2)


def load_recipe(name: str) -> TaskSpec:
    """The ``SPEC`` of ``recipes/<name>.py`` (not run as a script)."""
    return runpy.run_path(str(ROOT / "recipes" / f"{name}.py"), run_name="recipe")["SPEC"]


#: Flags of the run in ``fixtures/run_9b0eb46`` (see ``fixtures/make_fixture.py``); no folders:
#: the embedded images, so the recorded settings hold no temporary paths.
FIXTURE_ARGS = (
    *("--sigma", "0", "50", "--test-sigma", "25", "--patch-size", "16", "--batch-size", "2"),
    *("--max-steps", "4", "--warmup-steps", "1", "--lr", "1e-2", "--ema-decay", "0.5"),
    *("--patch-schedule", "3:24:2", "--checkpointing-steps", "2", "--val-every", "0"),
    *("--save-images", "0", "--log-every", "1", "--no-with-tracking", "--threads", "1"),
)


def base_args(train: Path, test: Path, out: Path) -> list[str]:
    """Flags of a seconds-long run of the denoise task on the tiny folders."""
    return [
        "--train-dir",
        str(train),
        "--test-dir",
        str(test),
        "--output_dir",
        str(out),
        "--patch-size",
        "16",
        "--batch-size",
        "2",
        "--max-steps",
        "4",
        "--warmup-steps",
        "1",
        "--lr",
        "1e-2",
        "--val-every",
        "0",
        "--save-images",
        "0",
        "--log-every",
        "1",
        "--no-with-tracking",
    ]
