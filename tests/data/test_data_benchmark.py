"""Benchmark evaluation: the textbook noisy PSNR, the bicubic SR row, tables and errors."""

import json
import math

import pytest
import torch

from treeattn.data import embedded
from treeattn.data.benchmark import PROTOCOLS, Protocol, evaluate_folder, get_protocol
from treeattn.data.degradations import AWGN, JPEG, BicubicDown
from treeattn.data.resize import imresize


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def test_awgn_sigma25_on_set12_gives_the_textbook_noisy_psnr(shared_data):
    psnr_only = Protocol(name="denoise_psnr", metrics=("psnr",))
    run = [
        evaluate_folder(
            identity, shared_data / "test/Set12", degradation=AWGN(sigma=25), protocol=psnr_only
        )
        for _ in range(2)
    ]
    assert len(run[0].rows) == 12
    noisy = run[0].mean["input_psnr"]
    assert abs(noisy - 20 * math.log10(255 / 25)) < 0.02  # 20.17 dB
    assert noisy == run[1].mean["input_psnr"]  # test noise is seeded per image


def test_sr_protocol_reports_the_bicubic_row_of_set5():
    def bicubic_up(x):
        return imresize(x, scale=4, uint8_levels=True)

    table = evaluate_folder(
        bicubic_up, embedded.sr_test_dir(), degradation=BicubicDown(scale=4), protocol="sr_x4"
    )
    assert 28.41 <= table.mean["psnr"] <= 28.45
    assert table.mean["input_psnr"] == pytest.approx(table.mean["psnr"], abs=1e-6)
    assert 0 < table.mean["ssim"] < 1


def test_table_markdown_json_and_means():
    table = evaluate_folder(
        identity,
        embedded.test_dir(color=False),
        degradation=JPEG(quality=10),
        protocol="jpeg",
    )
    assert table.columns == ["psnr", "ssim", "psnr_b", "input_psnr", "input_ssim", "input_psnr_b"]
    assert [r["name"] for r in table.rows] == ["01", "02", "03", "04"]
    row = table.rows[0]
    assert row["psnr"] == pytest.approx(row["input_psnr"])  # JPEG output is already uint8
    assert row["psnr_b"] <= row["psnr"]  # blocking only lowers PSNR-B
    assert table.mean["psnr"] == pytest.approx(sum(r["psnr"] for r in table.rows) / 4)
    lines = table.to_markdown().splitlines()
    assert len(lines) == 2 + 4 + 1 and lines[-1].startswith("| **mean**")
    assert str(table) == table.to_markdown()
    loaded = json.loads(table.to_json())
    assert loaded["protocol"]["name"] == "jpeg" and len(loaded["rows"]) == 4
    assert loaded["mean"]["psnr"] == pytest.approx(table.mean["psnr"])


def test_protocol_table_and_errors():
    assert get_protocol("sr_x3").crop_border == 3 and get_protocol("sr_x3").y_channel
    assert not PROTOCOLS["denoise"].y_channel and PROTOCOLS["denoise"].round_uint8
    with pytest.raises(ValueError, match="unknown protocol"):
        get_protocol("dehaze")
    with pytest.raises(ValueError, match="unknown metrics"):
        Protocol(name="x", metrics=("lpips2",))
    with pytest.raises(ValueError, match=r"restore returned .* for 01"):
        evaluate_folder(
            lambda x: x[..., :-1],
            embedded.test_dir(color=False),
            degradation=AWGN(sigma=15),
            protocol="denoise",
        )
