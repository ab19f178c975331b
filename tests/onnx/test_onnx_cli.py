"""The CLI on a small ONNX model built with onnx.helper: info, preview, export (with the opset
fallback note), evaluate, sensitivity and auto all run through the ONNX reader, writer and ONNX
Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from tests.onnx.conftest import onnx, ort_run

X = np.random.default_rng(3).normal(size=(4, 3, 8, 8)).astype(np.float32)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_lists_initializers_with_their_nodes(convnet: Path, capsys) -> None:
    doc = run_json(capsys, "info", str(convnet))
    names = [t["name"] for t in doc["tensors"]]
    assert names[:2] == ["conv1.weight", "conv1.bias"]
    assert {t["layer"] for t in doc["tensors"]} >= {"conv1 (Conv)", "fc (Gemm)", "head (MatMul)"}


def test_preview_of_int4_needs_no_opset_note(convnet: Path, capsys) -> None:
    for scheme in ("int4", "int8"):
        doc = run_json(capsys, "preview", str(convnet), "--scheme", scheme)
        assert doc["model"]["target"] == "onnx"
        assert all(row["note"] == "" for row in doc["tensors"])


@pytest.mark.parametrize("scheme", ["int8", "uint8", "int4", "uint16"])
def test_export_writes_a_runnable_qdq_model_of_the_predicted_size(
    convnet: Path, tmp_path: Path, capsys, scheme: str
) -> None:
    out = tmp_path / "q.onnx"
    predicted = run_json(capsys, "preview", str(convnet), "--scheme", scheme)["total"]
    doc = run_json(capsys, "export", str(convnet), "-o", str(out), "--scheme", scheme)
    assert doc["format"] == "onnx"
    assert out.stat().st_size == doc["total_bytes"] == predicted["quantized_bytes"]
    exported = onnx.load(str(out))
    onnx.checker.check_model(exported, full_check=True)
    assert exported.opset_import[0].version == 17  # never converted
    ops = {n.op_type for n in exported.graph.node}
    model_notes = [n["note"] for n in doc["notes"] if n["tensor"] == ""]
    if scheme in ("int4", "uint16"):  # DequantizeLinear of int4 / uint16 needs opset 21
        assert "DequantizeLinear" not in ops
        assert len(model_notes) == 1 and model_notes[0].startswith("ONNX opset 17: ")
        assert "opset 21" in model_notes[0]
    else:
        assert "DequantizeLinear" in ops
        assert model_notes == []
    (got,) = ort_run(out, {"x": X})
    (want,) = ort_run(convnet, {"x": X})
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95


def test_export_text_output_names_the_opset_fallback(convnet: Path, tmp_path: Path, capsys):
    assert main(["export", str(convnet), "-o", str(tmp_path / "q.onnx"), "--scheme", "int4"]) == 0
    out = capsys.readouterr().out
    assert "note: ONNX opset 17: int4 decoded from uint8 nibbles" in out


def test_onnx_export_of_a_non_onnx_input_is_refused(tmp_path: Path, capsys) -> None:
    src = tmp_path / "w.npz"
    np.savez(src, w=np.ones((4, 4), np.float32))
    out = tmp_path / "q.onnx"
    assert main(["export", str(src), "-o", str(out), "--format", "onnx"]) != 0
    err = capsys.readouterr().err
    assert "ONNX export needs an ONNX input" in err and "w.npz" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [src]


def test_evaluate_runs_onnx_runtime(convnet: Path, capsys) -> None:
    doc = run_json(capsys, "evaluate", str(convnet), "--scheme", "int8")
    assert doc["model"]["target"] == "onnx"
    text = json.dumps(doc)
    assert "sqnr" in text


def test_sensitivity_ranks_the_onnx_nodes(convnet: Path, capsys) -> None:
    doc = run_json(capsys, "sensitivity", str(convnet), "--scheme", "int4")
    text = json.dumps(doc)
    for node in ("conv1 (Conv)", "conv2 (Conv)", "fc (Gemm)", "head (MatMul)"):
        assert node in text


def test_auto_plan_exports_at_its_predicted_size(convnet: Path, tmp_path: Path, capsys) -> None:
    plan = tmp_path / "plan.json"
    doc = run_json(capsys, "auto", str(convnet), "--target-size", "70%", "-o", str(plan))
    assert doc["model"]["format"] == "onnx"
    assert doc["total"]["quantized_bytes"] <= doc["goal"]["quantized_bytes"]
    out = tmp_path / "q.onnx"
    exported = run_json(capsys, "export", str(convnet), "-o", str(out), "--plan", str(plan))
    assert exported["total_bytes"] == doc["total"]["quantized_bytes"]
    ort_run(out, {"x": X})
