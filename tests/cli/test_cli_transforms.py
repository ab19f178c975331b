"""CLI MODEL TRANSFORMS (--fold-bn, --equalize, --bias-correction) and `evaluate --arith`."""

from __future__ import annotations

import json
from pathlib import Path

from inspector.cli import main

ROOT = Path(__file__).resolve().parents[2]
RES = ROOT / "resources"
DEPTHWISE = RES / "digits_depthwise" / "digits_depthwise.h5"
CHAIN = ROOT / "tests" / "engine" / "transforms" / "data" / "bn_chain_k2.h5"
OVERFLOW = ROOT / "tests" / "engine" / "transforms" / "data" / "overflow_k2.h5"


def run_json(capsys, *argv):
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_equalize_reports_float_change_and_target(capsys):
    doc = run_json(capsys, "evaluate", DEPTHWISE, "--scheme", "uint8", "--equalize", "--json")
    t = doc["transforms"]
    assert t["requested"] == {"equalize": True, "relu6": "lift"}
    assert len(t["equalized"]) == 4 and t["equalized"][0]["relu6_lifted"]
    assert 20 < t["float_change"]["sqnr_db"] < 80
    assert doc["output"]["quantized_score"] >= 0.99 and doc["output"]["original_score"] > 0.99
    assert doc["plan"]["version"] == 2 and doc["plan"]["transforms"]["equalize"] is True


def test_preview_fold_bn_json_and_text(capsys):
    doc = run_json(capsys, "preview", CHAIN, "--fold-bn", "--json")
    assert len(doc["transforms"]["folded"]) == 5
    assert not any("moving" in t["name"] for t in doc["tensors"])
    assert main(["preview", str(CHAIN), "--fold-bn"]) == 0
    err = capsys.readouterr().err
    assert "folded 5 batch norm(s)" in err


def test_export_with_a_plan_file_applies_its_transforms(capsys, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"version": 2, "default": "uint8", "transforms": {"equalize": True}})
    )
    out = tmp_path / "tfjs"
    assert (
        main(["export", str(DEPTHWISE), "-o", str(out), "--format", "tfjs", "--plan", str(plan)])
        == 0
    )
    assert "transforms: equalize" in capsys.readouterr().err
    doc = run_json(
        capsys,
        "evaluate",
        out / "model.json",
        "--data",
        RES / "digits_depthwise" / "sample.npz",
        "--json",
    )
    assert doc["output"]["original_score"] >= 0.99  # the exported (uint8) model itself


def test_transforms_on_a_model_without_topology_is_a_clear_error(capsys, tmp_path):
    import numpy as np

    path = tmp_path / "w.npz"
    np.savez(path, a=np.ones((3, 3), np.float32))
    assert main(["preview", str(path), "--equalize"]) == 2
    err = capsys.readouterr().err
    assert "model transforms unavailable" in err and "Traceback" not in err


def test_evaluate_arith_float16_names_the_overflowing_layer(capsys):
    data = OVERFLOW.with_name("overflow.npz")
    doc = run_json(capsys, "evaluate", OVERFLOW, "--data", data, "--arith", "float16", "--json")
    assert doc["arith"]["first_overflow_layer"] == "blowup"
    assert main(["evaluate", str(OVERFLOW), "--data", str(data), "--arith", "float16"]) == 0
    text = capsys.readouterr().out
    assert "first overflow at layer 'blowup'" in text


def test_auto_records_transforms_in_the_plan_it_writes(capsys, tmp_path):
    out = tmp_path / "plan.json"
    argv = [
        "auto",
        str(DEPTHWISE),
        "--equalize",
        "--target-bits",
        "12",
        "--ladder",
        "uint8,float16",
        "--format",
        "tfjs",
    ]
    doc = run_json(capsys, *argv, "--probe-samples", "32", "-o", out, "--json")
    assert doc["plan"]["transforms"]["equalize"] is True
    assert json.loads(out.read_text())["transforms"]["equalize"] is True
    assert doc["output"]["quantized_score"] >= 0.98
