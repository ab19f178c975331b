"""Output-level evaluation on the demo models, against real-Keras scores and the export's bytes."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from inspector.core.errors import FormatError
from inspector.core.plan import Plan
from inspector.core.preview import quantize_tensor
from inspector.core.schemes import parse_scheme
from inspector.engine import Executor
from inspector.engine.evaluate import (
    FRACTION,
    DecodedCache,
    EvalData,
    Evaluator,
    Progress,
    choose_data,
    drain,
    find_bundled_data,
    load_data,
    output_metrics,
    synthetic_data,
)
from inspector.formats import open_model
from inspector.formats.registry import get_target

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DEPTHWISE_TFJS = RESOURCES / "digits_depthwise" / "tfjs" / "model.json"


def _measured(name: str) -> dict[str, float]:
    """Held-out scores measured with real Keras by resources/make_demo_models.py."""
    return json.loads((RESOURCES / "measurements.json").read_text())[name]["scores"]


@pytest.fixture(scope="module")
def depthwise():
    with open_model(DEPTHWISE_TFJS) as model:
        yield Evaluator.open(model, target=get_target("tfjs"))


def test_bundled_sample_found_next_to_model_and_one_folder_up():
    h5 = RESOURCES / "digits_convnet" / "digits_convnet.h5"
    assert find_bundled_data(h5) == RESOURCES / "digits_convnet" / "sample.npz"
    assert find_bundled_data(DEPTHWISE_TFJS) == RESOURCES / "digits_depthwise" / "sample.npz"
    assert find_bundled_data(DEPTHWISE_TFJS.parent) == RESOURCES / "digits_depthwise" / "sample.npz"


@pytest.mark.parametrize("spec", ["float32", "float16", "uint16", "uint8"])
def test_depthwise_accuracy_equals_real_keras_measurement(depthwise, spec):
    ev = depthwise.evaluate(Plan(default=spec))
    assert ev.data.source == "bundled" and ev.data.samples == 450
    assert ev.metrics.metric == "accuracy"
    assert ev.metrics.original_score == pytest.approx(_measured("digits_depthwise")["float32"])
    assert ev.metrics.quantized_score == pytest.approx(_measured("digits_depthwise")[spec])


def test_uint8_per_tensor_collapses_depthwise_outputs(depthwise):
    m = depthwise.evaluate(Plan(default="uint8")).metrics
    assert m.sqnr_db < 0 and m.top1_agreement < 0.2 and m.score_loss > 0.8
    exact = depthwise.evaluate(Plan()).metrics
    assert math.isinf(exact.sqnr_db) and exact.top1_agreement == 1.0 and exact.score_loss == 0


def test_diabetes_mae_equals_real_keras_measurement():
    with open_model(RESOURCES / "diabetes_mlp" / "diabetes_mlp.h5") as model:
        ev = Evaluator.open(model).evaluate(Plan(default="float16"))
    assert ev.metrics.metric == "mae" and ev.metrics.top1_agreement is None
    assert ev.metrics.original_score == pytest.approx(_measured("diabetes_mlp")["float32"], 1e-5)
    assert ev.metrics.quantized_score == pytest.approx(_measured("diabetes_mlp")["float16"], 1e-5)


def test_evaluation_runs_what_the_export_writes(tmp_path, depthwise):
    """Export uint8 as TF.js, reopen it, run it plainly: same outputs as the evaluator's."""
    from inspector.formats.export import export_model

    plan = Plan(default="uint8").with_rule("*dw*", "int8")
    out = tmp_path / "out"
    export_model(depthwise.model, plan, "tfjs", out)
    with open_model(out / "model.json") as exported:
        written = Executor.from_model(exported).run(list(depthwise.data.inputs))[0]
    _, quantized = depthwise.outputs(plan)
    np.testing.assert_array_equal(quantized[0], written)


def test_decoded_cache_quantizes_each_tensor_once_per_scheme(depthwise):
    cache, target = DecodedCache(), get_target("tfjs")
    tensor = next(iter(depthwise.model))
    a = cache.get(tensor, parse_scheme("uint8"), target)
    assert cache.get(tensor, parse_scheme("uint8"), target) is a and len(cache) == 1
    np.testing.assert_array_equal(a, quantize_tensor(tensor, parse_scheme("uint8"), target).decoded)
    assert cache.get(tensor, parse_scheme("float32"), target) is None


def test_progress_per_layer_and_cancel_by_closing(depthwise):
    """One `Progress` per layer of every batch (the unit of cancellation), on one scale for
    the original and the quantized run; closing the generator stops it between layers."""
    ev = Evaluator(depthwise.model, depthwise.data.head(100), depthwise.runner, batch_size=40)
    steps = depthwise.runner.step_count
    gen = ev.iter_evaluate(Plan(default="uint8"))
    original = [next(gen) for _ in range(3 * steps)]  # 3 batches of 40, 40, 20 samples
    assert {p.stage for p in original} == {"original"}
    done = [p.done for p in original]
    assert done == sorted(done) and original[-1] == Progress(FRACTION // 2, FRACTION, "original")
    assert next(gen).stage == "quantized"
    gen.close()
    rest = list(ev.iter_evaluate(Plan(default="uint8")))  # original outputs were kept
    assert {p.stage for p in rest} == {"quantized"} and len(rest) == 3 * steps
    assert rest[-1].done == rest[-1].total == FRACTION


def test_batches_shrink_so_one_layer_stays_small(depthwise):
    """A layer writes at most ACTIVATION_BUDGET values per batch (fine-grained cancel)."""
    from inspector.engine.executor import ACTIVATION_BUDGET

    runner = depthwise.runner
    peak = max(runner.step_costs(depthwise.data.inputs))
    assert runner.batch_for(depthwise.data.inputs, elements=peak * 3) == 3
    assert runner.batch_for(depthwise.data.inputs, elements=1) == 1
    assert runner.batch_for(depthwise.data.inputs) == min(256, ACTIVATION_BUDGET // peak)


def test_user_file_with_one_hot_labels_and_numbered_inputs(tmp_path, depthwise):
    sample = np.load(RESOURCES / "digits_depthwise" / "sample.npz")
    path = tmp_path / "d.npz"
    np.savez(path, x0=sample["x"][:50], y=np.eye(10, dtype=np.float32)[sample["y"][:50]])
    data = load_data(path, depthwise.runner.input_shapes)
    assert data.source == "file" and data.samples == 50
    one_hot = Evaluator(depthwise.model, data, depthwise.runner).evaluate(Plan()).metrics
    ints = EvalData(data.inputs, sample["y"][:50], "file", path)
    plain = Evaluator(depthwise.model, ints, depthwise.runner).evaluate(Plan()).metrics
    assert one_hot.metric == "accuracy" and one_hot.original_score == plain.original_score


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"z": np.zeros((2, 16, 16, 1))}, "no array 'x'"),
        ({"x": np.zeros((2, 8, 8, 1))}, "the model expects"),
        ({"x": np.zeros((2, 16, 16, 1)), "y": np.zeros(3)}, "different sample counts"),
        ({"x": np.array(["a", "b"])}, "not numbers"),
    ],
)
def test_bad_user_files_name_the_file_and_the_array(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(FormatError, match=message) as info:
        load_data(path, [(None, 16, 16, 1)])
    assert str(path) in str(info.value)


def test_pickled_arrays_are_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FormatError, match="object arrays need pickle, which is never used"):
        load_data(path, [(None, 1)])


def test_synthetic_probe_when_no_bundled_data(tmp_path):
    src = RESOURCES / "digits_convnet" / "digits_convnet.h5"
    shutil.copy(src, tmp_path / "m.h5")
    with open_model(tmp_path / "m.h5") as model:
        ev = Evaluator.open(model)
        assert ev.data.synthetic and ev.data.labels is None
        assert "synthetic" in ev.data.describe()
        m = ev.evaluate(Plan(default="uint8")).metrics
    assert m.metric is None and m.top1_agreement is not None and 20 < m.sqnr_db < 80
    again = choose_data(tmp_path / "m.h5", [(None, 8, 8, 1)])
    np.testing.assert_array_equal(again.inputs[0], ev.data.inputs[0])


def test_synthetic_unknown_dims_and_integer_inputs():
    data = synthetic_data([(None, None, 3), (None, 4)], samples=5, dtypes=[np.float32, np.int64])
    assert data.inputs[0].shape == (5, 16, 3) and data.inputs[1].dtype == np.int64


def test_output_metrics_by_hand():
    o = [np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)]
    q = [np.array([[1.0, 0.5], [0.0, 2.0]], np.float32)]
    m = output_metrics(o, q, np.array([0, 0]))
    assert m.sqnr_db == pytest.approx(10 * math.log10(5 / 0.25))
    assert m.top1_agreement == 1.0 and m.original_score == 0.5 and m.score_loss == 0.0
    reg = output_metrics([np.array([[1.0], [3.0]])], [np.array([[2.0], [3.0]])], np.ones(2))
    assert reg.metric == "mae" and reg.original_score == 1.0 and reg.quantized_score == 1.5
    binary = output_metrics(
        [np.array([[0.9], [0.2]])], [np.array([[0.4], [0.2]])], np.array([1, 0])
    )
    assert binary.metric == "accuracy" and binary.quantized_score == 0.5


def test_drain_returns_the_generator_value(depthwise):
    small = Evaluator(depthwise.model, depthwise.data.head(8), depthwise.runner)
    assert drain(small.iter_original())[0].shape == (8, 10)
