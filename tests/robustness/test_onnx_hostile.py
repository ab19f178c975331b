"""Hostile ONNX files (second wave): DequantizeLinear weights whose attributes, dims or shapes
break ONNX's rules, layout chains after them that cannot apply or loop back, graphs with
thousands of nodes, huge dims lists, duplicate names, and external data that shrinks or is not
a file. Each must end in one `FormatError` naming the file, the tensor and the reason, within
the suite's time and memory budget — or open correctly."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import REPO, bounded, expect_format_error, open_and_load

pytest.importorskip("onnx")

from onnx import TensorProto, helper, numpy_helper
from onnx_hostile_files import (
    K,
    N,
    dq_model,
    dq_node,
    float_model,
    raw_tensor,
    weight_codes,
)

from inspector.core.errors import FormatError
from inspector.formats.onnx.edit import NameAllocator
from inspector.formats.registry import open_model


@contextlib.contextmanager
def timed(seconds: float) -> Iterator[None]:
    """CPU time without tracemalloc, for the tests about algorithmic cost: tracemalloc (in
    `bounded`) slows object-heavy graph walks about sixfold, which says nothing about their
    complexity."""
    start = time.process_time()  # CPU time: the work the input causes, not the machine's load
    yield
    used = time.process_time() - start
    assert used < seconds, f"took {used:.1f} s of CPU"


def _scale(shape: tuple[int, ...]) -> object:
    return numpy_helper.from_array(np.full(shape, 0.01, np.float32), "w_scale")


def _identity_tail() -> list[object]:
    return [helper.make_node("Identity", ["x"], ["x2"], name="side")]


# ----------------------------------------------------------------- DequantizeLinear shape rules

DQ_CASES = {
    "axis_string": ({"node": dq_node(axis="one")}, "'axis' is STRING, not an integer"),
    "axis_float": ({"node": dq_node(axis=1.5)}, "'axis' is FLOAT, not an integer"),
    "axis_out_of_range": ({"node": dq_node(axis=7)}, "axis 7 is out of range"),
    "axis_negative_out_of_range": ({"node": dq_node(axis=-3)}, "axis -3 is out of range"),
    "block_size_string": (
        {"node": dq_node(axis=0, block_size="x")},
        "'block_size' is STRING",
    ),
    "block_size_negative": (
        {"node": dq_node(axis=0, block_size=-4), "scale": _scale((2, N))},
        "negative block_size",
    ),
    "scale_does_not_broadcast": ({"scale": _scale((5,))}, "scale shape [5]"),
    "scale_rank_wrong": ({"scale": _scale((N, 1))}, "scale shape [6, 1]"),
    "zero_point_does_not_broadcast": (
        {"zero_point": numpy_helper.from_array(np.zeros(4, np.int8), "w_zp")},
        "zero point shape [4] differs from scale shape [6]",
    ),
    "blocked_scale_wrong": (
        {"node": dq_node(axis=0, block_size=3), "scale": _scale((2, N))},
        "does not fit block_size 3",
    ),
    "negative_dims": (
        {"q": raw_tensor("w_q", TensorProto.INT8, [-1, N], weight_codes().tobytes())},
        "negative dimension",
    ),
    "absurd_dims_3_6_TiB": (
        {"q": raw_tensor("w_q", TensorProto.INT8, [1 << 20, 1 << 20, 3600], b"\0" * 48)},
        "more than the",
    ),
    "dims_product_wraps_int64": (
        {
            "q": raw_tensor("w_q", TensorProto.INT8, [1 << 32, 1 << 32], b""),
            "node": dq_node(axis=0),
            "scale": numpy_helper.from_array(np.float32(0.1), "w_scale"),
        },
        "18446744073709551616 elements",
    ),
    "empty_with_a_2_62_dim": (
        {
            "q": raw_tensor("w_q", TensorProto.INT8, [0, 1 << 62], b""),
            "node": dq_node(axis=0),
            "scale": numpy_helper.from_array(np.float32(0.1), "w_scale"),
        },
        "cannot be represented",
    ),
    "scale_dims_absurd": (
        {"scale": raw_tensor("w_scale", TensorProto.FLOAT, [1 << 40], b"\0" * 24)},
        "more than the",
    ),
    "reshape_cannot_apply": (
        {
            "after": [helper.make_node("Reshape", ["w", "shp"], ["w2"])],
            "extra_inits": [numpy_helper.from_array(np.array([5, 7], np.int64), "shp")],
            "value": "w2",
        },
        "Reshape to [5, 7] cannot apply to the weight's shape [8, 6]",
    ),
    "reshape_two_minus_ones": (
        {
            "after": [helper.make_node("Reshape", ["w", "shp"], ["w2"])],
            "extra_inits": [numpy_helper.from_array(np.array([-1, -1], np.int64), "shp")],
            "value": "w2",
        },
        "cannot apply",
    ),
    "reshape_shape_is_float": (
        {
            "after": [helper.make_node("Reshape", ["w", "shp"], ["w2"])],
            "extra_inits": [numpy_helper.from_array(np.array([6.0, 8.0], np.float32), "shp")],
            "value": "w2",
        },
        "Reshape shape must be a short list of integers",
    ),
    "transpose_perm_out_of_range": (
        {"after": [helper.make_node("Transpose", ["w"], ["w2"], perm=[0, 5])], "value": "w2"},
        "is not a permutation of the weight's 2 axes",
    ),
    "transpose_perm_too_long": (
        {
            "after": [helper.make_node("Transpose", ["w"], ["w2"], perm=list(range(100_000)))],
            "value": "w2",
        },
        "is not a permutation",
    ),
    "cast_to_is_string": (
        {
            "after": [
                helper.make_node(
                    "Cast", ["w"], ["w2"], to=helper.make_attribute("to", "f").s.decode()
                )
            ],
            "value": "w2",
        },
        "'to' is STRING",
    ),
}


@pytest.mark.parametrize("case", sorted(DQ_CASES))
def test_dequantize_linear_rules(tmp_path: Path, case: str) -> None:
    kwargs, reason = DQ_CASES[case]
    path = dq_model(tmp_path / f"{case}.onnx", **kwargs)
    expect_format_error(path, tensor="w", reason=reason)


def test_huge_block_size_decodes_without_allocating_it(tmp_path: Path) -> None:
    """block_size 2^40 along an axis of 8 is legal (one block): it decodes like block 8,
    instead of repeating each scale 2^40 times."""
    path = dq_model(
        tmp_path / "block.onnx", node=dq_node(axis=0, block_size=1 << 40), scale=_scale((1, N))
    )
    with bounded(), open_model(path) as model:
        w = model["w"].load()
        assert model["w"].info.stored is not None
        assert model["w"].info.stored.params["block_size"] == K
    np.testing.assert_allclose(w, weight_codes().astype(np.float32) * np.float32(0.01))


def test_valid_layout_chain_still_decodes(tmp_path: Path) -> None:
    """The checks refuse nothing the writer makes: Reshape with 0 and -1, then Transpose."""
    shp = numpy_helper.from_array(np.array([0, 2, -1], np.int64), "shp")
    after = [
        helper.make_node("Reshape", ["w", "shp"], ["w2"]),
        helper.make_node("Transpose", ["w2"], ["w3"], perm=[2, 0, 1]),
    ]
    path = dq_model(tmp_path / "ok.onnx", after=after, extra_inits=[shp], value="w3")
    with open_model(path) as model:
        assert model["w3"].info.shape == (3, 8, 2)
        w = model["w3"].load()
    expected = (weight_codes() * np.linspace(0.01, 0.02, N).astype(np.float32)).reshape(8, 2, 3)
    np.testing.assert_allclose(w, expected.transpose(2, 0, 1), rtol=1e-6)


# ----------------------------------------------------------------- cycles, node counts


def test_self_loop_after_dequantize(tmp_path: Path) -> None:
    after = [helper.make_node("Transpose", ["w"], ["w"], perm=[0, 1])]
    path = dq_model(tmp_path / "loop.onnx", after=after, value="x2", extra_nodes=_identity_tail())
    expect_format_error(path, tensor="w", reason="cycle")


def test_two_node_cycle_after_dequantize(tmp_path: Path) -> None:
    after = [
        helper.make_node("Transpose", ["w"], ["v"], perm=[1, 0]),
        helper.make_node("Reshape", ["v", "shp"], ["w"]),
    ]
    shp = numpy_helper.from_array(np.array([K, N], np.int64), "shp")
    path = dq_model(
        tmp_path / "cycle.onnx",
        after=after,
        extra_inits=[shp],
        value="x2",
        extra_nodes=_identity_tail(),
    )
    expect_format_error(path, tensor="w", reason="cycle")


def test_long_layout_chain_is_cut_not_walked_forever(tmp_path: Path) -> None:
    """5,000 Transposes in a row: the chain is followed `MAX_CHAIN` nodes, the rest stay."""
    names = ["w", *(f"t{i}" for i in range(5000))]
    after = [
        helper.make_node("Transpose", [a], [b], perm=[1, 0]) for a, b in itertools.pairwise(names)
    ]
    path = dq_model(tmp_path / "chain.onnx", after=after, value=names[-1])
    with bounded(), open_model(path) as model:
        (tensor,) = list(model)
        assert tensor.load().shape == tensor.info.shape


def test_thousands_of_empty_nodes(tmp_path: Path) -> None:
    path = dq_model(tmp_path / "empty.onnx", extra_nodes=[helper.make_node("", [], [])] * 50_000)
    with timed(10), open_model(path) as model:
        assert model["w"].load().shape == (K, N)


def _many_dq(path: Path, count: int) -> Path:
    """`count` int8 weights, each DequantizeLinear reading its float16 scale through a Cast
    (how int4 stores scales): the reader once searched all nodes for each Cast."""
    inits, nodes = [], []
    for i in range(count):
        inits.append(numpy_helper.from_array(np.ones((4, 4), np.int8), f"q{i}"))
        inits.append(numpy_helper.from_array(np.ones(4, np.float16), f"s{i}"))
        nodes.append(helper.make_node("Cast", [f"s{i}"], [f"c{i}"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("DequantizeLinear", [f"q{i}", f"c{i}"], [f"w{i}"], axis=1))
        nodes.append(helper.make_node("MatMul", ["x", f"w{i}"], [f"y{i}"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y0", TensorProto.FLOAT, [1, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path.write_bytes(model.SerializeToString())
    return path


def test_many_dequantize_nodes_open_in_linear_time(tmp_path: Path) -> None:
    """4,000 DQ weights with Cast scales took 16 s (quadratic); now about 1.5 s."""
    path = _many_dq(tmp_path / "many.onnx", 4000)
    with timed(10), open_model(path) as model:
        assert len(model) == 4000
        assert model["w3999"].info.stored is not None


def test_fresh_names_are_linear() -> None:
    """Export names decode nodes `qi`, `qi_2`, …: 50,000 of them once cost 10^9 lookups."""
    names = NameAllocator(None)
    with bounded():
        got = [names.fresh("qi") for _ in range(50_000)]
    assert got[:3] == ["qi", "qi_2", "qi_3"] and len(set(got)) == 50_000


# ----------------------------------------------------------------- dims lists, names


def test_huge_dims_list_on_an_initializer(tmp_path: Path) -> None:
    path = float_model(
        tmp_path / "dims.onnx", [raw_tensor("big", TensorProto.FLOAT, [1] * 1_000_000, b"\0" * 4)]
    )
    expect_format_error(path, tensor="big", reason="1000000 dims")


def test_huge_dims_list_on_a_graph_input(tmp_path: Path) -> None:
    path = float_model(tmp_path / "io.onnx", [])
    import onnx

    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim.extend(
        [onnx.TensorShapeProto.Dimension(dim_value=1)] * 300_000
    )
    path.write_bytes(model.SerializeToString())
    expect_format_error(path, tensor="x", reason="dims")


def test_duplicate_initializer_names_are_refused(tmp_path: Path) -> None:
    a = numpy_helper.from_array(np.ones((3, 3), np.float32), "b")
    b = numpy_helper.from_array(np.zeros((3, 3), np.float32), "b")
    path = float_model(tmp_path / "dup.onnx", [a, b])
    expect_format_error(path, tensor="b", reason="two initializers of the main graph")


def test_constant_named_like_an_initializer_is_refused(tmp_path: Path) -> None:
    a = numpy_helper.from_array(np.ones((3, 3), np.float32), "b")
    node = helper.make_node(
        "Constant", [], ["b"], value=numpy_helper.from_array(np.zeros(2, np.float32))
    )
    path = float_model(tmp_path / "dup2.onnx", [a], [node])
    expect_format_error(path, tensor="b", reason="two tensors of the main graph")


# ----------------------------------------------------------------- external data


def _external(tmp_path: Path) -> tuple[Path, Path]:
    import onnx

    values = np.random.default_rng(1).normal(size=(256, 256)).astype(np.float32)
    t = numpy_helper.from_array(values, "big")
    path = float_model(tmp_path / "ext.onnx", [t])
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, location="ext.bin", size_threshold=0)
    return path, tmp_path / "ext.bin"


def test_external_data_truncated_after_open(tmp_path: Path) -> None:
    """Another process cuts the data file while the model is open: with a memory map, reading
    the tensor killed the process with SIGBUS; now it is an error naming the data file."""
    path, data = _external(tmp_path)
    with open_model(path) as model:
        os.truncate(data, 1000)
        with bounded(), pytest.raises(FormatError) as info:
            model["big"].load()
    assert str(data) in str(info.value) and info.value.tensor == "big"


def test_external_data_truncated_in_a_child_process(tmp_path: Path) -> None:
    """The same through the CLI's code path in a fresh process: exit 2, never SIGBUS (-7)."""
    path, data = _external(tmp_path)
    code = (
        "import os, sys\n"
        "from inspector.formats.registry import open_model\n"
        "from inspector.core.errors import FormatError\n"
        f"m = open_model({str(path)!r})\n"
        f"os.truncate({str(data)!r}, 4096)\n"
        "try:\n    m['big'].load()\nexcept FormatError as e:\n    print(e); sys.exit(2)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert run.returncode == 2, run.stderr
    assert "ext.bin" in run.stdout


def test_external_data_is_a_fifo(tmp_path: Path) -> None:
    path, data = _external(tmp_path)
    data.unlink()
    os.mkfifo(data)
    expect_format_error(path, names=data, tensor="big", reason="not a regular file")


def test_model_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)
    from inspector.formats.onnx.reader import read_onnx

    expect_format_error(fifo, reason="not a regular file", action=lambda p: read_onnx(p).close())


# ----------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "case",
    ["axis_string", "absurd_dims_3_6_TiB", "dims_product_wraps_int64", "reshape_cannot_apply"],
)
def test_cli_one_line_exit_2(tmp_path: Path, case: str) -> None:
    kwargs, reason = DQ_CASES[case]
    path = dq_model(tmp_path / f"{case}.onnx", **kwargs)
    for cmd in (["info", str(path)], ["preview", str(path), "--scheme", "int8"]):
        run = subprocess.run(
            [sys.executable, "-m", "inspector", *cmd],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2, run.stderr
        assert len(lines) == 1 and str(path) in lines[0] and "'w'" in lines[0], lines
        assert reason in lines[0]


def test_cli_cycle_exits_2_promptly(tmp_path: Path) -> None:
    after = [helper.make_node("Transpose", ["w"], ["w"], perm=[0, 1])]
    path = dq_model(tmp_path / "loop.onnx", after=after, value="x2", extra_nodes=_identity_tail())
    out = tmp_path / "out.onnx"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspector",
            "export",
            str(path),
            "-o",
            str(out),
            "--scheme",
            "int8",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 2 and "cycle" in run.stderr and not out.exists()


def test_untouched_base_model_opens(tmp_path: Path) -> None:
    open_and_load(dq_model(tmp_path / "ok.onnx"))


# ----------------------------------------------------------------- evaluation inputs


@pytest.mark.parametrize("dims", [[10**6, 10**6, 4], [None, 10**5, 1000, 4]])
def test_graph_input_too_large_to_evaluate(tmp_path: Path, dims: list[int | None]) -> None:
    """A graph input declared (10^6, 10^6, 4): running it allocated 14.6 TiB (the fixed batch
    padded to its size), or a synthetic batch of 4·10^8 values per sample; now evaluation is
    unavailable, before any array exists."""
    from inspector.engine.errors import EvaluationUnavailable
    from inspector.engine.evaluate import Evaluator

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "big_input.onnx"
    path.write_bytes(model.SerializeToString())
    with bounded(seconds=30), open_model(path) as m, pytest.raises(EvaluationUnavailable) as info:
        Evaluator.open(m)
    assert "big_input.onnx" in str(info.value) and "too large to evaluate" in str(info.value)
    run = subprocess.run(
        [sys.executable, "-m", "inspector", "evaluate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "too large to evaluate" in lines[0], lines


def test_large_real_input_gets_fewer_synthetic_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not refused: a big but real input gets as many synthetic samples as the bound allows
    (the bound scaled down so the test allocates little)."""
    from inspector.engine import eval_data

    monkeypatch.setattr(eval_data, "MAX_INPUT_VALUES", 1 << 16)
    data = eval_data.choose_data(tmp_path / "m.onnx", [(None, 5000)])
    assert data.synthetic and data.samples == (1 << 16) // 5000


# ----------------------------------------------------------------- nesting depth


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (written by hand: onnx's own serializer refuses the
    depths this test needs)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            low, n = n & 0x7F, n >> 7
            if not n:
                return out + bytes([low])
            out += bytes([low | 0x80])

    return varint(number << 3 | 2) + varint(len(payload)) + payload


@pytest.mark.parametrize("depth", [30, 400, 5000])
def test_if_subgraphs_nested_deep(tmp_path: Path, depth: int) -> None:
    """If nodes nested `depth` deep (Node → Attribute → Graph per level): up to ~32 levels
    (the protobuf decoder's 100-message limit) open and list the innermost weight; deeper is
    refused by the parser, never a RecursionError in the graph walks."""
    graph = _field(1, _field(4, b"Identity") + _field(1, b"w") + _field(2, b"y"))
    graph += _field(5, numpy_helper.from_array(np.ones(2, np.float32), "w").SerializeToString())
    for _ in range(depth):
        attr = _field(1, b"then_branch") + b"\xa0\x01\x05" + _field(6, graph)  # type GRAPH
        graph = _field(1, _field(4, b"If") + _field(1, b"c") + _field(2, b"y") + _field(5, attr))
    path = tmp_path / "deep.onnx"
    path.write_bytes(bytes([1 << 3, 8]) + _field(7, graph) + _field(8, bytes([2 << 3, 17])))
    if depth <= 30:
        with bounded(), open_model(path) as model:
            (tensor,) = list(model)
            assert tensor.name == "w" and tensor.load().shape == (2,)
    else:
        expect_format_error(path, reason="not a readable ONNX model")
