"""ONNX export: QDQ graphs pass the checker, run in ONNX Runtime, equal the original graph run
with the preview's dequantized weights, and their size is what the preview predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor, run_preview
from inspector.engine.onnx_runner import OnnxExecutor
from inspector.formats.export import export_model
from inspector.formats.onnx.reader import read_onnx
from inspector.formats.onnx.writer import ONNX_TARGET, PLAN_PROP
from tests.onnx.conftest import onnx, ort_run

RNG = np.random.default_rng(11)
FEEDS = {
    "convnet": {"x": RNG.normal(size=(6, 3, 8, 8)).astype(np.float32)},
    "constant_model": {"x": RNG.normal(size=(6, 6)).astype(np.float32)},
    "if_model": {"x": np.abs(RNG.normal(size=(6, 4))).astype(np.float32)},
    "dq_model": {"x": RNG.normal(size=(6, 8)).astype(np.float32)},
    "external_model": {"x": RNG.normal(size=(6, 3, 8, 8)).astype(np.float32)},
}
SCHEMES = ["int8", "int4:group=8", "uint8", "affine4", "uint16", "float16", "bfloat16", "kmeans3"]


def _export(src: Path, plan: Plan, tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], int]:
    out = tmp_path / "out" / f"{src.stem}_q.onnx"
    out.parent.mkdir(exist_ok=True)
    with read_onnx(src) as model:
        decoded = {
            t.name: quantize_tensor(t, plan.scheme_for(t.info), ONNX_TARGET).decoded for t in model
        }
        predicted = run_preview(model, plan, ONNX_TARGET).total["quantized_bytes"]
        export_model(model, plan, "onnx", out)
    return out, decoded, predicted


def _check_export(src: Path, plan: Plan, tmp_path: Path, feeds: dict[str, np.ndarray]) -> Path:
    out, decoded, predicted = _export(src, plan, tmp_path)
    exported = onnx.load(str(out))
    onnx.checker.check_model(exported, full_check=True)
    original = onnx.load(str(src))
    assert [i.name for i in exported.graph.input] == [i.name for i in original.graph.input]
    assert exported.graph.output == original.graph.output
    (got,) = ort_run(out, feeds)
    with read_onnx(src) as model:
        (want,) = OnnxExecutor.from_model(model, decoded).run(list(feeds.values()))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    assert out.stat().st_size == predicted
    return out


@pytest.mark.parametrize("spec", SCHEMES)
def test_convnet_export_matches_preview(convnet: Path, tmp_path: Path, spec: str) -> None:
    out = _check_export(convnet, Plan(default=spec), tmp_path, FEEDS["convnet"])
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops[-7:] == ["Conv", "Relu", "Conv", "Add", "Flatten", "Gemm", "MatMul"]


@pytest.mark.parametrize("fixture", ["constant_model", "if_model", "dq_model", "external_model"])
@pytest.mark.parametrize("spec", ["int8", "int4:group=4", "uint8", "float16"])
def test_other_models_export(
    fixture: str, spec: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src = request.getfixturevalue(fixture)
    _check_export(src, Plan(default=spec), tmp_path, FEEDS[fixture])


def test_mixed_plan_round_trips_through_the_reader(convnet: Path, tmp_path: Path) -> None:
    plan = Plan(default="int8").with_rule("fc.*", "int4").with_rule("head.*", "float16")
    out = _check_export(convnet, plan, tmp_path, FEEDS["convnet"])
    exported = onnx.load(str(out))
    assert exported.opset_import[0].version == 21  # int4 blocks raised it from 17
    with read_onnx(out) as back, read_onnx(convnet) as model:
        assert [t.name for t in back] == [t.name for t in model]
        assert back["conv1.weight"].info.stored.scheme == "int8:axis=0"
        assert back["head.weight"].info.stored.scheme == "float16"
        assert back["fc.weight"].info.layer == "fc (Gemm)"
        for t in back:
            expected = quantize_tensor(model[t.name], plan.scheme_for(t.info), ONNX_TARGET)
            np.testing.assert_allclose(t.load(), expected.decoded, rtol=1e-6, atol=1e-7)
    props = {p.key: p.value for p in exported.metadata_props}
    assert Plan.loads(props[PLAN_PROP]).scheme_for(model["fc.weight"].info).name == "int4"


def test_kept_tensors_are_untouched(convnet: Path, tmp_path: Path) -> None:
    out, _, predicted = _export(convnet, Plan(), tmp_path)
    a, b = onnx.load(str(convnet)), onnx.load(str(out))
    assert a.graph == b.graph
    assert out.stat().st_size == predicted
