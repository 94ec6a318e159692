"""Export: a torch.export program and an ONNX file (run in onnxruntime) match PyTorch."""

from __future__ import annotations

import shutil

import pytest
import torch
from inference_testlib import tiny_denoiser

from treeattn.cli import main
from treeattn.inference.export import export_files, export_model


@pytest.fixture(scope="module")
def model():
    return tiny_denoiser()


def test_pt2_program_matches_pytorch_for_any_batch(model, tmp_path):
    path = export_model(model, tmp_path / "m", format="pt2", size=(10, 14))
    assert path.name == "m.pt2"
    program = torch.export.load(str(path))
    x = torch.rand(3, 1, 10, 14)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_onnx_file_runs_in_onnxruntime_like_pytorch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = export_model(model, tmp_path / "m.onnx", format="onnx", size=(10, 14))
    assert export_files(path) == [path]  # self-contained: no m.onnx.data side file
    alone = tmp_path / "copied" / "alone.onnx"  # the file copied alone still runs
    alone.parent.mkdir()
    shutil.copy(path, alone)
    session = ort.InferenceSession(str(alone), providers=["CPUExecutionProvider"])
    x = torch.rand(2, 1, 10, 14)
    (out,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert out.shape == expected.shape
    assert abs(out - expected).max() < 1e-4


def test_export_refuses_bad_settings(model, tmp_path):
    with pytest.raises(ValueError, match="not an export format"):
        export_model(model, tmp_path / "m", format="tflite", size=(8, 8))
    with pytest.raises(ValueError, match="two positive numbers"):
        export_model(model, tmp_path / "m", format="pt2", size=(0, 8))
    (tmp_path / "m.pt2").write_bytes(b"old")
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        export_model(model, tmp_path / "m.pt2", format="pt2", size=(8, 8))
    assert (tmp_path / "m.pt2").read_bytes() == b"old"


def test_cli_export(gray_model_dir, tmp_path, capsys):
    out = tmp_path / "x.pt2"
    args = ["export", str(gray_model_dir), "--format", "pt2", "--size", "8", "12", "-o", str(out)]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    assert main(args) == 2  # exists
    with pytest.raises(SystemExit, match="2"):
        main(["export", str(gray_model_dir), "--format", "pt2", "--size", "0", "8"])
    assert "--size: 0 must be a positive integer" in capsys.readouterr().err
