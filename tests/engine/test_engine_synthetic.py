"""Synthetic pairs for the paired tasks' quick defaults."""

from __future__ import annotations

import pytest
import torch

from treeattn.data.io import read_image, write_image
from treeattn.engine.synthetic import SYNTHETIC, make_pairs, motion_kernel


def test_kernels_and_views_keep_shape_and_mean() -> None:
    kernel = motion_kernel(torch.Generator().manual_seed(0))
    assert kernel.sum() == pytest.approx(1.0) and (kernel >= 0).all()
    img = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(1))
    for name, make in SYNTHETIC.items():
        views = make(img, torch.Generator().manual_seed(2))
        assert len(views) == (2 if name == "dual_pixel" else 1)
        for view in views:
            assert view.shape == img.shape
            assert not torch.allclose(view, img)  # really degraded


def test_make_pairs_is_deterministic_and_reused(tmp_path) -> None:
    source = tmp_path / "clean"
    source.mkdir()
    for i in range(2):  # sharp random images: every blur radius shows
        write_image(source / f"img{i:02d}.png", torch.rand(3, 24, 24))
    lq_dirs, gt_dir = make_pairs("dual_pixel", source, tmp_path / "a", channels=3, seed=5)
    assert [d.name for d in lq_dirs] == ["lq_left", "lq_right"]
    again, _ = make_pairs("dual_pixel", source, tmp_path / "b", channels=3, seed=5)
    first = read_image(lq_dirs[0] / "img00.png")
    assert torch.equal(first, read_image(again[0] / "img00.png"))
    stamp = (lq_dirs[0] / "img00.png").stat().st_mtime_ns
    make_pairs("dual_pixel", source, tmp_path / "a", channels=3, seed=5)  # same settings: reused
    assert (lq_dirs[0] / "img00.png").stat().st_mtime_ns == stamp
    make_pairs("dual_pixel", source, tmp_path / "a", channels=3, seed=6)  # other seed: rewritten
    assert not torch.equal(first, read_image(lq_dirs[0] / "img00.png"))
    assert read_image(gt_dir / "img00.png").shape == (3, 24, 24)
    with pytest.raises(ValueError, match="unknown synthetic pair kind"):
        make_pairs("snow", source, tmp_path / "c", channels=3, seed=0)
