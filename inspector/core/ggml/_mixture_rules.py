"""`llama_tensor_get_type_impl` of llama.cpp's src/llama-quant.cpp, rule by rule.

`tensor_type` must be called once per quantized tensor in llama.cpp's tensor order: it advances
the attn_v / ffn_down / ffn_gate / ffn_up counters exactly where llama.cpp does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .types import ggml_type

__all__ = ["Model", "State", "category", "tensor_type"]

_IQ_LOW = ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M")


@dataclass(frozen=True)
class Model:
    """The hyper-parameters the rules read."""

    arch: str
    n_layer: int
    n_gqa: int
    n_expert: int
    is_70b: bool


@dataclass
class State:
    """quantize_state_impl's counters."""

    n_attention_wv: int
    n_layer: int
    tied: bool
    has_imatrix: bool
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0


def category(name: str) -> str:
    """tensor_get_category: the broad role of a tensor from its name."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for part, cat in (
        ("attn_qkv.weight", "attn_qkv"),
        ("attn_kv_b.weight", "attn_kv_b"),
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if part in name:
            return cat
    return "other"


def _more_bits(i_layer: int, n_layers: int) -> bool:
    """use_more_bits: the first and last eighth of the layers and every third one between."""
    return (
        i_layer < n_layers // 8
        or i_layer >= 7 * n_layers // 8
        or _cmod(i_layer - n_layers // 8, 3) == 2
    )


def _cmod(a: int, b: int) -> int:
    """C's `%` (the sign of the dividend)."""
    r = abs(a) % b
    return -r if a < 0 else r


def _layer_info(counter: int, model: Model, name: str) -> tuple[int, int]:
    if model.n_expert <= 1:
        return counter, model.n_layer
    m = re.match(r"blk\.([+-]?\d+)\.", name)
    if m is None:
        raise ValueError(f"Failed to determine layer for tensor {name}")
    i_layer = int(m.group(1))
    if i_layer < 0 or i_layer >= model.n_layer:
        raise ValueError(f"Bad layer {i_layer} for tensor {name}. Must be in [0, {model.n_layer})")
    return i_layer, model.n_layer


def tensor_type(
    st: State, model: Model, ftype: str, new: str, name: str, shape: tuple[int, ...]
) -> str:
    """The type llama.cpp's rules give tensor `name` under file type `ftype` (before the
    row-length fallback); `new` is the file type's default tensor type."""
    cat = category(name)
    if model.arch == "glm5-next" and any(
        p in name for p in ("attn_q_a", "attn_q_b", "nextn.eh_proj")
    ):
        return "q8_0"
    if cat == "output" or (st.tied and cat == "token_embd"):
        return _output(model, ftype, new, shape)
    if ftype == "MXFP4_MOE":
        expert = len(shape) >= 3 and shape[-3] > 1
        if model.arch == "bailingmoe3":
            expert = expert and cat in ("ffn_up", "ffn_gate", "ffn_down")
        return "mxfp4" if expert else "q8_0"
    if cat == "token_embd":
        return _token_embd(ftype, new)
    if ftype in _IQ_LOW:
        return _iq_low(st, model, ftype, new, cat)
    if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
        new = _attn_v(st, model, ftype, new)
        st.i_attention_wv += 1
        return new
    if cat == "attn_k":
        if model.n_expert == 8:
            return "q8_0"
        return {"IQ3_XS": "iq3_xxs", "IQ3_XXS": "iq2_s"}.get(ftype, new)
    if cat == "attn_q":
        return {"IQ3_XS": "iq3_xxs", "IQ3_XXS": "iq2_s"}.get(ftype, new)
    if cat == "ffn_down":
        i_layer, n_layer = _layer_info(st.i_ffn_down, model, name)
        new = _ffn_down(st, model, ftype, new, i_layer, n_layer)
        st.i_ffn_down += 1
        return new
    if cat == "attn_output":
        return _attn_output(model, ftype, new)
    if cat == "attn_qkv":  # unreachable in llama.cpp too: attn_qkv is handled as attn_v
        return new
    if cat in ("ffn_gate", "ffn_up"):
        counter = st.i_ffn_gate if cat == "ffn_gate" else st.i_ffn_up
        i_layer, n_layer = _layer_info(counter, model, name)
        if ftype == "IQ3_XS" and n_layer // 8 <= i_layer < 7 * n_layer // 8:
            new = "iq3_xxs"
        if cat == "ffn_gate":
            st.i_ffn_gate += 1
        else:
            st.i_ffn_up += 1
    return new


def _output(model: Model, ftype: str, new: str, shape: tuple[int, ...]) -> str:
    nx = shape[-1] if shape else 1
    if ftype == "MXFP4_MOE":
        return "q8_0"
    if model.arch == "falcon" or nx % ggml_type(new).block_size:
        return "q8_0"
    if ftype in ("IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"):
        return "q5_k"
    return new if new == "q8_0" else "q6_k"


def _token_embd(ftype: str, new: str) -> str:
    if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
        return "q2_k"
    if ftype in ("IQ2_S", "IQ2_M", "IQ3_XXS"):
        return "iq3_s"
    if ftype in ("TQ1_0", "TQ2_0", "Q2_0"):
        return "q4_k"
    return new


def _iq_low(st: State, model: Model, ftype: str, new: str, cat: str) -> str:
    s_type = "iq3_s" if ftype in ("IQ2_S", "IQ2_M") else "q2_k"
    if cat in ("attn_v", "attn_qkv", "attn_kv_b"):
        new = "q4_k" if model.n_gqa >= 4 or model.n_expert >= 4 else s_type
        st.i_attention_wv += 1
    elif model.n_expert == 8 and cat == "attn_k":
        new = "q4_k"
    elif cat == "ffn_down":
        if st.i_ffn_down < st.n_layer // 8:
            new = s_type
        st.i_ffn_down += 1
    elif cat == "attn_output":
        if model.n_expert == 8:
            new = "q5_k"
        elif ftype in ("IQ1_S", "IQ1_M"):
            new = "iq2_xxs"
        elif ftype in ("IQ2_S", "IQ2_M"):
            new = "iq3_s"
    return new


def _attn_v(st: State, model: Model, ftype: str, new: str) -> str:
    gqa4 = model.n_gqa >= 4
    if ftype == "Q2_K":
        new = "q4_k" if gqa4 else "q3_k"
    elif ftype == "Q2_K_S" and gqa4:
        new = "q4_k"
    elif ftype == "IQ3_XXS":
        new = "q4_k" if gqa4 else ("iq3_s" if not st.has_imatrix else "iq3_xxs")
    elif (ftype in ("IQ3_XS", "IQ3_S") and gqa4) or ftype == "IQ3_M":
        new = "q4_k"
    elif ftype == "Q3_K_M":
        new = "q5_k" if st.i_attention_wv < 2 else "q4_k"
    elif ftype == "Q3_K_L" or (ftype in ("IQ4_NL", "IQ4_XS") and gqa4):
        new = "q5_k"
    elif ftype in ("Q4_K_M", "Q5_K_M") and _more_bits(st.i_attention_wv, st.n_attention_wv):
        new = "q6_k"
    elif ftype == "Q4_K_S" and st.i_attention_wv < 4:
        new = "q5_k"
    if model.is_70b and new in ("q3_k", "q4_k"):
        new = "q5_k"
    if model.n_expert == 8:
        new = "q8_0"
    return new


def _ffn_down(st: State, model: Model, ftype: str, new: str, i_layer: int, n_layer: int) -> str:
    falcon = model.arch == "falcon"
    if ftype == "Q2_K":
        return "q3_k"
    if ftype == "Q2_K_S":
        return "q4_k" if i_layer < n_layer // 8 else new
    if ftype == "IQ3_XXS" and not st.has_imatrix:
        return "q4_k" if i_layer < n_layer // 8 else "q3_k"
    if ftype == "Q3_K_M":
        if i_layer < n_layer // 16:
            return "q5_k"
        return "q4_k" if not falcon or _more_bits(i_layer, n_layer) else "q3_k"
    if ftype == "IQ3_M" and (
        i_layer < n_layer // 8 or (model.n_expert == 8 and _more_bits(i_layer, n_layer))
    ):
        return "q4_k"
    if ftype == "Q3_K_L":
        return "q4_k" if falcon else "q5_k"
    if ftype == "Q4_K_M":
        if falcon:
            if i_layer < n_layer // 16:
                return "q6_k"
            return "q5_k" if _more_bits(i_layer, n_layer) else "q4_k"
        return "q6_k" if _more_bits(i_layer, n_layer) else new
    if i_layer < n_layer // 8 and ftype in ("IQ4_NL", "IQ4_XS") and not st.has_imatrix:
        return "q5_k"
    if ftype == "Q5_K_M" and _more_bits(i_layer, n_layer):
        return "q6_k"
    if ftype == "Q4_K_S" and not falcon and i_layer < n_layer // 8:
        return "q5_k"
    if ftype in ("Q4_0", "Q5_0") and st.has_imatrix and i_layer < n_layer // 8:
        return "q4_1" if ftype == "Q4_0" else "q5_1"
    return new


_ATTN_OUT_MOE = (
    "Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
    "IQ3_M", "IQ4_XS",
)  # fmt: skip


def _attn_output(model: Model, ftype: str, new: str) -> str:
    if model.arch == "falcon":
        return "q4_k" if ftype == "Q3_K_L" else new
    if model.n_expert == 8:
        return "q5_k" if ftype in _ATTN_OUT_MOE else new
    rules = {"Q2_K": "q3_k", "IQ3_XXS": "iq3_s", "Q3_K_M": "q4_k", "Q3_K_L": "q5_k"}
    return rules.get(ftype, "q4_k" if ftype == "IQ3_M" else new)
