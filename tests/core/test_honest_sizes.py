"""Sizes compare like with like (issue 16 item 1): before = what the input holds on disk,
after = what the chosen export writes; a format that cannot store the plan's savings says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.core.totals import lost_savings, restored_larger
from inspector.formats.compare import annotate_total, weight_bytes_by_format
from inspector.formats.export import export_model
from inspector.formats.naming import model_name
from inspector.formats.registry import get_target, open_model

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "models"
U8 = SHARED / "tfjs-layers-nsfwjs-mobilenet_v2-u8"
FER = SHARED / "keras-h5-fer-emotion" / "emotion_model.hdf5"
DEMO_TFJS = ROOT / "resources" / "digits_convnet" / "tfjs" / "model.json"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not present")


def test_already_quantized_input_counts_its_stored_codes():
    _need(U8)
    with open_model(U8) as model:
        total = run_preview(model, Plan(default="uint8"), get_target("tfjs")).total
    on_disk = sum(f.stat().st_size for f in U8.iterdir())
    assert total["file_bytes_before"] == on_disk
    # one byte per weight plus its (min, scale): not the float32 the codes decode to
    assert total["original_bytes"] < 1.01 * total["parameters"]
    assert 0.95 < total["compression_ratio"] < 1.05  # re-storing uint8 as uint8 gains nothing
    assert 0.95 < total["weight_ratio"] < 1.05


def test_keras_before_is_the_file_after_is_the_written_file(tmp_path):
    _need(FER)
    plan = Plan(default="uint8")
    with open_model(FER) as model:
        preview = run_preview(model, plan, get_target("keras"))
        total = annotate_total(preview.total, model, plan, "keras")
        result = export_model(model, plan, "keras", tmp_path / "o.h5")
    assert total["file_bytes_before"] == FER.stat().st_size
    assert total["file_bytes_after"] == (tmp_path / "o.h5").stat().st_size == result.total_bytes
    assert total["optimizer_tensors"] > 0 and total["optimizer_bytes"] > 0
    assert total["weight_ratio"] == pytest.approx(1.0)  # Keras stores floats: nothing saved
    assert total["better_format"] in ("tfjs", "safetensors")
    assert "Keras" in total["savings_note"]
    rows = [t for t in preview.tensors if t.skipped is None]
    assert rows and all(t.stored == "float32" and t.scheme == "uint8" for t in rows)


def test_no_note_when_the_format_keeps_the_savings():
    with open_model(DEMO_TFJS) as model:
        plan = Plan(default="uint8")
        total = annotate_total(
            run_preview(model, plan, get_target("tfjs")).total, model, plan, "tfjs"
        )
        assert "savings_note" not in total
        by_format = weight_bytes_by_format(model, Plan(default="int4"))
    # TF.js bakes int4 groups into uint16 codes; safetensors stores the 4-bit codes
    assert by_format["safetensors"] * 3 < by_format["tfjs"]


def test_lost_savings_picks_the_smallest_format():
    assert lost_savings("A", {"A": 1000, "B": 300, "C": 250}, native=250) is not None
    best, text = lost_savings("A", {"A": 1000, "B": 300, "C": 250}, native=250)  # type: ignore[misc]
    assert best == "C" and "A stores" in text
    assert lost_savings("A", {"A": 260, "B": 250}, native=250) is None  # within the slack


def test_restored_larger_names_scheme_and_storage():
    with open_model(DEMO_TFJS) as model:
        rows = restored_larger(model, Plan(default="int4"), get_target("tfjs"))
        assert rows and rows[0][:2] == ("int4", "uint16") and rows[0][4] > rows[0][3]
        assert restored_larger(model, Plan(default="uint8"), get_target("tfjs")) == []


def test_model_name_skips_folders_named_after_the_format(tmp_path):
    with open_model(DEMO_TFJS) as model:
        assert model_name(model) == "digits_convnet"
    _need(FER)
    with open_model(FER) as model:
        assert model_name(model) == "emotion_model"


def test_onnx_external_data_counts_in_the_file_before(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [w],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "m.onnx"
    onnx.save_model(
        proto, str(path), save_as_external_data=True, location="m.data", size_threshold=0
    )
    with open_model(path) as model:
        on_disk = path.stat().st_size + (tmp_path / "m.data").stat().st_size
        assert model.file_bytes == on_disk > 64 * 64 * 4
