"""Properties of the encoders that the golden files do not show: threads, validation, shapes,
round trips through our decoders."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from inspector.core.ggml.dequant import dequantize
from inspector.core.ggml.quant import IMATRIX_TYPES, QUANTIZABLE, quantize
from inspector.core.ggml.types import ggml_type, row_nbytes


def _rows(rows=8, ne0=512, seed=0):
    return (np.random.default_rng(seed).standard_normal((rows, ne0)) * 0.02).astype(np.float32)


@pytest.mark.parametrize("name", sorted(QUANTIZABLE))
def test_shape_and_round_trip_error(name):
    x = _rows()
    q = quantize(x, name)
    assert q.dtype == np.uint8 and q.shape == (8, row_nbytes(name, 512))
    back = dequantize(q, name, x.shape)
    bits = {"f32": 24, "f16": 11, "bf16": 8}.get(name, ggml_type(name).bits_per_weight)
    rel = np.sqrt(np.mean((back - x) ** 2) / np.mean(x**2))
    assert rel < 2.0 ** (-bits + 2.2), (name, rel)


@pytest.mark.parametrize("name", ["q4_k", "q2_k", "q8_0", "iq4_xs", "q6_k"])
def test_two_threads_give_the_same_bytes(name):
    x = _rows(rows=4096, ne0=256, seed=1)
    one = quantize(x, name, threads=1)
    two = quantize(x, name, threads=2)
    assert np.array_equal(one, two)
    assert np.array_equal(two[1234], quantize(x[1234], name, threads=1)[0])


def test_imatrix_is_used_only_by_the_types_that_use_it():
    x = _rows()
    im = np.random.default_rng(2).random(512).astype(np.float32)
    for name in sorted(QUANTIZABLE):
        same = np.array_equal(quantize(x, name), quantize(x, name, im))
        assert same == (name not in IMATRIX_TYPES), name


def test_bad_input_is_refused():
    x = _rows()
    with pytest.raises(ValueError, match="not a multiple of q4_k's block size 256"):
        quantize(x[:, :300], "q4_k")
    bad = x.copy()
    bad[3, 17] = np.nan
    with pytest.raises(ValueError, match="non-finite value nan at row 3, column 17"):
        quantize(bad, "q8_0")
    bad[3, 17] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        quantize(bad, "f16")
    with pytest.raises(ValueError, match="imatrix has 256 values for rows of 512"):
        quantize(x, "q4_k", np.ones(256, np.float32))
    with pytest.raises(ValueError, match="imatrix contains non-finite"):
        quantize(x, "q4_k", np.full(512, np.inf, np.float32))
    with pytest.raises(ValueError, match="cannot encode ggml type iq2_xxs"):
        quantize(x, "iq2_xxs")
    with pytest.raises(ValueError, match=r"expected rows \(rows, ne0\)"):
        quantize(x.reshape(2, 4, 512), "q8_0")
    with pytest.raises(ValueError, match="expected float values"):
        quantize(x.astype(np.int32), "q8_0")


def test_empty_and_one_dimensional_input():
    assert quantize(np.zeros((0, 256), np.float32), "q4_k").shape == (0, 144)
    one = quantize(_rows()[0], "q5_k")
    assert np.array_equal(one, quantize(_rows()[:1], "q5_k"))


def test_float64_and_float16_input_are_converted_first():
    x = _rows()
    assert np.array_equal(quantize(x.astype(np.float64), "q4_0"), quantize(x, "q4_0"))
    h = x.astype(np.float16)
    assert np.array_equal(quantize(h, "q6_k"), quantize(h.astype(np.float32), "q6_k"))


def test_plain_types_are_ieee_conversions():
    x = np.array([[1.0, -2.5, 1e-8, 70000.0, 3.1415927]], dtype=np.float32)
    assert quantize(x, "f32").tobytes() == x.tobytes()
    assert quantize(x, "f16").view("<f2").tolist() == [[1.0, -2.5, 0.0, np.inf, 3.140625]]
    bf = quantize(x, "bf16").view("<u2").astype(np.uint32) << 16
    assert np.array_equal(bf.view(np.float32), x.astype(ml_dtypes.bfloat16).astype(np.float32))
