"""Error metrics against float64 references; gzip sizes against the gzip module."""

from __future__ import annotations

import gzip
import math

import ml_dtypes
import numpy as np
import pytest

from inspector.core.errors import InspectorError
from inspector.core.metrics import (
    Cancelled,
    count_nonfinite,
    error_metrics,
    error_sums,
    gzip_estimate,
    gzip_nbytes,
    metrics_from_sums,
    sqnr_db,
)
from inspector.core.schemes import parse_scheme

KEYS = {"mse", "rmse", "max_abs_error", "rmse_over_scale", "sqnr_db", "cosine"}


def reference(o: np.ndarray, d: np.ndarray) -> dict[str, float]:
    o64, d64 = o.astype(np.float64).ravel(), d.astype(np.float64).ravel()
    e = o64 - d64
    return {
        "mse": float(np.mean(e * e)),
        "max_abs_error": float(np.abs(e).max()),
        "sqnr_db": 20 * math.log10(np.linalg.norm(o64) / np.linalg.norm(e)),
        "cosine": float(o64 @ d64 / np.linalg.norm(o64) / np.linalg.norm(d64)),
    }


def test_metrics_match_float64_reference_across_chunks():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(700, 1000)) * 0.05).astype(np.float32)
    s = parse_scheme("uint8")
    enc = s.encode(x)
    dec = s.decode(enc)
    m = error_metrics(x, dec, enc.scale)
    assert set(m) == KEYS
    ref = reference(x, dec)
    for key, value in ref.items():
        assert m[key] == pytest.approx(value, rel=1e-9), key
    assert m["rmse"] == pytest.approx(math.sqrt(ref["mse"]), rel=1e-9)
    assert m["rmse_over_scale"] == pytest.approx(m["rmse"] / enc.scale)
    assert 0.27 < m["rmse_over_scale"] < 0.31


def test_edge_cases_never_divide_by_zero():
    z = np.zeros(10, np.float32)
    exact = error_metrics(z, z)
    assert exact["sqnr_db"] == math.inf and exact["cosine"] == 1.0 and exact["mse"] == 0.0
    assert exact["rmse_over_scale"] is None
    bad = error_metrics(z, np.ones(10, np.float32), scale=0.5)
    assert bad["sqnr_db"] == -math.inf and bad["cosine"] == 0.0 and bad["rmse_over_scale"] == 2.0
    x = np.array([1.0, -2.0], np.float32)
    assert error_metrics(x, x)["sqnr_db"] == math.inf
    empty = error_metrics(np.zeros(0, np.float32), np.zeros(0, np.float32))
    assert empty["mse"] == 0.0 and empty["sqnr_db"] == math.inf
    assert error_metrics(x, -x)["cosine"] == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        error_metrics(x, z)


def test_sums_add_up_to_global_sqnr():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=100).astype(np.float32), rng.normal(size=50).astype(np.float32) * 3
    da, db = a + 0.01, b - 0.1
    total = error_sums(a, da) + error_sums(b, db)
    both = error_metrics(np.concatenate([a, b]), np.concatenate([da, db]))
    assert metrics_from_sums(total)["sqnr_db"] == pytest.approx(both["sqnr_db"], rel=1e-12)
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)


def test_count_nonfinite():
    x = np.array([0, np.nan, np.inf, -np.inf, 1], np.float32)
    assert count_nonfinite(x) == 3
    assert count_nonfinite(np.arange(5)) == 0
    assert count_nonfinite(x.astype(ml_dtypes.bfloat16)) == 3
    big = np.zeros(3_000_000, np.float32)
    big[-1] = np.nan
    assert count_nonfinite(big) == 1


def test_gzip_nbytes_equals_gzip_module():
    rng = np.random.default_rng(2)
    data = rng.integers(0, 40, size=3_000_000, dtype=np.uint8).tobytes()
    want = len(gzip.compress(data, compresslevel=6, mtime=0))
    got = gzip_nbytes([data[:1000], memoryview(data)[1000:]])
    assert got == want
    assert gzip_nbytes([]) == len(gzip.compress(b"", mtime=0))


def test_gzip_nbytes_cancels_between_chunks():
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled) as info:
        gzip_nbytes([bytes(5 << 20)], cancelled=cancelled)
    assert isinstance(info.value, InspectorError)
    assert len(calls) == 3


def test_gzip_estimate_exact_when_small_and_close_when_large():
    small = bytes(range(256)) * 100
    assert gzip_estimate(small) == (len(gzip.compress(small, 6, mtime=0)), 0.0)
    rng = np.random.default_rng(3)
    w = (rng.normal(size=6_000_000) * 0.05).astype(np.float32)
    codes = parse_scheme("uint8").encode(w).codes.tobytes()
    exact = len(gzip.compress(codes, 6, mtime=0))
    est, rel = gzip_estimate(codes)
    assert 0 < rel < 0.01
    assert abs(est - exact) / exact < 0.005
    assert gzip_estimate(codes) == (est, rel)
