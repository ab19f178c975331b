"""The ggml type table against the gguf package's (ids, block sizes, bytes per block)."""

from __future__ import annotations

import pytest

from inspector.core.ggml.types import GGML_TYPES, ggml_type, row_nbytes
from tests.core.ggml.conftest import gguf


def test_table_equals_gguf_constants():
    for q in gguf.GGMLQuantizationType:
        t = ggml_type(q.value)
        assert t.name == q.name.lower()
        if t.name == "q8_1":  # gguf-py says 40; ggml's block_q8_1 is two halves + 32 int8
            assert (t.block_size, t.type_size) == (32, 36)
            continue
        assert (t.block_size, t.type_size) == gguf.GGML_QUANT_SIZES[q], t.name
    known = {q.value for q in gguf.GGMLQuantizationType}
    assert set(GGML_TYPES) - known <= {42}  # q2_0: newer than the gguf 0.19 wheel


def test_lookup_by_id_and_any_case_name():
    assert ggml_type("Q4_K") is ggml_type("q4_k") is ggml_type(12) is GGML_TYPES[12]
    assert ggml_type(" IQ4_NL ").id == 20
    assert ggml_type("bf16").bits_per_weight == 16
    assert ggml_type("q4_k").bits_per_weight == 4.5
    assert ggml_type("q6_k").bits_per_weight == 6.5625
    assert not ggml_type("f16").quantized and ggml_type("q8_0").quantized


@pytest.mark.parametrize("bad", [4, 31, 43, -1, "q4_2", "Q4_K_M", "", True, 1.5])
def test_unknown_types_are_refused(bad):
    with pytest.raises(ValueError):
        ggml_type(bad)


def test_row_nbytes():
    assert row_nbytes("q4_k", 4096) == 16 * 144
    assert row_nbytes("q8_0", 64) == 68
    assert row_nbytes("f16", 7) == 14
    assert row_nbytes("iq4_xs", 0) == 0
    with pytest.raises(
        ValueError, match="row length 4100 is not a multiple of q4_k's block size 256"
    ):
        row_nbytes("q4_k", 4100)
    with pytest.raises(ValueError, match="negative"):
        row_nbytes("q8_0", -32)
