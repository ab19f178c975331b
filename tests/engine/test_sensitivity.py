"""Sensitivity on the depthwise demo: uint8 per tensor breaks the BN-folded depthwise jit."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core import budget
from inspector.core.plan import Plan
from inspector.core.preview import PreviewCache, run_preview
from inspector.engine.evaluate import Evaluator, drain
from inspector.engine.sensitivity import (
    SensitivityRow,
    iter_output_errors,
    iter_sensitivity,
    units,
)
from inspector.formats import open_model
from inspector.formats.registry import get_target

RES = Path(__file__).resolve().parents[2] / "resources"
SAMPLES = 150


@pytest.fixture(scope="module")
def model():
    with open_model(RES / "digits_depthwise" / "tfjs" / "model.json") as m:
        yield m


@pytest.fixture(scope="module")
def evaluator(model):
    full = Evaluator.open(model, target=get_target("tfjs"))
    return Evaluator(model, full.data.head(SAMPLES), full.runner, full.target)


@pytest.fixture(scope="module")
def only_uint8(evaluator):
    return drain(iter_sensitivity(evaluator, "uint8", "layer", "only"))


def test_ranking_puts_depthwise_layers_first(only_uint8):
    ranked = only_uint8.ranked()
    assert {r.unit for r in ranked[:2]} == {"block2_dw", "block4_dw"}
    assert all(r.impact_score > 0.5 and r.metrics.top1_agreement < 0.3 for r in ranked[:2])
    pointwise = [r for r in ranked if not r.unit.endswith("_dw")]
    assert pointwise and all(r.impact_score <= 0.02 for r in pointwise)
    assert all(r.metrics.sqnr_db > 40 for r in pointwise)
    assert only_uint8.reference.sqnr_db == float("inf")


def test_rows_come_one_layer_at_a_time_in_model_order(evaluator, only_uint8):
    gen = iter_sensitivity(evaluator, "uint8")
    first = next(gen)
    gen.close()
    assert isinstance(first, SensitivityRow) and first.unit == only_uint8.rows[0].unit
    assert [r.unit for r in only_uint8.rows] == list(units(evaluator, "layer"))
    doc = only_uint8.to_json()
    assert doc["ranked"][0] in {"block2_dw", "block4_dw"} and len(doc["rows"]) == 16


def test_repeated_analysis_reuses_measurements(evaluator, only_uint8):
    before = len(evaluator.measured)
    again = drain(iter_sensitivity(evaluator, "uint8"))
    assert len(evaluator.measured) == before
    assert [r.metrics for r in again.rows] == [r.metrics for r in only_uint8.rows]


def test_keep_mode_shows_what_keeping_one_layer_float_wins_back(evaluator):
    result = drain(iter_sensitivity(evaluator, "uint8", "layer", "keep"))
    assert result.reference.quantized_score < 0.2
    best = result.ranked()[0]
    assert best.unit in {"block2_dw", "block4_dw"} and best.impact_noise > 0


def test_per_tensor_units_and_output_errors(evaluator):
    names = [n for n, ts in units(evaluator, "tensor").items() if ts[0].info.is_float]
    assert len(names) == 32
    dw = "block4_dw/depthwise_kernel"
    gen = iter_output_errors(evaluator, {dw: ["float32", "uint8", "uint8:skip=1"]})
    assert next(gen) == dw
    errors = drain(gen)[dw]
    assert errors["float32"] == 0.0 and errors["uint8"] > 100
    assert errors["uint8:skip=1"] == errors["uint8"]


def test_auto_plan_beats_all_uint8_at_the_same_size():
    """Acceptance: at the all-uint8 size (safetensors stores codes), the solver's plan keeps
    the depthwise accuracy; its preview total equals the prediction and fits the target."""
    with open_model(RES / "digits_depthwise" / "digits_depthwise.h5") as model:
        target, cache = get_target("safetensors"), PreviewCache()
        full = Evaluator.open(model, target=target)
        probe = Evaluator(model, full.data.head(100), full.runner, target, full.cache)
        ladder = ["float32", "float16", "uint8", "affine4"]
        specs = {t.name: ladder for t in model.weights}
        errors = drain(iter_output_errors(probe, specs))
        ladders = drain(budget.build_ladders(model, ladder, target, cache, errors))
        uint8 = Plan(default="uint8")
        goal = run_preview(model, uint8, target, cache).total["quantized_bytes"]
        sol = budget.solve_total(model, ladders, goal, target, cache)
        total = run_preview(model, sol.plan, target, cache).total["quantized_bytes"]
        assert total == sol.total_bytes <= goal
        auto_acc = full.evaluate(sol.plan).metrics.quantized_score
        uint8_acc = full.evaluate(uint8).metrics.quantized_score
    assert uint8_acc < 0.2 and auto_acc > 0.98
