"""CLI `evaluate`, `sensitivity` and `auto` on the demo models (real numbers, real files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main

RES = Path(__file__).resolve().parents[2] / "resources"
DEPTHWISE_TFJS = RES / "digits_depthwise" / "tfjs" / "model.json"
CONVNET = RES / "digits_convnet" / "digits_convnet.h5"
MLP = RES / "diabetes_mlp" / "diabetes_mlp.h5"


def run_json(capsys, *argv):
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def run_error(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_evaluate_json_on_depthwise_shows_uint8_collapse(capsys):
    doc = run_json(capsys, "evaluate", DEPTHWISE_TFJS, "--scheme", "uint8", "--json")
    assert doc["model"]["target"] == "tfjs" and doc["data"]["source"] == "bundled"
    out = doc["output"]
    assert out["metric"] == "accuracy" and out["quantized_score"] < 0.2
    assert out["original_score"] > 0.99 and out["sqnr_db"] < 0
    assert doc["plan"]["default"] == "uint8"


def test_evaluate_text_with_rules(capsys):
    assert (
        main(["evaluate", str(DEPTHWISE_TFJS), "--scheme", "uint8", "--rule", "*_dw/*=float16"])
        == 0
    )
    text = capsys.readouterr().out
    assert "bundled data" in text and "top-1 agreement:  100.00 %" in text
    assert "accuracy:" in text and "change +0.0000" in text


def test_evaluate_float32_is_exact_and_json_has_no_infinity_literal(capsys):
    assert main(["evaluate", str(MLP), "--json"]) == 0
    raw = capsys.readouterr().out
    assert "Infinity" not in raw
    doc = json.loads(raw)
    assert doc["output"]["sqnr_db"] == "inf" and doc["output"]["metric"] == "mae"


def test_evaluate_outputs_file_pairs_and_refusals(capsys, tmp_path):
    out = tmp_path / "o.npz"
    doc = run_json(capsys, "evaluate", CONVNET, "--scheme", "uint8", "--outputs", out, "--json")
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["original_0", "quantized_0"]
        o, q = npz["original_0"], npz["quantized_0"]
    assert o.shape == (450, 10)
    noise = float(np.sum((q.astype(np.float64) - o) ** 2))
    assert noise == pytest.approx(doc["output"]["noise_energy"])
    assert "exists" in run_error(capsys, "evaluate", CONVNET, "--outputs", out)
    assert main(["evaluate", str(CONVNET), "--outputs", str(out), "--force"]) == 0
    capsys.readouterr()
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((3, 8, 8, 1), np.float32))
    assert "input file" in run_error(capsys, "evaluate", CONVNET, "--data", data, "--outputs", data)


def test_evaluate_user_data_and_bad_data(capsys, tmp_path):
    data = tmp_path / "d.npz"
    sample = np.load(RES / "digits_convnet" / "sample.npz")
    np.savez(data, x=sample["x"][:20], y=sample["y"][:20])
    doc = run_json(capsys, "evaluate", CONVNET, "--data", data, "--json")
    assert doc["data"] == {"source": "file", "path": str(data), "samples": 20, "labels": True}
    err = run_error(capsys, "evaluate", CONVNET, "--data", RES / "diabetes_mlp" / "sample.npz")
    assert "sample.npz" in err and "model expects" in err
    err = run_error(capsys, "evaluate", CONVNET, "--data", tmp_path / "missing.npz")
    assert "missing.npz" in err


def test_evaluate_max_samples(capsys):
    doc = run_json(capsys, "evaluate", CONVNET, "--max-samples", "25", "--json")
    assert doc["data"]["samples"] == 25 and doc["output"]["samples"] == 25


def test_evaluate_unsupported_model_says_evaluation_unavailable(capsys, tmp_path):
    path = tmp_path / "w.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))
    assert "evaluation unavailable" in run_error(capsys, "evaluate", path)


def test_sensitivity_json_ranks_depthwise_layers_first(capsys):
    doc = run_json(capsys, "sensitivity", DEPTHWISE_TFJS, "--max-samples", "100", "--json")
    assert doc["scheme"] == "uint8" and doc["mode"] == "only" and doc["per"] == "layer"
    assert set(doc["ranked"][:2]) == {"block2_dw", "block4_dw"}


def test_sensitivity_text_per_tensor(capsys):
    assert main(["sensitivity", str(MLP), "--per", "tensor", "--scheme", "affine4"]) == 0
    text = capsys.readouterr().out
    assert "only this tensor at affine4" in text and "kernel" in text


def test_auto_writes_a_plan_that_export_and_evaluate_read(capsys, tmp_path):
    plan = tmp_path / "plan.json"
    doc = run_json(
        capsys,
        "auto",
        CONVNET,
        "--format",
        "safetensors",
        "--target-size",
        "30%",
        "--ladder",
        "float32,float16,uint8,affine4",
        "--probe-samples",
        "64",
        "-o",
        plan,
        "--json",
    )
    assert doc["error_level"] == "output"
    goal = doc["goal"]["quantized_bytes"]
    assert doc["total"]["quantized_bytes"] == doc["predicted"]["quantized_bytes"] <= goal
    assert doc["output"]["quantized_score"] >= 0.97
    evaluated = run_json(
        capsys, "evaluate", CONVNET, "--format", "safetensors", "--plan", plan, "--json"
    )
    assert evaluated["output"] == doc["output"]
    preview = run_json(
        capsys, "preview", CONVNET, "--format", "safetensors", "--plan", plan, "--json"
    )
    assert preview["total"]["quantized_bytes"] == doc["total"]["quantized_bytes"]
    assert "exists" in run_error(capsys, "auto", CONVNET, "--target-bits", "8", "-o", plan)


def test_auto_other_goals(capsys):
    doc = run_json(capsys, "auto", MLP, "--target-sqnr", "40", "--json")
    assert doc["output"]["sqnr_db"] >= 39.0
    doc = run_json(
        capsys,
        "auto",
        MLP,
        "--target-bits",
        "6",
        "--weight-level",
        "--format",
        "safetensors",
        "--json",
    )
    assert doc["error_level"] == "weight" and doc["total"]["bits_per_weight"] <= 6
    assert "below the smallest" in run_error(capsys, "auto", MLP, "--target-bytes", "10")
