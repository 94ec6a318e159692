"""Datasets: shapes, scale-aware crops, seeded replay, padding, matching and errors."""

import pytest
import torch
from einops import repeat
from torch.nn.functional import avg_pool2d
from torch.utils.data import DataLoader

from treeattn.data import embedded
from treeattn.data.datasets import DegradedFolder, DualPixelFolder, PairedFolder
from treeattn.data.degradations import AWGN, BicubicDown
from treeattn.data.io import read_image, write_image


def _levels(*shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape).float() / 255


def test_degraded_folder_patches_and_gray_conversion():
    ds = DegradedFolder(
        embedded.train_dir(color=True),
        degradation=AWGN(sigma_range=(0, 50)),
        patch_size=32,
        augment=True,
        channels=1,
        repeat=3,
    )
    assert len(ds) == 3 * len(ds.files)
    item = ds[5]
    assert set(item) == {"lq", "gt", "name"}
    assert item["lq"].shape == item["gt"].shape == (1, 32, 32)
    assert item["name"] == ds.files[5 % len(ds.files)].stem
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["lq"].shape == (4, 1, 32, 32) and len(batch["name"]) == 4


def test_degraded_folder_sr_patch_is_lq_patch_times_scale():
    ds = DegradedFolder(
        embedded.train_dir(color=True), degradation=BicubicDown(scale=3), patch_size=16, scale=3
    )
    item = ds[0]
    assert item["lq"].shape == (3, 16, 16) and item["gt"].shape == (3, 48, 48)
    torch.testing.assert_close(item["lq"], BicubicDown(scale=3)(item["gt"], torch.Generator()))


def test_replay_is_exact_per_seed_epoch_and_index():
    def make():
        return DegradedFolder(
            embedded.train_dir(color=False),
            degradation=AWGN(sigma_range=(0, 50)),
            patch_size=24,
            augment=True,
            seed=7,
        )

    first, resumed = make(), make()
    first.set_epoch(3)
    resumed.set_epoch(3)  # a fresh process resuming at epoch 3
    for index in (0, 11):
        a, b = first[index], resumed[index]
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    first.set_epoch(4)
    assert not torch.equal(first[0]["lq"], resumed[0]["lq"])
    other_seed = DegradedFolder(
        embedded.train_dir(color=False), degradation=AWGN(sigma=25), patch_size=24, seed=8
    )
    assert not torch.equal(other_seed[0]["gt"], make()[0]["gt"])


def test_whole_images_are_mod_cropped_for_sr(tmp_path):
    torch.manual_seed(0)
    write_image(tmp_path / "odd.png", _levels(3, 31, 26))
    ds = DegradedFolder(tmp_path, degradation=BicubicDown(scale=3), scale=3)
    item = ds[0]
    assert item["gt"].shape == (3, 30, 24) and item["lq"].shape == (3, 10, 8)


def test_small_images_are_padded_with_a_warning(tmp_path):
    torch.manual_seed(0)
    small = _levels(3, 20, 12)
    write_image(tmp_path / "small.png", small)
    ds = DegradedFolder(tmp_path, degradation=AWGN(sigma=0), patch_size=32)
    with pytest.warns(UserWarning, match=r"small\.png.*padding"):
        item = ds[0]
    assert item["gt"].shape == (3, 32, 32)
    assert torch.equal(item["gt"][:, :20, :12], small)  # original pixels kept in place


def _write_sr_pairs(root, names, scale):
    """LR images and block-replicated HR images: avg-pooling the HR gives back the LR."""
    for name in names:
        lq = _levels(3, 12, 10)
        write_image(root / "lq" / f"{name}.png", lq)
        write_image(
            root / "gt" / f"{name}.png", repeat(lq, "c h w -> c (h a) (w b)", a=scale, b=scale)
        )


def test_paired_folder_crops_are_aligned_across_scales(tmp_path):
    torch.manual_seed(0)
    _write_sr_pairs(tmp_path, ["a", "b"], 2)
    ds = PairedFolder(tmp_path / "lq", tmp_path / "gt", patch_size=6, scale=2, augment=True)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for index in range(len(ds)):
            item = ds[index]
            assert item["lq"].shape == (3, 6, 6) and item["gt"].shape == (3, 12, 12)
            torch.testing.assert_close(avg_pool2d(item["gt"][None], 2)[0], item["lq"])


def test_paired_folder_lists_mismatched_names(tmp_path):
    torch.manual_seed(0)
    _write_sr_pairs(tmp_path, ["a", "b", "c"], 2)
    (tmp_path / "lq" / "b.png").rename(tmp_path / "lq" / "extra.png")
    with pytest.raises(ValueError, match=r"1 ground truths without input \['b'\].*\['extra'\]"):
        PairedFolder(tmp_path / "lq", tmp_path / "gt", scale=2)


def test_paired_folder_rejects_wrong_sizes_and_missing_folders(tmp_path):
    torch.manual_seed(0)
    _write_sr_pairs(tmp_path, ["a"], 2)
    with pytest.raises(ValueError, match=r"a\.png.*scale=3"):
        PairedFolder(tmp_path / "lq", tmp_path / "gt", scale=3)[0]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PairedFolder(tmp_path / "nowhere", tmp_path / "gt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        DegradedFolder(tmp_path / "empty", degradation=AWGN(sigma=15))


def test_paired_folder_reads_set5_with_a_suffix():
    ds = PairedFolder(embedded.sr_lr_dir(4), embedded.sr_test_dir(), scale=4, lq_suffix="x4")
    assert len(ds) == 5
    item = ds[0]
    assert item["name"] == "baby" and item["gt"].shape[-1] == 4 * item["lq"].shape[-1]


def test_dual_pixel_triplets_give_six_16bit_channels(tmp_path):
    torch.manual_seed(0)
    views = {d: torch.randint(0, 65536, (3, 16, 20)).float() / 65535 for d in ("l", "r", "g")}
    for d, img in views.items():
        write_image(tmp_path / d / "scene.png", img, bit_depth=16)
    ds = DualPixelFolder(tmp_path / "l", tmp_path / "r", tmp_path / "g")
    item = ds[0]
    assert item["lq"].shape == (6, 16, 20) and item["gt"].shape == (3, 16, 20)
    torch.testing.assert_close(item["lq"], torch.cat([views["l"], views["r"]]))
    torch.testing.assert_close(item["gt"], read_image(tmp_path / "g" / "scene.png"))
    patch = DualPixelFolder(tmp_path / "l", tmp_path / "r", tmp_path / "g", patch_size=8)[0]
    assert patch["lq"].shape == (6, 8, 8)


def test_bad_options_raise():
    root = embedded.train_dir(color=False)
    with pytest.raises(ValueError, match="patch_size"):
        DegradedFolder(root, degradation=AWGN(sigma=15), patch_size=0)
    with pytest.raises(ValueError, match="channels"):
        DegradedFolder(root, degradation=AWGN(sigma=15), channels=2)
    with pytest.raises(ValueError, match="gray_method"):
        DegradedFolder(root, degradation=AWGN(sigma=15), gray_method="average")
    with pytest.raises(ValueError, match="epoch"):
        DegradedFolder(root, degradation=AWGN(sigma=15)).set_epoch(-1)
    with pytest.raises(IndexError):
        DegradedFolder(root, degradation=AWGN(sigma=15))[10_000]
