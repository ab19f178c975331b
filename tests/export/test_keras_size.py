"""Keras exports are exactly the size the preview predicts: the HDF5 layout (and the `.keras`
zip around it) is built in memory by the writer's own code, and no attribute's length depends
on the values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.core.plan import Plan
from inspector.core.preview import run_preview
from inspector.formats import open_model
from inspector.formats.export import export_model
from inspector.formats.keras import writer as keras_write
from inspector.formats.registry import get_target

RES = Path(__file__).resolve().parents[2] / "resources"
SOURCES = [
    RES / "digits_convnet" / "digits_convnet.h5",
    RES / "digits_convnet" / "digits_convnet.keras",
    RES / "digits_depthwise" / "digits_depthwise.h5",
    RES / "diabetes_mlp" / "diabetes_mlp.h5",
]
SCHEMES = [
    "float32",
    "float16",
    "bfloat16",
    "uint8",
    "affine4",
    "uint16",
    "int8",
    "int4:group=8",
    "int4:group=32",
    "kmeans3",
    "uint8:sparsity=0.5",
    "uint8:clip=percentile:99",
]
MIXED = Plan(default="uint8").with_rule("*kernel*", "int4").with_rule("*bias*", "float16")


def _export_size(src: Path, plan: Plan, tmp_path: Path) -> tuple[int, int]:
    out = tmp_path / f"out{src.suffix}"
    with open_model(src) as model:
        preview = run_preview(model, plan, get_target("keras"))
        result = export_model(model, plan, "keras", out, force=True)
    assert result.total_bytes == out.stat().st_size
    return out.stat().st_size, preview.total["quantized_bytes"]


@pytest.mark.parametrize("src", SOURCES[:2], ids=lambda p: p.name)
@pytest.mark.parametrize("spec", SCHEMES)
def test_file_size_equals_the_preview_exactly(src: Path, spec: str, tmp_path: Path) -> None:
    written, predicted = _export_size(src, Plan(default=spec), tmp_path)
    assert written == predicted


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_mixed_plan_size_is_exact(src: Path, tmp_path: Path) -> None:
    written, predicted = _export_size(src, MIXED, tmp_path)
    assert written == predicted


def test_non_finite_tensor_kept_under_a_float16_plan_is_exact(tmp_path: Path) -> None:
    src = tmp_path / "nan.h5"
    shutil.copy(SOURCES[0], src)
    with open_model(src) as model:
        path = model.metadata["h5_paths"][next(iter(model)).name]
    with h5py.File(src, "r+") as f:
        values = f[path][...]
        values.flat[0] = np.nan
        f[path][...] = values
    written, predicted = _export_size(src, Plan(default="float16"), tmp_path)
    assert written == predicted


def test_scheme_params_have_fixed_width_numbers(tmp_path: Path) -> None:
    out = tmp_path / "o.h5"
    with open_model(SOURCES[0]) as model:
        export_model(model, Plan(default="int8"), "keras", out)
        infos = [t.info for t in model]
    with h5py.File(out) as f:
        plan = Plan.loads(f.attrs["quant_inspector_plan"])
        assert all(plan.scheme_for(i).spec == "int8" for i in infos)
        params = [
            f[p].attrs["quant_inspector_params"]
            for p in model.metadata["h5_paths"].values()
            if "quant_inspector_params" in f[p].attrs
        ]
    assert params
    for text in params:
        doc = json.loads(text)
        assert doc["stored"] == "float32" and doc["scales"]
        assert all(len(n.strip()) <= 24 for n in text.split("[", 1)[1].split("]")[0].split(","))
    assert keras_write.params_json("x", {"v": np.float32(np.nan)}) == (
        '{"stored":"x","v":' + "NaN".rjust(24) + "}"
    )


def test_large_models_fall_back_to_an_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_write, "EXACT_LIMIT", 0)
    with open_model(SOURCES[0]) as model:
        overhead = run_preview(model, Plan(default="uint8"), get_target("keras")).total[
            "overhead_bytes"
        ]
        estimate = model.path.stat().st_size - sum(t.info.nbytes for t in model)
    assert overhead == estimate
