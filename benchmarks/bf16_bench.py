"""bfloat16 autocast against float32 on this CPU: training step and inference (not a test).

Issue 19, point 3: where the CPU has native bfloat16 (``avx512_bf16`` or ``amx_bf16`` in
``/proc/cpuinfo``), how much faster does ``--mixed-precision bf16`` make a training step, and what
does it cost in accuracy? Each case runs in float32 and under ``torch.autocast("cpu",
torch.bfloat16)`` in one process, ABBA-interleaved (float32, bf16, bf16, float32, ...), timed by
the CPU time of the thread (``--threads 1``, the default: steady on a shared machine) or by the
wall clock (more threads). Cases:

* ``layer`` — one ``HiIRLayer(180, 6, (16, 64))`` and one ``SwinLayer(180, 6, 8)`` (channels-last
  input) at 64² and 128²: forward, ``square().mean()``, backward;
* ``model`` — the main job's model (``hiir_unet_tiny``, 1 channel, the recipe's defaults: batch 8
  of 64² crops): forward, L1 loss, backward, AdamW step; and its inference on one 256² image.

Besides the time ratio (float32 / bf16: above 1, bf16 is faster) each case reports the accuracy of
one bf16 step against float32 from the same weights and input: the largest relative error of the
output and of the input's gradient (``‖a − b‖ / ‖b‖``). The end-to-end PSNR effect is the main job
itself run both ways (``accelerate launch recipes/denoise.py --mixed-precision bf16``), written in
``docs/performance.md``.

Usage::

    python benchmarks/bf16_bench.py                  # JSON: benchmarks/results/bf16_bench.json
    python benchmarks/bf16_bench.py --repeats 2 --sizes 64 --cases layer
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from benchlib import abba_times, machine_meta, report_load, save_results, summarise

from treeattn.layers import HiIRLayer, SwinLayer
from treeattn.models import create_model

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
BOTH = (False, True)  # float32, bf16
layer_input_channels = 180  # the width of LAYERS
LAYERS: dict[str, Callable[[], torch.nn.Module]] = {
    "hiir_p16_P64": lambda: HiIRLayer(180, 6, (16, 64), data_format="BHWC"),
    "swin_w8": lambda: SwinLayer(180, 6, 8, data_format="BHWC"),
}


def bf16_flags() -> list[str]:
    """The native-bfloat16 flags this CPU reports (empty when none, or not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    return [flag for flag in BF16_FLAGS if flag in flags]


def precision(bf16: bool):
    """The autocast context of one precision (float32: none)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``‖a − b‖ / ‖b‖`` in float64."""
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def layer_step(layer: torch.nn.Module, x: torch.Tensor, *, bf16: bool) -> tuple[torch.Tensor, ...]:
    """One forward and backward of ``layer`` on ``x``; returns the output and ``x``'s gradient."""
    x = x.detach().requires_grad_(True)
    with precision(bf16):
        out = layer(x)
    out.float().square().mean().backward()
    layer.zero_grad(set_to_none=True)
    return out.detach().float(), x.grad


def layer_cases(size: int) -> dict[str, dict[bool, Callable[[], tuple[torch.Tensor, ...]]]]:
    """Per layer, the float32 and bf16 training steps on one ``size²`` map."""
    torch.manual_seed(0)
    x = torch.randn(1, size, size, layer_input_channels)
    cases = {}
    for name, build in LAYERS.items():
        layer = build()
        cases[f"{name}_{size}"] = {bf16: partial(layer_step, layer, x, bf16=bf16) for bf16 in BOTH}
    return cases


def model_step(model: torch.nn.Module, optimizer, x, y, *, bf16: bool) -> tuple[torch.Tensor, ...]:
    """One training step of the main job's model; returns its output and ``x``'s gradient."""
    x = x.detach().requires_grad_(True)
    with precision(bf16):
        out = model(x)
    F.l1_loss(out.float(), y).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return out.detach().float(), x.grad


def model_infer(model: torch.nn.Module, x: torch.Tensor, *, bf16: bool) -> tuple[torch.Tensor]:
    """The main job's model restoring one image, no autograd."""
    with torch.no_grad(), precision(bf16):
        return (model(x).float(),)


def model_cases() -> dict[str, dict[bool, Callable[[], tuple[torch.Tensor, ...]]]]:
    """The main job's model: a training step (batch 8 of 64²) and a 256² inference, each way.

    AdamW runs with a learning rate of 0: every step costs what a real one does, and the weights
    stay the same from run to run (so the accuracy check compares like with like).
    """
    torch.manual_seed(0)
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    clean = torch.rand(8, 1, 64, 64)
    noisy = clean + 25 / 255 * torch.randn_like(clean)
    image = torch.rand(1, 1, 256, 256)
    evaluated = create_model("hiir_unet_tiny", in_chans=1, out_chans=1).eval()
    return {
        "unet_tiny_train_b8_64": {
            bf16: partial(model_step, model, optimizer, noisy, clean, bf16=bf16) for bf16 in BOTH
        },
        "unet_tiny_infer_256": {
            bf16: partial(model_infer, evaluated, image, bf16=bf16) for bf16 in BOTH
        },
    }


def accuracy(runs: dict[bool, Callable[[], tuple[torch.Tensor, ...]]]) -> dict[str, float]:
    """bf16 against float32: one run each, from the same weights and input."""
    reference = runs[False]()
    low = runs[True]()
    names = ("output", "input_grad")
    return {
        f"{n}_rel_err": relative_error(a, b) for n, a, b in zip(names, low, reference, strict=False)
    }


def bench(cases: dict, *, repeats: int, clock: Callable[[], float]) -> dict[str, dict]:
    """Accuracy, then ABBA times of float32 and bf16, per case."""
    results = {}
    for name, runs in cases.items():
        row = accuracy(runs)
        for run in runs.values():  # warm-up (first bf16 calls pick their kernels)
            run()
        times = abba_times(runs, repeats=repeats, clock=clock)
        row["fp32"], row["bf16"] = summarise(times[False]), summarise(times[True])
        row["fp32_over_bf16"] = row["fp32"]["median_s"] / row["bf16"]["median_s"]
        results[name] = row
        print(
            f"{name:26s} fp32 {row['fp32']['median_s'] * 1e3:8.1f} ms  bf16 "
            f"{row['bf16']['median_s'] * 1e3:8.1f} ms  fp32/bf16 {row['fp32_over_bf16']:.2f}  "
            f"output err {row['output_rel_err']:.1e}"
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", choices=("layer", "model"), default=["layer", "model"]
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="layer map sizes")
    parser.add_argument("--repeats", type=int, default=4, help="timed runs per precision (ABBA)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="run without native bf16 as well")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    flags = bf16_flags()
    if not flags and not args.force:
        print(f"this CPU reports none of {', '.join(BF16_FLAGS)}: skipped (--force runs anyway)")
        return
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    cases: dict = {}
    if "layer" in args.cases:
        for size in args.sizes:
            cases |= layer_cases(size)
    if "model" in args.cases:
        cases |= model_cases()
    results = bench(cases, repeats=args.repeats, clock=clock)
    meta = machine_meta(load_before) | {"bf16_flags": flags, "clock": clock.__name__}
    report_load(meta, "fp32/bf16 above 1: bf16 autocast is faster")
    save_results(args.out, "bf16_bench", meta, results)


if __name__ == "__main__":
    main()
