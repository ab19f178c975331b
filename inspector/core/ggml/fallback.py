"""What llama-quantize stores when a tensor's rows do not fit the chosen type's blocks.

A ggml row (`ne[0]` values) must be a whole number of blocks. `tensor_type_fallback` in
llama.cpp's src/llama-quant.cpp then picks a type with smaller blocks: the 256-value i-quants
fall back to iq4_nl, q2_k/q3_k/tq*/q2_0 to q4_0, q4_k to q5_0, q5_k to q5_1, q6_k to q8_0; a
32-value type has nothing smaller. If the fallback does not fit either (rows not a multiple of
32), the tensor is stored as f16. Types without a rule (q1_0, nvfp4, q8_k) make llama-quantize
stop with an error, and so does `fallback_type`.
"""

from __future__ import annotations

from typing import NamedTuple

from .types import GGMLType, ggml_type

__all__ = ["Fallback", "fallback_type"]

_RULES = {
    **dict.fromkeys(
        ("iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq4_xs"), "iq4_nl"
    ),
    **dict.fromkeys(("q2_0", "q2_k", "q3_k", "tq1_0", "tq2_0"), "q4_0"),
    "q4_k": "q5_0",
    "q5_k": "q5_1",
    "q6_k": "q8_0",
}


class Fallback(NamedTuple):
    """The type llama-quantize stores and, when it is not the requested one, why (a sentence
    for the preview; None when the rows fit)."""

    type: GGMLType
    reason: str | None


def fallback_type(type_: GGMLType | int | str, ne0: int) -> Fallback:
    """The type llama-quantize really stores for rows of `ne0` values asked as `type_`.

    Raises ValueError, as llama-quantize does, for a type that has no fallback rule and does not
    fit (q1_0, nvfp4, q8_k)."""
    want = ggml_type(type_)
    if ne0 % want.block_size == 0:
        return Fallback(want, None)
    if want.name in _RULES:
        got = ggml_type(_RULES[want.name])
    elif want.block_size <= 32:
        got = want
    else:
        raise ValueError(
            f"row length {ne0} is not a multiple of {want.name}'s block size {want.block_size} "
            f"and llama-quantize defines no fallback for {want.name}"
        )
    why = f"row length {ne0} is not a multiple of {want.block_size} ({want.name} blocks)"
    if ne0 % got.block_size:
        also = "" if got is want else f" nor of {got.block_size} ({got.name})"
        return Fallback(ggml_type("f16"), f"{why}{also}: llama-quantize stores f16")
    return Fallback(got, f"{why}: llama-quantize falls back to {got.name}")
