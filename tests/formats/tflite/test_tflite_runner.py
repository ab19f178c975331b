"""Exports run in the real interpreter (LiteRT): outputs against the official converter's files,
mixed plans, full-integer models, and the evaluation engine on `.tflite` models."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_helpers import DEMOS, RESOURCES, export, fixture

from inspector.core.plan import Plan
from inspector.engine.evaluate import Evaluator
from inspector.formats.tflite.reader import read_tflite
from inspector.formats.tflite.writer import TFLITE_TARGET

pytest.importorskip("ai_edge_litert.interpreter")

from inspector.engine.tflite_runner import TfliteExecutor

MODES_RUN = ("float32", "float16", "dynamic", "int8")


def _samples(demo: str, n: int = 200) -> np.ndarray:
    return np.load(RESOURCES / demo / "sample.npz")["x"][:n].astype(np.float32)


def _outputs(path, x) -> np.ndarray:
    with read_tflite(path) as m:
        return TfliteExecutor.from_model(m).run([x])[0]


def _rel_error(out: np.ndarray, base: np.ndarray) -> float:
    return float(
        np.sum((out.astype(np.float64) - base) ** 2) / np.sum(base.astype(np.float64) ** 2)
    )


@pytest.mark.parametrize("demo", DEMOS)
@pytest.mark.parametrize(("mode", "spec"), [("float16", "float16"), ("dynamic", "int8:skip=1024")])
def test_export_runs_within_official_error_and_size(open_fixture, tmp_path, demo, mode, spec):
    x = _samples(demo)
    base = _outputs(fixture(demo, "float32"), x)
    out = tmp_path / f"{spec}.tflite"
    export(open_fixture(fixture(demo, "float32")), Plan().with_default(spec), out)
    ours = _rel_error(_outputs(out, x), base)
    official = _rel_error(_outputs(fixture(demo, mode), x), base)
    assert 0 < ours <= official * (1 + 1e-6)
    assert (
        abs(out.stat().st_size - fixture(demo, mode).stat().st_size)
        <= 0.02 * fixture(demo, mode).stat().st_size
    )


@pytest.mark.parametrize("demo", DEMOS)
def test_int8_everywhere_runs(open_fixture, tmp_path, demo):
    """int8 on every float tensor: biases and small weights go through DEQUANTIZE, large ones
    to hybrid kernels only where the bias stays a float32 constant."""
    x = _samples(demo, 64)
    out = tmp_path / "int8.tflite"
    export(open_fixture(fixture(demo, "float32")), Plan().with_default("int8"), out)
    base = _outputs(fixture(demo, "float32"), x)
    assert _rel_error(_outputs(out, x), base) < 1e-3


def test_mixed_plan_runs(open_fixture, tmp_path):
    plan = (
        Plan()
        .with_default("float16")
        .with_rule("arith.constant1", "int8")
        .with_rule("arith.constant3", "int8")
        .with_rule("arith.constant2", "uint8")
        .with_rule("*conv1*", "float32")
    )
    out = tmp_path / "mixed.tflite"
    model = open_fixture(fixture("digits_convnet", "float32"))
    preview, _ = export(model, plan, out)
    stored = {r.stored.split(":")[0] for r in preview.tensors}
    assert {"float16", "int8", "float32"} <= stored
    x = _samples("digits_convnet", 64)
    base = _outputs(fixture("digits_convnet", "float32"), x)
    assert 0 < _rel_error(_outputs(out, x), base) < 1e-3


def test_full_integer_requantized_runs(open_fixture, tmp_path):
    x = _samples("digits_convnet", 64)
    src = fixture("digits_convnet", "int8")
    base = _outputs(src, x)
    same = tmp_path / "same.tflite"
    export(open_fixture(src), Plan(), same)
    assert np.array_equal(_outputs(same, x), base)
    coarse = tmp_path / "affine4.tflite"
    export(open_fixture(src), Plan().with_default("affine4"), coarse)
    assert 0 < _rel_error(_outputs(coarse, x), base) < 0.05


@pytest.mark.parametrize("spec", ["float16", "int8:skip=1024", "int8", "uint8", "affine4"])
@pytest.mark.parametrize(
    ("demo", "mode"), [("digits_convnet", m) for m in MODES_RUN] + [("digits_depthwise", "float32")]
)
def test_evaluation_is_the_written_file(open_fixture, tmp_path, demo, mode, spec):
    """The preview is the truth: what `evaluate` runs for a plan is what the exported file
    computes in LiteRT — hybrid kernels (activations quantized at run time) included."""
    model = open_fixture(fixture(demo, mode))
    ev = Evaluator.open(model, RESOURCES / demo / "sample.npz", TFLITE_TARGET, max_samples=64)
    plan = Plan().with_default(spec)
    _, quantized = ev.outputs(plan)
    out = tmp_path / "export.tflite"
    export(model, plan, out)
    written = _outputs(out, np.asarray(ev.data.inputs[0], np.float32))
    assert np.allclose(written, quantized[0], rtol=0, atol=1e-6)
    assert ev.evaluate(plan).metrics.samples == 64
