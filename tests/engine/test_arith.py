"""Float16 / bfloat16 activation arithmetic: rounding, per-layer counts, where overflow starts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.engine.arith import Rounding, iter_arith
from inspector.engine.errors import EvaluationUnavailable
from inspector.engine.evaluate import Evaluator, drain
from inspector.engine.executor import Executor
from inspector.formats import open_model

HERE = Path(__file__).resolve().parent
OVERFLOW = HERE / "transforms" / "data" / "overflow_k2.h5"
RESOURCES = HERE.parents[1] / "resources"


def test_rounding_counts_overflow_and_underflow():
    r = Rounding("float16")
    x = np.array([65504.0, 65519.0, 65520.0, -1e6, 1e-8, 3e-8, 0.0, np.inf], np.float32)
    y = r("layer", x)
    assert y[0] == y[1] == 65504.0  # rounds down to the largest half, not past it
    assert np.isinf(y[2]) and y[3] == -np.inf
    assert y[4] == 0.0 and y[5] != 0.0
    c = r.counts["layer"]
    assert (c.values, c.overflow, c.underflow, c.nonfinite) == (8, 2, 1, 3)
    b = Rounding("bfloat16")
    z = b("l", np.array([1e6, 3.38e38, 3.4e38, 1e-8], np.float32))
    assert z[0] == 999424.0  # 8 significant bits: steps of 4096 near 1e6
    assert np.isfinite(z[1]) and np.isinf(z[2]) and z[3] != 0.0
    assert (b.counts["l"].overflow, b.counts["l"].underflow) == (1, 0)


def test_float16_overflow_is_found_at_the_layer_that_overflows():
    data = np.load(OVERFLOW.with_name("overflow.npz"))
    with open_model(OVERFLOW) as model:
        evaluator = Evaluator.open(model, OVERFLOW.with_name("overflow.npz"))
        result = drain(iter_arith(evaluator, Plan(), "float16"))
        trace = Executor.from_model(model).trace([data["x"]])
    assert result.first_overflow == "blowup"
    layers = result.layers
    assert list(layers)[:2] == ["features", "hidden"] and layers["hidden"].overflow == 0
    assert layers["blowup"].overflow == int(np.count_nonzero(np.abs(trace["blowup"]) >= 65520))
    assert layers["blowup"].overflow > 0 and layers["probs"].nonfinite > 0
    assert result.vs_float32.sqnr_db == -math.inf
    assert result.vs_float32.top1_agreement == 0.0  # NaN outputs predict nothing
    doc = result.to_json()
    assert doc["first_overflow_layer"] == "blowup" and doc["total"]["overflow"] > 0


def test_bfloat16_keeps_the_overflowing_model_finite():
    with open_model(OVERFLOW) as model:
        evaluator = Evaluator.open(model, OVERFLOW.with_name("overflow.npz"))
        result = drain(iter_arith(evaluator, Plan(), "bfloat16"))
    assert result.first_overflow is None
    assert 20 < result.vs_float32.sqnr_db < 80


def test_float16_on_the_demo_convnet_is_harmless():
    path = RESOURCES / "digits_convnet" / "digits_convnet.h5"
    with open_model(path) as model:
        evaluator = Evaluator.open(model)
        result = drain(iter_arith(evaluator, Plan(default="uint8"), "float16"))
        base = evaluator.evaluate(Plan(default="uint8")).metrics
    assert result.first_overflow is None
    assert result.vs_float32.sqnr_db > 50
    assert result.vs_original.quantized_score == pytest.approx(base.quantized_score, abs=0.005)
    assert next(iter(result.layers)) == "image" and "probs" in result.layers


def test_onnx_models_say_it_is_not_available():
    onnx = HERE.parents[1] / ".." / "shared" / "models" / "onnx-rapidocr-cls-v2"
    files = sorted(onnx.glob("*.onnx")) if onnx.exists() else []
    if not files:
        pytest.skip("shared ONNX model not available")
    with open_model(files[0]) as model:
        evaluator = Evaluator.open(model, max_samples=2)
        with pytest.raises(EvaluationUnavailable, match="ONNX Runtime"):
            drain(iter_arith(evaluator, Plan(), "float16"))
