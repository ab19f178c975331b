"""Schemes: TF.js converter parity, error bounds, exact sizes, determinism, spec parsing."""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core.bitpack import pack_codes, packed_nbytes, unpack_codes
from inspector.core.errors import SchemeError
from inspector.core.model import TensorInfo
from inspector.core.schemes import Scheme, parse_scheme, scheme_names

GOLDEN = Path(__file__).parent / "data" / "tfjs_golden.npz"
AFFINE = ["uint8", "uint16", *(f"affine{n}" for n in range(2, 17))]


def smooth(n: int = 20000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=n) * 0.05 + 0.01).astype(np.float32)


def test_tfjs_check_values():
    s = parse_scheme("uint8")
    enc = s.encode(np.array([0, -0.1, 1.2], np.float32))
    assert enc.codes.tolist() == [20, 0, 255]
    assert enc.codes.dtype == np.uint8
    assert enc.params["min"] == pytest.approx(-0.10196078817, abs=1e-12)
    assert enc.params["scale"] == pytest.approx(0.00509803940852, abs=1e-12)
    assert enc.overflow == 0
    assert s.decode(enc)[0] == 0.0
    assert (
        enc.to_bytes()
        == bytes([20, 0, 255]) + np.array([enc.params["min"], enc.params["scale"]], "<f8").tobytes()
    )


def test_bit_identical_to_official_converter():
    """Codes, min, scale and decoded floats equal what tensorflowjs 4.22 produced."""
    gold = np.load(GOLDEN)
    keys = [k[:-2] for k in gold.files if k.endswith("_x")]
    assert len(keys) == 14
    for key in keys:
        s = parse_scheme(key.rsplit("_", 1)[1])
        enc = s.encode(gold[f"{key}_x"])
        assert np.array_equal(enc.codes, gold[f"{key}_codes"]), key
        assert enc.codes.dtype == gold[f"{key}_codes"].dtype
        assert [enc.params["min"], enc.params["scale"]] == gold[f"{key}_meta"].tolist(), key
        np.testing.assert_array_equal(s.decode(enc), gold[f"{key}_decoded"], err_msg=key)


@pytest.mark.parametrize("name", AFFINE)
def test_affine_error_bound_zero_and_idempotence(name):
    s = parse_scheme(name)
    x = np.concatenate([smooth(5000), [0.0, -0.2, 0.3]]).astype(np.float32)
    enc = s.encode(x)
    dec = s.decode(enc)
    scale = enc.params["scale"]
    err = np.abs(dec.astype(np.float64) - x)
    assert err.max() <= scale / 2 * (1 + 1e-6) + 1e-7
    assert dec[5000] == 0.0
    assert float(np.float32(-enc.params["min"] / scale)) == round(-enc.params["min"] / scale)
    again = s.encode(dec)
    assert np.array_equal(again.codes, enc.codes)


def test_rmse_over_scale_on_smooth_data():
    s = parse_scheme("uint8")
    x = smooth(200000)
    enc = s.encode(x)
    rmse = np.sqrt(np.mean((s.decode(enc).astype(np.float64) - x) ** 2))
    assert rmse / enc.scale == pytest.approx(1 / np.sqrt(12), abs=0.01)


def test_constant_tensor():
    s = parse_scheme("uint16")
    enc = s.encode(np.full((4, 3), -0.75, np.float32))
    assert not enc.codes.any() and enc.codes.dtype == np.uint16
    assert enc.params == {"min": -0.75, "scale": 1.0}
    assert np.all(s.decode(enc) == -0.75)


def test_non_finite_raises_and_identity_passes():
    x = np.array([1.0, np.nan, np.inf, 2.0], np.float32)
    for name in ("uint8", "int8", "int4", "kmeans2", "float16", "bfloat16"):
        with pytest.raises(SchemeError, match="2 non-finite values"):
            parse_scheme(name).encode(x)
    only_nan = np.zeros(600_000, np.float32)
    only_nan[300_000] = np.nan
    with pytest.raises(SchemeError, match="1 non-finite values"):
        parse_scheme("uint8").encode(only_nan)
    enc = parse_scheme("float32").encode(x)
    assert np.array_equal(parse_scheme("float32").decode(enc), x, equal_nan=True)


def test_float16_rne_and_overflow():
    s = parse_scheme("float16")
    x = np.array([1.0, 1 + 2**-11, 1 + 3 * 2**-11, 65504, 65510, -70000, 1e-3], np.float32)
    enc = s.encode(x)
    assert enc.codes.dtype == np.float16
    dec = s.decode(enc)
    assert dec[1] == 1.0 and dec[2] == np.float32(1 + 4 * 2**-11)
    assert enc.overflow == 2
    assert dec[4] == 65504 and dec[5] == -65504
    assert np.all(np.isfinite(dec))


def test_bfloat16_rne():
    s = parse_scheme("bfloat16")
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -3.14159], np.float32)
    enc = s.encode(x)
    assert enc.codes.dtype == ml_dtypes.bfloat16
    dec = s.decode(enc)
    assert dec[1] == 1.0 and dec[2] == np.float32(1 + 4 * 2**-8)
    assert abs(dec[3] - x[3]) <= abs(x[3]) * 2**-8
    assert enc.to_bytes()[:2] == np.array([1.0], ml_dtypes.bfloat16).tobytes()


@pytest.mark.parametrize(
    "axis_opt, channel_axis, expected", [(None, None, 1), (None, 0, 0), (0, 1, 0)]
)
def test_int8_per_channel(axis_opt, channel_axis, expected):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(40, 6)) * np.array([0.01, 0.1, 1, 10, 0, 3])).astype(np.float32)
    s = Scheme("int8", axis=axis_opt)
    enc = s.encode(x, channel_axis=channel_axis)
    assert enc.params["axis"] == expected
    scales = enc.params["scales"]
    assert scales.dtype == np.float32 and scales.shape == (x.shape[expected],)
    amax = np.abs(x).max(axis=1 - expected)
    want = np.where(amax > 0, (amax / 127.0).astype(np.float32), 1.0)
    np.testing.assert_array_equal(scales, want)
    assert enc.codes.dtype == np.int8 and np.abs(enc.codes).max() <= 127
    dec = s.decode(enc)
    bound = np.expand_dims(scales, 1 - expected) / 2 * (1 + 1e-6)
    assert np.all(np.abs(dec - x) <= bound)
    assert np.array_equal(s.encode(dec, channel_axis=channel_axis).codes, enc.codes)


def test_int8_one_dim_is_per_tensor():
    s = parse_scheme("int8")
    x = np.array([0.5, -1.27, 0.0], np.float32)
    enc = s.encode(x, channel_axis=0)
    assert enc.params["axis"] is None and enc.params["scales"].shape == (1,)
    assert enc.codes.tolist() == [50, -127, 0]


def test_int4_groups_along_input_axis():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, 5)).astype(np.float32)
    x[32:64, 2] *= 100
    s = parse_scheme("int4")
    enc = s.encode(x, channel_axis=1)
    scales = enc.params["scales"]
    assert scales.dtype == np.float16 and scales.shape == (5, 3)
    assert enc.params["group"] == 32 and enc.params["axis"] == 1
    want = (np.abs(x[32:64, 2]).max() / 7.0).astype(np.float16)
    assert scales[2, 1] == want
    assert enc.codes.min() >= -7 and enc.codes.max() <= 7
    dec = s.decode(enc)
    per_value = np.repeat(scales.T.astype(np.float32), 32, axis=0)[:70]
    assert np.all(np.abs(dec - x) <= per_value / 2 * (1 + 1e-3))
    assert np.array_equal(s.encode(dec, channel_axis=1).codes, enc.codes)
    assert enc.nbytes == 70 * 5 // 2 + 2 * 15


def test_int4_onnx_layout_groups_contiguous_rows():
    x = np.arange(2 * 64, dtype=np.float32).reshape(2, 64) - 50
    enc = parse_scheme("int4").encode(x, channel_axis=0)
    assert enc.params["scales"].shape == (2, 2)
    assert enc.params["scales"][0, 0] == np.float16(50 / 7)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_kmeans_palette_and_determinism(bits):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(-1, 0.1, 3000), rng.normal(2, 0.2, 3000)]).astype(np.float32)
    s = parse_scheme(f"kmeans{bits}")
    enc = s.encode(x)
    palette = enc.params["palette"]
    assert palette.shape == (2**bits,) and np.all(np.diff(palette) >= 0)
    dec = s.decode(enc)
    nearest = palette[np.abs(x[:, None] - palette[None, :]).argmin(axis=1)]
    np.testing.assert_allclose(np.abs(dec - x), np.abs(nearest - x), atol=1e-6)
    if bits == 1:
        np.testing.assert_allclose(sorted(palette), [-1, 2], atol=0.02)
    assert s.encode(x).to_bytes() == enc.to_bytes()


def test_kmeans_large_tensor_is_sampled_but_deterministic():
    x = smooth(600_000, seed=9)
    s = parse_scheme("kmeans4")
    a, b = s.encode(x), s.encode(x.copy())
    assert a.to_bytes() == b.to_bytes()
    rmse = np.sqrt(np.mean((s.decode(a) - x) ** 2))
    uniform = parse_scheme("affine4").encode(x)
    assert rmse < np.sqrt(np.mean((parse_scheme("affine4").decode(uniform) - x) ** 2))


def test_kmeans_few_distinct_values_is_exact():
    x = np.array([0.5, -0.25, 0.5, 3.0] * 10, np.float32)
    s = parse_scheme("kmeans3")
    enc = s.encode(x)
    assert enc.params["palette"].shape == (8,)
    np.testing.assert_array_equal(s.decode(enc), x)


@pytest.mark.parametrize("name", ["uint8", "affine3", "int8", "int4", "kmeans3", "float16"])
def test_sparsity_keeps_pruned_zeros_exact(name):
    x = smooth(4000, seed=2) + 0.3
    s = parse_scheme(f"{name}:sparsity=0.5")
    enc = s.encode(x)
    dec = s.decode(enc)
    smallest = np.argsort(np.abs(x), kind="stable")[:2000]
    assert np.all(dec[smallest] == 0.0)
    assert np.count_nonzero(dec == 0) >= 2000


def test_sparsity_ties_zero_exact_count():
    x = np.array([1, 1, 1, 1, 2, 3], np.float32)
    dec = parse_scheme("float32:sparsity=0.5").encode(x).codes
    assert dec.tolist() == [0, 0, 0, 1, 2, 3]


def test_clip_options_narrow_the_range_and_count_overflow():
    x = smooth(10000, seed=1)
    x[:5] = [5, -5, 4, -4, 6]
    plain = parse_scheme("uint8").encode(x)
    pct = parse_scheme("uint8:clip=percentile:99.9").encode(x)
    assert pct.params["scale"] < plain.params["scale"] / 10
    assert pct.overflow >= 5
    for name in ("uint8", "affine4", "int8", "int4"):
        base, mse = parse_scheme(name), parse_scheme(f"{name}:clip=mse")
        err0 = np.mean((base.decode(base.encode(x)) - x) ** 2)
        err1 = np.mean((mse.decode(mse.encode(x)) - x) ** 2)
        assert err1 <= err0 * (1 + 1e-9), name
    sym = parse_scheme("int8:clip=percentile:99").encode(x)
    assert sym.params["scales"][0] == np.float32(np.percentile(np.abs(x), 99) / 127)


def shapes():
    return st.lists(st.integers(0, 9), min_size=0, max_size=4).map(tuple)


@settings(max_examples=60, deadline=None)
@given(shape=shapes(), name=st.sampled_from(scheme_names()), axis=st.sampled_from([None, 0, -1]))
def test_encoded_nbytes_equals_bytes(shape, name, axis):
    x = np.random.default_rng(len(shape)).normal(size=shape).astype(np.float32)
    s = parse_scheme(name)
    info = TensorInfo("t", shape, "float32", channel_axis=axis)
    enc = s.encode(x, channel_axis=axis)
    data = enc.to_bytes()
    assert s.encoded_nbytes(info) == len(data) == enc.nbytes
    assert s.decode(enc).shape == shape
    assert s.encode(x, channel_axis=axis).to_bytes() == data


def test_sizes_count_bits():
    info = TensorInfo("k", (3, 3, 7, 5), "float32")
    n = 3 * 3 * 7 * 5
    assert parse_scheme("affine3").encoded_nbytes(info) == -(-n * 3 // 8) + 16
    assert parse_scheme("affine12").encoded_nbytes(info) == -(-n * 12 // 8) + 16
    assert parse_scheme("int4").encoded_nbytes(info) == -(-n // 2) + 2 * 5 * 2
    assert parse_scheme("int8").encoded_nbytes(info) == n + 4 * 5
    assert parse_scheme("kmeans5").encoded_nbytes(info) == -(-n * 5 // 8) + 4 * 32
    assert parse_scheme("bfloat16").encoded_nbytes(info) == 2 * n


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(1, 16), n=st.integers(0, 40), seed=st.integers(0, 9))
def test_bitpack_roundtrip(bits, n, seed):
    codes = np.random.default_rng(seed).integers(0, 2**bits, size=n)
    data = pack_codes(codes, bits)
    assert len(data) == packed_nbytes(n, bits)
    np.testing.assert_array_equal(unpack_codes(data, bits, n), codes)


def test_bitpack_little_endian_golden():
    assert pack_codes(np.array([1, 2, 3]), 4) == bytes([0x21, 0x03])
    assert pack_codes(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]), 1) == bytes([0b1101, 1])
    assert pack_codes(np.array([5, 6, 7]), 3) == bytes([0b11110101, 0b1])
    assert pack_codes(np.array([0x1FF]), 9) == bytes([0xFF, 0x01])


def test_int4_bytes_are_nibbles_plus_eight():
    enc = parse_scheme("int4").encode(np.array([7.0, -7.0, 0.0], np.float32))
    assert enc.codes.tolist() == [7, -7, 0]
    assert enc.to_bytes() == bytes([0x1F, 0x08]) + np.array([1.0], "<f2").tobytes()


@pytest.mark.parametrize(
    "spec",
    [
        "int4:group=64,axis=0,clip=mse",
        "uint8:clip=percentile:99.9,sparsity=0.25,skip=100",
        "kmeans8",
        "affine16",
        "int8:clip=percentile:99",
    ],
)
def test_spec_round_trip(spec):
    s = parse_scheme(spec)
    assert parse_scheme(s.spec) == s
    assert parse_scheme(" " + s.spec.replace(",", ", ") + " ") == s


def test_spec_canonical_and_defaults():
    assert parse_scheme("int4").group == 32 and parse_scheme("int4:group=32").spec == "int4"
    assert parse_scheme("uint8:clip=minmax").spec == "uint8"
    assert parse_scheme("uint8:clip=percentile:99.90").spec == "uint8:clip=percentile:99.9"
    assert Scheme("int4") == parse_scheme("int4")
    assert parse_scheme("affine8").bits == 8 and parse_scheme("kmeans3").bits == 3
    assert (
        parse_scheme("float32").is_identity and not parse_scheme("float32:sparsity=0.1").is_identity
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("uint9", "unknown scheme"),
        ("affine1", "unknown scheme"),
        ("kmeans9", "unknown scheme"),
        ("uint8:group=4", "'group' does not apply"),
        ("float16:clip=mse", "'clip' does not apply"),
        ("int8:bogus=1", "unknown option 'bogus'"),
        ("int4:group=0", "group must be a positive"),
        ("int4:group=x", "group must be an integer"),
        ("uint8:sparsity=1", r"sparsity must be in \[0, 1\)"),
        ("uint8:clip=percentile:40", "percentile must be in"),
        ("uint8:clip=median", "clip must be"),
        ("uint8:skip", "must be key=value"),
        ("int8:axis=1,axis=0", "given twice"),
        ("", "empty scheme"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(SchemeError, match=message):
        parse_scheme(spec)


def test_axis_out_of_range():
    with pytest.raises(SchemeError, match="axis 2 is out of range"):
        parse_scheme("int8:axis=2").encode(np.zeros((2, 3), np.float32))


def test_applies_to():
    s = parse_scheme("uint8:skip=10")
    assert s.applies_to(TensorInfo("w", (4, 4), "float32"))
    assert not s.applies_to(TensorInfo("b", (4,), "float32"))
    assert not s.applies_to(TensorInfo("i", (40,), "int32"))
    assert not parse_scheme("uint8").applies_to(TensorInfo("e", (0, 3), "float32"))


def test_scale_property():
    x = smooth(64).reshape(8, 8)
    assert parse_scheme("float16").encode(x).scale is None
    assert parse_scheme("kmeans2").encode(x).scale is None
    enc = parse_scheme("int8").encode(x)
    assert enc.scale == pytest.approx(float(np.sqrt(np.mean(enc.params["scales"] ** 2))))


def test_inputs_of_other_float_dtypes_and_read_only():
    x = smooth(100).astype(np.float64)
    x.flags.writeable = False
    enc = parse_scheme("uint8:sparsity=0.3").encode(x)
    assert enc.shape == (100,)
    bf = smooth(100).astype(ml_dtypes.bfloat16)
    assert parse_scheme("int8").decode(parse_scheme("int8").encode(bf)).dtype == np.float32


def test_kmeans_lookup_assignment_equals_binary_search():
    from inspector.core.schemes import kmeans_math as kmeans

    rng = np.random.default_rng(11)
    x = (rng.standard_normal(300_000) * 0.05).astype(np.float32)
    x[:6] = [5, -5, 0, -0.0, 3e38, -3e38]
    for k in (2, 16, 256):
        palette = kmeans.fit_palette(x, k)
        if k > 16:
            palette[10:13] = palette[10]
        bounds = kmeans._boundaries_float32(palette)
        probe = np.concatenate([x, bounds, np.nextafter(bounds, np.float32(np.inf))])
        want = np.searchsorted(bounds, probe, side="left")
        np.testing.assert_array_equal(kmeans.assign_codes(probe, palette), want)
        exact = np.abs(probe[:, None] - palette[None, :].astype(np.float64)).min(axis=1)
        got = np.abs(probe - palette[kmeans.assign_codes(probe, palette)].astype(np.float64))
        np.testing.assert_array_equal(got, exact)


def test_int4_float16_scale_saturation_and_underflow():
    s = parse_scheme("int4")
    big = s.encode(np.array([1e6, -1e6, 1.0], np.float32))
    assert big.params["scales"][0, 0] == np.float16(65504)
    assert big.codes.tolist() == [7, -7, 0] and big.overflow == 2
    tiny = s.encode(np.array([1e-8, -1e-9], np.float32))
    assert tiny.params["scales"][0, 0] == 0 and not tiny.codes.any()
    assert np.all(s.decode(tiny) == 0)


@pytest.mark.parametrize("name", ["q8_0", "q4_k", "iq4_xs", "q6_k"])
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 32), ()])
def test_llama_blocks_of_empty_and_scalar_tensors(name, shape):
    """A row of zero values stores zero bytes (no block), a scalar one padded block: the
    sizes the preview reports are the bytes the writers store, and decoding gives the shape."""
    s = parse_scheme(name)
    enc = s.encode(np.full(shape, 0.5, np.float32))
    assert s.encoded_nbytes(TensorInfo("t", shape, "float32")) == len(enc.to_bytes())
    decoded = s.decode(enc)
    assert decoded.shape == shape
    if decoded.size:
        assert abs(float(decoded.reshape(-1)[0]) - 0.5) < 0.01
