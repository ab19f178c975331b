"""Row-length fallbacks as llama-quantize's tensor_type_fallback applies them (checked against
real files too: test_quant_golden.test_stored_types_are_the_fallbacks)."""

from __future__ import annotations

import pytest

from inspector.core.ggml.fallback import fallback_type


@pytest.mark.parametrize(
    ("want", "ne0", "got"),
    [
        ("q4_k", 4096, "q4_k"),
        ("q4_k", 4128, "q5_0"),
        ("Q5_K", 288, "q5_1"),
        ("q6_k", 288, "q8_0"),
        ("q2_k", 288, "q4_0"),
        ("q3_k", 288, "q4_0"),
        ("tq1_0", 96, "q4_0"),
        ("iq4_xs", 288, "iq4_nl"),
        ("iq2_xxs", 288, "iq4_nl"),
        ("q4_k", 80, "f16"),
        ("q8_0", 80, "f16"),
        ("iq4_nl", 100, "f16"),
        ("q4_0", 96, "q4_0"),
        ("f16", 7, "f16"),
    ],
)
def test_fallback_types(want, ne0, got):
    result = fallback_type(want, ne0)
    assert result.type.name == got
    assert (result.reason is None) == (got == want.lower())


def test_reasons_name_the_row_length_and_the_result():
    assert fallback_type("q4_k", 4128).reason == (
        "row length 4128 is not a multiple of 256 (q4_k blocks): llama-quantize falls back to q5_0"
    )
    assert fallback_type("q6_k", 80).reason == (
        "row length 80 is not a multiple of 256 (q6_k blocks) nor of 32 (q8_0): "
        "llama-quantize stores f16"
    )
    assert fallback_type("q8_0", 80).reason == (
        "row length 80 is not a multiple of 32 (q8_0 blocks): llama-quantize stores f16"
    )


@pytest.mark.parametrize("want", ["q1_0", "nvfp4", "q8_k"])
def test_types_without_a_rule_stop_as_llama_quantize_does(want):
    with pytest.raises(ValueError, match="no fallback"):
        fallback_type(want, 96)
    assert fallback_type(want, 1024).reason is None
