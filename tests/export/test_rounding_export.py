"""`round=gptq` and `round=hqq` plans: every writer stores exactly the preview's values, in
the bytes the preview counted (GPTQ's codes come from the same `GptqRounding` as the preview)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.core.quantize import quantize_tensor
from inspector.engine.rounding import GptqRounding
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.registry import get_target
from tests.export.test_roundtrip import _size, _tfjs_names, _written

DEMO = Path(__file__).resolve().parents[2] / "resources" / "digits_convnet"

SPECS = [
    "int4:round=gptq",
    "affine3:round=gptq,order=act",
    "uint8:round=gptq",
    "int8:round=gptq",
    "int4:group=8,round=hqq",
    "affine3:round=hqq",
    "int8:round=hqq",
]


@pytest.fixture(scope="module")
def calibration() -> np.ndarray:
    with np.load(DEMO / "sample.npz") as z:
        return z["x"][:96]


@pytest.mark.parametrize("fmt", ["tfjs", "keras", "safetensors", "npz"])
@pytest.mark.parametrize("spec", SPECS)
def test_export_holds_the_previewed_values(tmp_path, fmt, spec, calibration):
    plan = Plan().with_default(spec)
    nearest = Plan().with_default(spec.split(":")[0])
    with open_model(DEMO / "digits_convnet.h5") as model:
        rounding = GptqRounding(model, [calibration])
        target = get_target(fmt).with_rounding(rounding)
        preview = run_preview(model, plan, target)
        out = tmp_path / ("out" if fmt == "tfjs" else f"out.{'h5' if fmt == 'keras' else fmt}")
        result = export_model(model, plan, fmt, out, rounding=rounding)
        expected = {
            t.name: np.asarray(quantize_tensor(t, plan.scheme_for(t.info), target).decoded)
            for t in model
        }
        plain = {
            t.name: np.asarray(quantize_tensor(t, nearest.scheme_for(t.info), target).decoded)
            for t in model
        }
        names = _tfjs_names(model) if fmt == "tfjs" else {n: n for n in expected}
    got = _written(fmt, out)
    for name, values in expected.items():
        stored = np.asarray(got[names[name]], dtype=np.float32)
        assert np.array_equal(stored.view(np.uint32), values.view(np.uint32)), name
    assert any(not np.array_equal(expected[n], plain[n]) for n in expected), (
        "rounding had no effect"
    )
    if fmt != "keras":
        assert _size(out) == preview.total["quantized_bytes"] == result.total_bytes
    gptq = "round=gptq" in spec
    assert any("round=gptq" in note for _, note in result.notes) == gptq  # biases fall back


def test_export_without_rounding_says_gptq_needs_data(tmp_path):
    with open_model(DEMO / "digits_convnet.h5") as model:
        result = export_model(
            model, Plan().with_default("int8:round=gptq"), "npz", tmp_path / "o.npz"
        )
    assert all("needs sample data" in note for _, note in result.notes)
    assert len(result.notes) == 8
