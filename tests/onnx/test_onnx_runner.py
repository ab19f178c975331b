"""OnnxExecutor against ONNX Runtime on the untouched file, and overrides against hand-edited
protos: initializers, Constant nodes, If branches and DequantizeLinear weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.onnx_runner import OnnxExecutor
from inspector.formats.onnx.reader import read_onnx
from tests.onnx.conftest import constant_proto, convnet_proto, if_proto, onnx, ort_run

numpy_helper = onnx.numpy_helper
RNG = np.random.default_rng(7)
X_IMG = RNG.normal(size=(7, 3, 8, 8)).astype(np.float32)


def test_convnet_equals_onnxruntime(convnet: Path) -> None:
    with read_onnx(convnet) as model:
        ex = OnnxExecutor.from_model(model)
        assert ex.input_shapes == [(None, 3, 8, 8)]
        assert ex.output_count == 1
        (y,) = ex.run(X_IMG)
        np.testing.assert_array_equal(y, ort_run(convnet, {"x": X_IMG})[0])
        default = ort_run(convnet, {"x": X_IMG}, basic=False)[0]
        np.testing.assert_allclose(y, default, rtol=1e-5, atol=1e-5)
        (y3,) = ex.run([X_IMG], batch_size=3)
        np.testing.assert_allclose(y3, y, rtol=1e-6, atol=1e-6)


def test_external_data_model_runs(external_model: Path) -> None:
    with read_onnx(external_model) as model:
        (y,) = OnnxExecutor.from_model(model).run(X_IMG)
    np.testing.assert_array_equal(y, ort_run(external_model, {"x": X_IMG})[0])


def _set_init(proto, name: str, arr: np.ndarray) -> None:
    for g in [proto.graph, *(a.g for n in proto.graph.node for a in n.attribute if a.g.name)]:
        for t in g.initializer:
            if t.name == name:
                t.CopyFrom(numpy_helper.from_array(arr, name))


def test_initializer_override(convnet: Path) -> None:
    w = RNG.normal(size=(10, 5)).astype(np.float32)
    expected_proto = convnet_proto()
    _set_init(expected_proto, "head.weight", w)
    with read_onnx(convnet) as model:
        ex = OnnxExecutor.from_model(model).with_weights({"head.weight": w})
        (y,) = ex.run(X_IMG)
        (y0,) = OnnxExecutor.from_model(model).run(X_IMG)
    np.testing.assert_array_equal(y, ort_run(expected_proto, {"x": X_IMG})[0])
    assert not np.allclose(y, y0)


def test_constant_node_override(constant_model: Path) -> None:
    x = RNG.normal(size=(5, 6)).astype(np.float32)
    w = RNG.normal(size=(6, 3)).astype(np.float32)
    expected = constant_proto()
    expected.graph.node[0].attribute[0].t.CopyFrom(numpy_helper.from_array(w, "cw"))
    with read_onnx(constant_model) as model:
        (y,) = OnnxExecutor.from_model(model, {"const_w": w}).run(x)
    np.testing.assert_array_equal(y, ort_run(expected, {"x": x})[0])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_if_branch_override(if_model: Path, sign: float) -> None:
    x = np.abs(RNG.normal(size=(4, 4))).astype(np.float32) * sign
    w = RNG.normal(size=(4, 3)).astype(np.float32)
    expected = if_proto()
    _set_init(expected, "then.weight", w)
    with read_onnx(if_model) as model:
        (y,) = OnnxExecutor.from_model(model, {"then.weight": w}).run(x)
    np.testing.assert_array_equal(y, ort_run(expected, {"x": x})[0])
    if sign < 0:  # the else branch is untouched
        np.testing.assert_array_equal(y, ort_run(if_model, {"x": x})[0])


def test_dequantized_override_with_its_own_values_changes_nothing(dq_model: Path) -> None:
    x = RNG.normal(size=(6, 8)).astype(np.float32)
    reference = ort_run(dq_model, {"x": x})[0]
    with read_onnx(dq_model) as model:
        decoded = {t.name: t.load() for t in model}
        ex = OnnxExecutor.from_model(model, decoded)
        (y,) = ex.run(x)
        (y2,) = ex.with_weights({"fc.w": np.zeros((3, 4), np.float32)}).run(x)
    np.testing.assert_allclose(y, reference, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y2, 0)


def test_non_onnx_model_is_refused(tmp_path: Path) -> None:
    from inspector.core.model import Model

    with pytest.raises(EvaluationUnavailable, match="not an ONNX model"):
        OnnxExecutor.from_model(Model(tmp_path / "m.h5", "keras-h5", []))


def test_fixed_batch_of_one_is_run_row_by_row(tmp_path: Path) -> None:
    proto = constant_proto()
    for v in (proto.graph.input[0], proto.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "fixed.onnx"
    onnx.save(proto, str(path))
    x = RNG.normal(size=(5, 6)).astype(np.float64)
    with read_onnx(path) as model:
        ex = OnnxExecutor.from_model(model)
        assert ex.input_shapes == [(None, 6)]
        (y,) = ex.run([x])
    rows = [ort_run(path, {"x": x[i : i + 1].astype(np.float32)})[0] for i in range(5)]
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, np.concatenate(rows))
