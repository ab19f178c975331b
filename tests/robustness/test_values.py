"""Value edge cases through the preview, every scheme, every export target and the curves the
GUI draws: NaN/Inf, denormals, all-zero and constant tensors, 0- and 1-element tensors, int and
bool tensors, float64/float16/bfloat16 sources. Each tensor is written to a real npz or
safetensors file and read back through `open_model`. Warnings are errors (pyproject), so a
division by zero or an overflowing cast fails the test."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from inspector.core.curves import clip_range, discretization_curve, quantization_levels
from inspector.core.errors import SchemeError
from inspector.core.metrics import error_metrics, gzip_estimate
from inspector.core.model import Model, Tensor
from inspector.core.plan import Plan
from inspector.core.preview import TensorPreview, preview_tensor, run_preview
from inspector.core.schemes import parse_scheme, scheme_names
from inspector.core.target import NATIVE
from inspector.formats.registry import export_choices, get_target, open_model

F32 = np.float32
TINY = np.finfo(F32).smallest_subnormal
EDGE_VALUES: dict[str, np.ndarray] = {
    "nan": np.array([[1.0, np.nan], [0.5, -2.0]], F32),
    "all_nan": np.full((2, 3), np.nan, F32),
    "inf": np.array([[1.0, np.inf], [-np.inf, 0.0]], F32),
    "denormal": (np.arange(-8, 8, dtype=F32) * TINY).reshape(4, 4),
    "denormal_and_normal": np.array([TINY, -TINY, 3 * TINY, 1.0, -1.0, 0.0], F32).reshape(2, 3),
    "smallest_normal": np.array([[np.finfo(F32).tiny, 0.0], [-np.finfo(F32).tiny, 0.0]], F32),
    "zeros": np.zeros((4, 8), F32),
    "negative_zero": np.full((3, 2), -0.0, F32),
    "constant": np.full((4, 8), 0.37, F32),
    "constant_negative": np.full((8, 4), -3.5, F32),
    "one_element": np.array([2.5], F32),
    "one_element_2d": np.array([[-1e-3]], F32),
    "scalar": np.array(7.0, F32),
    "empty": np.zeros((0,), F32),
    "empty_2d": np.zeros((3, 0), F32),
    "huge_range": np.array([[3.0e38, -3.0e38], [1.0, 0.0]], F32),
    "near_max": np.full((2, 2), np.finfo(F32).max, F32),
    "two_values": np.array([[0.0, 1.0], [1.0, 0.0]], F32),
    "sparse_outlier": np.concatenate([np.zeros(63, F32), [1e6]]).astype(F32).reshape(8, 8),
}
OTHER_DTYPES: dict[str, np.ndarray] = {
    "int32": np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
    "int8": np.array([-128, 0, 127], np.int8),
    "uint8": np.array([[0, 255]], np.uint8),
    "int64": np.array([2**62, -(2**62)], np.int64),
    "bool": np.array([[True, False], [False, True]]),
    "float64_beyond_f32": np.array([[1e300, -1e300], [1.0, np.nan]], np.float64),
    "float64": np.linspace(-1, 1, 24, dtype=np.float64).reshape(4, 6),
    "float64_tiny": np.array([1e-310, -1e-320, 0.0, 1e-300], np.float64),
    "float16": np.array([[65504.0, -65504.0], [6e-8, 0.0]], np.float16),
    "float16_inf": np.array([np.inf, 1.0, 2.0], np.float16),
}
SCHEMES = [
    *scheme_names(),
    "int8:axis=0",
    "int4:group=4",
    "int4:axis=0,group=1",
    "affine4:clip=percentile:99",
    "affine8:clip=mse",
    "int8:clip=mse",
    "int4:clip=percentile:99.9",
    "uint8:sparsity=0.5",
    "kmeans3:sparsity=0.9",
    "float16:sparsity=0.25",
    "int8:skip=5",
]


def _bf16_safetensors(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """A safetensors file written by hand (BF16, F16, F64 as the format defines them)."""
    codes = {"bfloat16": "BF16", "float16": "F16", "float64": "F64", "float32": "F32"}
    header, blobs, pos = {}, [], 0
    for name, arr in arrays.items():
        raw = np.ascontiguousarray(arr).tobytes()
        header[name] = {
            "dtype": codes[arr.dtype.name],
            "shape": list(arr.shape),
            "data_offsets": [pos, pos + len(raw)],
        }
        blobs.append(raw)
        pos += len(raw)
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + b"".join(blobs))
    return path


@pytest.fixture(scope="module")
def edge_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    folder = tmp_path_factory.mktemp("values")
    path = folder / "edge.npz"
    np.savez(path, **EDGE_VALUES, **OTHER_DTYPES)
    with open_model(path) as model:
        yield model


@pytest.fixture(scope="module")
def bf16_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    folder = tmp_path_factory.mktemp("bf16")
    bf = ml_dtypes.bfloat16
    arrays = {
        "bf16": np.linspace(-3, 3, 32).astype(bf).reshape(4, 8),
        "bf16_nan": np.array([1.0, np.nan, 2.0, 3.0], dtype=bf),
        "bf16_constant": np.full((2, 2), 1.5, dtype=bf),
        "bf16_big": np.array([3e38, -3e38, 1.0, 0.0], dtype=bf),
        "f16": np.array([[65504.0, 1e-7], [0.0, -1.0]], np.float16),
        "f64": np.array([[1e300, 0.5], [-0.5, 0.0]], np.float64),
        "f32_zero_elements": np.zeros((0, 4), F32),
    }
    with open_model(_bf16_safetensors(folder / "edge.safetensors", arrays)) as model:
        yield model


def _check_row(row: TensorPreview, tensor: Tensor) -> None:
    """A preview row is either a kept tensor with a reason or finite, sane metrics."""
    if row.skipped is not None:
        assert row.skipped and isinstance(row.skipped, str)
        assert row.mse == 0.0 and row.cosine == 1.0
    else:
        assert tensor.info.is_float and tensor.info.size > 0
        for key in ("mse", "rmse", "max_abs_error"):
            value = getattr(row, key)  # +inf only when a value decodes past float32's max
            assert not math.isnan(value) and value >= 0.0, (key, value)
        assert -1.0 <= row.cosine <= 1.0
        assert not math.isnan(row.sqnr_db)
        if row.rmse_over_scale is not None:
            assert not math.isnan(row.rmse_over_scale)
        if math.isinf(row.mse):
            assert row.cosine != 1.0 and row.sqnr_db == -math.inf
    assert row.quantized_bytes >= 0 and row.gzip_bytes >= 0
    assert math.isfinite(row.bits_per_weight)
    json.dumps(row.to_json(), allow_nan=False)
    if row.nonfinite:
        assert row.skipped is not None and "non-finite" in row.skipped


@pytest.mark.parametrize("spec", SCHEMES)
def test_every_scheme_on_edge_values(edge_model: Model, bf16_model: Model, spec: str) -> None:
    scheme = parse_scheme(spec)
    for model in (edge_model, bf16_model):
        for tensor in model:
            row = preview_tensor(tensor, scheme, NATIVE)
            _check_row(row, tensor)


@pytest.mark.parametrize("target_name", export_choices())
@pytest.mark.parametrize(
    "spec", ["float16", "bfloat16", "uint8", "affine3", "int8", "int4:group=4", "kmeans2"]
)
def test_every_target_on_edge_values(
    edge_model: Model, bf16_model: Model, target_name: str, spec: str
) -> None:
    target = get_target(target_name)
    for model in (edge_model, bf16_model):
        for tensor in model:
            _check_row(preview_tensor(tensor, parse_scheme(spec), target), tensor)


@pytest.mark.parametrize("spec", ["uint8", "int4", "kmeans4", "float16", "float32"])
def test_whole_model_totals(edge_model: Model, bf16_model: Model, spec: str) -> None:
    for model in (edge_model, bf16_model):
        preview = run_preview(model, Plan(default=spec))
        total = preview.total
        for key in ("compression_ratio", "bits_per_weight", "gzip_ratio"):
            assert math.isfinite(total[key]), (key, total[key])
        assert not math.isnan(total["mse"]) and total["mse"] >= 0.0
        assert not math.isnan(total["sqnr_db"])
        names = {t.name for t in model if t.info.is_float}
        assert set(total["nonfinite_tensors"]) <= names
        json.dumps(preview.to_json(model), allow_nan=False)


def test_nonfinite_tensors_are_named(edge_model: Model, bf16_model: Model) -> None:
    total = run_preview(edge_model, Plan(default="uint8")).total
    assert {"nan", "all_nan", "inf", "float64_beyond_f32"} <= set(total["nonfinite_tensors"])
    total = run_preview(bf16_model, Plan(default="uint8")).total
    assert "bf16_nan" in total["nonfinite_tensors"]


@pytest.mark.parametrize("spec", SCHEMES)
def test_curves_on_edge_values(edge_model: Model, bf16_model: Model, spec: str) -> None:
    """What the GUI plots for a selected tensor: curve, levels, clip range."""
    scheme = parse_scheme(spec)
    for model in (edge_model, bf16_model):
        for tensor in model:
            if not tensor.info.is_float:
                continue
            values = tensor.load()
            axis = tensor.info.channel_axis
            try:
                lo, hi = clip_range(scheme, values, axis)
                xs, ys = discretization_curve(scheme, values, -1.0, 1.0, 33, None, axis)
                levels = quantization_levels(scheme, values, None, axis)
            except SchemeError as exc:
                assert "non-finite" in str(exc) or values.size == 0, (tensor.name, exc)
                continue
            assert not (math.isnan(lo) or math.isnan(hi)), tensor.name
            assert xs.shape == ys.shape == (33,)
            assert levels is None or levels.ndim == 1


def test_metrics_edge_cases() -> None:
    zeros = np.zeros(5, F32)
    assert error_metrics(zeros, zeros)["sqnr_db"] == math.inf
    m = error_metrics(zeros, np.ones(5, F32))
    assert m["sqnr_db"] == -math.inf and m["cosine"] == 0.0
    m = error_metrics(np.zeros(0, F32), np.zeros(0, F32), scale=0.0)
    assert m["mse"] == 0.0 and m["cosine"] == 1.0 and m["rmse_over_scale"] is None
    big = np.full(4, 3e38, F32)
    m = error_metrics(big, -big)
    assert math.isfinite(m["mse"]) and m["cosine"] == -1.0
    assert gzip_estimate(b"")[0] > 0
