"""Structure fuzzing of ONNX DequantizeLinear weights: hypothesis builds whole graphs — q/scale/
zero-point dims (negative, 2^32, 2^62, 70-long lists), payloads that do or do not match, axis and
block_size of any attribute type and value, chains of Reshape/Transpose/Add/Cast after the DQ
that may loop back on themselves (self-loops and longer cycles), runs of empty nodes, and
duplicate initializer names.

Oracle: opening the model and loading every tensor either works — each array has its declared
shape and dtype — or raises a `FormatError` naming the file; within 5 s and 64 MiB of traced
allocations per case. Derandomized, so a failure reproduces; `ONNX_FUZZ_EXAMPLES` runs more.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from robust_helpers import bounded

pytest.importorskip("onnx")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from onnx import AttributeProto, TensorProto, helper, numpy_helper  # noqa: E402

from inspector.core.errors import FormatError  # noqa: E402
from inspector.formats.registry import open_model  # noqa: E402

EXAMPLES = int(os.environ.get("ONNX_FUZZ_EXAMPLES", "250"))

DIM = st.sampled_from([0, 1, 2, 3, 4, 6, 8, -1, -(2**40), 2**31, 2**32, 2**62, 2**63 - 1])
SANE_DIMS = st.lists(st.sampled_from([1, 2, 3, 4, 6, 8]), min_size=0, max_size=4)
DIMS = st.sampled_from(["sane"] * 8 + ["hostile", "long"]).flatmap(
    lambda kind: {
        "sane": SANE_DIMS,
        "hostile": st.lists(DIM, max_size=4),
        "long": st.just([1] * 70),
    }[kind]
)
Q_TYPES = [
    TensorProto.INT8,
    TensorProto.UINT8,
    TensorProto.INT4,
    TensorProto.UINT4,
    TensorProto.INT16,
]
ATTR = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from([2**31, -(2**40), 2**62]),
    st.text(max_size=3),
    st.floats(allow_nan=True, width=32),
    st.lists(st.integers(-3, 3), max_size=3),
)
BLOCK = st.sampled_from(["none"] * 4 + ["values", "any"]).flatmap(
    lambda kind: {
        "none": st.none(),
        "values": st.sampled_from([0, 1, 2, 3, 4, 8, 64, 2**40, 2**62, -1]),
        "any": ATTR,
    }[kind]
)


def _axis(kind: str) -> Any:
    return st.integers(-2, 1) if kind == "sane" else ATTR


def _payload(dims: list[int], itemsize: float, draw: Any) -> bytes:
    """The right number of bytes for `dims` when that is small, else a few random bytes."""
    count = int(np.prod([max(d, 0) for d in dims], dtype=object)) if dims else 1
    exact = int(np.ceil(count * itemsize))
    size = draw(st.sampled_from([exact] * 6 + [max(exact - 1, 0), exact + 3, 0, 7]))
    return bytes(min(size, 4096))


def _tensor(name: str, data_type: int, dims: list[int], raw: bytes) -> Any:
    t = TensorProto()
    t.name, t.data_type, t.raw_data = name, data_type, raw
    t.dims.extend(dims)
    return t


def _attr(name: str, value: Any) -> Any:
    if isinstance(value, str):
        a = AttributeProto()
        a.name, a.type, a.s = name, AttributeProto.STRING, value.encode()
        return a
    if isinstance(value, list):
        return helper.make_attribute(name, value, attr_type=AttributeProto.INTS)
    return helper.make_attribute(name, value)


@st.composite
def dq_graphs(draw: Any) -> bytes:
    q_dims = draw(DIMS)
    q_type = draw(st.sampled_from(Q_TYPES))
    per = (
        0.5
        if q_type in (TensorProto.INT4, TensorProto.UINT4)
        else (2 if q_type == TensorProto.INT16 else 1)
    )
    inits = [_tensor("q", q_type, q_dims, _payload(q_dims, per, draw))]
    scale_dims = draw(
        st.one_of(
            st.just([]),
            st.just([1]),
            st.just(q_dims[-1:]),
            st.just(q_dims[:1]),
            st.just(q_dims[1:2]),
            st.just([max(d, 0) for d in q_dims[:1]] + [1] * max(len(q_dims) - 1, 0)),
            st.just([1, *q_dims[1:]]),
            DIMS,
        )
    )
    scale_type = draw(st.sampled_from([TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT32]))
    inits.append(_tensor("s", scale_type, scale_dims, _payload(scale_dims, 4, draw)))
    inputs = ["q", "s"]
    if draw(st.booleans()):
        zp_dims = draw(st.one_of(st.just(scale_dims), DIMS))
        inits.append(_tensor("z", q_type, zp_dims, _payload(zp_dims, per, draw)))
        inputs.append("z")
    dq = helper.make_node("DequantizeLinear", inputs, ["v0"], name="dq")
    axis = draw(st.sampled_from(["sane"] * 3 + ["any"]).flatmap(_axis))
    for key, value in (("axis", axis), ("block_size", draw(BLOCK))):
        if value is not None:
            dq.attribute.append(_attr(key, value))
    nodes = [dq, *_chain(draw, inits)]
    nodes += [helper.make_node("", [], [])] * draw(st.sampled_from([0, 0, 3, 2000]))
    if draw(st.sampled_from([False] * 15 + [True])):
        inits.append(_tensor("q", TensorProto.FLOAT, [2], bytes(8)))  # a duplicate name
    last = nodes[-1].output[0] if nodes[-1].output else "v0"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return bytes(model.SerializeToString())


def _chain(draw: Any, inits: list[Any]) -> list[Any]:
    """0–5 layout nodes after the DQ; sometimes the last one writes back to an earlier value
    (a self-loop or a cycle)."""
    nodes = []
    for i in range(draw(st.integers(0, 5))):
        src, out = f"v{i}", f"v{i + 1}"
        op = draw(st.sampled_from(["Reshape", "Transpose", "Add", "Cast", "Identity"]))
        if op == "Reshape":
            dims = draw(st.lists(st.sampled_from([-1, 0, 1, 2, 3, 4, 8, 48, 2**62]), max_size=4))
            inits.append(numpy_helper.from_array(np.asarray(dims, np.int64), f"shape{i}"))
            node = helper.make_node("Reshape", [src, f"shape{i}"], [out])
        elif op == "Transpose":
            perm = draw(st.one_of(st.none(), st.lists(st.integers(-1, 4), max_size=4)))
            node = helper.make_node("Transpose", [src], [out])
            if perm is not None:
                node.attribute.append(_attr("perm", perm))
        elif op == "Add":
            shape = draw(st.sampled_from([(), (1,), (2,), (1, 1, 1)]))
            inits.append(numpy_helper.from_array(np.ones(shape, np.float32), f"off{i}"))
            node = helper.make_node("Add", [src, f"off{i}"], [out])
        elif op == "Cast":
            node = helper.make_node("Cast", [src], [out])
            node.attribute.append(
                _attr(
                    "to",
                    draw(
                        st.one_of(
                            st.sampled_from([1, 10, 16, 11, 6]),
                            ATTR.filter(lambda v: v is not None),
                        )
                    ),
                )
            )
        else:
            node = helper.make_node("Identity", [src], [out])
        nodes.append(node)
    if nodes and draw(st.booleans()):
        nodes[-1].output[0] = f"v{draw(st.integers(0, len(nodes) - 1))}"
    return nodes


def _check(path: Path) -> str:
    try:
        with bounded(), open_model(path) as model:
            for t in model:
                arr = t.load()
                assert arr.shape == t.info.shape, (t.name, arr.shape, t.info.shape)
                assert arr.dtype.name == t.info.dtype, (t.name, arr.dtype, t.info.dtype)
    except FormatError as exc:
        assert str(path) in str(exc), exc
        return "refused"
    return "opened"


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=dq_graphs())
def test_dequantize_linear_structures(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("dq") / "m.onnx"
    path.write_bytes(data)
    _check(path)


def test_the_generator_reaches_both_outcomes(tmp_path: Path) -> None:
    """The structures are not all refused (a generator that only makes garbage tests little):
    a fixed sample both opens and refuses."""
    outcomes = set()

    @settings(
        max_examples=60,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=dq_graphs())
    def run(data: bytes) -> None:
        path = tmp_path / "m.onnx"
        path.write_bytes(data)
        outcomes.add(_check(path))

    run()
    assert outcomes == {"opened", "refused"}
