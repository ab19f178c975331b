"""Small ONNX models built with onnx.helper: Conv, Gemm, MatMul, a residual Add, a Constant-node
weight, an If subgraph weight, external data, and an already-quantized DequantizeLinear weight."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

OPSET = 17
IR = 8


def _opsets(opset: int) -> dict:
    """make_model arguments for a default-domain opset (IR 10 from opset 21, as ONNX pairs them)."""
    return {
        "opset_imports": [helper.make_opsetid("", opset)],
        "ir_version": 10 if opset >= 21 else IR,
    }


def _init(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def _save(model: onnx.ModelProto, path: Path, **kw) -> Path:
    onnx.checker.check_model(model)
    onnx.save(model, str(path), **kw)
    return path


def convnet_proto(seed: int = 0, opset: int = OPSET) -> onnx.ModelProto:
    """x(N,3,8,8) → Conv → Relu → Conv(pad 1) + residual Add → Flatten → Gemm(transB=1) →
    MatMul → y(N,5)."""
    rng = np.random.default_rng(seed)
    f = np.float32
    inits = [
        _init("conv1.weight", rng.normal(0, 0.3, (4, 3, 3, 3)).astype(f)),
        _init("conv1.bias", rng.normal(0, 0.1, (4,)).astype(f)),
        _init("conv2.weight", rng.normal(0, 0.2, (4, 4, 3, 3)).astype(f)),
        _init("fc.weight", rng.normal(0, 0.1, (10, 144)).astype(f)),
        _init("fc.bias", rng.normal(0, 0.1, (10,)).astype(f)),
        _init("head.weight", rng.normal(0, 0.3, (10, 5)).astype(f)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.weight"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["r1", "c2"], ["res"], name="residual"),
        helper.make_node("Flatten", ["res"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["h"], name="fc", transB=1),
        helper.make_node("MatMul", ["h", "head.weight"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes,
        "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    return helper.make_model(graph, **_opsets(opset))


def constant_proto(seed: int = 1, opset: int = OPSET) -> onnx.ModelProto:
    """x(N,6) → MatMul with a Constant-node weight (6,3) → Gemm(transB=0, (3,2)) → y."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (6, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["const_w"], name="const", value=_init("cw", w)),
        helper.make_node("MatMul", ["x", "const_w"], ["h"], name="mm"),
        helper.make_node("Gemm", ["h", "g.weight"], ["y"], name="gemm", transB=0),
    ]
    g = _init("g.weight", rng.normal(0, 0.5, (3, 2)).astype(np.float32))
    graph = helper.make_graph(
        nodes,
        "constant",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [g],
    )
    return helper.make_model(graph, **_opsets(opset))


def if_proto(seed: int = 2, opset: int = OPSET) -> onnx.ModelProto:
    """y = If(sum(x) > 0, x @ then.weight, x @ else.weight), weights inside the branches."""
    rng = np.random.default_rng(seed)

    def branch(tag: str, scale: float) -> onnx.GraphProto:
        w = _init(f"{tag}.weight", rng.normal(0, scale, (4, 3)).astype(np.float32))
        node = helper.make_node("MatMul", ["x", f"{tag}.weight"], [f"{tag}_out"], name=f"{tag}_mm")
        out = helper.make_tensor_value_info(f"{tag}_out", TensorProto.FLOAT, ["N", 3])
        return helper.make_graph([node], f"{tag}_branch", [], [out], [w])

    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"], name="gt"),
        helper.make_node(
            "If",
            ["cond"],
            ["y"],
            name="if",
            then_branch=branch("then", 1.0),
            else_branch=branch("else", 0.1),
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "iffy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [_init("zero", np.array(0.0, np.float32))],
    )
    return helper.make_model(graph, **_opsets(opset))


def dq_proto(seed: int = 3) -> onnx.ModelProto:
    """x(N,8) → MatMul with an int8 per-axis DequantizeLinear weight (8,4), axis 1 → Gemm with a
    uint8 per-tensor weight (transB=1, (3,4)) → y(N,3)."""
    rng = np.random.default_rng(seed)
    q1 = rng.integers(-127, 128, (8, 4)).astype(np.int8)
    s1 = rng.uniform(0.001, 0.01, 4).astype(np.float32)
    q2 = rng.integers(0, 256, (3, 4)).astype(np.uint8)
    inits = [
        _init("mm.w_q", q1),
        _init("mm.w_scale", s1),
        _init("mm.w_zp", np.zeros(4, np.int8)),
        _init("fc.w_q", q2),
        _init("fc.w_scale", np.array(0.02, np.float32)),
        _init("fc.w_zp", np.array(128, np.uint8)),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["mm.w_q", "mm.w_scale", "mm.w_zp"], ["mm.w"], axis=1),
        helper.make_node("MatMul", ["x", "mm.w"], ["h"], name="mm"),
        helper.make_node("DequantizeLinear", ["fc.w_q", "fc.w_scale", "fc.w_zp"], ["fc.w"]),
        helper.make_node("Gemm", ["h", "fc.w"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "dq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR)


@pytest.fixture
def convnet(tmp_path: Path) -> Path:
    return _save(convnet_proto(), tmp_path / "convnet.onnx")


@pytest.fixture
def constant_model(tmp_path: Path) -> Path:
    return _save(constant_proto(), tmp_path / "constant.onnx")


@pytest.fixture
def if_model(tmp_path: Path) -> Path:
    return _save(if_proto(), tmp_path / "if.onnx")


@pytest.fixture
def dq_model(tmp_path: Path) -> Path:
    return _save(dq_proto(), tmp_path / "dq.onnx")


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    folder = tmp_path / "ext"
    folder.mkdir()
    return _save(
        convnet_proto(seed=5),
        folder / "convnet_ext.onnx",
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )


def ort_run(path_or_proto, feeds: dict[str, np.ndarray], basic: bool = True) -> list[np.ndarray]:
    """The reference: ONNX Runtime on the untouched file, with basic graph optimizations (the
    float semantics of the graph) unless `basic` is False (ORT's defaults, which fuse)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if basic:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if isinstance(path_or_proto, str | Path):
        src = str(path_or_proto)
    else:
        src = path_or_proto.SerializeToString()
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)
