"""The preview: per-tensor rows and totals, NaN tensors kept and named, cache reuse."""

import math

import numpy as np
import pytest

from inspector.core.model import Model, Tensor, TensorInfo
from inspector.core.plan import Plan
from inspector.core.preview import PreviewCache, iter_preview, quantize_tensor, run_preview
from inspector.core.schemes import parse_scheme


def _model(arrays: dict[str, np.ndarray]) -> Model:
    tensors = [
        Tensor(
            TensorInfo(n, a.shape, str(a.dtype), n.split("/")[0], channel_axis=-1), lambda a=a: a
        )
        for n, a in arrays.items()
    ]
    return Model("mem.npz", "npz", tensors)


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {
        "dense/kernel": rng.normal(0, 0.1, (64, 32)).astype(np.float32),
        "dense/bias": rng.normal(0, 0.01, (32,)).astype(np.float32),
        "embed/table": rng.normal(0, 1.0, (100, 16)).astype(np.float32),
        "step/count": np.arange(5, dtype=np.int32),
    }


def test_uint8_totals_are_sums_of_rows(arrays):
    prev = run_preview(_model(arrays), Plan(default="uint8"))
    rows = {t.name: t for t in prev.tensors}
    assert [t.name for t in prev.tensors] == list(arrays)
    floats = [rows[n] for n in ("dense/kernel", "dense/bias", "embed/table")]
    assert all(t.stored == "uint8" and t.skipped is None for t in floats)
    assert 64 * 32 < rows["dense/kernel"].quantized_bytes <= 64 * 32 + 16
    assert rows["step/count"].skipped and rows["step/count"].quantized_bytes == 20
    assert prev.total["quantized_bytes"] == sum(t.quantized_bytes for t in prev.tensors)
    assert prev.total["original_bytes"] == sum(a.nbytes for a in arrays.values())
    assert 0.28 < rows["embed/table"].rmse_over_scale < 0.30
    assert 40 < prev.total["sqnr_db"] < 50


def test_global_sqnr_matches_definition(arrays):
    model = _model(arrays)
    plan = Plan(default="affine4")
    prev = run_preview(model, plan)
    signal = noise = 0.0
    for t in model:
        q = quantize_tensor(t, plan.scheme_for(t.info))
        if q.skipped is None:
            x = q.original.astype(np.float64)
            signal += float((x**2).sum())
            noise += float(((x - q.decoded) ** 2).sum())
    assert prev.total["sqnr_db"] == pytest.approx(10 * math.log10(signal / noise), rel=1e-9)


def test_nonfinite_tensor_is_kept_and_named_rest_previews(arrays):
    bad = arrays["embed/table"].copy()
    bad[0, :3] = [np.nan, np.inf, -np.inf]
    arrays["embed/table"] = bad
    prev = run_preview(_model(arrays), Plan(default="uint8"))
    row = {t.name: t for t in prev.tensors}["embed/table"]
    assert row.nonfinite == 3 and "3 non-finite" in row.skipped
    assert row.quantized_bytes == bad.nbytes
    assert prev.total["nonfinite_tensors"] == ["embed/table"]
    assert {t.name: t for t in prev.tensors}["dense/kernel"].stored == "uint8"


def test_generator_yields_one_row_per_tensor_then_returns_preview(arrays):
    gen = iter_preview(_model(arrays), Plan(default="float16"))
    names = [next(gen).name for _ in arrays]
    assert names == list(arrays)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert len(stop.value.value.tensors) == len(arrays)


def test_cache_recomputes_only_changed_tensor(arrays, monkeypatch):
    model = _model(arrays)
    cache = PreviewCache()
    run_preview(model, Plan(default="uint8"), cache=cache)
    calls = []
    import inspector.core.preview as mod

    real = mod.preview_tensor
    monkeypatch.setattr(
        mod, "preview_tensor", lambda *a, **k: calls.append(a[0].name) or real(*a, **k)
    )
    plan = Plan(default="uint8").with_overrides(["dense/kernel"], "int8")
    prev = run_preview(model, plan, cache=cache)
    assert calls == ["dense/kernel"]
    assert {t.name: t for t in prev.tensors}["dense/kernel"].scheme == "int8"


@pytest.mark.parametrize("spec", ["uint8", "int8", "int4", "kmeans3", "float16", "bfloat16"])
def test_quantized_bytes_equal_stored_bytes(arrays, spec):
    model = _model(arrays)
    for t in model:
        q = quantize_tensor(t, parse_scheme(spec))
        assert len(q.stored_bytes()) == q.stored_nbytes
