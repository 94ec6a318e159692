"""``benchmarks/denoise_bench.py``: rows, the Urban100 subset, cache, legacy files, table, status.

BM3D (the ``bm3d`` package of the ``bench`` extra) is replaced by a stand-in restorer and DnCNN-S
by random weights of its form (narrower and shallower) written to a temporary file, so the
bookkeeping is tested wherever the test extra is installed; the test sets are tiny crops.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import torch
from bench_scripts import load_benchmark
from safetensors.torch import save_file

from treeattn.data import embedded
from treeattn.data.io import list_images, read_image, write_image
from treeattn.models import create_model, from_pretrained, save_pretrained

bench = load_benchmark("denoise_bench")
peers = load_benchmark("peers")


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """Two tiny gray test sets (Urban100 of 3 images, scored on 2), two tiny untrained treeattn
    models (one standing for the shipped denoisers), random DnCNN-S weights, a stand-in BM3D."""
    for name, count in (("SetA", 2), ("Urban100", 3)):
        for path in list_images(embedded.test_dir(color=False))[:count]:
            write_image(
                tmp_path / "data" / name / path.name, read_image(path, channels=1)[:, :40, :64]
            )
    for seed, folder in ((0, "shipped"), (1, "extra")):
        torch.manual_seed(seed)
        model = create_model("hiir_unet_tiny", in_chans=1, out_chans=1, dims=(8, 16, 32, 64))
        save_pretrained(model, tmp_path / folder)
    torch.manual_seed(2)
    dncnn = peers.DnCNN(width=8, depth=5).state_dict()  # DnCNN-S: width 64, depth 17
    dncnn = {k: v for k, v in dncnn.items() if not k.endswith("batches_tracked")}
    save_file(dncnn, tmp_path / "dncnn.safetensors")
    bm3d_calls = []

    def stand_in(sigma):
        def restore(noisy):
            bm3d_calls.append(sigma)
            return torch.nn.functional.avg_pool2d(noisy, 3, stride=1, padding=1)

        return restore

    scored = []
    row = bench._row

    def counting_row(entrant, *args, **kwargs):
        scored.append(entrant.method)
        return row(entrant, *args, **kwargs)

    monkeypatch.setattr(bench, "_bm3d", stand_in)
    monkeypatch.setattr(bench, "_row", counting_row)
    monkeypatch.setattr(bench, "version", lambda _: "test")
    monkeypatch.setattr(bench, "shipped_denoisers", lambda: [str(tmp_path / "shipped")])
    argv = ["--data", str(tmp_path / "data"), "--sets", "SetA", "Urban100", "--sigmas", "15", "25"]
    argv += ["--urban-images", "2", "--dncnn", str(tmp_path / "dncnn.safetensors")]
    argv += ["--model", str(tmp_path / "extra"), "--threads", "1"]
    argv += ["--out", str(tmp_path / "out.json")]
    return argv, tmp_path, bm3d_calls, scored


def _rows(out):
    record = json.loads(out.read_text())
    assert record["format"] == bench.FORMAT
    return record["rows"]


def test_rows_table_status_and_cache(setup):
    argv, tmp, bm3d_calls, scored = setup
    status = bench.main(argv)
    rows = _rows(tmp / "out.json")
    models = {str(tmp / "shipped"), str(tmp / "extra")}
    expected = {
        (method, model, s, level)
        for s in ("SetA", "Urban100")
        for level in (15.0, 25.0)
        for method, model in [
            ("bm3d", "bm3d"),
            *((m, name) for m in ("treeattn", "treeattn_x8") for name in models),
        ]
    } | {("dncnn_s25", "dncnn_s25", s, 25.0) for s in ("SetA", "Urban100")}
    assert {(r["method"], r["model"], r["set"], r["level"]) for r in rows} == expected
    assert len(rows) == len(expected) == len(scored)
    assert {r["images"] for r in rows} == {2}  # Urban100: its first 2 of 3, for every method
    assert len(bm3d_calls) == 2 * 2 * 2  # one stand-in call per image, set and σ
    threads = {r["method"]: r["threads"] for r in rows}  # the bm3d package uses every core it may
    assert threads == {m: 1 for m in threads} | {"bm3d": len(os.sched_getaffinity(0))}
    assert all(r["timed_megapixels"] == pytest.approx(2 * 40 * 64 / 1e6, abs=1e-4) for r in rows)
    sums = {
        "dncnn_s25": hashlib.sha256((tmp / "dncnn.safetensors").read_bytes()).hexdigest(),
        "bm3d": "bm3d==test",
        **{m: bench.model_checksum(Path(m)) for m in models},
    }
    assert all(r["checksum"] == sums[r["model"]] for r in rows)
    assert len(set(sums.values())) == 4
    assert {r["mode"] for r in rows if r["method"] == "treeattn_x8"} == {"x8"}
    # the exit status says whether every treeattn model (untrained here) beat BM3D everywhere
    by = {(r["method"], r["model"], r["set"], r["level"]): r["psnr"] for r in rows}
    behind = any(
        max(by[m, name, s, level] for m in ("treeattn", "treeattn_x8"))
        <= by["bm3d", "bm3d", s, level]
        for name in models
        for s in ("SetA", "Urban100")
        for level in (15.0, 25.0)
    )
    assert status == int(behind)

    table = (tmp / "out.md").read_text()
    headings = re.findall(r"^## (\S+), σ = (\d+) \((\d) images, seed 0\)$", table, re.M)
    assert headings == [(s, level, "2") for s in ("SetA", "Urban100") for level in ("15", "25")]
    assert table.count("| Δ DnCNN-S |") == 2  # the σ = 25 tables only
    extra = next(
        r for r in rows if (r["model"], r["set"], r["level"]) == (str(tmp / "extra"), "SetA", 25)
    )
    section = table.split("## SetA, σ = 25 ")[1].split("## ")[0]
    line = next(x for x in section.splitlines() if x.startswith(f"| {tmp / 'extra'} |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    ref = {r["method"]: r["psnr"] for r in rows if (r["set"], r["level"]) == ("SetA", 25)}
    assert cells[2] == f"{extra['psnr']:.2f}"
    assert cells[4] == f"{extra['psnr'] - ref['bm3d']:+.2f}"
    assert cells[5] == f"{extra['psnr'] - ref['dncnn_s25']:+.2f}"

    # a second run computes nothing; --recompute computes the selected rows again
    before = (tmp / "out.json").read_text()
    assert bench.main(argv) == status
    assert len(scored) == len(expected) and (tmp / "out.json").read_text() == before
    bench.main([*argv, "--recompute", "--methods", "dncnn", "--sigmas", "25"])
    assert scored[len(expected) :] == ["dncnn_s25", "dncnn_s25"]
    assert len(_rows(tmp / "out.json")) == len(expected)


def test_pieces_fill_one_file_and_reuse_each_other(setup):
    argv, tmp, bm3d_calls, scored = setup
    argv = [*argv, "--sigmas", "25"]
    bench.main([*argv, "--methods", "bm3d", "--sets", "SetA"])
    bench.main([*argv, "--methods", "treeattn", "--modes", "1", "--no-shipped"])
    assert scored == ["bm3d", "treeattn", "treeattn"]
    bench.main(argv)  # the rest: Urban100's BM3D, DnCNN-S, the shipped model, ×8
    assert scored.count("bm3d") == 2 and scored.count("treeattn") == 2 + 2
    assert scored.count("dncnn_s25") == 2 and scored.count("treeattn_x8") == 2 * 2
    assert len(bm3d_calls) == 2 * 2
    # a model saved again elsewhere (a run folder and its shipped copy) has the same rows
    save_pretrained(from_pretrained(tmp / "shipped"), tmp / "copy")
    bench.main([*argv, "--model", str(tmp / "copy")])
    assert len(scored) == len(_rows(tmp / "out.json")) == 2 + 4 + 2 + 4
    assert str(tmp / "copy") not in {r["model"] for r in _rows(tmp / "out.json")}


def test_quick_scores_two_images_of_every_set(setup):
    argv, tmp, _, _ = setup
    bench.main([*argv, "--urban-images", "20", "--quick", "--methods", "bm3d"])
    assert {(r["set"], r["images"]) for r in _rows(tmp / "out.json")} == {
        ("SetA", 2),
        ("Urban100", 2),
    }


def test_legacy_results_are_read_and_their_bm3d_rows_reused(setup):
    argv, tmp, bm3d_calls, scored = setup
    legacy = {
        "model": str(tmp / "extra"),
        "bm3d_version": "test",
        "command": "python benchmarks/denoise_vs_bm3d.py",
        "rows": [
            {"method": m, "set": "SetA", "level": 25.0, "seed": 0, "images": 2, "psnr": p}
            | {"ssim": 0.5, "seconds_per_megapixel": 1.0, "threads": 2, "timed_images": 2}
            for m, p in (("bm3d", 20.0), ("treeattn", 21.0), ("treeattn_x8", 22.0))
        ],
        "other_bm3d_rows": [],
    }
    (tmp / "out.json").write_text(json.dumps(legacy))
    bench.main([*argv, "--sets", "SetA", "--sigmas", "25", "--methods", "bm3d", "treeattn"])
    assert bm3d_calls == [] and "bm3d" not in scored
    assert scored == ["treeattn", "treeattn_x8"]  # the shipped model's; the extra's are cached
    rows = {(r["method"], r["model"]): r for r in _rows(tmp / "out.json")}
    assert rows["treeattn_x8", str(tmp / "extra")]["psnr"] == 22.0
    assert rows["treeattn_x8", str(tmp / "extra")]["checksum"] == bench.model_checksum(
        tmp / "extra"
    )


def test_retime_bm3d_keeps_the_scores(setup):
    argv, tmp, bm3d_calls, _ = setup
    bench.main([*argv, "--methods", "bm3d"])
    first = {(r["set"], r["level"]): r for r in _rows(tmp / "out.json")}
    bench.main([*argv, "--methods", "bm3d", "--retime-bm3d", "1"])
    assert len(bm3d_calls) == 8 + 4  # each row timed again on one image
    again = {(r["set"], r["level"]): r for r in _rows(tmp / "out.json")}
    assert {k: r["psnr"] for k, r in again.items()} == {k: r["psnr"] for k, r in first.items()}
    assert {r["timed_images"] for r in again.values()} == {1}


@pytest.mark.parametrize(
    "extra",
    [
        ["--retime-bm3d", "0"],
        ["--urban-images", "0"],
        ["--dncnn", "/nonexistent/model.safetensors"],
        ["--model", "/nonexistent/run"],
        ["--no-shipped", "--methods", "treeattn"],  # and no --model: nothing to score
    ],
)
def test_bad_arguments_are_refused(setup, extra):
    argv, tmp, _, scored = setup
    if "--no-shipped" in extra:
        argv = [a for a in argv if a not in ("--model", str(tmp / "extra"))]
    with pytest.raises(SystemExit):
        bench.main([*argv, *extra])
    assert scored == [] and not (tmp / "out.json").exists()


def test_shipped_denoisers_are_the_gray_awgn_models():
    names = bench.shipped_denoisers()
    assert "hiir_dn_gray_cpu" in names
    for name in names:
        model = from_pretrained(name)
        assert (model.meta.task, model.meta.in_chans) == ("denoise", 1)


def test_committed_results_hold_the_bm3d_rows_the_script_reuses():
    """The migrated results keep BM3D's Set12/BSD68 rows under the keys a run looks up."""
    try:
        installed = version("bm3d")
    except PackageNotFoundError:
        pytest.skip("the bm3d package (bench extra) is not installed")
    rows = bench.read_rows(bench.RESULTS / "denoise_bench.json")
    keys = {bench.row_key(r) for r in rows}
    for set_name, images in (("Set12", 12), ("BSD68", 68)):
        for level in (15.0, 25.0, 50.0):
            key = ("bm3d", f"bm3d=={installed}", "1", set_name, level, 0, images)
            assert key in keys
