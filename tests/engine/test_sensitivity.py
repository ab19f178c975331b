"""Sensitivity on the depthwise demo: uint8 per tensor breaks the BN-folded depthwise jit."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.core import budget
from inspector.core.plan import Plan
from inspector.core.preview import PreviewCache, run_preview
from inspector.engine.evaluate import FRACTION, Evaluator, Progress, drain
from inspector.engine.sensitivity import (
    SensitivityRow,
    iter_output_errors,
    iter_sensitivity,
    iter_sensitivity_progress,
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


def _fresh(model, evaluator, samples=60, batch_size=256):
    return Evaluator(
        model, evaluator.data.head(samples), evaluator.runner, evaluator.target, None, batch_size
    )


@pytest.mark.parametrize("mode", ["only", "keep"])
def test_resumed_forward_equals_full_forward(model, evaluator, mode):
    """Continuing from the cached reference pass at each unit's first layer gives exactly the
    numbers of running each unit's model from the inputs (batches of 25: resuming per batch)."""
    full_ev = _fresh(model, evaluator, batch_size=25)
    full = drain(iter_sensitivity_progress(full_ev, "uint8", "layer", mode, resume=False))
    resumed_ev = _fresh(model, evaluator, batch_size=25)
    resumed = drain(iter_sensitivity_progress(resumed_ev, "uint8", "layer", mode, True))
    assert [r.unit for r in resumed.rows] == [r.unit for r in full.rows]
    assert [r.metrics for r in resumed.rows] == [r.metrics for r in full.rows]
    assert resumed.reference == full.reference


def test_rows_arrive_while_progress_runs_and_cancel_stops_between_layers(model, evaluator):
    """Partial results: each row is yielded as soon as its unit is done, with progress items
    (one per layer of each batch) between them; closing the generator stops at that point."""
    ev = _fresh(model, evaluator, batch_size=20)
    gen = iter_sensitivity_progress(ev, "uint8", "layer", "only")
    seen: list[object] = []
    while sum(isinstance(i, SensitivityRow) for i in seen) < 3:
        seen.append(next(gen))
    progress = [i for i in seen if isinstance(i, Progress)]
    assert len(progress) > len(units(ev, "layer"))  # finer than one item per unit
    done = [p.done for p in progress]
    assert done == sorted(done) and done[-1] < FRACTION and progress[-1].total == FRACTION
    kept = len(ev.measured)
    gen.close()
    assert len(ev.measured) == kept  # nothing ran after the close
    rest = drain(iter_sensitivity_progress(ev, "uint8", "layer", "only"))
    assert len(rest.rows) == len(units(ev, "layer"))  # measured rows were reused, the rest ran


def test_a_scheme_that_reproduces_the_stored_values_is_no_change(model, evaluator):
    """An input already on the scheme's grid (decoded == stored) needs no model run."""
    import numpy as np

    from inspector.core.schemes import parse_scheme
    from inspector.engine.sensitivity import measure_changes

    ev = _fresh(model, evaluator, 30)
    tensor = next(iter(units(ev, "layer").values()))[0]
    assert ev.alters(tensor, parse_scheme("uint8")) is not None  # the demo is float
    ev.decoded = lambda t, scheme: np.asarray(t.load()).copy()  # as if already on the grid
    ev._alters.clear()
    assert ev.alters(tensor, parse_scheme("uint8")) is None
    runs = list(measure_changes(ev, {tensor.name: "uint8"}))
    assert [p.stage for p in runs] == ["original"] * len(runs)  # no quantized run
    m = drain(measure_changes(ev, {tensor.name: "uint8"}))
    assert m.noise_energy == 0.0
