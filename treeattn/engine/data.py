"""Training and test datasets of a task, from user folders or from the embedded default data.

Two kinds of data (:data:`DATA_KINDS`): ``"degraded"`` — clean images degraded on the fly
(denoising, JPEG, SR, demosaicking) — and ``"paired"`` — degraded/ground-truth folders
(deblurring, defocus, weather). With no folders given, the embedded images are used; paired tasks
then get synthetic pairs written under ``<output_dir>/synthetic``.

Before step 0 every file's header is read (:func:`check_files`, no pixels decoded): a file that is
not an image, an image smaller than the SR scale, a degraded input whose size does not match its
ground truth, or a test image too small for the validation metrics is reported then, not at the
first batch that draws it or the first validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from treeattn.engine.settings import TrainConfig, task_flags
from treeattn.engine.synthetic import make_pairs
from treeattn.engine.task import TaskSpec

__all__ = [
    "DATA_KINDS",
    "EMBEDDED",
    "BenchmarkItems",
    "EvalSet",
    "TaskData",
    "build_data",
    "check_files",
    "degradation_for",
    "make_loaders",
    "make_train_loader",
]

_TEST_SEED = 0  # test-set degradations are the same in every run
_METRIC_PROBE = 64  # metric size needs (window, border crop) are checked on sides up to this
_MAX_LISTED = 10
_GENERIC_NAMES = frozenset({"hr", "gt", "target", "groundtruth", "clean", "sharp"})


def _set_name(folder: Path) -> str:
    """A test set's name: its folder, or the parent for generic names (``Set5/HR`` -> Set5)."""
    folder = Path(folder).resolve()
    return folder.parent.name if folder.name.lower() in _GENERIC_NAMES else folder.name


@dataclass(frozen=True)
class EvalSet:
    """One test set: its dataset (whole images) and how ``evaluate_folder`` re-creates it.

    Attributes:
        name: Short name used in logs and reports (the folder, or its parent for generic
            folder names such as ``HR`` or ``gt``).
        dataset: Whole-image dataset for validation during training.
        folder: Ground-truth folder (clean images, or the paired GT folder).
        degradation: The fixed test degradation (``None`` for paired data).
    """

    name: str
    dataset: Dataset
    folder: Path
    degradation: Any = None


@dataclass(frozen=True)
class TaskData:
    """Training dataset plus the test sets of a run."""

    train: Dataset
    tests: tuple[EvalSet, ...]


class BenchmarkItems(Dataset):
    """Whole test images degraded exactly as :func:`treeattn.data.benchmark.evaluate_folder` does.

    Item ``i`` is the mod-cropped ground truth of the ``i``-th file (sorted by name) and its
    degradation with a generator seeded by ``seed + i``, so validation during training scores
    the same inputs as the final report.

    Args:
        folder: Folder of clean images.
        degradation: Callable ``(gt, generator) -> lq``.
        scale: SR factor (ground truth mod-cropped to it).
        channels: 1 or 3.
        gray_method: Colour-to-gray convention when ``channels == 1``.
        seed: Base seed (``evaluate_folder``'s default is 0).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        degradation: Any,
        scale: int,
        channels: int,
        gray_method: str = "luma",
        seed: int = 0,
    ) -> None:
        from treeattn.data.io import list_images

        self.files = list_images(folder)
        self.degradation, self.scale, self.seed = degradation, scale, seed
        self.channels, self.gray_method = channels, gray_method

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from treeattn.data.io import read_image
        from treeattn.data.transforms import mod_crop

        path = self.files[index]
        image = read_image(path, channels=self.channels, gray_method=self.gray_method)
        gt = mod_crop(image, self.scale)
        lq = self.degradation(gt, torch.Generator().manual_seed(self.seed + index))
        return {"lq": lq, "gt": gt, "name": path.stem}


def degradation_for(spec: TaskSpec, level: list[float], *, scale: int) -> Any:
    """Build the task's degradation at ``level`` (one value or a blind range)."""
    from treeattn.data.degradations import build_degradation

    params = {**spec.degradation_params}
    if spec.level is not None:
        params.update(spec.level.degradation_kwargs(level))
    if spec.degradation == "bicubic":
        params["scale"] = scale
    return build_degradation(spec.degradation, **params)


def _embedded_images(channels: int) -> tuple[Path, Path]:
    from treeattn.data import embedded

    color = channels == 3
    return embedded.train_dir(color=color), embedded.test_dir(color=color)


def _embedded_sr(channels: int) -> tuple[Path, Path]:
    from treeattn.data import embedded

    del channels  # Set5 and the colour crops are RGB; gray SR reads them as gray
    return embedded.train_dir(color=True), embedded.sr_test_dir()


# Embedded (train, test) folders per family named by TaskSpec.embedded.
EMBEDDED: dict[str, Callable[[int], tuple[Path, Path]]] = {
    "images": _embedded_images,
    "sr": _embedded_sr,
}


def _embedded(spec: TaskSpec, channels: int, *, split: int) -> Path:
    if spec.embedded not in EMBEDDED:
        raise ValueError(f"unknown embedded family {spec.embedded!r}; one of {sorted(EMBEDDED)}")
    return EMBEDDED[spec.embedded](channels)[split]


def _degraded(spec: TaskSpec, cfg: TrainConfig, *, scale: int) -> TaskData:
    from treeattn.data.datasets import DegradedFolder

    if spec.level is not None and len(cfg.level) == 2 and not cfg.test_level:
        flags = task_flags(spec)
        raise ValueError(
            f"blind training range {flags['level'].option} {cfg.level} needs a test level: "
            f"add {flags['test_level'].option} VALUE"
        )
    train_dir = cfg.train_dir or _embedded(spec, cfg.channels, split=0)
    test_dirs = cfg.test_dir or [_embedded(spec, cfg.channels, split=1)]
    common = {"scale": scale, "channels": cfg.channels, "gray_method": spec.gray_method}
    train = DegradedFolder(
        train_dir,
        degradation=degradation_for(spec, cfg.level, scale=scale),
        patch_size=cfg.patch_size,
        augment=True,
        seed=cfg.seed,
        repeat=cfg.repeat,
        **common,
    )
    test_degradation = degradation_for(spec, cfg.test_level or cfg.level, scale=scale)
    tests = tuple(
        EvalSet(
            name=_set_name(folder),
            dataset=BenchmarkItems(folder, degradation=test_degradation, seed=_TEST_SEED, **common),
            folder=Path(folder),
            degradation=test_degradation,
        )
        for folder in test_dirs
    )
    return TaskData(train=train, tests=tests)


def _paired_dataset(lq_dirs: list[Path], gt_dir: Path, *, scale: int, **kwargs: Any) -> Dataset:
    from treeattn.data.datasets import DualPixelFolder, PairedFolder

    if len(lq_dirs) == 2:  # dual-pixel files are RGB, and the views are as large as the GT
        kwargs.pop("channels")
        kwargs.pop("gray_method")
        return DualPixelFolder(*lq_dirs, gt_dir, **kwargs)
    return PairedFolder(lq_dirs[0], gt_dir, scale=scale, **kwargs)


def _pair_folders(
    spec: TaskSpec, cfg: TrainConfig, *, lq: list[str], gt: str | None, split: int
) -> tuple[list[Path], Path]:
    """The user's paired folders, or synthetic pairs of the embedded train (0) / test (1) set."""
    if lq:
        return [Path(p) for p in lq], Path(gt)
    kind = "dual_pixel" if cfg.dual_pixel else spec.synthetic
    out = Path(cfg.output_dir) / "synthetic" / ("train", "test")[split]
    source = _embedded(spec, cfg.channels, split=split)
    return make_pairs(kind, source, out, channels=cfg.channels, seed=cfg.seed + split)


def _paired(spec: TaskSpec, cfg: TrainConfig, *, scale: int) -> TaskData:
    if cfg.dual_pixel and scale != 1:
        raise ValueError(
            f"--dual-pixel views are as large as the ground truth; a model of {scale=} "
            "cannot use them"
        )
    views = 2 if cfg.dual_pixel else 1
    for name in ("train_lq", "test_lq"):
        given = getattr(cfg, name)
        if given and len(given) != views:
            raise ValueError(
                f"--{name.replace('_', '-')} got {len(given)} folder(s) but "
                f"{'--dual-pixel needs 2 (left right)' if views == 2 else 'expects 1'}; "
                "fix the folders or the --dual-pixel flag"
            )
    if bool(cfg.train_lq) != bool(cfg.train_gt) or bool(cfg.test_lq) != bool(cfg.test_gt):
        raise ValueError("give --train-lq with --train-gt (and --test-lq with --test-gt)")
    train_lq, train_gt = _pair_folders(spec, cfg, lq=cfg.train_lq, gt=cfg.train_gt, split=0)
    test_lq, test_gt = _pair_folders(spec, cfg, lq=cfg.test_lq, gt=cfg.test_gt, split=1)
    train = _paired_dataset(
        train_lq,
        train_gt,
        patch_size=cfg.patch_size,
        augment=True,
        channels=cfg.channels,
        gray_method=spec.gray_method,
        seed=cfg.seed,
        repeat=cfg.repeat,
        scale=scale,
    )
    test_data = _paired_dataset(
        test_lq,
        test_gt,
        channels=cfg.channels,
        gray_method=spec.gray_method,
        seed=_TEST_SEED,
        scale=scale,
    )
    return TaskData(
        train=train, tests=(EvalSet(name=_set_name(test_gt), dataset=test_data, folder=test_gt),)
    )


def make_train_loader(dataset: Dataset, *, batch_size: int, cfg: TrainConfig) -> DataLoader:
    """The shuffled training loader of ``dataset`` (full batches of ``batch_size``)."""
    # An explicit generator: iterating the loader then draws nothing from the global RNG, which
    # keeps a resumed run's random stream identical to a straight run's.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def make_loaders(cfg: TrainConfig, data: TaskData) -> tuple[DataLoader, list[DataLoader]]:
    """The shuffled training loader (full batches) and one whole-image loader per test set."""
    train = make_train_loader(data.train, batch_size=cfg.batch_size, cfg=cfg)
    tests = [
        DataLoader(t.dataset, batch_size=1, generator=torch.Generator().manual_seed(cfg.seed))
        for t in data.tests
    ]
    return train, tests


DATA_KINDS: dict[str, Callable[..., TaskData]] = {"degraded": _degraded, "paired": _paired}


def _files_of(dataset: Dataset) -> list[tuple[list[Path], Path]]:
    """``(degraded input files, ground-truth file)`` of a folder dataset (no inputs: degraded
    on the fly)."""
    pairs = getattr(dataset, "pairs", None)
    if pairs is not None:
        return [(list(inputs), gt) for inputs, gt in pairs]
    return [([], Path(path)) for path in getattr(dataset, "files", [])]


def _metric_problem(measure: Callable, size: tuple[int, int], channels: int) -> str | None:
    """Why the validation metrics fail on a ground truth of ``size`` (probed on zeros)."""
    probe = torch.zeros(1, channels, *(min(side, _METRIC_PROBE) for side in size))
    try:
        measure(probe, probe)
    except ValueError as error:
        return str(error)
    return None


def _file_problems(
    inputs: list[Path], gt: Path, *, scale: int, measure: Callable | None, channels: int
) -> list[str]:
    """What is wrong with one item's files, from their headers."""
    from treeattn.data.io import image_size

    try:
        height, width = image_size(gt)
        sizes = [image_size(path) for path in inputs]
    except (FileNotFoundError, ValueError) as error:
        return [str(error)]
    if min(height, width) < scale:
        return [f"{str(gt)!r} is {height}x{width}, smaller than the x{scale} scale"]
    expected = (height // scale, width // scale)
    problems = [
        f"{str(path)!r} is {size[0]}x{size[1]} but its ground truth {str(gt)!r} "
        f"({height}x{width}) needs {expected[0]}x{expected[1]} at scale {scale}"
        for path, size in zip(inputs, sizes, strict=True)
        if size != expected
    ]
    cropped = (height - height % scale, width - width % scale)
    reason = None if measure is None else _metric_problem(measure, cropped, channels)
    if reason is not None:
        problems.append(
            f"test image {str(gt)!r} ({height}x{width}) is too small for the validation "
            f"metrics ({reason})"
        )
    return problems


def check_files(data: TaskData, *, protocol: Any, scale: int, channels: int) -> None:
    """Read the header of every file of a run's data before step 0 (no pixels are decoded).

    Refuses files that are not images the readers decode (corrupt, empty, not an image),
    ground truths smaller than ``scale``, paired inputs whose size does not match their ground
    truth, and test images on which the validation metrics of ``protocol`` cannot be computed
    (e.g. a 1x1 image in an SR test set, whose border crop leaves nothing).

    Args:
        data: The run's datasets.
        protocol: The validation protocol (a name or :class:`treeattn.data.benchmark.Protocol`).
        scale: The model's SR factor.
        channels: Channels of the images as trained (1 or 3).

    Raises:
        ValueError: listing every bad file (the first few, and how many) and the fix.
    """
    from treeattn.engine.evaluate import metrics_for

    measure = metrics_for(protocol)
    problems: list[str] = []
    for dataset, is_test in [(data.train, False)] + [(t.dataset, True) for t in data.tests]:
        for inputs, gt in _files_of(dataset):
            problems += _file_problems(
                inputs,
                gt,
                scale=scale,
                measure=measure if is_test else None,
                channels=channels,
            )
    if problems:
        more = len(problems) - _MAX_LISTED
        raise ValueError(
            f"{len(problems)} data file problem(s), found before training: "
            + "; ".join(problems[:_MAX_LISTED])
            + (f"; and {more} more" if more > 0 else "")
            + ". Fix: replace or remove those files (or point to the right folders)"
        )


def build_data(spec: TaskSpec, cfg: TrainConfig, *, scale: int) -> TaskData:
    """Build the training dataset and test sets of a run (raises on missing/empty folders).

    Args:
        spec: The task.
        cfg: The run's settings.
        scale: The model's SR factor (1 for same-size tasks).

    Raises:
        FileNotFoundError: A folder does not exist.
        ValueError: A folder holds no images, inconsistent data flags, or files that fail
            :func:`check_files` (all listed).
    """
    if spec.data not in DATA_KINDS:
        raise ValueError(f"unknown data kind {spec.data!r}; choose one of {sorted(DATA_KINDS)}")
    data = DATA_KINDS[spec.data](spec, cfg, scale=scale)
    check_files(data, protocol=spec.protocol_for(scale), scale=scale, channels=cfg.channels)
    return data
