"""Every scheme × layout exports at every opset ONNX Runtime runs (7…21), weights in
initializers, Constant nodes, If branches and Loop bodies, without converting the model: native
DequantizeLinear/Cast where the opset has them, the decode fallbacks of decode.py below. Each
export is checked by tests/onnx/fidelity.py (size = prediction, full checker, ONNX Runtime =
evaluate, exported weights = preview)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.formats.export import export_model
from inspector.formats.onnx.reader import read_onnx
from tests.onnx.conftest import constant_proto, convnet_proto, if_proto, onnx
from tests.onnx.fidelity import check_export

OPSETS = (7, 9, 10, 11, 13, 17, 21)
# per tensor (uint8/affine/kmeans), per channel (int8 on the layout's axis or another), blocked
# (int4 groups along rows, leading or trailing channel axis), floats, and the option families.
SCHEMES = (
    "float16",
    "bfloat16",
    "float16:sparsity=0.3",
    "int8",
    "int8:axis=1",
    "int8:clip=mse",
    "int4",
    "int4:group=8",
    "int4:axis=1,group=8",
    "uint8",
    "uint8:clip=percentile:99",
    "uint16",
    "affine4",
    "affine6",
    "kmeans3",
)
RNG = np.random.default_rng(5)
X_IMG = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)


def _save(proto: onnx.ModelProto, path: Path) -> Path:
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("spec", SCHEMES)
def test_convnet_every_scheme_every_opset(opset: int, spec: str, tmp_path: Path) -> None:
    src = _save(convnet_proto(opset=opset), tmp_path / f"convnet{opset}.onnx")
    checked = check_export(src, Plan(default=spec), [X_IMG], tmp_path / "q.onnx")
    assert checked.quantized == 4  # conv1/conv2/fc/head weights; the biases are kept


@pytest.mark.parametrize("opset", (11, 13, 21))  # Gemm without C needs opset 11
@pytest.mark.parametrize("spec", ("int8", "int4:group=4", "uint16", "bfloat16", "affine4"))
def test_constant_node_and_if_branch_weights(opset: int, spec: str, tmp_path: Path) -> None:
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    src = _save(constant_proto(opset=opset), tmp_path / "constant.onnx")
    check_export(src, Plan(default=spec), [x], tmp_path / "c.onnx")
    x = np.abs(RNG.normal(size=(4, 4))).astype(np.float32)
    src = _save(if_proto(opset=opset), tmp_path / "if.onnx")
    assert check_export(src, Plan(default=spec), [x], tmp_path / "i.onnx").quantized == 2


@pytest.mark.parametrize("opset", (9, 10, 13))
def test_explicit_bias_overrides_are_per_tensor(opset: int, tmp_path: Path) -> None:
    """Biases are kept by default; naming them quantizes them per tensor (DequantizeLinear
    from opset 10, Cast + Mul below)."""
    src = _save(convnet_proto(opset=opset), tmp_path / "convnet.onnx")
    plan = Plan(default="int8").with_overrides(["conv1.bias", "fc.bias"], "int8")
    assert check_export(src, plan, [X_IMG], tmp_path / "q.onnx").quantized == 6
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node]
    assert ("DequantizeLinear" in ops) == (opset >= 10)


def loop_proto(opset: int) -> onnx.ModelProto:
    """y = Loop 3 times: x ← tanh(x @ body.weight), the weight an initializer of the body."""
    helper, tp = onnx.helper, onnx.TensorProto
    w = onnx.numpy_helper.from_array(RNG.normal(0, 0.5, (4, 4)).astype(np.float32), "body.weight")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("MatMul", ["x_in", "body.weight"], ["h"], name="body_mm"),
            helper.make_node("Tanh", ["h"], ["x_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", tp.INT64, []),
            helper.make_tensor_value_info("cond", tp.BOOL, []),
            helper.make_tensor_value_info("x_in", tp.FLOAT, ["N", 4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", tp.BOOL, []),
            helper.make_tensor_value_info("x_out", tp.FLOAT, ["N", 4]),
        ],
        [w],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "go", "x"], ["y"], name="loop", body=body)],
        "looped",
        [helper.make_tensor_value_info("x", tp.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", tp.FLOAT, ["N", 4])],
        [
            onnx.numpy_helper.from_array(np.array(3, np.int64), "trips"),
            onnx.numpy_helper.from_array(np.array(True), "go"),
        ],
    )
    ir = 10 if opset >= 21 else 8
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


@pytest.mark.parametrize("opset", (11, 21))
@pytest.mark.parametrize("spec", ("int8", "int4:group=2", "bfloat16", "uint16"))
def test_loop_body_weights(opset: int, spec: str, tmp_path: Path) -> None:
    src = _save(loop_proto(opset), tmp_path / "loop.onnx")
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    assert check_export(src, Plan(default=spec), [x], tmp_path / "q.onnx").quantized == 1


def test_opset_below_7_is_refused_with_what_would_work(tmp_path: Path) -> None:
    proto = convnet_proto(opset=7)
    proto.opset_import[0].version = 6
    path = tmp_path / "old.onnx"
    onnx.save(proto, str(path))
    with read_onnx(path) as model, pytest.raises(FormatError, match="version_converter"):
        export_model(model, Plan(default="int8"), "onnx", tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()
