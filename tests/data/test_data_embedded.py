"""Embedded default data: present inside the package, small, and of the documented shapes."""

import pytest

from treeattn.data import embedded
from treeattn.data.io import list_images, read_image


def test_embedded_sets_exist_with_documented_shapes():
    expected = {
        (False, "train"): (50, (1, 180, 180)),
        (True, "train"): (24, (3, 128, 128)),
        (False, "test"): (4, (1, 256, 256)),
        (True, "test"): (4, (3, 256, 256)),
    }
    for (color, split), (count, shape) in expected.items():
        folder = (
            embedded.train_dir(color=color) if split == "train" else embedded.test_dir(color=color)
        )
        files = list_images(folder)
        assert len(files) == count
        assert read_image(files[0]).shape == shape
    assert [p.stem for p in list_images(embedded.sr_test_dir())] == [
        "baby", "bird", "butterfly", "head", "woman",
    ]  # fmt: skip
    for scale in (2, 3, 4):
        assert len(list_images(embedded.sr_lr_dir(scale))) == 5


def test_embedded_data_stays_small():
    total = sum(p.stat().st_size for p in embedded.ASSETS_DIR.rglob("*") if p.is_file())
    assert total < 6 * 2**20


def test_unknown_kinds_raise():
    with pytest.raises(ValueError, match="unknown embedded data"):
        embedded.embedded_dir("color_val")
    with pytest.raises(ValueError, match="scale"):
        embedded.sr_lr_dir(8)
