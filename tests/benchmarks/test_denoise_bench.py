"""``benchmarks/denoise_bench.py``: rows, cache, re-timing, table and exit status.

BM3D itself (the ``bm3d`` package of the ``bench`` extra) is replaced by a stand-in restorer, so
the bookkeeping is tested wherever the test extra is installed.
"""

from __future__ import annotations

import json

import pytest
import torch
from bench_scripts import load_benchmark

from treeattn.data import embedded
from treeattn.data.io import list_images, read_image, write_image
from treeattn.models import create_model, save_pretrained

bench = load_benchmark("denoise_bench")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Two small gray test sets, a tiny untrained gray model, and a stand-in 'BM3D'."""
    for name, count in (("SetA", 2), ("SetB", 1)):
        for path in list_images(embedded.test_dir(color=False))[:count]:
            write_image(tmp_path / "data" / name / path.name, read_image(path, channels=1)[:, :40])
    model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, dims=(8, 16, 32, 64))
    save_pretrained(model, tmp_path / "model")
    calls = []

    def stand_in(sigma):
        def restore(noisy):
            calls.append(sigma)
            return torch.nn.functional.avg_pool2d(noisy, 3, stride=1, padding=1)

        return restore

    monkeypatch.setattr(bench, "_bm3d", stand_in)
    monkeypatch.setattr(bench, "version", lambda _: "test")
    argv = ["--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--threads", "1"]
    argv += ["--sets", "SetA", "SetB", "--sigmas", "25", "--out", str(tmp_path / "out.json")]
    return argv, tmp_path / "out.json", calls


def test_rows_cache_and_table(setup):
    argv, out, calls = setup
    status = bench.main([*argv, "--self-ensemble"])
    result = json.loads(out.read_text())
    rows = {(r["method"], r["set"]): r for r in result["rows"]}
    assert set(rows) == {(m, s) for m in bench.METHODS for s in ("SetA", "SetB")}
    assert rows["bm3d", "SetA"]["images"] == 2 and rows["bm3d", "SetB"]["images"] == 1
    assert rows["treeattn", "SetA"]["threads"] == 1
    assert rows["bm3d", "SetA"]["timed_megapixels"] == pytest.approx(2 * 40 * 256 / 1e6, abs=1e-4)
    assert len(calls) == 3  # one stand-in BM3D call per image
    # the exit status says whether treeattn (an untrained model here) beat BM3D everywhere
    best = {
        key: max(rows[m, key]["psnr"] for m in ("treeattn", "treeattn_x8"))
        for key in ("SetA", "SetB")
    }
    assert status == (0 if all(best[k] > rows["bm3d", k]["psnr"] for k in best) else 1)
    table = out.with_suffix(".md").read_text()
    assert "| treeattn ×8 self-ensemble |" in table and table.count("| Set") == 2

    # a second run reuses the BM3D rows, and --retime-bm3d times them again on fewer images
    bench.main([*argv, "--retime-bm3d", "1"])
    assert len(calls) == 3 + 2  # SetA and SetB timed again on one image each
    again = {(r["method"], r["set"]): r for r in json.loads(out.read_text())["rows"]}
    assert again["bm3d", "SetA"]["psnr"] == rows["bm3d", "SetA"]["psnr"]
    assert again["bm3d", "SetA"]["timed_images"] == 1
    assert ("treeattn_x8", "SetA") not in again


def test_rows_of_other_runs_are_kept(setup):
    argv, out, calls = setup
    bench.main([*argv, "--bm3d-only", "--sets", "SetA"])
    bench.main([*argv, "--bm3d-only", "--sets", "SetB"])
    result = json.loads(out.read_text())
    assert [r["set"] for r in result["rows"]] == ["SetB"]
    assert [r["set"] for r in result["other_bm3d_rows"]] == ["SetA"]
    bench.main([*argv, "--bm3d-only"])
    assert len(calls) == 3  # both sets came from the cache


def test_retime_needs_a_positive_count(setup):
    argv, _, _ = setup
    with pytest.raises(SystemExit):
        bench.main([*argv, "--retime-bm3d", "0"])
