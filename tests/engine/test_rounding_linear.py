"""A weight's `LinearView` reproduces its layer: Σ_g columns_g · W_gᵀ equals the layer's
output before bias and activation, for every layout GPTQ treats."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.engine import conv as cv
from inspector.engine.layers import ints
from inspector.engine.rounding.linear import NotLinear, keras_view, onnx_view

RNG = np.random.default_rng(0)


def _apply(view, kernel: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """The layer output (positions × outputs) computed through the view."""
    w = view.to_matrix(kernel.astype(np.float64))
    assert w.shape == (view.groups, view.rows, view.columns)
    assert np.array_equal(view.from_matrix(w), kernel)
    cols = np.concatenate(list(view.inputs(inputs)))
    return np.einsum("ngk,grk->ngr", cols, w).reshape(cols.shape[0], -1)


def test_dense_kernel():
    kernel = RNG.normal(size=(6, 4)).astype(np.float32)
    x = RNG.normal(size=(5, 3, 6)).astype(np.float32)
    view = keras_view("Dense", {}, "kernel", kernel.shape, {"kernel": kernel})
    assert np.allclose(_apply(view, kernel, [x]), x.reshape(-1, 6) @ kernel, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        {"strides": 1, "padding": "valid"},
        {"strides": [2, 1], "padding": "same"},
        {"dilation_rate": 2, "padding": "same"},
        {"strides": 2, "padding": "same", "groups": 2},
    ],
)
def test_conv2d_kernel(config):
    groups = config.get("groups", 1)
    kernel = RNG.normal(size=(3, 3, 4 // groups, 6)).astype(np.float32)
    x = RNG.normal(size=(2, 7, 8, 4)).astype(np.float32)
    view = keras_view("Conv2D", config, "kernel", kernel.shape, {"kernel": kernel})
    strides, dilation = ints(config.get("strides", 1), 2), ints(config.get("dilation_rate", 1), 2)
    want = cv.conv(x, kernel, strides, dilation, config["padding"], groups)
    got = _apply(view, kernel, [x])  # (positions, g·F/g) in filter order
    assert np.allclose(got, want.reshape(-1, 6), atol=1e-4)


def test_conv1d_channels_first():
    kernel = RNG.normal(size=(3, 2, 5)).astype(np.float32)
    x = RNG.normal(size=(2, 2, 9)).astype(np.float32)  # (N, C, T)
    config = {"padding": "causal", "data_format": "channels_first"}
    view = keras_view("Conv1D", config, "kernel", kernel.shape, {"kernel": kernel})
    want = cv.conv(np.moveaxis(x, 1, -1), kernel, (1,), (1,), "causal")
    assert np.allclose(_apply(view, kernel, [x]), want.reshape(-1, 5), atol=1e-4)


def test_depthwise_kernel_with_multiplier():
    kernel = RNG.normal(size=(3, 3, 4, 2)).astype(np.float32)
    x = RNG.normal(size=(2, 6, 6, 4)).astype(np.float32)
    config = {"padding": "same", "strides": 2}
    view = keras_view("DepthwiseConv2D", config, "depthwise_kernel", kernel.shape, {})
    assert (view.groups, view.rows, view.columns) == (4, 2, 9)
    want = cv.depthwise_conv(x, kernel, (2, 2), (1, 1), "same")  # channel c·M + m
    assert np.allclose(_apply(view, kernel, [x]), want.reshape(-1, 8), atol=1e-4)


def test_separable_pointwise_reads_the_depthwise_result():
    dw = RNG.normal(size=(3, 3, 3, 1)).astype(np.float32)
    pw = RNG.normal(size=(1, 1, 3, 5)).astype(np.float32)
    x = RNG.normal(size=(2, 5, 5, 3)).astype(np.float32)
    weights = {"depthwise_kernel": dw, "pointwise_kernel": pw}
    config = {"padding": "same"}
    view = keras_view("SeparableConv2D", config, "pointwise_kernel", pw.shape, weights)
    want = cv.depthwise_conv(x, dw, (1, 1), (1, 1), "same") @ pw.reshape(3, 5)
    assert np.allclose(_apply(view, pw, [x]), want.reshape(-1, 5), atol=1e-4)


def test_what_gptq_does_not_treat_is_refused_with_the_reason():
    with pytest.raises(NotLinear, match="BatchNormalization"):
        keras_view("BatchNormalization", {}, "gamma", (8,), {})
    with pytest.raises(NotLinear, match="Dense"):
        keras_view("Dense", {}, "bias", (8,), {})
    with pytest.raises(NotLinear):
        onnx_view("MatMul", 0, {}, (4, 4))  # the weight is the left operand
    with pytest.raises(NotLinear):
        onnx_view("Gemm", 1, {"transA": 1}, (4, 4))


@pytest.mark.parametrize("trans", [0, 1])
def test_onnx_gemm_and_matmul(trans):
    w = RNG.normal(size=(5, 7) if trans else (7, 5)).astype(np.float32)
    x = RNG.normal(size=(4, 7)).astype(np.float32)
    view = onnx_view("Gemm", 1, {"transB": trans}, w.shape)
    assert np.allclose(_apply(view, w, [x]), x @ (w.T if trans else w), atol=1e-5)
    if not trans:
        x3 = RNG.normal(size=(2, 3, 7)).astype(np.float32)
        mm = onnx_view("MatMul", 1, {}, w.shape)
        assert np.allclose(_apply(mm, w, [x3]), x3.reshape(-1, 7) @ w, atol=1e-5)


@pytest.mark.parametrize(
    "attrs",
    [
        {"pads": [0, 1, 2, 1], "strides": [1, 2]},
        {"auto_pad": b"SAME_UPPER", "strides": [2, 2]},
        {"auto_pad": b"SAME_LOWER", "strides": [2, 1]},
        {"dilations": [2, 1], "pads": [2, 1, 2, 1]},
        {"group": 2, "pads": [1, 1, 1, 1]},
    ],
)
def test_onnx_conv_matches_onnxruntime(attrs):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    g = attrs.get("group", 1)
    w = RNG.normal(size=(6, 4 // g, 3, 3)).astype(np.float32)
    x = RNG.normal(size=(2, 4, 7, 8)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": x})[0]  # (N, F, H', W')
    view = onnx_view("Conv", 1, attrs, w.shape)
    got = _apply(view, w, [x])
    assert np.allclose(got, np.moveaxis(want, 1, -1).reshape(-1, 6), atol=1e-4)
