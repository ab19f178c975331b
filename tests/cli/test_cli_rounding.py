"""`round=` on the command line: calibration data for gptq (`--data`, `--calibration`, the
bundled sample), the visible fallback without data, the entropy bound in `preview --json`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from inspector.cli import main

RES = Path(__file__).resolve().parents[2] / "resources"
CONVNET = RES / "digits_convnet" / "digits_convnet.h5"


def _run(capsys, *argv) -> tuple[dict, str]:
    assert main([str(a) for a in argv]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def _rows(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["tensors"]}


def test_preview_calibrates_on_the_bundled_sample(capsys):
    args = ("preview", CONVNET, "--format", "safetensors", "--json", "--scheme")
    gptq, err = _run(capsys, *args, "int4:round=gptq")
    assert "calibrated on bundled data" in err and "450 samples" in err
    nearest, _ = _run(capsys, *args, "int4")
    g, n = _rows(gptq), _rows(nearest)
    assert g["dense1/kernel:0"]["scheme"] == "int4:round=gptq"
    assert g["dense1/kernel:0"]["note"] == ""
    assert g["dense1/kernel:0"]["sqnr_db"] != n["dense1/kernel:0"]["sqnr_db"]
    assert g["dense1/kernel:0"]["quantized_bytes"] == n["dense1/kernel:0"]["quantized_bytes"]
    assert "not a Dense/Conv" in g["dense1/bias:0"]["note"]
    assert g["dense1/bias:0"]["sqnr_db"] == n["dense1/bias:0"]["sqnr_db"]
    total = gptq["total"]
    assert 0 < total["entropy_bits_per_weight"] < 4
    assert total["huffman_bytes"] > 0
    for row in gptq["tensors"]:
        assert row["entropy_bits_per_weight"] <= 4 and row["huffman_bytes"] > 0


def test_preview_without_data_rounds_to_nearest_and_says_so(capsys, tmp_path):
    model = tmp_path / "m.h5"
    shutil.copy(CONVNET, model)
    doc, err = _run(capsys, "preview", model, "--scheme", "int8:round=gptq", "--json")
    assert "needs sample data" in err
    assert all("needs sample data" in r["note"] for r in doc["tensors"])


def test_data_file_and_export(capsys, tmp_path):
    with np.load(RES / "digits_convnet" / "sample.npz") as z:
        np.savez(tmp_path / "calib.npz", x=z["x"][:40])
    model = tmp_path / "m.h5"
    shutil.copy(CONVNET, model)
    args = ("--scheme", "affine3:round=gptq,order=act", "--data", tmp_path / "calib.npz")
    doc, err = _run(capsys, "preview", model, "--format", "npz", "--json", *args)
    assert "calib.npz (40 samples" in err
    assert doc["tensors"][0]["note"] == ""
    out = tmp_path / "q.npz"
    assert main(["export", str(model), "-o", str(out), "--format", "npz", *map(str, args)]) == 0
    captured = capsys.readouterr()
    assert "calib.npz" in captured.err and "wrote" in captured.out
    with np.load(out) as z:
        assert len(np.unique(z["conv2/kernel:0"])) <= 8


def test_bad_data_file_is_a_clean_error(capsys, tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 5), np.float32))
    code = main(
        [
            "preview",
            str(CONVNET),
            "--scheme",
            "int4:round=gptq",
            "--data",
            str(tmp_path / "bad.npz"),
        ]
    )
    assert code == 2
    assert "bad.npz" in capsys.readouterr().err


def test_evaluate_with_separate_calibration(capsys, tmp_path):
    with np.load(RES / "digits_convnet" / "sample.npz") as z:
        np.savez(tmp_path / "calib.npz", x=z["x"][:225])
        np.savez(tmp_path / "held.npz", x=z["x"][225:], y=z["y"][225:])
    common = ("evaluate", CONVNET, "--data", tmp_path / "held.npz", "--json")
    calib = ("--calibration", tmp_path / "calib.npz")
    gptq, err = _run(capsys, *common, *calib, "--scheme", "int4:round=gptq")
    assert "calib.npz (225 samples" in err
    nearest, _ = _run(capsys, *common, "--scheme", "int4")
    assert gptq["output"]["sqnr_db"] > nearest["output"]["sqnr_db"] + 3
