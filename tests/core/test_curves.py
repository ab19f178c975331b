"""Curves agree with encode/decode; levels and clip ranges are the scheme's own."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from inspector.core.curves import (
    bit_width_scheme,
    clip_range,
    discretization_curve,
    quantization_levels,
)
from inspector.core.errors import SchemeError
from inspector.core.schemes import parse_scheme


def weights(shape=(64, 8), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * rng.uniform(0.01, 1, size=shape[-1])).astype(np.float32)


@pytest.mark.parametrize(
    "spec",
    [
        "uint8",
        "uint16",
        "affine3",
        "kmeans3",
        "float16",
        "bfloat16",
        "float32",
        "uint8:clip=percentile:99",
        "affine4:clip=mse",
        "uint8:sparsity=0.5",
        "kmeans2:sparsity=0.3",
    ],
)
def test_curve_equals_decode_of_encode(spec):
    s = parse_scheme(spec)
    x = weights()
    dec = s.decode(s.encode(x))
    for v, stored in zip(x.reshape(-1)[:60], dec.reshape(-1)[:60], strict=True):
        _, y = discretization_curve(s, x, float(v), float(v), 1)
        assert y[0] == stored, (spec, v)


@pytest.mark.parametrize("spec", ["int8", "int4:group=16"])
def test_per_channel_curve_uses_that_channel(spec):
    s = parse_scheme(spec)
    x = weights((16, 8))
    dec = s.decode(s.encode(x, channel_axis=1))
    for ch in (0, 5):
        for v, stored in zip(x[:, ch], dec[:, ch], strict=True):
            _, y = discretization_curve(s, x, float(v), float(v), 1, channel=ch, channel_axis=1)
            assert y[0] == stored


def test_curve_is_a_monotone_staircase_with_flat_ends():
    x = weights((1000,))
    s = bit_width_scheme("4")
    lo, hi = clip_range(s, x)
    xs, ys = discretization_curve(s, x, lo - 1, hi + 1, 4001)
    assert xs.dtype == ys.dtype == np.float32 and xs.shape == ys.shape == (4001,)
    assert np.all(np.diff(ys) >= 0)
    assert len(np.unique(ys)) == 16
    assert ys[0] == np.float32(lo) and ys[-1] == np.float32(hi)
    assert 0.0 in ys


def test_sixteen_vs_eight_bit_on_a_zoomed_sine():
    t = np.linspace(0, 2 * np.pi, 10000)
    x = np.sin(t).astype(np.float32)
    _, y8 = discretization_curve(bit_width_scheme("8"), x, 0.5, 0.52, 2001)
    _, y16 = discretization_curve(bit_width_scheme("16"), x, 0.5, 0.52, 2001)
    assert len(np.unique(y8)) <= 4 < 100 < len(np.unique(y16))


def test_levels():
    x = weights((200,))
    levels = quantization_levels(parse_scheme("uint8"), x)
    enc = parse_scheme("uint8").encode(x)
    assert levels.size == 256 and levels[0] == np.float32(enc.params["min"])
    assert np.isin(parse_scheme("uint8").decode(enc), levels).all()
    assert 0.0 in levels
    k = parse_scheme("kmeans2")
    np.testing.assert_array_equal(
        quantization_levels(k, x), np.unique(k.encode(x).params["palette"])
    )
    i8 = quantization_levels(parse_scheme("int8"), np.array([-1.0, 0.5], np.float32))
    assert i8.size == 127 + 65 and i8[0] == np.float32(-1.0)
    f16 = quantization_levels(parse_scheme("float16"), np.array([1.0, 2.0], np.float32))
    assert f16.size == 1025 and f16[1] == np.float32(1 + 2**-10)
    bf = quantization_levels(parse_scheme("bfloat16"), np.array([-1.0, 1.0], np.float32))
    assert np.array_equal(bf, np.unique(bf.astype(ml_dtypes.bfloat16).astype(np.float32)))
    assert quantization_levels(parse_scheme("float32"), x) is None
    assert quantization_levels(parse_scheme("uint16"), x, max_levels=1000) is None
    one = quantization_levels(parse_scheme("float32"), np.array([1.0, 1.0], np.float32))
    assert one.tolist() == [1.0]


def test_clip_range():
    x = weights((500,))
    enc = parse_scheme("uint8").encode(x)
    lo, hi = clip_range(parse_scheme("uint8"), x)
    assert lo == enc.params["min"] and hi == pytest.approx(lo + 255 * enc.params["scale"])
    plo, phi = clip_range(parse_scheme("uint8:clip=percentile:95"), x)
    assert lo < plo < phi < hi
    i8 = clip_range(parse_scheme("int8"), x)
    assert i8[1] == pytest.approx(np.abs(x).max(), rel=1e-6) and i8[0] == -i8[1]
    assert clip_range(parse_scheme("float16"), x) == (-65504.0, 65504.0)


def test_non_finite_values_are_left_out_of_the_fit():
    x = np.array([0.0, 1.0, np.nan, -1.0], np.float32)
    _, y = discretization_curve(parse_scheme("uint8"), x, -1, 1, 3)
    enc = parse_scheme("uint8").encode(np.array([0.0, 1.0, -1.0], np.float32))
    assert y[1] == 0.0 and y[0] == np.float32(enc.params["min"])


def test_bit_width_labels():
    assert bit_width_scheme("16").name == "uint16"
    assert bit_width_scheme("8").name == "uint8"
    assert bit_width_scheme("4").name == "affine4" and bit_width_scheme("2").bits == 2
    assert bit_width_scheme("bfloat16").name == "bfloat16"
    with pytest.raises(SchemeError):
        bit_width_scheme("1")
    with pytest.raises(SchemeError):
        bit_width_scheme("float8")
