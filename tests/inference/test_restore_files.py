"""`treeattn restore` through treeattn.cli.main: outputs, bit depth, safety, failures, progress."""

from __future__ import annotations

import pytest
import torch
from inference_testlib import write_random

import treeattn.inference.commands as commands
from treeattn import from_pretrained, restore_image
from treeattn.cli import main
from treeattn.data.io import read_image, read_image_with_depth


@pytest.fixture
def photos(tmp_path):
    """A folder with two gray 8-bit PNGs, a 16-bit PNG and a text file."""
    folder = tmp_path / "in"
    write_random(folder / "a.png")
    write_random(folder / "b.png", size=(9, 21))
    write_random(folder / "deep.png", bit_depth=16)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _restore(*args: str) -> int:
    return main(["restore", *map(str, args)])


def test_one_output_per_input_same_stem_and_bit_depth(gray_model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert _restore(gray_model_dir, photos, "--output", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "deep.png"]
    model = from_pretrained(gray_model_dir)
    for name, depth in (("a", 8), ("b", 8), ("deep", 16)):
        img, bits = read_image_with_depth(photos / f"{name}.png")
        restored, written_bits = read_image_with_depth(out / f"{name}.png")
        assert (bits, written_bits) == (depth, depth)
        expected = restore_image(model, img).clamp(0, 1)
        torch.testing.assert_close(restored, expected, rtol=0, atol=0.5 / (2**depth - 1) + 1e-6)
    err = capsys.readouterr().err
    assert "skipped 1 non-image file(s)" in err and "notes.txt" in err
    assert "a.png (18×13, 8-bit)" in err  # one line per file


def test_sr_output_is_scaled_and_colour(sr_model_dir, tmp_path):
    image = write_random(tmp_path / "lr.jpg", channels=3, size=(7, 10))
    args = ["-o", tmp_path / "sr", "--self-ensemble", "--tile", "6", "--tile-overlap", "2"]
    assert _restore(sr_model_dir, image, *args) == 0
    assert read_image(tmp_path / "sr" / "lr.png").shape == (3, 14, 20)


def test_colour_input_to_a_gray_model_is_converted_with_a_notice(gray_model_dir, tmp_path, capsys):
    image = write_random(tmp_path / "c.png", channels=3)
    assert _restore(gray_model_dir, image, "-o", tmp_path / "out") == 0
    assert read_image(tmp_path / "out" / "c.png").shape[0] == 1
    assert capsys.readouterr().err.count("3-channel inputs are converted to 1 channel") == 1


def test_recursive_folders_and_globs(gray_model_dir, photos, tmp_path):
    write_random(photos / "sub" / "c.png")
    out = tmp_path / "out"
    assert _restore(gray_model_dir, photos, "-o", out, "--recursive", "--quiet") == 0
    assert (out / "sub" / "c.png").is_file() and (out / "a.png").is_file()
    globbed = tmp_path / "globbed"
    assert _restore(gray_model_dir, f"{photos}/[ab].png", "-o", globbed, "--quiet") == 0
    assert sorted(p.name for p in globbed.iterdir()) == ["a.png", "b.png"]


def test_existing_outputs_are_skipped_unless_overwrite(gray_model_dir, photos, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    assert _restore(gray_model_dir, photos / "a.png", photos / "b.png", "-o", out) == 0
    assert (out / "a.png").read_bytes() == b"keep me" and (out / "b.png").is_file()
    err = capsys.readouterr().err
    assert "skipped 1 existing output(s)" in err and str(out / "a.png") in err
    assert _restore(gray_model_dir, photos / "a.png", "-o", out, "--overwrite", "--quiet") == 0
    assert read_image(out / "a.png").shape == (1, 13, 18)


def test_output_into_an_input_folder_needs_a_suffix(gray_model_dir, photos, capsys):
    before = {p: p.read_bytes() for p in photos.iterdir()}
    assert _restore(gray_model_dir, photos, "-o", photos) == 2
    assert "pass --suffix" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in photos.iterdir()} == before  # nothing touched
    assert _restore(gray_model_dir, photos, "-o", photos, "--suffix", "_x", "--quiet") == 0
    assert {p: p.read_bytes() for p in before} == before
    assert (photos / "a_x.png").is_file()
    # a second run would restore a_x.png into a_x_x.png and a.png into the input a_x.png
    assert _restore(gray_model_dir, photos, "-o", photos, "--suffix", "_x", "--overwrite") == 2
    assert "would replace an input" in capsys.readouterr().err


def test_two_inputs_for_one_output_are_refused(gray_model_dir, tmp_path, capsys):
    first = write_random(tmp_path / "x" / "same.png")
    second = write_random(tmp_path / "y" / "same.jpg")
    assert _restore(gray_model_dir, first, second, "-o", tmp_path / "out") == 2
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_corrupt_image_is_reported_the_rest_restored(gray_model_dir, photos, tmp_path, capsys):
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    (photos / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    assert _restore(gray_model_dir, photos, "-o", out, "--quiet") == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "broken.png" in err and "empty.jpg" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "deep.png"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["missing.png"], "does not exist"),
        (["*.nothing"], "matches no file"),
        (["notes.txt"], "no image files among the inputs"),
    ],
)
def test_bad_inputs_fail_before_any_work(gray_model_dir, photos, tmp_path, inputs, message, capsys):
    args = [str(photos / i) for i in inputs]
    assert _restore(gray_model_dir, *args, "-o", tmp_path / "out") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_or_a_suffix_with_a_folder(gray_model_dir, photos, tmp_path, capsys):
    assert _restore(gray_model_dir, photos, "-o", photos / "notes.txt") == 2
    assert "is a file" in capsys.readouterr().err
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "o", "--suffix", "x/y") == 2
    assert "must be part of a file name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_dual_pixel_model_is_refused_before_any_work(tmp_path, photos, capsys):
    from inference_testlib import tiny_denoiser

    model_dir = tmp_path / "dp"
    tiny_denoiser(channels=3, in_chans=6, residual="view_mean").save_pretrained(model_dir)
    assert _restore(model_dir, photos, "-o", tmp_path / "out") == 2
    assert "dual-pixel left and right" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_model_from_a_run_folder_and_unknown_models(gray_model_dir, photos, tmp_path, capsys):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    for file in gray_model_dir.iterdir():
        (run / "model" / file.name).write_bytes(file.read_bytes())
    assert _restore(run, photos / "a.png", "-o", tmp_path / "out", "--quiet") == 0
    assert _restore(tmp_path / "empty_run_dir_is_missing", photos, "-o", tmp_path / "o2") == 2
    assert "treeattn list --pretrained" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    assert _restore(tmp_path / "half", photos, "-o", tmp_path / "o3") == 2
    assert "holds no model" in capsys.readouterr().err


def test_quiet_prints_nothing_but_tiles_and_threads_work(
    gray_model_dir, photos, tmp_path, capsys, monkeypatch
):
    kept: list = []  # restore keeps freed memory for the next tile (treeattn.allocator)
    monkeypatch.setattr(commands, "keep_freed_memory", lambda: kept.append(1) or True)
    args = ["--tile", "8", "--tile-overlap", "2", "--threads", "1", "--device", "cpu", "--quiet"]
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "out", *args) == 0
    assert kept == [1]
    captured = capsys.readouterr()
    assert captured.out == "" and "a.png" not in captured.err
    assert _restore(gray_model_dir, photos, "-o", tmp_path / "o", "--tile", "8") == 2
    assert "overlap=32" in capsys.readouterr().err
