"""The Urban100 split of the denoiser work: report on images 001-020, validate on crops of 091-100.

The long-range denoiser is chosen by validation PSNR on regular structure (buildings, windows) and
reported on images it was never chosen on. The split, fixed here once:

* **report** — ``img_001`` … ``img_020`` (``REPORT``), whole images, the subset
  ``docs/QUALITY.md`` and issue 17 compare DnCNN-S on; a study that needs more images for its
  power takes the first ``count`` (:func:`report`, at most 90: never the validation images);
* **validation** — one centred 256×256 crop of each of ``img_091`` … ``img_100``
  (``VALIDATION``), written by this script as PNGs to a folder outside the repository::

    python benchmarks/urban_split.py --out ../runs/data/Urban100_val

Images 021-090 are used by neither (but by :func:`report` subsets longer than 20).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
URBAN100 = ROOT.parent / "shared" / "data" / "test" / "Urban100"
VALIDATION = tuple(f"img_{i:03d}.png" for i in range(91, 101))
CROP = 256

__all__ = [
    "CROP",
    "REPORT",
    "URBAN100",
    "VALIDATION",
    "centre_crop",
    "link_report",
    "report",
    "write_validation",
]


def report(count: int) -> tuple[str, ...]:
    """The first ``count`` Urban100 images (``img_001.png`` …), scored whole.

    Raises:
        ValueError: ``count`` is below 1 or reaches the validation images (``img_091`` on).
    """
    most = int(VALIDATION[0][4:7]) - 1
    if not 1 <= count <= most:
        raise ValueError(
            f"a report subset holds 1 to {most} images (the rest validate), got {count}"
        )
    return tuple(f"img_{i:03d}.png" for i in range(1, count + 1))


#: The report subset of the denoiser work (issue 17) and the depth study's pilot.
REPORT = report(20)


def centre_crop(image: Image.Image, size: int = CROP) -> Image.Image:
    """The centred ``size``×``size`` crop of ``image`` (which must be at least that large)."""
    width, height = image.size
    if width < size or height < size:
        raise ValueError(f"image of {width}x{height} is smaller than the {size}x{size} crop")
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def _images(source: Path, names: tuple[str, ...], out: Path) -> list[tuple[Path, Path]]:
    """``(source image, target in out)`` per name; ``out`` is created, every source checked."""
    missing = [name for name in names if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{source / missing[0]} is missing: --source must be the Urban100 folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    return [(source / name, out / name) for name in names]


def write_validation(source: Path, out: Path) -> list[Path]:
    """Write the validation crops of the images in ``source`` to ``out``; return their paths."""
    for path, target in _images(source, VALIDATION, out):
        if not target.is_file():
            with Image.open(path) as image:
                centre_crop(image.convert("L")).save(target)
    return [out / name for name in VALIDATION]


def link_report(source: Path, out: Path, names: tuple[str, ...] = REPORT) -> Path:
    """A folder ``out`` of links to the report images ``names`` of ``source``; return it.

    Raises:
        ValueError: ``out`` already holds other images (another subset's folder).
    """
    held = {p.name for p in out.iterdir()} if out.is_dir() else set()
    if held - set(names):
        raise ValueError(f"{out} holds images outside this report subset: give another folder")
    for path, link in _images(source, names, out):
        if not link.exists():
            link.symlink_to(path.resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=URBAN100, help="the Urban100 folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the crops")
    args = parser.parse_args(argv)
    paths = write_validation(args.source, args.out)
    print(f"wrote {len(paths)} crops of {CROP}x{CROP} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
