"""Model Explorer node data (issue 16 item 12): the documented JSON shape, from a preview."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from inspector.cli.main import main
from inspector.core.explorer import METRICS, node_data
from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats.registry import get_target, open_model

DEPTHWISE = Path(__file__).resolve().parents[2] / "resources/digits_depthwise/digits_depthwise.h5"


@pytest.fixture(scope="module")
def preview():
    with open_model(DEPTHWISE) as model:
        return run_preview(model, Plan(default="uint8"), get_target("tfjs"))


def _check_schema(doc: dict, graph_id: str) -> dict:
    """GraphNodeData as Model Explorer documents it: results → {value: number}; gradient
    stops from 0 to 1 with colours, or thresholds with value + bgColor."""
    assert list(doc) == [graph_id]
    graph = doc[graph_id]
    assert set(graph) <= {"results", "gradient", "thresholds"}
    for key, result in graph["results"].items():
        assert isinstance(key, str) and set(result) == {"value"}
        assert isinstance(result["value"], float | int) and math.isfinite(result["value"])
    if "gradient" in graph:
        stops = [g["stop"] for g in graph["gradient"]]
        assert stops[0] == 0 and stops[-1] == 1 and all("bgColor" in g for g in graph["gradient"])
    for item in graph.get("thresholds", []):
        assert set(item) == {"value", "bgColor"}
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN/Infinity
    return graph


def test_tensor_and_layer_keys(preview):
    graph = _check_schema(node_data(preview.tensors, "sqnr_db", "g"), "g")
    rows = {t.name: t for t in preview.tensors}
    results = graph["results"]
    assert (
        results["block2_dw/depthwise_kernel:0"]["value"]
        == rows["block2_dw/depthwise_kernel:0"].sqnr_db
    )
    # a layer's SQNR is over its tensors' energy together: between its tensors' values
    layer = results["block2_dw"]["value"]
    members = [rows["block2_dw/depthwise_kernel:0"].sqnr_db, rows["block2_dw/bias:0"].sqnr_db]
    assert min(members) <= layer <= max(members)
    only_layers = node_data(preview.tensors, "sqnr_db", "g", per="layer")["g"]["results"]
    assert "block2_dw" in only_layers and "block2_dw/bias:0" not in only_layers


def test_every_metric_and_thresholds(preview):
    sens = {t.name: 0.1 for t in preview.tensors}
    for metric in METRICS:
        graph = _check_schema(node_data(preview.tensors, metric, "g", sensitivity=sens), "g")
        assert graph["results"], metric
    graph = node_data(preview.tensors, "collapsed_channels", "g", threshold=0.5)["g"]
    assert "gradient" not in graph and graph["thresholds"][0]["value"] == 0.5
    assert graph["results"]["block4_dw/depthwise_kernel:0"]["value"] > 100


def test_exact_and_kept_tensors_are_left_out():
    with open_model(DEPTHWISE) as model:
        kept = run_preview(model, Plan(default="float32"))
    assert node_data(kept.tensors, "sqnr_db", "g")["g"]["results"] == {}


def test_cli_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "nd.json"
    argv = ["explorer", str(DEPTHWISE), "-o", str(out), "--scheme", "uint8", "--json"]
    assert main(argv) == 0
    line = json.loads(capsys.readouterr().out)
    doc = json.loads(out.read_text())
    _check_schema(doc, "digits_depthwise")
    assert line["nodes"] == len(doc["digits_depthwise"]["results"]) > 0
    assert main(argv) != 0  # exists: needs --force
    assert "exists" in capsys.readouterr().err
    assert main([*argv, "--force", "--graph-id", "main"]) == 0
    assert list(json.loads(out.read_text())) == ["main"]
