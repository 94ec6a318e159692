"""The training loop on HuggingFace Accelerate.

:func:`prepare_run` builds everything and checks the user's input *before* any training step
(folders, model name, patch size, checkpoint compatibility, ``--init-from`` weights);
:func:`fit` trains with gradient accumulation, clipping, EMA, periodic validation and atomic
``step_N`` checkpoints, and resumes bit-exactly from one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DataLoaderConfiguration, skip_first_batches
from accelerate.utils import broadcast_object_list, set_seed
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from treeattn.allocator import keep_freed_memory
from treeattn.engine.checkpoint import (
    check_compatible,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from treeattn.engine.config import dump_yaml
from treeattn.engine.data import TaskData, build_data, make_loaders, make_train_loader
from treeattn.engine.ema import ModelEMA
from treeattn.engine.evaluate import make_restorer, metrics_for, validate
from treeattn.engine.init_from import InitPlan, load_init_weights, plan_init
from treeattn.engine.logs import RunLogger, tensorboard_available
from treeattn.engine.losses import build_loss
from treeattn.engine.model import check_model_fits, check_scale, model_for_task
from treeattn.engine.optim import build_optimizer, build_scheduler
from treeattn.engine.phases import Phase, crop_phases, phase_at
from treeattn.engine.rundir import (
    CONFIG_FILE,
    RunPlan,
    check_output_dir,
    clear_run,
    plan_run,
    run_settings,
    write_run,
)
from treeattn.engine.settings import TrainConfig
from treeattn.engine.task import TaskSpec
from treeattn.models.provenance import InitRecord
from treeattn.threads import resolve_threads

__all__ = ["Progress", "Run", "fit", "prepare_run"]


@dataclass
class Progress:
    """Where training stands: optimizer steps done, epoch, batches consumed in that epoch."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


@dataclass
class Run:
    """Everything one training run holds (built by :func:`prepare_run`)."""

    spec: TaskSpec
    cfg: TrainConfig
    accelerator: Accelerator
    model: nn.Module
    data: TaskData
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_loaders: tuple[DataLoader, ...]
    test_loaders: list[DataLoader]
    metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
    logger: RunLogger
    ema: ModelEMA | None = None
    progress: Progress = field(default_factory=Progress)
    run_id: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()
    init_from: InitRecord | None = None

    @property
    def phase(self) -> int:
        """Index of the crop phase (:mod:`treeattn.engine.phases`) that trains the next step."""
        return phase_at(self.phases, self.progress.step)

    @property
    def train_loader(self) -> DataLoader:
        """The training loader of the current crop phase."""
        return self.train_loaders[self.phase]

    @property
    def eval_model(self) -> nn.Module:
        """The weights to evaluate: the EMA copy when enabled, else the unwrapped model."""
        return self.ema.module if self.ema else self.accelerator.unwrap_model(self.model)


def prepare_run(
    spec: TaskSpec, cfg: TrainConfig, *, model_fn: Callable[[], nn.Module] | None = None
) -> Run:
    """Build accelerator, model, data, optimiser and schedule; check all input before training.

    Args:
        spec: The task.
        cfg: The run's settings.
        model_fn: Builds the model to train instead of ``cfg.model`` from the registry (called
            right after seeding); the model needs a ``meta``
            (:class:`treeattn.models.meta.ModelMeta`).

    With ``cfg.init_from`` the built model starts from those weights (see
    :mod:`treeattn.engine.init_from`); the returned run's ``cfg`` is the architecture built and
    the ``init_from`` recorded, which may differ from the ``cfg`` given.

    Raises:
        FileNotFoundError: Missing folder or checkpoint.
        ValueError: Empty folder, unknown model, unsuitable patch size, foreign checkpoint, an
            output folder holding another run, ``--init-from`` weights that do not fit, ...
        CheckpointError: A damaged checkpoint (a ``ValueError``).
    """
    check_output_dir(cfg.output_dir)
    accelerator, tracking = _make_accelerator(cfg)
    resume, state = _resume_point(cfg, process_index=accelerator.process_index)
    init = plan_init(spec, cfg, state=state, derive_model=model_fn is None)
    cfg = init.cfg
    model, phases = _checked_model(
        spec, cfg, model_fn=model_fn, init=init, precision=accelerator.mixed_precision
    )
    settings = run_settings(
        cfg,
        task=spec.name,
        mixed_precision=accelerator.mixed_precision,
        num_processes=accelerator.num_processes,
    )
    plan = plan_run(cfg, settings=settings, checkpoint=resume, state=state)
    run_id = broadcast_object_list([plan.run_id])[0]  # the main process's id is the run's
    if resume is not None:
        check_compatible(resume, model, model_name=cfg.model)
    data, loaders = _checked_data(spec, cfg, accelerator, plan=plan, model=model, phases=phases)
    run = _accelerated_run(spec, cfg, accelerator, model=model, data=data, loaders=loaders)
    run.run_id, run.settings, run.phases, run.init_from = run_id, settings, phases, init.record
    if resume is not None and state is not None:
        load_checkpoint(accelerator, resume)
        run.progress = Progress(step=state["step"], epoch=state["epoch"], batch=state["batch"])
    _start(run, plan)
    _announce(run, resume=resume, notice=init.notice, tracking=tracking)
    return run


def _make_accelerator(cfg: TrainConfig) -> tuple[Accelerator, bool]:
    """The run's accelerator and whether it logs to tensorboard; sets the CPU threads and, with
    ``--keep-freed-memory``, glibc's malloc thresholds (:mod:`treeattn.allocator`)."""
    tracking = cfg.with_tracking and tensorboard_available()
    accelerator = Accelerator(
        cpu=cfg.cpu,
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
        log_with="tensorboard" if tracking else None,
        project_dir=cfg.output_dir,
    )
    if cfg.with_tracking and not tracking:
        accelerator.print(
            "tensorboard is not installed: logging to CSV/JSON only "
            "(pip install 'treeattn[recipes]', or --no-with-tracking)"
        )
    torch.set_num_threads(resolve_threads(cfg.threads))
    if cfg.keep_freed_memory:
        keep_freed_memory()
    return accelerator, tracking


def _resume_point(
    cfg: TrainConfig, *, process_index: int
) -> tuple[Path | None, dict[str, Any] | None]:
    """The checkpoint to resume (``--resume-from-checkpoint``) and its verified trainer state."""
    if not cfg.resume_from_checkpoint:
        return None, None
    resume = resolve_checkpoint(cfg.resume_from_checkpoint, output_dir=cfg.output_dir)
    if resume is None:  # 'latest' of a folder without checkpoints
        return None, None
    return resume, verify_checkpoint(resume, process_index=process_index)


def _checked_model(
    spec: TaskSpec,
    cfg: TrainConfig,
    *,
    model_fn: Callable[[], nn.Module] | None,
    init: InitPlan,
    precision: str,
) -> tuple[nn.Module, tuple[Phase, ...]]:
    """The seeded model (``--init-from`` weights loaded) and the crop phases it must fit."""
    set_seed(cfg.seed)
    if model_fn is None:
        model = model_for_task(spec, cfg)
    else:
        model = model_fn()
        check_scale(spec, model.meta.scale, model=model.meta.name)
    if init.source is not None:
        load_init_weights(model, init.source, cfg=cfg)
    views = 2 if cfg.dual_pixel else 1
    phases = crop_phases(
        patch_size=cfg.patch_size,
        batch_size=cfg.batch_size,
        schedule=cfg.patch_schedule,
        max_steps=cfg.max_steps,
    )
    for phase in phases:
        check_model_fits(
            model.meta,
            patch_size=phase.patch_size,
            mixed_precision=precision,
            in_chans=cfg.channels * views,
            out_chans=cfg.channels,
        )
    return model, phases


def _checked_data(
    spec: TaskSpec,
    cfg: TrainConfig,
    accelerator: Accelerator,
    *,
    plan: RunPlan,
    model: nn.Module,
    phases: tuple[Phase, ...],
) -> tuple[TaskData, tuple[list[DataLoader], list[DataLoader]]]:
    """The run's data and its loaders: one training loader per crop phase, one per test set."""
    accelerator.wait_for_everyone()  # every process has decided before the main one writes
    with accelerator.main_process_first():  # synthetic pairs are written once, by the main process
        if plan.clear and accelerator.is_main_process:
            clear_run(cfg.output_dir)
        data = build_data(spec, cfg, scale=model.meta.scale)
    train_loader, test_loaders = make_loaders(cfg, data)
    train_loaders = [train_loader] + [
        make_train_loader(
            data.train.with_patch_size(phase.patch_size), batch_size=phase.batch_size, cfg=cfg
        )
        for phase in phases[1:]
    ]
    for phase, loader in zip(phases, train_loaders, strict=True):
        _check_batch(len(loader.dataset), phase, num_processes=accelerator.num_processes)
    return data, (train_loaders, test_loaders)


def _accelerated_run(
    spec: TaskSpec,
    cfg: TrainConfig,
    accelerator: Accelerator,
    *,
    model: nn.Module,
    data: TaskData,
    loaders: tuple[list[DataLoader], list[DataLoader]],
) -> Run:
    """Loss, optimiser, schedule and EMA, with model and loaders prepared by the accelerator."""
    loss = build_loss(
        cfg.loss, perceptual_weight=cfg.perceptual_weight, vgg_weights=cfg.vgg_weights
    )
    optimizer = build_optimizer(
        cfg.optimizer,
        model.parameters(),
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        betas=(cfg.betas[0], cfg.betas[1]),
    )
    scheduler = build_scheduler(
        optimizer,
        cfg.scheduler,
        warmup_steps=cfg.warmup_steps,
        max_steps=cfg.max_steps,
        min_lr_ratio=cfg.min_lr_ratio,
        milestones=cfg.milestones,
        gamma=cfg.gamma,
    )
    train_loaders, test_loaders = loaders
    # Every phase's loader is prepared up front, in phase order, so a resumed run registers
    # the same loaders with the accelerator as a straight run.
    model, optimizer, *prepared = accelerator.prepare(
        model, optimizer, *train_loaders, *test_loaders
    )
    # The schedule counts optimizer steps; it is stepped by the loop, not by accelerate.
    accelerator.register_for_checkpointing(scheduler)
    ema = None
    if cfg.ema_decay > 0:
        ema = ModelEMA(accelerator.unwrap_model(model), decay=cfg.ema_decay)
        accelerator.register_for_checkpointing(ema)
    return Run(
        spec=spec,
        cfg=cfg,
        accelerator=accelerator,
        model=model,
        data=data,
        loss=loss.to(accelerator.device),
        optimizer=optimizer,
        scheduler=scheduler,
        train_loaders=tuple(prepared[: len(train_loaders)]),
        test_loaders=prepared[len(train_loaders) :],
        metrics=metrics_for(spec.protocol_for(accelerator.unwrap_model(model).meta.scale)),
        ema=ema,
        logger=RunLogger(accelerator, cfg.output_dir),
    )


def _check_batch(items: int, phase: Phase, *, num_processes: int) -> None:
    """Refuse a phase whose training set holds fewer items than one batch of all processes."""
    per_step = phase.batch_size * num_processes
    if items < per_step:
        where = f" (the phase from step {phase.start})" if phase.start else ""
        raise ValueError(
            f"the training set has {items} items, fewer than one batch of {per_step}{where} "
            f"(batch {phase.batch_size} × {num_processes} processes); add images, raise "
            "--repeat or lower the batch size"
        )


def _start(run: Run, plan: RunPlan) -> None:
    """Record the run in its folder (main process) and print the plan's notices."""
    cfg, accelerator = run.cfg, run.accelerator
    if accelerator.is_main_process:
        if plan.write_run:
            write_run(cfg.output_dir, run_id=run.run_id, settings=run.settings)
        resolved = dataclasses.replace(cfg, mixed_precision=accelerator.mixed_precision)
        dump_yaml(resolved, run.spec, Path(cfg.output_dir) / CONFIG_FILE)
    for notice in plan.notices:
        accelerator.print(notice)


def _announce(run: Run, *, resume: Path | None, notice: str, tracking: bool) -> None:
    """Print where the run starts from and start the tensorboard tracker."""
    accelerator = run.accelerator
    if resume is not None:
        accelerator.print(f"resumed from {resume} at step {run.progress.step}{notice}")
    elif notice:
        accelerator.print(notice)
    if tracking:
        values = dataclasses.asdict(run.cfg).items()
        scalars = {k: v for k, v in values if isinstance(v, int | float)}
        accelerator.init_trackers(run.spec.name, config=scalars)


def _validate_all(run: Run) -> dict[str, float]:
    cfg, progress = run.cfg, run.progress
    restore = make_restorer(run.eval_model.eval(), tile=cfg.tile, overlap=cfg.tile_overlap)
    values: dict[str, float] = {}
    for test, loader in zip(run.data.tests, run.test_loaders, strict=True):
        sample_dir = Path(cfg.output_dir) / "samples" / f"step_{progress.step}" / test.name
        result = validate(
            run.accelerator,
            restore,
            loader,
            metrics=run.metrics,
            sample_dir=sample_dir if cfg.save_images else None,
            max_samples=cfg.save_images,
            desc=f"validate {test.name}",
        )
        values.update({f"{test.name}/{k}": v for k, v in result.items()})
    run.model.train()
    run.logger.log("val", step=progress.step, values=values)
    if run.accelerator.is_local_main_process:  # above the training bar, not over it
        tqdm.write(f"step {progress.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    return values


def _checkpoint(run: Run) -> None:
    cfg, progress = run.cfg, run.progress
    save_checkpoint(
        run.accelerator,
        cfg.output_dir,
        step=progress.step,
        state={
            **dataclasses.asdict(progress),
            "model": {"name": cfg.model, "overrides": cfg.model_overrides},
            "task": run.spec.name,
            "run_id": run.run_id,
            "settings": run.settings,
            "init_from": run.init_from.to_dict() if run.init_from is not None else None,
        },
        keep=cfg.keep_checkpoints,
    )


def _due(step: int, every: int, *, last: bool) -> bool:
    return last or (every > 0 and step % every == 0)


def _out_of_time(run: Run, start: float) -> bool:
    """Whether the ``--max-minutes`` budget is spent (decided jointly by all processes)."""
    if not run.cfg.max_minutes:
        return False
    late = time.perf_counter() - start > 60 * run.cfg.max_minutes
    flag = torch.tensor(float(late), device=run.accelerator.device)
    return bool(run.accelerator.reduce(flag, reduction="sum") > 0)


def fit(run: Run, *, on_step_end: Callable[[Run], None] | None = None) -> Progress:
    """Train until ``cfg.max_steps`` optimizer steps, continuing from ``run.progress``.

    Validation (every ``val_every`` steps and at the end) comes before the checkpoint of the same
    step, so a resumed run never repeats it. With ``cfg.max_minutes`` the run also ends (validated
    and checkpointed) at the first step past that wall-clock budget; resuming it continues the
    same schedule.

    Args:
        run: From :func:`prepare_run`.
        on_step_end: Called after every optimizer step (after any checkpoint), e.g. to stop.

    Returns:
        The final progress.
    """
    cfg, accelerator, progress = run.cfg, run.accelerator, run.progress
    run.model.train()
    bar = tqdm(
        total=cfg.max_steps,
        initial=progress.step,
        desc=run.spec.name,
        disable=not accelerator.is_local_main_process,
    )
    meter = _LossMeter(total=torch.zeros((), device=accelerator.device))
    start, last = time.perf_counter(), False
    while not last and progress.step < cfg.max_steps:
        phase = run.phase
        for batch in _epoch_batches(run):
            if not _micro_step(run, batch, meter):
                continue
            bar.update(1)
            last, new_phase = _end_step(run, bar=bar, meter=meter, phase=phase, start=start)
            if on_step_end is not None:
                on_step_end(run)
            if last or new_phase:
                break
        else:  # the epoch is exhausted (its last batch always ends an accumulation)
            progress.epoch, progress.batch = progress.epoch + 1, 0
    bar.close()
    if progress.step < cfg.max_steps:
        accelerator.print(
            f"--max-minutes {cfg.max_minutes} reached at step {progress.step} of {cfg.max_steps}; "
            "--resume_from_checkpoint latest continues the run"
        )
    return progress


@dataclass
class _LossMeter:
    """The training loss summed over the micro-batches since the last log line (on device)."""

    total: torch.Tensor
    count: int = 0

    def add(self, loss: torch.Tensor) -> None:
        self.total, self.count = self.total + loss.detach(), self.count + 1

    def mean(self, accelerator: Accelerator) -> float:
        """The mean over all processes; starts the next sum."""
        mean = float(accelerator.reduce(self.total / self.count, reduction="mean"))
        self.total, self.count = torch.zeros_like(self.total), 0
        return mean


def _epoch_batches(run: Run) -> DataLoader:
    """The current phase's loader at ``run.progress``: its epoch, without the batches done."""
    progress, train_loader = run.progress, run.train_loader
    train_loader.dataset.set_epoch(progress.epoch)
    train_loader.set_epoch(progress.epoch)
    if progress.batch:
        return skip_first_batches(train_loader, progress.batch)
    return train_loader


def _micro_step(run: Run, batch: dict[str, Any], meter: _LossMeter) -> bool:
    """Forward and backward one micro-batch; whether it completed an optimizer step."""
    accelerator, model, cfg = run.accelerator, run.model, run.cfg
    run.progress.batch += 1
    with accelerator.accumulate(model):
        loss = run.loss(model(batch["lq"]), batch["gt"])
        accelerator.backward(loss)
        if accelerator.sync_gradients and cfg.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    meter.add(loss)
    if not accelerator.sync_gradients:
        return False
    if not accelerator.optimizer_step_was_skipped:
        run.scheduler.step()
    run.progress.step += 1
    if run.ema is not None:
        run.ema.update(accelerator.unwrap_model(model))
    return True


def _end_step(
    run: Run, *, bar: tqdm, meter: _LossMeter, phase: int, start: float
) -> tuple[bool, bool]:
    """After an optimizer step: phase change, log, validation, checkpoint.

    Returns:
        Whether this was the last step, and whether a new crop phase starts.
    """
    cfg, accelerator, progress = run.cfg, run.accelerator, run.progress
    new_phase = run.phase != phase
    if new_phase:  # the next phase starts with a fresh epoch of its own loader
        progress.epoch, progress.batch = progress.epoch + 1, 0
        if accelerator.is_local_main_process:
            tqdm.write(f"step {progress.step}: {run.phases[run.phase].describe()}")
    last = progress.step >= cfg.max_steps or _out_of_time(run, start)
    if _due(progress.step, cfg.log_every, last=last):
        mean = meter.mean(accelerator)
        lr = run.scheduler.get_last_lr()[0]
        run.logger.log("train", step=progress.step, values={"loss": mean, "lr": lr})
        bar.set_postfix(loss=f"{mean:.4f}")
    if _due(progress.step, cfg.val_every, last=last):
        _validate_all(run)
    if _due(progress.step, cfg.checkpointing_steps, last=last):
        _checkpoint(run)
    return last, new_phase
