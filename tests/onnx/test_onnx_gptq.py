"""GPTQ on ONNX models: layer inputs captured through ONNX Runtime (extra graph outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.core.target import NATIVE
from inspector.engine.eval_data import EvalData
from inspector.engine.evaluate import Evaluator
from inspector.engine.rounding import GptqRounding
from inspector.engine.rounding.capture import capture_hessians
from inspector.engine.rounding.gptq import HessianSum
from inspector.formats import open_model
from tests.onnx.fidelity import exported_values

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "models").resolve()


def _inputs(seed: int, n: int = 96) -> np.ndarray:
    """Spatially correlated inputs, as images are (white noise leaves GPTQ nothing to use:
    its Hessian is then diagonal and GPTQ is nearest rounding)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(n, 3, 4, 4)).repeat(2, axis=2).repeat(2, axis=3)
    return (coarse + 0.2 * rng.normal(size=(n, 3, 8, 8))).astype(np.float32)


def test_capture_sees_each_layers_input(convnet):
    x = _inputs(0, 40)
    with open_model(convnet) as model:
        caps = capture_hessians(model, [x], batch=16)
    conv1 = caps["conv1.weight"]
    direct = HessianSum(conv1.view.groups, conv1.view.columns)
    for chunk in conv1.view.inputs([x]):
        direct.add(chunk)
    assert np.allclose(conv1.hessian.h, direct.h, rtol=1e-4, atol=1e-6)
    assert conv1.hessian.n == 40 * 36  # 6x6 positions of a 3x3 valid conv on 8x8
    for name in ("conv2.weight", "fc.weight", "head.weight"):
        assert caps[name].hessian is not None and caps[name].hessian.n > 0, name
    assert "not a" in caps["conv1.bias"].reason or "Conv/Gemm/MatMul" in caps["conv1.bias"].reason


@pytest.mark.parametrize("scheme", ["int4:group=8", "affine3"])
def test_gptq_lowers_the_output_error_of_an_onnx_model(convnet, scheme):
    with open_model(convnet) as model:
        rounding = GptqRounding(model, [_inputs(1)])
        ev = Evaluator(
            model, EvalData((_inputs(2),), None, "file"), target=NATIVE.with_rounding(rounding)
        )
        nearest = ev.evaluate(Plan(default=scheme)).metrics.sqnr_db
        gptq = ev.evaluate(
            Plan(default=f"{scheme},round=gptq" if ":" in scheme else f"{scheme}:round=gptq")
        ).metrics.sqnr_db
    assert gptq > nearest + 2.0, (nearest, gptq)


def test_constant_node_weights_of_a_real_file():
    path = SHARED / "onnx-rapidocr-cls-v2" / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
    if not path.is_file():
        pytest.skip("../shared/models is absent")
    x = np.random.default_rng(0).random((4, 3, 48, 192), dtype=np.float32)
    with open_model(path) as model:
        caps = capture_hessians(model, [x])
        conv_weights = [n for n, c in caps.items() if c.view is not None]
    assert len(conv_weights) >= 50
    assert all(caps[n].hessian.n > 0 for n in conv_weights)


@pytest.mark.parametrize(
    "spec", ["int4:round=gptq", "int8:round=gptq,order=act", "uint8:round=hqq"]
)
def test_onnx_export_holds_the_previewed_values(tmp_path, convnet, spec):
    from inspector.core.quantize import quantize_tensor
    from inspector.formats.export import export_model
    from inspector.formats.registry import get_target

    plan = Plan().with_default(spec)
    with open_model(convnet) as model:
        rounding = GptqRounding(model, [_inputs(3)])
        target = get_target("onnx").with_rounding(rounding)
        expected = {
            t.name: np.asarray(quantize_tensor(t, plan.scheme_for(t.info), target).decoded)
            for t in model
        }
        export_model(model, plan, "onnx", tmp_path / "q.onnx", rounding=rounding)
    # The values ONNX Runtime computes for each weight's value name (below opset 21 int4 is
    # stored as nibbles plus an unpacking graph, so the file holds no tensor of that name).
    x = _inputs(4, 2)
    got_all = exported_values(tmp_path / "q.onnx", list(expected), {"x": x})
    for name, values in expected.items():
        got = np.asarray(got_all[name], np.float32)
        if spec.startswith("uint8"):  # DequantizeLinear + Add in float32: ≤ 1 ulp (writer)
            ulps = np.abs(got.view(np.int32).astype(np.int64) - values.view(np.int32))
            assert ulps.max() <= 1, name
        else:
            assert np.array_equal(got, values), name
