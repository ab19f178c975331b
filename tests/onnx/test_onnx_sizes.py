"""Each tensor's share of the ONNX graph (`onnx_option_bytes`) and the budget solver using it: a
plan for a size target is written at exactly its predicted size, below the target, even where
the model's opset makes int4 cost decode nodes (opset < 21)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core import budget
from inspector.core.preview import PreviewCache, drain, run_preview
from inspector.core.schemes import parse_scheme
from inspector.formats.export import export_model
from inspector.formats.onnx.reader import read_onnx
from inspector.formats.onnx.writer import ONNX_TARGET
from tests.onnx.conftest import convnet_proto, onnx


def _convnet(tmp_path: Path, opset: int) -> Path:
    path = tmp_path / f"convnet{opset}.onnx"
    onnx.save(convnet_proto(opset=opset), str(path))
    return path


def test_option_bytes_count_the_decode_nodes(tmp_path: Path) -> None:
    old, new = _convnet(tmp_path, 11), _convnet(tmp_path, 21)
    shares = {}
    for path in (old, new):
        with read_onnx(path) as model:
            info = model["fc.weight"].info
            shares[path] = {
                spec: ONNX_TARGET.option_bytes(model, info, parse_scheme(spec))
                for spec in ("float16", "int8", "int4")
            }
    assert 0 < shares[new]["int8"] < shares[old]["int4"]
    assert shares[new]["int4"] < shares[old]["int4"]  # one DequantizeLinear, no unpacking
    assert shares[old]["int8"] < shares[old]["int4"]  # Cast + Mul against the nibble graph
    assert all(v < 200 for v in shares[new].values())


@pytest.mark.parametrize("opset", [11, 21])
@pytest.mark.parametrize("fraction", [0.45, 0.6])
def test_size_target_is_met_as_written(opset: int, fraction: float, tmp_path: Path) -> None:
    src = _convnet(tmp_path, opset)
    with read_onnx(src) as model:
        cache = PreviewCache()
        ladders = drain(budget.build_ladders(model, target=ONNX_TARGET, cache=cache))
        original = sum(t.info.nbytes for t in model.weights)
        limit = int(fraction * original)
        sol = budget.solve_total(model, ladders, limit, ONNX_TARGET, cache)
        predicted = run_preview(model, sol.plan, ONNX_TARGET).total["quantized_bytes"]
        out = tmp_path / "q.onnx"
        export_model(model, sol.plan, "onnx", out)
    assert out.stat().st_size == predicted == sol.total_bytes <= limit
