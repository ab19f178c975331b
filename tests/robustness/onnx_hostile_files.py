"""Hostile ONNX files for the robustness suite, built with onnx.helper (no checker: the point is
that they are invalid). A small MatMul model whose weight is stored as an int8 initializer
feeding `DequantizeLinear` is the base; each builder damages one structure of it: the DQ
attributes and shapes, the nodes after the DQ (self-loops, cycles), the node count, the dims
lists, duplicate names, external data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

onnx: Any
try:
    import onnx
    from onnx import AttributeProto, TensorProto, helper, numpy_helper
except ImportError:  # the tests using these skip
    onnx = None

K, N = 8, 6
"""The base weight is (K, N): MatMul B, per-channel along axis 1."""


def raw_tensor(name: str, data_type: int, dims: Sequence[int], raw: bytes) -> Any:
    """A TensorProto with any dims (negative, huge, long lists) and the given raw bytes."""
    t = TensorProto()
    t.name = name
    t.data_type = data_type
    t.dims.extend(int(d) for d in dims)
    t.raw_data = raw
    return t


def weight_codes(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-127, 128, (K, N)).astype(np.int8)


def dq_node(
    inputs: Sequence[str] = ("w_q", "w_scale"),
    output: str = "w",
    axis: Any = 1,
    block_size: Any = None,
) -> Any:
    """A DequantizeLinear node; `axis`/`block_size` may be any attribute value (a string too),
    None to leave the attribute out."""
    node = helper.make_node("DequantizeLinear", list(inputs), [output], name="dq")
    for key, value in (("axis", axis), ("block_size", block_size)):
        if value is not None:
            node.attribute.append(helper.make_attribute(key, value))
    return node


def dq_model(
    path: Path,
    *,
    q: Any = None,
    scale: Any = None,
    zero_point: Any = None,
    node: Any = None,
    after: Sequence[Any] = (),
    extra_nodes: Sequence[Any] = (),
    extra_inits: Sequence[Any] = (),
    value: str | None = None,
    opset: int = 21,
) -> Path:
    """x(1, K) → MatMul(x, <value>) → y, where <value> is `w` (the DQ output) or the output of
    the `after` nodes. Every part can be replaced by a hostile one."""
    q = q if q is not None else numpy_helper.from_array(weight_codes(), "w_q")
    scale = (
        scale
        if scale is not None
        else numpy_helper.from_array(np.linspace(0.01, 0.02, N).astype(np.float32), "w_scale")
    )
    inits = [q, scale, *([zero_point] if zero_point is not None else []), *extra_inits]
    inputs = ["w_q", "w_scale", *(["w_zp"] if zero_point is not None else [])]
    nodes = [
        node if node is not None else dq_node(inputs),
        *after,
        *extra_nodes,
        helper.make_node("MatMul", ["x", value or "w"], ["y"], name="mm"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())
    return path


def float_model(path: Path, inits: Sequence[Any], nodes: Sequence[Any] = ()) -> Path:
    """A graph holding `inits` (and `nodes`) with one Identity so the graph is not empty."""
    graph = helper.make_graph(
        [*nodes, helper.make_node("Identity", ["x"], ["y"], name="id")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def string_attribute(name: str, value: str) -> Any:
    a = AttributeProto()
    a.name = name
    a.type = AttributeProto.STRING
    a.s = value.encode()
    return a
