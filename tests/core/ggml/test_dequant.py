"""Our decoders against the gguf package's `gguf.quants.dequantize` (random blocks of every type
it decodes) and against llama.cpp's own decoding of the files llama-quantize wrote (sha256 of
`llama-quantize --allow-requantize OUT F32`, recorded by data/make_golden.py)."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from inspector.core.ggml.dequant import DECODABLE, dequantize
from inspector.core.ggml.types import ggml_type
from tests.core.ggml.conftest import DATA, gguf, manifest, read_gguf

# every type the gguf package decodes (its quantization classes, plus f32 and f16)
GGUF_TYPES = sorted({q.name.lower() for q in gguf.quants._type_traits} | {"f32", "f16"})


def _same(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Bit-equal everywhere, except that NaNs only need to be NaN (their payload is not
    specified: gguf, numpy and the C code each propagate a different one)."""
    ref = np.asarray(ref, dtype=np.float32)
    nan = np.isnan(ref)
    return bool(
        np.array_equal(np.isnan(ours), nan)
        and np.array_equal(ours[~nan].view(np.uint32), ref[~nan].view(np.uint32))
    )


def _gguf_dequantize(raw: np.ndarray, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN scales in random blocks
        with np.errstate(all="ignore"):
            return gguf.quants.dequantize(raw, gguf.GGMLQuantizationType[name.upper()])


@pytest.mark.parametrize("name", GGUF_TYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_random_blocks_equal_gguf(name, seed):
    t = ggml_type(name)
    rng = np.random.default_rng(seed)
    rows, blocks = 3, 40
    raw = rng.integers(0, 256, size=(rows, blocks * t.type_size), dtype=np.uint8)
    shape = (rows, blocks * t.block_size)
    ours = dequantize(raw, name, shape)
    ref = _gguf_dequantize(raw, name)
    assert ours.shape == shape and ours.dtype == np.float32
    assert _same(ours, np.asarray(ref).reshape(shape))


def test_every_gguf_type_is_covered():
    assert set(GGUF_TYPES) <= DECODABLE
    assert {"q4_k", "iq4_xs", "iq1_m", "tq1_0", "mxfp4", "nvfp4", "bf16"} <= set(GGUF_TYPES)


OUTPUTS = sorted(manifest()["outputs"])


@pytest.mark.parametrize("output", OUTPUTS)
def test_real_files_equal_llama_cpp_and_gguf(output):
    hashes = manifest()["outputs"][output]["llama_f32_sha256"]
    for name, (type_name, shape, raw) in read_gguf(f"out/{output}").items():
        ours = dequantize(raw, type_name, shape)
        digest = hashlib.sha256(ours.astype("<f4").tobytes()).hexdigest()
        assert digest == hashes[name], f"{output}: {name} ({type_name}) differs from llama.cpp"
        if type_name not in ("f32", "f16", "bf16"):
            ref = _gguf_dequantize(raw.reshape(shape[0], -1), type_name)
            assert _same(ours, np.asarray(ref).reshape(shape)), f"{output}: {name}"


def test_real_files_cover_every_block_type_llama_quantize_writes():
    seen = {t for out in OUTPUTS for t, _, _ in read_gguf(f"out/{out}").values()}
    expected = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"}
    expected |= {"iq4_nl", "iq4_xs", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s"}
    expected |= {"iq1_m", "tq1_0", "tq2_0", "mxfp4", "f16", "bf16"}
    assert expected <= seen


def test_types_gguf_cannot_decode_match_llama_cpp():
    """q1_0, q2_0 and q8_k have no decoder in the gguf wheel: blocks decoded by llama.cpp's
    `dequantize_row_*` (data/make_c_dequant.py) are the reference."""
    golden = np.load(DATA / "c_dequant.npz")
    for name in ("q1_0", "q2_0", "q8_k"):
        raw, ref = golden[f"{name}_raw"], golden[f"{name}_values"]
        ours = dequantize(raw, name, (1, ref.size))
        assert _same(ours.reshape(-1), ref), name


def test_plain_and_integer_types():
    x = np.array([1.5, -2.25, 65504.0, -0.0], dtype=np.float32)
    assert np.array_equal(dequantize(x.view(np.uint8), "f32", (4,)), x)
    assert np.array_equal(dequantize(x.astype("<f2").view(np.uint8), "F16", (2, 2)).ravel(), x)
    ints = np.array([-128, 0, 127], dtype=np.int8)
    assert dequantize(ints.view(np.uint8), "i8", (3,)).tolist() == [-128.0, 0.0, 127.0]
    big = np.array([2**40 + 1], dtype="<i8")
    assert dequantize(big.view(np.uint8), 27, (1,))[0] == np.float32(2**40)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="needs 68 bytes, got 35"):
        dequantize(np.zeros(35, np.uint8), "q8_0", (2, 32))
    with pytest.raises(ValueError, match="not a multiple"):
        dequantize(np.zeros(34, np.uint8), "q8_0", (1, 33))
    with pytest.raises(ValueError, match="no decoder"):
        dequantize(np.zeros(36, np.uint8), "q8_1", (1, 32))
    with pytest.raises(ValueError, match="unknown ggml type id 4"):
        dequantize(np.zeros(18, np.uint8), 4, (1, 32))


def test_large_input_on_two_threads_equals_one_block_at_a_time():
    rng = np.random.default_rng(3)
    t = ggml_type("q4_k")
    raw = rng.integers(0, 256, size=(2048, 8 * t.type_size), dtype=np.uint8)
    scales = np.frombuffer(np.float16([0.01, 0.002]).tobytes(), np.uint8)
    raw.reshape(2048, 8, t.type_size)[:, :, 0:4] = scales  # finite d and dmin everywhere
    whole = dequantize(raw, "q4_k", (2048, 8 * 256))
    parts = [dequantize(raw[i : i + 1], "q4_k", (1, 8 * 256)) for i in (0, 1023, 2047)]
    assert np.array_equal(whole[[0, 1023, 2047]], np.concatenate(parts))
