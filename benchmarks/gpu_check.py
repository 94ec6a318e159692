"""GPU check: CUDA parity, attention backends, band-wise restore, bf16 training, speed.

Not a test: one command for a machine with one CUDA GPU (about 6–8 minutes on an H100: at most
``--budget-s``, 420 s by default, plus imports and start-up), writing ``gpu_check.json`` and
``gpu_check.log`` into ``--out`` and nothing else there (the training run goes to a temporary
``--work-dir``). Each section ends as ``pass``, ``fail`` (a figure outside its limit),
``error`` (the exception and its traceback), ``stopped`` (the budget ran out inside it; its
figures so far are kept) or ``skipped`` (with a note), and the script always goes on to the next:

* ``parity_layer`` — :class:`~treeattn.layers.HiIRLayer` (C=180, h=6, p=16, P=64) and
  :class:`~treeattn.layers.SwinLayer`, forward and backward (input and parameter gradients) on CUDA
  against the float32 CPU result, in float32 (TF32 off) and under bfloat16 autocast;
* ``parity_models`` — the same for ``hiir_sr_tiny_x2``, ``hiir_b_sr_x2`` (on a small input) and
  the shipped U-shape denoiser ``hiir_dn_gray_cpu``;
* ``attention_backends`` — every attention backend (``math``, ``sdpa``, ``auto``, ``xformers`` when
  importable; on CUDA also SDPA forced onto each of its kernels, for information) forward and
  backward, the position-bias gradient included, against ``math`` in float64, at Hi-IR-B's head
  sizes (q/k 15, v 30) with level-1 (256 tokens) and level-2 (16 tokens) windows, in float32 and
  bfloat16; and a whole ``HiIRLayer`` per backend against the ``math`` one;
* ``band_restore`` — :func:`treeattn.inference.restore_image` of a 1024² gray image on CUDA,
  band-wise (the default) against whole maps, with the time and CUDA peak memory of each;
* ``train_denoise_bf16`` — 200 steps of ``recipes/denoise.py --mixed-precision bf16`` (its quick
  default on the embedded data, through the engine's entry point in this process): the loss
  curve, steps/s and the final PSNR on the embedded gray test set;
* ``timing_layer`` / ``timing_model`` — HiIRLayer vs SwinLayer (batch 8, 64² and 128²) and
  ``hiir_b_sr_x2`` vs ``swin_b_sr_x2`` (batch 4, LR 64² and 128²; training at 64²): forward
  (eval, no autograd) and training step (forward, L1 loss, backward, AdamW) in ``fp32`` (TF32
  off), ``tf32`` and ``bf16`` (autocast; TF32 flags as torch leaves them), with CUDA
  synchronisation, warm-up and ABBA interleaving in one process, as Hi-IR/Swin ratios, MAC ratios
  (:func:`treeattn.analysis.count_macs`) and per-MAC ratios;
* ``timing_compile`` — the same pairs eager against ``torch.compile`` (float32, TF32 off), each
  pair only if the time left allows it; compile seconds and graph-break counts.

Errors are ``max_abs`` (largest absolute difference), ``max_rel`` (``max_abs`` over the largest
magnitude of the reference) and ``rel_l2`` (relative L2 norm). A parity check passes when the
output's ``max_rel`` and the gradients' ``rel_l2`` (the input gradient; all parameter gradients as
one vector) are within the limits of their precision (``TOLERANCES``); the parameter whose
gradient is worst element-wise is reported too. A section starts only when at least its ``need_s``
is left of the budget, and is stopped when the budget runs out. The JSON (``{"meta": hardware,
versions and settings, "results": {"sections": ..., "summary": {status: [sections]}}}``) is
rewritten after every section, so a killed run still leaves what it measured.

On the device machine (the repository root of a copy of the working tree, no internet: nothing
may be downloaded), with a ``timeout_s`` of 600::

    python3 -m pip install -q --no-deps --no-build-isolation -e . || export PYTHONPATH=$PWD
    python3 benchmarks/gpu_check.py --out $OUT

(``python3`` is the machine's Python with its CUDA torch; where ``python`` is that one, the
command is ``python benchmarks/gpu_check.py --out $OUT``.) ``--no-deps --no-build-isolation``
installs treeattn alone against the machine's own torch, without our torch pin and without
fetching anything (einops, numpy, safetensors, accelerate, pyyaml, pillow, opencv and tqdm are
there already); if the install fails, ``PYTHONPATH`` runs the same code uninstalled. What is not
importable (xformers) is skipped with a note. Exit status: 0 when no section failed or raised,
1 otherwise (and when CUDA is not available: every section is then skipped with a note).

Usage::

    python3 benchmarks/gpu_check.py --out $OUT                    # the whole check, on CUDA
    python3 benchmarks/gpu_check.py --out $OUT --sections parity_layer band_restore
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check  # CPU walk-through, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib.util
import math
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from benchlib import abba_times, count_forward_macs, machine_meta, save_results, summarise
from model_bench import forward_run

from treeattn.inference import restore_image
from treeattn.layers import HiIRLayer, SwinLayer
from treeattn.models import create_model
from treeattn.ops.attention import attention_math, resolve_backend
from treeattn.ops.bands import band_execution

ROOT = Path(__file__).resolve().parents[1]
NAME = "gpu_check"

# Limits of the output's max_rel and of the gradients' rel_l2 (the input gradient; all parameter
# gradients as one vector). float32 with TF32 off differs from the CPU by summation order only;
# bfloat16 autocast rounds every GEMM input to 8 significant bits, and a gradient summed over
# many such products (a position-bias MLP's, a norm's bias) can be off by tens of per cent where
# its terms cancel, so gradients are judged by their norm-wise error, not element by element.
TOLERANCES = {
    "fp32": {"out": 1e-4, "grad": 1e-3},
    "bf16": {"out": 5e-2, "grad": 0.15},
}
# Band-wise inference equals the whole-map result to float rounding (treeattn.models.banded).
BAND_TOLERANCE = 1e-5
# Timed restores per band setting (after one untimed run).
BAND_REPEATS = 3


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: :data:`FULL` on CUDA, :data:`DRY` on the CPU in seconds."""

    layer: tuple[int, int, tuple[int, int]]  # HiIRLayer dim, heads, tree
    swin_window: int
    layer_input: tuple[int, int, int]  # batch, H, W of the parity input (BHWC)
    sr_models: dict[str, dict[str, Any]]  # registry name -> config overrides
    sr_input: tuple[int, int]
    denoiser: str  # a shipped pretrained model
    dn_input: tuple[int, int]
    attn_heads: int
    attn_dims: tuple[int, int]  # q/k and v head dims
    attn_windows: int
    attn_tokens: tuple[int, ...]
    band_size: int
    band_settings: dict[str, Any]
    train_args: tuple[str, ...]
    train_min_psnr_gain: float
    timing_layer_sizes: tuple[int, ...]
    timing_layer_batch: int
    timing_models: tuple[str, str]
    timing_model_overrides: dict[str, Any]
    timing_model_sizes: tuple[int, ...]
    timing_model_train_sizes: tuple[int, ...]
    timing_model_batch: int
    precisions: tuple[str, ...]
    warmup: int
    repeats: int
    compile_backend: str
    compile_models: bool
    need_s: dict[str, float] = field(default_factory=dict)


FULL = Plan(
    layer=(180, 6, (16, 64)),
    swin_window=8,
    layer_input=(2, 72, 100),
    sr_models={"hiir_sr_tiny_x2": {}, "hiir_b_sr_x2": {}},
    sr_input=(40, 56),
    denoiser="hiir_dn_gray_cpu",
    dn_input=(72, 88),
    attn_heads=6,
    attn_dims=(15, 30),
    attn_windows=16,
    attn_tokens=(256, 16),
    band_size=1024,
    band_settings={},
    train_args=("--max-steps", "200", "--log-every", "10"),
    train_min_psnr_gain=3.0,
    timing_layer_sizes=(64, 128),
    timing_layer_batch=8,
    timing_models=("hiir_b_sr_x2", "swin_b_sr_x2"),
    timing_model_overrides={},
    timing_model_sizes=(64, 128),
    timing_model_train_sizes=(64,),
    timing_model_batch=4,
    precisions=("fp32", "tf32", "bf16"),
    warmup=3,
    repeats=10,
    compile_backend="inductor",
    compile_models=True,
    need_s={
        "parity_layer": 20,
        "parity_models": 40,
        "attention_backends": 20,
        "band_restore": 30,
        "train_denoise_bf16": 90,
        "timing_layer": 30,
        "timing_model": 60,
        "timing_compile": 90,
    },
)

DRY = Plan(
    layer=(16, 2, (8, 16)),
    swin_window=8,
    layer_input=(1, 20, 28),
    sr_models={
        "hiir_sr_tiny_x2": {},
        "hiir_b_sr_x2": {"dim": 24, "depths": (1, 1), "num_heads": 2},
    },
    sr_input=(20, 28),
    denoiser="hiir_dn_gray_cpu",
    dn_input=(24, 40),
    attn_heads=2,
    attn_dims=(4, 8),
    attn_windows=3,
    attn_tokens=(64, 16),
    band_size=96,
    band_settings={"min_pixels": 0, "tile_pixels": 32 * 32},
    train_args=(
        *("--max-steps", "20", "--warmup-steps", "2", "--log-every", "2"),
        *("--patch-size", "32", "--batch-size", "4", "--threads", "1", "--cpu"),
    ),
    train_min_psnr_gain=0.5,
    timing_layer_sizes=(16,),
    timing_layer_batch=1,
    timing_models=("hiir_sr_tiny_x2", "swin_sr_tiny_x2"),
    timing_model_overrides={"depths": (1,)},
    timing_model_sizes=(16,),
    timing_model_train_sizes=(16,),
    timing_model_batch=1,
    precisions=("fp32", "bf16"),
    warmup=1,
    repeats=1,
    compile_backend="eager",  # dynamo tracing only: the code path, without inductor's minutes
    compile_models=False,
    need_s=dict.fromkeys(FULL.need_s, 1.0),
)


# --------------------------------------------------------------------------- running sections


# pass: every check within its limit; fail: a check outside it; error: an exception (traceback
# recorded); stopped: the budget ran out inside the section; skipped: too little budget to start.
STATUSES = ("pass", "fail", "error", "stopped", "skipped")


class BudgetExhausted(BaseException):
    """The ``--budget-s`` ran out inside a section (a BaseException, so that no library's
    ``except Exception`` swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`BudgetExhausted` in the main thread once ``seconds`` have passed."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame) -> None:
        raise BudgetExhausted(f"stopped after {seconds:.0f} s: the --budget-s ran out")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.5))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Record:
    """What one section found: figures, checks against limits, notes."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self.checks: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []

    def check(
        self, name: str, value: float, *, most: float | None = None, least: float | None = None
    ) -> bool:
        """Record ``value`` and whether it is finite and within ``[least, most]``."""
        ok = math.isfinite(value)
        ok = ok and (most is None or value <= most) and (least is None or value >= least)
        self.checks[name] = {"value": value, "most": most, "least": least, "ok": ok}
        return ok


@dataclass
class Context:
    plan: Plan
    device: torch.device
    work_dir: Path
    start: float
    budget_s: float

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)


@dataclass(frozen=True)
class Section:
    name: str
    run: Callable[[Context, Record], None]


def run_section(section: Section, ctx: Context) -> dict[str, Any]:
    """Run one section within the budget; never raises (but for KeyboardInterrupt)."""
    record, result = Record(), {}
    need = ctx.plan.need_s.get(section.name, 0.0)
    left = ctx.left_s()
    print(f"\n=== {section.name} ({left:.0f} s of the budget left)", flush=True)
    if left < need:
        note = f"budget: {left:.0f} s left, the section needs about {need:.0f} s"
        print(f"skipped: {note}")
        return {"status": "skipped", "note": note, "seconds": 0.0}
    _cuda_call(ctx, record, torch.cuda.reset_peak_memory_stats, ctx.device)
    began = time.perf_counter()
    try:
        with deadline(left - 5):
            section.run(ctx, record)
        failed = [name for name, c in record.checks.items() if not c["ok"]]
        result["status"] = "fail" if failed else "pass"
        if failed:
            result["failed_checks"] = failed
    except BudgetExhausted as err:
        result = {"status": "stopped", "note": f"{err}; the figures so far are kept"}
        print(f"stopped: {err}", file=sys.stderr)
    except Exception as err:
        result = {"status": "error", "error": f"{type(err).__name__}: {err}"}
        result["traceback"] = traceback.format_exc()[-6000:]
        print(result["traceback"], file=sys.stderr)
    result["seconds"] = round(time.perf_counter() - began, 2)
    peak = _cuda_call(ctx, record, torch.cuda.max_memory_allocated, ctx.device)
    if peak is not None:
        result["cuda_peak_gib"] = peak / 2**30
    gc.collect()
    _cuda_call(ctx, record, torch.cuda.empty_cache)
    result.update(figures=record.figures, checks=record.checks)
    if record.notes:
        result["notes"] = record.notes
    print_result(section.name, result)
    return result


def _cuda_call(ctx: Context, record: Record, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` on CUDA machines (else ``None``); an error — e.g. the sticky one a failed
    kernel leaves — becomes a note of the section instead of ending the whole check."""
    if ctx.device.type != "cuda":
        return None
    try:
        return fn(*args)
    except Exception as err:
        record.notes.append(f"{fn.__name__}: {type(err).__name__}: {err}")
        return None


def print_result(name: str, result: dict[str, Any]) -> None:
    """The section's status, checks, ratios and notes, for the log."""
    for check, row in result["checks"].items():
        limit = f"<= {row['most']:g}" if row["most"] is not None else f">= {row['least']:g}"
        print(f"  {'ok  ' if row['ok'] else 'FAIL'} {check}: {row['value']:.4g} ({limit})")
    for path, ratios in _find(result["figures"], "ratios"):
        print(f"  ratios {path}: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    for note in result.get("notes", []):
        print(f"  note: {note}")
    print(f"{name}: {result['status']} in {result['seconds']:.1f} s", flush=True)


def _find(tree: Any, key: str, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every ``key`` in nested dicts."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            if name == key:
                yield path or ".", value
            else:
                yield from _find(value, key, f"{path}/{name}" if path else str(name))


# --------------------------------------------------------------------------- shared helpers


def errors(reference: torch.Tensor, value: torch.Tensor) -> dict[str, float]:
    """``max_abs``, ``max_rel`` (over the reference's largest magnitude) and ``rel_l2``."""
    ref = reference.detach().double().cpu()
    diff = (value.detach().double().cpu() - ref).abs()
    max_abs = diff.max().item()
    scale = ref.abs().max().item()
    norm = ref.norm().item()
    return {
        "max_abs": max_abs,
        "max_rel": max_abs / scale if scale > 0 else max_abs,
        "rel_l2": diff.norm().item() / norm if norm > 0 else diff.norm().item(),
    }


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and convolutions on or off inside the block (the flags are global)."""
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn)
    try:
        saved = [(f, "allow_tf32", f.allow_tf32) for f in flags]
        new = [enabled] * len(flags)
    except RuntimeError:  # torch refuses the legacy flags once the fp32_precision API was used
        saved = [(f, "fp32_precision", f.fp32_precision) for f in flags]
        new = ["tf32" if enabled else "ieee"] * len(flags)
    for (owner, name, _), value in zip(saved, new, strict=True):
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def precision(device: torch.device, name: str) -> contextlib.AbstractContextManager:
    """``fp32`` (TF32 off), ``tf32`` (on) or ``bf16`` (autocast; TF32 flags untouched)."""
    if name == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return tf32(name == "tf32")


def backward_precision(device: torch.device, name: str) -> contextlib.AbstractContextManager:
    """The backward's side of :func:`precision`: the same TF32 setting for ``fp32`` and ``tf32``
    (the flags are read when each kernel runs, and cuDNN's default is TF32 on), nothing for
    ``bf16`` (autocast covers forward and loss only; the backward follows the forward's dtypes)."""
    if name == "bf16":
        return contextlib.nullcontext()
    return tf32(name == "tf32")


def seeded(*shape: int, seed: int, low_high: tuple[float, float] | None = None) -> torch.Tensor:
    """A CPU tensor of the given shape from its own generator (same values on every device)."""
    generator = torch.Generator().manual_seed(seed)
    if low_high is None:
        return torch.randn(*shape, generator=generator)
    low, high = low_high
    return low + (high - low) * torch.rand(*shape, generator=generator)


def forward_backward(
    module: torch.nn.Module, x: torch.Tensor, *, device: torch.device, name: str
) -> dict[str, Any]:
    """Eval-mode forward and backward of a copy of ``module`` on ``device`` in precision ``name``.

    The loss is ``Σ out·w`` with a fixed random ``w``, so every output element gets a gradient.
    """
    module = copy.deepcopy(module).to(device).eval()
    x = x.detach().clone().to(device).requires_grad_()
    with precision(device, name):
        out = module(x)
    weight = seeded(*out.shape, seed=7).to(device)
    with backward_precision(device, name):
        (out.float() * weight).sum().backward()
    grads = {n: p.grad.cpu() for n, p in module.named_parameters() if p.grad is not None}
    return {"out": out.detach().float().cpu(), "grad_input": x.grad.cpu(), "params": grads}


def compare_runs(reference: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    """Errors of the output, the input gradient, all parameter gradients as one vector, and
    the parameter whose gradient has the largest ``max_rel`` (information)."""
    names = list(reference["params"])
    params = {n: errors(reference["params"][n], value["params"][n]) for n in names}
    worst = max(names, key=lambda n: params[n]["max_rel"])
    return {
        "out": errors(reference["out"], value["out"]),
        "grad_input": errors(reference["grad_input"], value["grad_input"]),
        "grad_params": {
            **errors(
                *(
                    torch.cat([g[n].flatten() for n in names])
                    for g in (reference["params"], value["params"])
                )
            ),
            "count": len(names),
        },
        "worst_param": {"name": worst, **params[worst]},
    }


def check_parity(record: Record, label: str, found: dict[str, Any], name: str) -> None:
    """Output ``max_rel`` and gradient ``rel_l2`` within the limits of precision ``name``."""
    limits = TOLERANCES["bf16" if name == "bf16" else "fp32"]
    record.check(f"{label} {name} out max_rel", found["out"]["max_rel"], most=limits["out"])
    for part in ("grad_input", "grad_params"):
        record.check(f"{label} {name} {part} rel_l2", found[part]["rel_l2"], most=limits["grad"])


def parity(record: Record, ctx: Context, label: str, module: torch.nn.Module, x: torch.Tensor):
    """``module`` on ``ctx.device`` (float32, bf16 autocast) against float32 on the CPU."""
    cpu = torch.device("cpu")
    reference = forward_backward(module, x, device=cpu, name="fp32")
    rows = {}
    for name in ("fp32", "bf16"):
        found = compare_runs(reference, forward_backward(module, x, device=ctx.device, name=name))
        check_parity(record, label, found, name)
        rows[name] = found
    record.figures[label] = rows


def sync_clock(device: torch.device) -> Callable[[], float]:
    """``time.perf_counter`` after waiting for the device's queued work."""
    if device.type != "cuda":
        return time.perf_counter

    def clock() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return clock


def train_step(
    module: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    context,
    backward_context=contextlib.nullcontext,
):
    """A training step run: forward and L1 loss in ``context()``, backward in
    ``backward_context()``, AdamW step."""
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-5)

    def run() -> None:
        with context():
            loss = F.l1_loss(module(x).float(), target)
        with backward_context():
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def forward_step(module: torch.nn.Module, x: torch.Tensor, context):
    """A forward run (eval, no autograd, default band settings) in ``context()``."""
    base = forward_run(module, x, {})

    def run() -> None:
        with context():
            base()

    return run


def time_runs(runs: dict, ctx: Context) -> dict:
    """Warm up every run (its CUDA peak memory measured), then time them ABBA-interleaved."""
    rows: dict = {}
    for key, run in runs.items():
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)
        for _ in range(ctx.plan.warmup):
            run()
        rows[key] = {}
        if ctx.device.type == "cuda":
            rows[key]["cuda_peak_gib"] = torch.cuda.max_memory_allocated(ctx.device) / 2**30
    clock = sync_clock(ctx.device)
    for key, times in abba_times(runs, repeats=ctx.plan.repeats, clock=clock).items():
        rows[key].update(summarise(times))
    return rows


def pair_timings(
    ctx: Context,
    pair: dict[str, torch.nn.Module],
    *,
    x: torch.Tensor,
    target: torch.Tensor | None,
    macs: dict[str, int],
    precisions: tuple[str, ...],
) -> dict[str, Any]:
    """Forward (and, given a target, training-step) timings of two modules, first/second ratios."""
    first, second = pair
    modes = {"fwd": forward_step} if target is None else {"train": train_step}
    out: dict[str, Any] = {"macs": macs, "mac_ratio": macs[first] / macs[second]}
    for mode, make in modes.items():
        runs = {}
        for prec in precisions:
            for name, module in pair.items():
                context = partial(precision, ctx.device, prec)
                if target is None:
                    runs[f"{name}/{prec}"] = make(module, x, context)
                else:
                    backward = partial(backward_precision, ctx.device, prec)
                    runs[f"{name}/{prec}"] = make(module, x, target, context, backward)
        rows = time_runs(runs, ctx)
        out[mode] = rows
        for prec in precisions:
            ratio = rows[f"{first}/{prec}"]["median_s"] / rows[f"{second}/{prec}"]["median_s"]
            out.setdefault("ratios", {})[f"{mode}_{prec}"] = ratio
            out["ratios"][f"{mode}_{prec}_per_mac"] = ratio / out["mac_ratio"]
    return out


# --------------------------------------------------------------------------- sections


def parity_layer(ctx: Context, record: Record) -> None:
    """HiIRLayer and SwinLayer on the device against the CPU (float32, bf16 autocast)."""
    dim, heads, tree = ctx.plan.layer
    batch, height, width = ctx.plan.layer_input
    torch.manual_seed(0)
    layers = {
        "HiIRLayer": HiIRLayer(dim, heads, tree, data_format="BHWC"),
        "SwinLayer": SwinLayer(dim, heads, ctx.plan.swin_window, data_format="BHWC"),
    }
    x = seeded(batch, height, width, dim, seed=1)
    record.figures["input"] = list(x.shape)
    for label, layer in layers.items():
        parity(record, ctx, label, layer, x)


def parity_models(ctx: Context, record: Record) -> None:
    """The columnar SR models and the shipped U-shape denoiser on the device against the CPU."""
    for name, overrides in ctx.plan.sr_models.items():
        torch.manual_seed(0)
        model = create_model(name, **overrides)
        x = seeded(1, model.meta.in_chans, *ctx.plan.sr_input, seed=2, low_high=(0.0, 1.0))
        parity(record, ctx, name, model, x)
    model = create_model(ctx.plan.denoiser, pretrained=True)
    x = seeded(1, model.meta.in_chans, *ctx.plan.dn_input, seed=3, low_high=(0.0, 1.0))
    parity(record, ctx, ctx.plan.denoiser, model, x)
    record.figures["overrides"] = {k: repr(v) for k, v in ctx.plan.sr_models.items() if v}


def xformers_status() -> tuple[str | None, str]:
    """``(version, note)``: the version when ``xformers.ops`` imports, else ``None`` and why."""
    if importlib.util.find_spec("xformers") is None:
        return None, "xformers is not installed"
    try:
        import xformers
        import xformers.ops
    except Exception as err:  # a broken build raises more than ImportError
        return None, f"xformers does not import: {type(err).__name__}: {err}"
    return xformers.__version__, "importable"


def _forced_sdpa(sdpa: Callable, restriction: Callable) -> Callable:
    """``sdpa`` run inside ``restriction()`` (``torch.nn.attention.sdpa_kernel`` of one kernel)."""

    def kernel(*args):
        with restriction():
            return sdpa(*args)

    return kernel


# Backends from optional extras: when one is installed but raises (a build that does not match
# this torch, shapes it refuses), that is recorded as a failed check and the section goes on.
OPTIONAL_BACKENDS = ("xformers",)


def attention_kernels(device: torch.device) -> dict[str, tuple[Callable, bool]]:
    """Backend name -> (kernel, required): the registered backends, and on CUDA SDPA forced
    onto each of its kernels (information: a kernel may refuse these shapes)."""
    kernels = {name: (resolve_backend(name), True) for name in ("math", "sdpa", "auto")}
    if xformers_status()[0] is not None:
        kernels["xformers"] = (resolve_backend("xformers"), True)
    if device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        sdpa = resolve_backend("sdpa")
        for forced in ("EFFICIENT_ATTENTION", "FLASH_ATTENTION", "CUDNN_ATTENTION", "MATH"):
            if hasattr(SDPBackend, forced):
                kernel = _forced_sdpa(sdpa, partial(sdpa_kernel, getattr(SDPBackend, forced)))
                kernels[f"sdpa[{forced.lower()}]"] = (kernel, False)
    return kernels


def attention_case(
    kernel: Callable, ctx: Context, *, tokens: int, dtype: torch.dtype
) -> dict[str, dict[str, float]]:
    """One kernel's output and q/k/v/bias gradients against ``math`` in float64."""
    plan, device = ctx.plan, ctx.device
    (dqk, dv), shape = plan.attn_dims, (plan.attn_windows, plan.attn_heads, tokens)
    tensors = {
        "q": seeded(*shape, dqk, seed=11),
        "k": seeded(*shape, dqk, seed=12),
        "v": seeded(*shape, dv, seed=13),
        "bias": 0.5 * seeded(1, plan.attn_heads, tokens, tokens, seed=14),
    }
    grad_out = seeded(*shape, dv, seed=15).to(device)
    scale = dqk**-0.5
    results = {}
    for label, kind, fn in (("ref", torch.float64, attention_math), ("got", dtype, kernel)):
        leaves = {n: t.clone().to(device, kind).requires_grad_() for n, t in tensors.items()}
        out = fn(leaves["q"], leaves["k"], leaves["v"], leaves["bias"], scale)
        out.backward(grad_out.to(kind))
        results[label] = {"out": out.detach(), **{n: t.grad for n, t in leaves.items()}}
    return {part: errors(results["ref"][part], results["got"][part]) for part in results["ref"]}


def layer_backend_case(ctx: Context, backend: str) -> dict[str, Any]:
    """A whole HiIRLayer on ``backend`` against the same weights on ``math`` (float32)."""
    dim, heads, tree = ctx.plan.layer
    batch, height, width = ctx.plan.layer_input
    torch.manual_seed(0)
    reference = HiIRLayer(dim, heads, tree, data_format="BHWC", backend="math")
    layer = HiIRLayer(dim, heads, tree, data_format="BHWC", backend=backend)
    layer.load_state_dict(reference.state_dict())
    x = seeded(batch, height, width, dim, seed=1)
    ref = forward_backward(reference, x, device=ctx.device, name="fp32")
    return compare_runs(ref, forward_backward(layer, x, device=ctx.device, name="fp32"))


def attention_backends(ctx: Context, record: Record) -> None:
    """Every attention kernel against float64 ``math``, then a HiIRLayer per backend."""
    version, note = xformers_status()
    record.figures["xformers"] = {"version": version, "note": note}
    if version is None:
        record.notes.append(f"xformers skipped: {note}")
    record.figures["env_backend"] = os.environ.get("TREEATTN_ATTN_BACKEND")
    kernels = attention_kernels(ctx.device)
    rows: dict[str, Any] = {}
    with tf32(False):
        for name, (kernel, required) in kernels.items():
            for dtype, prec in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
                limits = TOLERANCES[prec]
                for tokens in ctx.plan.attn_tokens:
                    key = f"{name}/{prec}/T{tokens}"
                    try:
                        found = attention_case(kernel, ctx, tokens=tokens, dtype=dtype)
                    except Exception as err:  # a forced SDPA kernel refusing the shapes
                        if required and name not in OPTIONAL_BACKENDS:
                            raise
                        rows[key] = {"required": required, "error": f"{err}"[:300]}
                        if required:  # an installed optional backend that fails: a failed check
                            record.check(f"{key} ran", 0.0, least=1.0)
                        continue
                    rows[key] = {"required": required, **found}
                    grads = max(found[p]["rel_l2"] for p in ("q", "k", "v", "bias"))
                    out_ok = found["out"]["max_rel"] <= limits["out"]
                    grad_ok = grads <= limits["grad"]
                    rows[key]["ok"] = out_ok and grad_ok
                    if required:
                        out = found["out"]["max_rel"]
                        record.check(f"{key} out max_rel", out, most=limits["out"])
                        record.check(f"{key} grads rel_l2", grads, most=limits["grad"])
        record.figures["kernels"] = rows
        layers = {}
        for backend in [name for name, (_, required) in kernels.items() if required]:
            if backend == "math":
                continue
            try:
                layers[backend] = found = layer_backend_case(ctx, backend)
            except Exception as err:
                if backend not in OPTIONAL_BACKENDS:
                    raise
                layers[backend] = {"error": f"{type(err).__name__}: {err}"[:300]}
                record.check(f"HiIRLayer[{backend}] ran", 0.0, least=1.0)
                continue
            check_parity(record, f"HiIRLayer[{backend}] vs math", found, "fp32")
        record.figures["layers"] = layers


def band_restore(ctx: Context, record: Record) -> None:
    """``restore_image`` of a large image band-wise against whole maps (and in bf16)."""
    model = create_model(ctx.plan.denoiser, pretrained=True).to(ctx.device)
    size = ctx.plan.band_size
    img = seeded(1, size, size, seed=4, low_high=(0.0, 1.0))
    clock = sync_clock(ctx.device)

    def timed(settings: dict[str, Any], *, bf16: bool) -> tuple[torch.Tensor, dict[str, float]]:
        """One untimed run (library set-up, the allocator's growth), then the median of
        ``BAND_REPEATS``; the CUDA peak memory of the timed runs."""
        with band_execution(**settings):
            restore_image(model, img, bf16=bf16)
            if ctx.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(ctx.device)
            seconds = []
            for _ in range(BAND_REPEATS):
                began = clock()
                out = restore_image(model, img, bf16=bf16)
                seconds.append(clock() - began)
        row = {"seconds": sorted(seconds)[len(seconds) // 2], "runs": len(seconds)}
        if ctx.device.type == "cuda":
            row["cuda_peak_gib"] = torch.cuda.max_memory_allocated(ctx.device) / 2**30
        return out, row

    bands = ctx.plan.band_settings
    record.figures["image"] = [size, size]
    record.figures["band_settings"] = bands or "defaults"
    with tf32(False):
        whole, record.figures["whole"] = timed({"enabled": False}, bf16=False)
        banded, record.figures["banded"] = timed(bands, bf16=False)
    found = errors(whole, banded)
    record.figures["banded_vs_whole"] = found
    record.check("banded vs whole max_abs", found["max_abs"], most=BAND_TOLERANCE)
    if not model.meta.supports_bf16:
        record.notes.append(f"{ctx.plan.denoiser} does not claim bf16: no bf16 restore")
        return
    whole16, record.figures["whole_bf16"] = timed({"enabled": False}, bf16=True)
    banded16, record.figures["banded_bf16"] = timed(bands, bf16=True)
    record.figures["bf16_banded_vs_whole"] = errors(whole16, banded16)
    record.figures["bf16_vs_fp32"] = errors(whole, whole16)
    bf16_error = record.figures["bf16_vs_fp32"]["max_rel"]
    record.check("bf16 vs fp32 max_rel", bf16_error, most=TOLERANCES["bf16"]["out"])


def load_recipe(name: str):
    """``recipes/<name>.py``'s ``SPEC`` (the recipes folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPEC


def train_denoise_bf16(ctx: Context, record: Record) -> None:
    """The denoise recipe in bf16; steps/s between the first and the last logged step (so
    without start-up, and without validation, which runs only at the end)."""
    # (imported here: the engine draws curves with matplotlib, which only this section needs)
    from treeattn.engine import run_recipe
    from treeattn.engine.curves import read_log

    output = ctx.work_dir / "train_denoise_bf16"
    minutes = max(ctx.left_s() - 40, 30) / 60  # leave the final evaluation its time
    argv = [
        *("--mixed-precision", "bf16", "--val-every", "0", "--save-images", "0"),
        *("--no-with-tracking", "--overwrite", "--output-dir", str(output)),
        *("--max-minutes", f"{minutes:.2f}", *ctx.plan.train_args),
    ]
    record.figures["argv"] = " ".join(argv)
    began = time.perf_counter()
    means = run_recipe(load_recipe("denoise"), argv)
    record.figures["wall_s"] = time.perf_counter() - began
    losses = [(r["step"], r["time_s"], r["loss"]) for r in read_log(output) if r["kind"] == "train"]
    if len(losses) < 2:
        raise RuntimeError(f"the run logged {len(losses)} training losses; expected several")
    (step0, time0, loss0), (step1, time1, loss1) = losses[0], losses[-1]
    record.figures["steps"] = step1
    record.figures["steps_per_s"] = (step1 - step0) / (time1 - time0)
    record.figures["loss_curve"] = [[step, loss] for step, _, loss in losses]
    record.figures.update(loss_first=loss0, loss_last=loss1)
    record.figures["test"] = means
    config = (output / "config.yaml").read_text()
    record.figures["mixed_precision"] = next(
        (
            line.split(":", 1)[1].strip()
            for line in config.splitlines()
            if "mixed_precision" in line
        ),
        None,
    )
    record.check("loss last/first", loss1 / loss0, most=0.9)  # the loss fell by 10 % or more
    for test, row in means.items():
        gain = row["psnr"] - row["input_psnr"]
        record.check(f"{test} PSNR gain dB", gain, least=ctx.plan.train_min_psnr_gain)


def timing_layer(ctx: Context, record: Record) -> None:
    """HiIRLayer against SwinLayer, forward and training step, per size and precision."""
    dim, heads, tree = ctx.plan.layer
    builders = {
        "HiIRLayer": partial(HiIRLayer, dim, heads, tree),
        "SwinLayer": partial(SwinLayer, dim, heads, ctx.plan.swin_window),
    }
    torch.manual_seed(0)
    pair = {n: b(data_format="BHWC").to(ctx.device) for n, b in builders.items()}
    batch = ctx.plan.timing_layer_batch
    record.figures["layers"] = {
        "HiIRLayer": f"HiIRLayer({dim}, {heads}, {tree})",
        "SwinLayer": f"SwinLayer({dim}, {heads}, {ctx.plan.swin_window})",
    }
    record.figures["batch"] = batch
    for size in ctx.plan.timing_layer_sizes:
        macs = {
            n: count_forward_macs(partial(b, backend="math"), size, in_chans=dim)
            for n, b in builders.items()
        }
        x = seeded(batch, size, size, dim, seed=5).to(ctx.device)
        common = {"x": x, "macs": macs, "precisions": ctx.plan.precisions}
        fwd = pair_timings(ctx, pair, target=None, **common)
        train = pair_timings(ctx, pair, target=torch.randn_like(x), **common)
        record.figures[str(size)] = merge_timings(fwd, train)


def merge_timings(fwd: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    return {**fwd, "train": train["train"], "ratios": {**fwd["ratios"], **train["ratios"]}}


def build_timing_models(ctx: Context) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    overrides = ctx.plan.timing_model_overrides
    return {name: create_model(name, **overrides) for name in ctx.plan.timing_models}


def model_macs(ctx: Context, size: int) -> dict[str, int]:
    overrides = {**ctx.plan.timing_model_overrides, "backend": "math"}
    return {
        name: count_forward_macs(partial(create_model, name, **overrides), size, in_chans=3)
        for name in ctx.plan.timing_models
    }


def timing_model(ctx: Context, record: Record) -> None:
    """Hi-IR model against its Swin twin, forward per size, training step per training size."""
    pair = {n: m.to(ctx.device) for n, m in build_timing_models(ctx).items()}
    batch = ctx.plan.timing_model_batch
    scale = next(iter(pair.values())).meta.scale
    record.figures["batch"] = batch
    for size in ctx.plan.timing_model_sizes:
        x = seeded(batch, 3, size, size, seed=6, low_high=(0.0, 1.0)).to(ctx.device)
        common = {"x": x, "macs": model_macs(ctx, size), "precisions": ctx.plan.precisions}
        row = pair_timings(ctx, pair, target=None, **common)
        if size in ctx.plan.timing_model_train_sizes:
            target = seeded(batch, 3, size * scale, size * scale, seed=8).to(ctx.device)
            row = merge_timings(row, pair_timings(ctx, pair, target=target, **common))
        record.figures[str(size)] = row


def dynamo_counts() -> dict[str, int]:
    """Graph breaks and graphs dynamo has counted so far (empty when unavailable)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return {
        "graph_breaks": sum(counters["graph_break"].values()),
        "unique_graphs": counters["stats"].get("unique_graphs", 0),
    }


def compiled_pair(ctx: Context, pair: dict, x: torch.Tensor, target: torch.Tensor) -> dict:
    """Eager and compiled timings (float32, TF32 off) of two modules; per compiled module the
    seconds of its first forward and first training step (the compilations) and dynamo's counts."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    fp32 = partial(precision, ctx.device, "fp32")
    fp32_backward = partial(backward_precision, ctx.device, "fp32")
    builders = {
        "fwd": lambda m: forward_step(m, x, fp32),
        "train": lambda m: train_step(m, x, target, fp32, fp32_backward),
    }
    clock = sync_clock(ctx.device)
    torch._dynamo.reset()
    modules, info = dict(pair), {}
    for name, module in pair.items():
        counters.clear()
        compiled = torch.compile(module, backend=ctx.plan.compile_backend)
        row = {}
        for mode, build in builders.items():
            run = build(compiled)  # built just before it runs: building sets train/eval mode
            began = clock()
            run()
            row[f"{mode}_first_call_s"] = clock() - began
        info[name] = {**row, **dynamo_counts()}
        modules[f"{name}+compile"] = compiled
    rows = {
        mode: time_runs({n: build(m) for n, m in modules.items()}, ctx)
        for mode, build in builders.items()
    }
    first, second = pair
    ratios = {}
    for mode, times in rows.items():
        median = {name: row["median_s"] for name, row in times.items()}
        for name in pair:
            ratios[f"{mode}_{name}_compiled_vs_eager"] = median[f"{name}+compile"] / median[name]
        ratios[f"{mode}_compiled_{first}_vs_{second}"] = (
            median[f"{first}+compile"] / median[f"{second}+compile"]
        )
    return {"compile": info, **rows, "ratios": ratios}


def timing_compile(ctx: Context, record: Record) -> None:
    """The layer pair, then (time allowing) the model pair, eager against ``torch.compile``."""
    record.figures["backend"] = ctx.plan.compile_backend
    dim, heads, tree = ctx.plan.layer
    size, batch = ctx.plan.timing_layer_sizes[0], ctx.plan.timing_layer_batch
    torch.manual_seed(0)
    layers = {
        "HiIRLayer": HiIRLayer(dim, heads, tree, data_format="BHWC").to(ctx.device),
        "SwinLayer": SwinLayer(dim, heads, ctx.plan.swin_window, data_format="BHWC").to(ctx.device),
    }
    x = seeded(batch, size, size, dim, seed=5).to(ctx.device)
    record.figures["layers"] = {"size": size, "batch": batch}
    record.figures["layers"].update(compiled_pair(ctx, layers, x, torch.randn_like(x)))
    if not ctx.plan.compile_models:
        record.notes.append("models not compiled in this plan (--dry-run)")
        return
    need = 2 * ctx.plan.need_s.get("timing_compile", 0.0)
    if ctx.left_s() < need:
        record.notes.append(f"models not compiled: {ctx.left_s():.0f} s left, want {need:.0f} s")
        return
    models = {n: m.to(ctx.device) for n, m in build_timing_models(ctx).items()}
    size, batch = ctx.plan.timing_model_train_sizes[0], ctx.plan.timing_model_batch
    scale = next(iter(models.values())).meta.scale
    x = seeded(batch, 3, size, size, seed=6, low_high=(0.0, 1.0)).to(ctx.device)
    target = seeded(batch, 3, size * scale, size * scale, seed=8).to(ctx.device)
    record.figures["models"] = {"size": size, "batch": batch}
    record.figures["models"].update(compiled_pair(ctx, models, x, target))


SECTIONS = (
    Section("parity_layer", parity_layer),
    Section("parity_models", parity_models),
    Section("attention_backends", attention_backends),
    Section("band_restore", band_restore),
    Section("train_denoise_bf16", train_denoise_bf16),
    Section("timing_layer", timing_layer),
    Section("timing_model", timing_model),
    Section("timing_compile", timing_compile),
)


# --------------------------------------------------------------------------- driver


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def tf32_flags() -> dict[str, Any]:
    """TF32 settings as torch has them (legacy flags, else the ``fp32_precision`` API)."""
    flags = {"matmul": torch.backends.cuda.matmul, "cudnn": torch.backends.cudnn}
    try:
        return {name: owner.allow_tf32 for name, owner in flags.items()}
    except RuntimeError:
        return {name: owner.fp32_precision for name, owner in flags.items()}


def hardware_meta(device: torch.device, args: argparse.Namespace, load_before: float) -> dict:
    """Machine, torch/CUDA versions, the GPU and the run's settings."""
    meta = machine_meta(load_before)
    meta.update(
        python=platform.python_version(),
        device=str(device),
        dry_run=args.dry_run,
        budget_s=args.budget_s,
        cuda_available=torch.cuda.is_available(),
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        tf32_defaults=tf32_flags(),
        packages={p: _version(p) for p in ("accelerate", "triton", "xformers", "einops")},
        command=" ".join([Path(sys.executable).name, *sys.argv]),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        meta.update(
            device_name=torch.cuda.get_device_name(device),
            capability=list(torch.cuda.get_device_capability(device)),
            gpu_memory_gib=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count,
        )
    return meta


class Tee:
    """A text stream writing to a console stream and a log file (progress-bar redraws,
    which carry a carriage return, go to the console only)."""

    def __init__(self, stream, log) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        if "\r" not in text and "\x1b" not in text:
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def summary(sections: dict[str, dict]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {status: [] for status in STATUSES}
    for name, row in sections.items():
        groups[row["status"]].append(name)
    return groups


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON and the log")
    parser.add_argument("--budget-s", type=float, default=420.0, help="wall-clock budget")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, seconds")
    names = [s.name for s in SECTIONS]
    parser.add_argument("--sections", nargs="+", choices=names, default=names)
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the training run here (default: a temp dir)",
    )
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error(f"--budget-s must be positive, got {args.budget_s}")
    return args


def run_all(args: argparse.Namespace, work_dir: Path) -> int:
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    cuda = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if cuda else "cpu")
    plan = DRY if args.dry_run else FULL
    ctx = Context(plan=plan, device=device, work_dir=work_dir, start=start, budget_s=args.budget_s)
    meta = hardware_meta(device, args, load_before)
    print(f"{meta.get('device_name', device)}: torch {meta['torch']}, CUDA {meta['cuda']}")
    sections: dict[str, dict] = {}
    for section in SECTIONS:
        if section.name not in args.sections:
            continue
        if device.type != "cuda" and not args.dry_run:
            note = "CUDA is not available here; --dry-run walks through every section on the CPU"
            sections[section.name] = {"status": "skipped", "note": note, "seconds": 0.0}
        else:
            sections[section.name] = run_section(section, ctx)
        meta["elapsed_s"] = round(time.perf_counter() - start, 2)
        save_results(args.out, NAME, meta, {"sections": sections, "summary": summary(sections)})
    groups = summary(sections)
    print(
        "\n" + "  ".join(f"{status}: {', '.join(names) or '-'}" for status, names in groups.items())
    )
    if device.type != "cuda" and not args.dry_run:
        return 1
    return 1 if groups["fail"] or groups["error"] else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / f"{NAME}.log").open("w") as log:
        tee_out, tee_err = Tee(sys.stdout, log), Tee(sys.stderr, log)
        with contextlib.redirect_stdout(tee_out), contextlib.redirect_stderr(tee_err):
            if args.work_dir is not None:
                args.work_dir.mkdir(parents=True, exist_ok=True)
                return run_all(args, args.work_dir)
            with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
                return run_all(args, Path(work))


if __name__ == "__main__":
    sys.exit(main())
