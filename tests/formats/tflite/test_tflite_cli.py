"""The CLI on `.tflite` files: sniffing, info, export to TF-Lite and npz, evaluate/sensitivity."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tflite_helpers import RESOURCES, bits, fixture

from inspector.cli import main
from inspector.formats.registry import open_model, sniff_format
from inspector.formats.tflite.reader import read_tflite


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_sniffed_by_identifier_whatever_the_suffix(tmp_path):
    odd = tmp_path / "model.bin"
    shutil.copy(fixture("digits_convnet", "float32"), odd)
    assert sniff_format(odd) == "tflite"
    with open_model(odd) as m:
        assert m.format == "tflite" and len(m) == 9


def test_info_shows_stored_quantization(capsys):
    doc = run_json(capsys, "info", str(fixture("digits_depthwise", "dynamic")))
    stored = [t["stored"]["scheme"] for t in doc["tensors"] if t.get("stored")]
    assert "int8:axis=3" in stored and "int8:axis=0" in stored


def test_export_npz_float32_writes_every_decoded_weight(tmp_path, capsys):
    src = fixture("digits_convnet", "int8")
    out = tmp_path / "w.npz"
    assert main(["export", str(src), "-o", str(out), "--format", "npz", "--scheme", "float32"]) == 0
    with read_tflite(src) as m, np.load(out, allow_pickle=False) as z:
        names = [n for n in z.files if not n.startswith("__quant_inspector")]
        assert sorted(names) == sorted(t.name for t in m)
        for t in m:
            assert np.array_equal(bits(z[t.name]), bits(t.load())) if t.info.is_float else True


def test_export_tflite_size_as_predicted(tmp_path, capsys):
    src = fixture("digits_convnet", "float32")
    preview = run_json(capsys, "preview", str(src), "--scheme", "float16")
    out = tmp_path / "f16.tflite"
    assert main(["export", str(src), "-o", str(out), "--scheme", "float16"]) == 0
    assert out.stat().st_size == preview["total"]["quantized_bytes"]
    assert sniff_format(out) == "tflite"


def test_tflite_export_of_another_format_is_refused(tmp_path, capsys):
    src = RESOURCES / "digits_convnet" / "digits_convnet.h5"
    assert main(["export", str(src), "-o", str(tmp_path / "x.tflite"), "--format", "tflite"]) == 2
    assert "TF-Lite export needs a TF-Lite input" in capsys.readouterr().err


def test_evaluate_and_sensitivity_run_through_litert(capsys):
    pytest.importorskip("ai_edge_litert.interpreter")
    src = fixture("digits_convnet", "float32")
    data = RESOURCES / "digits_convnet" / "sample.npz"
    doc = run_json(capsys, "evaluate", str(src), "--scheme", "int8", "--data", str(data))
    out = doc["output"] if "output" in doc else doc["evaluation"]["output"]
    assert out["metric"] == "accuracy" and out["top1_agreement"] > 0.9
    assert main(["sensitivity", str(src), "--data", str(data), "--json"]) == 0
