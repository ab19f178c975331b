"""The llama.cpp scheme family (inspector/core/schemes/llama.py): through `parse_scheme` /
`Scheme.encode` the stored bytes are llama-quantize's (golden files), fallbacks included, with
`imatrix=PATH` read through the formats layer's reader."""

from __future__ import annotations

import numpy as np
import pytest

import inspector.formats.gguf.imatrix  # noqa: F401  (registers the imatrix reader)
from inspector.core.errors import SchemeError
from inspector.core.model import TensorInfo
from inspector.core.schemes import parse_scheme
from tests.core.ggml.conftest import DATA, input_values, manifest, read_gguf

GOLDEN = [
    "q4_k.gguf", "q6_k_imatrix.gguf", "iq4_nl_legacy.gguf", "q8_0.gguf", "f16in_q5_0.gguf",
    "q2_k_imatrix.gguf", "iq4_xs.gguf", "q3_k.gguf",
]  # fmt: skip


@pytest.mark.parametrize("output", GOLDEN)
def test_scheme_bytes_equal_llama_quantize(output):
    spec = manifest()["outputs"][output]
    requested = output.removeprefix("f16in_").split(".")[0].split("_imatrix")[0]
    requested = requested.split("_legacy")[0].upper()
    if spec["imatrix"]:
        requested += f":imatrix={DATA / spec['imatrix']}"
    scheme = parse_scheme(requested)
    for name, (type_name, shape, expected) in read_gguf(f"out/{output}").items():
        if len(shape) < 2:
            continue
        x = input_values(spec["input"], name).reshape(shape)
        enc = scheme.encode(x, tensor=name)
        assert enc.params["type"] == type_name, name
        assert enc.to_bytes() == expected.tobytes(), f"{output}: {name}"
        assert scheme.encoded_nbytes(TensorInfo(name, shape, "float32")) == expected.size
        assert (scheme.family.note(scheme, shape) != "") == (type_name != scheme.name)


def test_names_bits_and_notes():
    assert parse_scheme("Q4_K").spec == "q4_k"
    assert parse_scheme("IQ4_XS").bits == 4 and parse_scheme("q6_k").bits == 6
    s = parse_scheme("q6_k")
    assert s.family.note(s, (8, 80)) == (
        "row length 80 is not a multiple of 256 (q6_k blocks) nor of 32 (q8_0): "
        "llama-quantize stores f16"
    )
    assert s.family.note(s, (8, 512)) == ""
    with pytest.raises(SchemeError, match="does not apply"):
        parse_scheme("q4_k:group=32")


def test_arrays_round_trip_and_sizes():
    x = (np.random.default_rng(0).standard_normal((3, 5, 288)) * 0.1).astype(np.float32)
    s = parse_scheme("q4_k")
    enc = s.encode(x)
    (layout,) = enc.arrays()
    assert layout.role == "codes" and layout.shape == (15, 9 * 22) and layout.nbytes == 15 * 198
    back = s.family.from_arrays(s, x.shape, None, [np.frombuffer(enc.to_bytes(), np.uint8)])
    assert np.array_equal(s.decode(back), s.decode(enc))
    assert back.params == {"type": "q5_0", "ne0": 288}
    with pytest.raises(SchemeError, match="take 2970 bytes, got 2969"):
        s.family.from_arrays(s, x.shape, None, [np.zeros(2969, np.uint8)])


def test_expert_matrices_use_their_own_importances(tmp_path):
    from tests.core.ggml.data.make_golden import write_imatrix_gguf

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 4, 256)) * 0.02).astype(np.float32)
    sums = {"blk.0.ffn_up_exps.weight": rng.random((2, 256)).astype(np.float32) + 0.1}
    path = tmp_path / "experts.gguf"
    write_imatrix_gguf(path, sums, 3, "experts", 1)
    enc = parse_scheme(f"q4_k:imatrix={path}").encode(x, tensor="blk.0.ffn_up_exps.weight")
    from inspector.core.ggml.quant import quantize

    weights = sums["blk.0.ffn_up_exps.weight"] / np.float32(3)
    expected = np.concatenate([quantize(x[i], "q4_k", weights[i]) for i in range(2)])
    assert np.array_equal(enc.codes, expected)
    plain = parse_scheme(f"q4_k:imatrix={path}").encode(x, tensor="not.in.the.file")
    assert np.array_equal(plain.codes, parse_scheme("q4_k").encode(x).codes)
    with pytest.raises(
        SchemeError, match=r"512 importances for tensor 'blk\.0\.ffn_up_exps\.weight'"
    ):
        parse_scheme(f"q4_k:imatrix={path}").encode(x[:1], tensor="blk.0.ffn_up_exps.weight")


def test_scale_overflow_is_counted():
    x = np.full((1, 32), 1e7, np.float32)
    enc = parse_scheme("q8_0").encode(x)  # d = 1e7/127 > 65504: the half scale is inf
    assert enc.overflow == 32
    assert parse_scheme("q8_0").encode(x / 1000).overflow == 0


def test_curve_levels_are_the_widest_blocks_levels():
    x = (np.random.default_rng(2).standard_normal((4, 64)) * 0.05).astype(np.float32)
    x[2, 40] = 1.0
    fit = parse_scheme("q4_0").family.curve_fit(parse_scheme("q4_0"), x, None, None)
    levels = fit.levels(-2.0, 2.0, 100)
    assert levels is not None and levels.max() == np.float32(1.0) and levels.size <= 16
    grid = np.linspace(-1, 1, 11, dtype=np.float32)
    assert set(fit.stored(grid).tolist()) <= set(levels.tolist())
