"""Which float tensors are weights (roles.py), what the plan and the preview do with the others,
and the detector pattern of issue 18: a Resize `scales` initializer quantized changed a shape and
ONNX Runtime failed at a Concat."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inspector.cli import main
from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats.onnx.reader import read_onnx
from inspector.formats.onnx.writer import ONNX_TARGET
from tests.onnx.conftest import onnx
from tests.onnx.fidelity import check_export

helper, TP, nh = onnx.helper, onnx.TensorProto, onnx.numpy_helper
RNG = np.random.default_rng(9)
F = np.float32


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.3, shape).astype(F)


def _model(nodes, inits, inputs, outputs, opset: int = 13, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TP.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TP.FLOAT, s) for n, s in outputs],
        [nh.from_array(a, n) for n, a in inits.items()],
    )
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=imports, ir_version=8)


def _infos(proto: onnx.ModelProto, tmp_path: Path, check: bool = True) -> dict:
    if check:
        onnx.checker.check_model(proto)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    with read_onnx(path) as model:
        return {t.name: t.info for t in model}


def detector_proto() -> onnx.ModelProto:
    """x(N,3,16,16) → Conv stride 2 → BatchNormalization → Clip(0, 6) → Resize ×2 (scales) →
    Concat with Conv(x) + bias (Reshape + Add, as Paddle writes it) → Pad(value) → Conv → y;
    the shape of the Concat depends on the Resize scales being exactly 2."""
    nodes = [
        helper.make_node("Conv", ["x", "down.w"], ["d"], name="down", strides=[2, 2], pads=[1] * 4),
        helper.make_node(
            "BatchNormalization", ["d", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn"
        ),
        helper.make_node("Clip", ["bn", "clip.lo", "clip.hi"], ["act"], name="relu6"),
        helper.make_node("Resize", ["act", "", "up.scales"], ["up"], name="up", mode="nearest"),
        helper.make_node("Conv", ["x", "side.w"], ["s"], name="side", pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["side.b", "bias.shape"], ["side.b4"], name="bias_reshape"),
        helper.make_node("Add", ["s", "side.b4"], ["sb"], name="side_bias"),
        helper.make_node("Concat", ["up", "sb"], ["cat"], name="cat", axis=1),
        helper.make_node("Mul", ["cat", "gain"], ["g"], name="gain"),
        helper.make_node("Pad", ["g", "pads", "pad.value"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "head.w"], ["y"], name="head"),
    ]
    inits = {
        "down.w": _w(4, 3, 3, 3),
        "bn.s": np.abs(_w(4)) + 0.5,
        "bn.b": _w(4),
        "bn.m": _w(4),
        "bn.v": np.abs(_w(4)) + 0.5,
        "clip.lo": np.array(0.0, F),
        "clip.hi": np.array(6.0, F),
        "up.scales": np.array([1.0, 1.0, 2.0, 2.0], F),
        "side.w": _w(4, 3, 3, 3),
        "side.b": _w(4),
        "bias.shape": np.array([1, 4, 1, 1], np.int64),
        "gain": np.array(1.7, F),
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "pad.value": np.array(0.25, F),
        "head.w": _w(2, 8, 3, 3),
    }
    return _model(nodes, inits, [("x", ["N", 3, 16, 16])], [("y", ["N", 2, 16, 16])])


def test_detector_roles(tmp_path: Path) -> None:
    infos = _infos(detector_proto(), tmp_path)
    weights = {n for n, i in infos.items() if i.is_float and i.kept is None}
    assert weights == {"down.w", "side.w", "head.w"}
    assert infos["up.scales"].kept == "Resize scales: not a weight"
    assert not infos["up.scales"].kept_overridable
    assert infos["clip.hi"].kept == "Clip max: not a weight"
    assert infos["pad.value"].kept == "Pad constant_value: not a weight"
    assert infos["side.b"].kept == "bias added to a Conv output: not a weight"
    assert infos["side.b"].kept_overridable
    assert infos["bn.v"].kept == "BatchNormalization var: normalization, not a weight"
    assert infos["gain"].kept == "Mul operand: not a weight" and infos["gain"].kept_overridable
    assert infos["bias.shape"].kept is None  # integer tensors are kept anyway


@pytest.mark.parametrize("spec", ["int8", "uint8", "int4", "kmeans3"])
def test_detector_exports_run_and_equal_evaluate(spec: str, tmp_path: Path) -> None:
    src = tmp_path / "det.onnx"
    onnx.save(detector_proto(), str(src))
    x = RNG.normal(size=(2, 3, 16, 16)).astype(F)
    assert check_export(src, Plan(default=spec), [x], tmp_path / "q.onnx").quantized == 3
    kept = {t.name: t for t in onnx.load(str(tmp_path / "q.onnx")).graph.initializer}
    np.testing.assert_array_equal(nh.to_array(kept["up.scales"]), [1, 1, 2, 2])


def test_overrides_honoured_only_where_harmless(tmp_path: Path) -> None:
    src = tmp_path / "det.onnx"
    onnx.save(detector_proto(), str(src))
    names = ["up.scales", "clip.hi", "side.b", "bn.s", "gain"]
    plan = Plan(default="int8").with_overrides(names, "uint8").with_rule("*", "int4")
    with read_onnx(src) as model:
        rows = {r.name: r for r in run_preview(model, plan, ONNX_TARGET).tensors}
    assert rows["up.scales"].skipped == "Resize scales: not a weight"
    assert rows["clip.hi"].skipped == "Clip max: not a weight"
    for name in ("side.b", "bn.s", "gain"):  # precision only: the override is honoured
        assert rows[name].skipped is None and rows[name].scheme == "uint8"
    assert rows["bn.b"].skipped.endswith("normalization, not a weight")  # only a glob names it
    assert rows["down.w"].scheme == "int4"
    x = RNG.normal(size=(1, 3, 16, 16)).astype(F)
    assert check_export(src, plan, [x], tmp_path / "q.onnx").quantized == 6


def test_preview_json_and_info_say_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "det.onnx"
    onnx.save(detector_proto(), str(src))
    assert main(["preview", str(src), "--scheme", "int8", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["tensors"]}
    assert rows["up.scales"]["skipped"] == "Resize scales: not a weight"
    assert rows["up.scales"]["scheme"] == "float32"
    assert rows["down.w"]["skipped"] is None
    assert main(["info", str(src), "--json"]) == 0
    info = {r["name"]: r for r in json.loads(capsys.readouterr().out)["tensors"]}
    assert info["clip.lo"]["kept"] == "Clip min: not a weight"
    assert info["head.w"]["kept"] is None


def test_weights_followed_through_layout_ops(tmp_path: Path) -> None:
    """Transpose, Cast, Identity, Unsqueeze and Concat of constants pass a weight on; its
    channel axis maps back to the stored layout."""
    nodes = [
        helper.make_node("Transpose", ["wt"], ["wt_t"], perm=[1, 0]),  # (5, 4) → (4, 5)
        helper.make_node("MatMul", ["x", "wt_t"], ["h"], name="mm1"),  # (N, 5)
        helper.make_node("Cast", ["w16"], ["w32"], to=TP.FLOAT),
        helper.make_node("Identity", ["w32"], ["w32i"]),
        helper.make_node("Gemm", ["h", "w32i"], ["h2"], name="gemm"),  # B (5, 6): N on axis 1
        helper.make_node("Unsqueeze", ["v", "ax0"], ["v1"]),  # (6, 2) → (1, 6, 2)
        helper.make_node("Concat", ["v1", "v1b"], ["vv"], axis=0),  # (2, 6, 2)
        helper.make_node("MatMul", ["h2", "vv"], ["y"], name="mm2"),  # (2, N, 2)
    ]
    inits = {"wt": _w(5, 4), "v": _w(6, 2), "v1b": _w(1, 6, 2), "ax0": np.array([0], np.int64)}
    proto = _model(nodes, inits, [("x", ["N", 4])], [("y", [2, "N", 2])])
    proto.graph.initializer.append(nh.from_array(_w(5, 6).astype(np.float16), "w16"))
    infos = _infos(proto, tmp_path)
    assert infos["wt"].kept is None and infos["wt"].channel_axis == 0  # MatMul B's N → wt axis 0
    assert infos["w32"].kept is None and infos["w32"].stored.scheme == "float16"
    assert infos["w32"].channel_axis == 1
    assert infos["v"].kept is None and infos["v"].channel_axis == 1
    assert infos["v1b"].kept is None and infos["v1b"].channel_axis == 2


def test_schema_rule_unknown_ops_and_mixed_uses(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Mul", ["h", "w"], ["hw"], name="reuse"),  # w also an operand
        helper.make_node("PRelu", ["hw", "slope"], ["p"], name="prelu"),
        helper.make_node("LayerNormalization", ["p", "ln.s", "ln.b"], ["n"], axis=-1),
        helper.make_node("Pow", ["n", "two"], ["sq"], name="pow"),
        helper.make_node("Greater", ["sq", "thr"], ["mask"], name="gt"),
        helper.make_node("Where", ["mask", "sq", "fill"], ["wh"], name="where"),
        helper.make_node("QuantizeLinear", ["wh", "qs"], ["q8"], name="q"),
        helper.make_node("DequantizeLinear", ["q8", "qs"], ["dq"], name="dq"),
        helper.make_node("Custom", ["dq", "cw"], ["y"], name="custom", domain="my.ops"),
    ]
    inits = {
        "w": _w(4, 4),
        "slope": _w(4),
        "ln.s": _w(4),
        "ln.b": _w(4),
        "two": np.array(2.0, F),
        "thr": np.array(0.1, F),
        "fill": np.array(0.0, F),
        "qs": np.array(0.05, F),
        "cw": _w(4, 4),
        "spare": _w(3),
        "gather.rows": _w(10, 4),
    }
    nodes.append(helper.make_node("Gather", ["gather.rows", "idx"], ["emb"], name="emb"))
    inits["idx"] = np.array([1, 2], np.int64)
    proto = _model(nodes, inits, [("x", ["N", 4])], [("y", ["N", 4]), ("emb", [2, 4])], 13)
    proto.opset_import.append(helper.make_opsetid("my.ops", 1))
    infos = _infos(proto, tmp_path, check=False)
    assert infos["w"].kept == "used as a weight and as Mul operand: not a weight"
    assert infos["w"].kept_overridable
    assert infos["slope"].kept_overridable and infos["ln.s"].kept_overridable
    for name, op in [("two", "Pow exponent"), ("thr", "Greater operand"), ("qs", "QuantizeLinear")]:
        assert infos[name].kept.startswith(op), infos[name].kept
        assert not infos[name].kept_overridable, name
    assert infos["fill"].kept_overridable  # Where's values: precision only
    assert not infos["cw"].kept_overridable  # an op nobody here knows
    assert infos["spare"].kept == "unused by the graph: not a weight"
    assert infos["gather.rows"].kept is None and infos["gather.rows"].channel_axis == 0


def test_layout_shapes_without_allocating() -> None:
    from inspector.formats.onnx.op_tables import reshape_dims, squeezed, unsqueezed

    huge = (1 << 40, 3)  # never allocated: a hostile dims list costs nothing
    assert reshape_dims(huge, [0, -1, 1], True) == (1 << 40, 3, 1)
    assert reshape_dims((4, 6), [-1, 8], True) == (3, 8)
    assert reshape_dims((4, 6), [-1, 5], True) is None
    assert reshape_dims((4, 6), [-1, -1], True) is None
    assert reshape_dims((0, 6), [0, 3], False) == (0, 3)  # allowzero: a real 0
    assert reshape_dims((2, 6), [0, 5], False) is None
    assert squeezed((1, 4, 1), None) == (4,)
    assert squeezed((1, 4, 1), [-1]) == (1, 4)
    assert squeezed((1, 4, 1), [1]) is None
    assert unsqueezed((4, 6), [0, -1]) == (1, 4, 6, 1)
    assert unsqueezed((4, 6), [0, 0]) is None
    assert unsqueezed(huge, [7]) is None


def test_split_slice_and_shape_reads(tmp_path: Path) -> None:
    """A fused QKV weight split into three MatMul operands, a sliced weight and a weight whose
    shape a Shape node also reads are weights; the exports still equal evaluate."""
    nodes = [
        helper.make_node("Split", ["qkv"], ["q", "k", "v"], axis=1),  # (4, 12) → 3 × (4, 4)
        helper.make_node("MatMul", ["x", "q"], ["hq"], name="q_proj"),
        helper.make_node("MatMul", ["x", "k"], ["hk"], name="k_proj"),
        helper.make_node("MatMul", ["x", "v"], ["hv"], name="v_proj"),
        helper.make_node("Add", ["hq", "hk"], ["s1"]),
        helper.make_node("Add", ["s1", "hv"], ["s2"]),
        helper.make_node("Slice", ["wide", "st", "en", "ax"], ["narrow"]),  # (4, 8) → (4, 4)
        helper.make_node("MatMul", ["s2", "narrow"], ["h"], name="narrow_mm"),
        helper.make_node("Shape", ["narrow"], ["shp"]),
        helper.make_node("Reshape", ["h", "shp"], ["y"]),
    ]
    inits = {
        "qkv": _w(4, 12),
        "wide": _w(4, 8),
        "st": np.array([0], np.int64),
        "en": np.array([4], np.int64),
        "ax": np.array([1], np.int64),
    }
    proto = _model(nodes, inits, [("x", [4, 4])], [("y", [4, 4])])
    infos = _infos(proto, tmp_path)
    assert infos["qkv"].kept is None and infos["qkv"].channel_axis == 1
    assert infos["wide"].kept is None and infos["wide"].channel_axis == 1
    x = RNG.normal(size=(4, 4)).astype(F)
    for spec in ("int8", "int4:group=2"):
        assert (
            check_export(
                tmp_path / "m.onnx", Plan(default=spec), [x], tmp_path / "q.onnx"
            ).quantized
            == 2
        )


def test_diamonds_of_layout_ops_are_walked_once(tmp_path: Path) -> None:
    """40 Split → Concat diamonds after a weight: 2⁴⁰ paths, each value visited once."""
    nodes, x = [], "w"
    for i in range(40):
        nodes.append(helper.make_node("Split", [x], [f"a{i}", f"b{i}"], axis=0))
        nodes.append(helper.make_node("Concat", [f"a{i}", f"b{i}"], [f"c{i}"], axis=0))
        x = f"c{i}"
    nodes.append(helper.make_node("MatMul", ["x", x], ["y"], name="mm"))
    proto = _model(nodes, {"w": _w(4, 4)}, [("x", ["N", 4])], [("y", ["N", 4])])
    info = _infos(proto, tmp_path)["w"]
    assert info.layer == "a0 (Split)"  # the first reader
    assert info.kept == "read through too many layout ops: kept"
    assert info.kept_overridable
