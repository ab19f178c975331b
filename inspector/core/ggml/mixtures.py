"""The per-tensor types of llama-quantize's file types (Q4_K_M, Q3_K_S, IQ4_XS, …).

A file type such as `Q4_K_M` is a mixture: `llama_tensor_get_type` in llama.cpp's
src/llama-quant.cpp (0c1e57098) gives each tensor a type from its name (token_embd, output,
attn_v, ffn_down, …), its position among the tensors of its kind, the model's GQA ratio and
expert count, then applies the row-length fallback (`fallback.py`). This module repeats those
rules, including their quirks: tensors are visited in llama.cpp's order (by `blk.N` layer, then
name), and the attn_v / ffn_down positions that decide "use more bits" are counters in that
order, not layer numbers (except for MoE models, where the layer is parsed from the name).

Metadata keys read (GGUF names, `ARCH` = `general.architecture`):
- `general.architecture`: falcon has its own rules; llama/qwen2/olmo/deci with 80 blocks (jais2
  with 68) are "70B" models whose attn_v gets q5_k. Missing: no architecture-specific rule.
- `ARCH.block_count`: the n_layer of the ffn_down/gate/up position rules. Missing: one more
  than the largest `blk.N` in the tensor names (llama-quantize itself refuses such a file).
- `ARCH.attention.head_count`, `ARCH.attention.head_count_kv` (numbers or per-layer arrays;
  layer 0 is used, as llama.cpp does): the GQA ratio. Missing head_count: ratio 0 (no GQA);
  missing head_count_kv: equal to head_count (ratio 1).
- `ARCH.expert_count`: MoE rules. Missing: 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ._mixture_rules import Model, State, category, tensor_type
from .fallback import fallback_type
from .types import ggml_type

__all__ = ["FTYPES", "default_type", "mixture_types", "normalize_ftype"]

FTYPES: dict[str, str] = {
    "Q1_0": "q1_0", "Q2_0": "q2_0", "Q4_0": "q4_0", "Q4_1": "q4_1", "MXFP4_MOE": "mxfp4",
    "Q5_0": "q5_0", "Q5_1": "q5_1", "IQ2_XXS": "iq2_xxs", "IQ2_XS": "iq2_xs", "IQ2_S": "iq2_xs",
    "IQ2_M": "iq2_s", "IQ1_S": "iq1_s", "IQ1_M": "iq1_m", "TQ1_0": "tq1_0", "TQ2_0": "tq2_0",
    "Q2_K": "q2_k", "Q2_K_S": "q2_k", "IQ3_XXS": "iq3_xxs", "IQ3_S": "iq3_s", "IQ3_M": "iq3_s",
    "IQ3_XS": "iq3_s", "Q3_K_S": "q3_k", "Q3_K_M": "q3_k", "Q3_K_L": "q3_k",
    "IQ4_NL": "iq4_nl", "IQ4_XS": "iq4_xs", "Q4_K_S": "q4_k", "Q4_K_M": "q4_k",
    "Q5_K_S": "q5_k", "Q5_K_M": "q5_k", "Q6_K": "q6_k", "Q8_0": "q8_0", "F16": "f16",
    "BF16": "bf16", "F32": "f32",
}  # fmt: skip
"""llama-quantize's file type names and the default tensor type of each."""

_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}


def normalize_ftype(name: str) -> str:
    """The canonical file type name for `name` (any case, `LLAMA_FTYPE_MOSTLY_` prefix and the
    Q3_K/Q4_K/Q5_K aliases accepted). Raises ValueError for an unknown name."""
    key = name.strip().upper().removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_")
    key = _ALIASES.get(key, key)
    if key not in FTYPES:
        raise ValueError(f"unknown llama-quantize type {name!r} (known: {', '.join(FTYPES)})")
    return key


def default_type(ftype_name: str) -> str:
    """The type a file type gives every tensor its rules do not change (Q4_K_M → q4_k)."""
    return FTYPES[normalize_ftype(ftype_name)]


def mixture_types(
    ftype_name: str,
    tensors: Sequence[tuple[str, Sequence[int]] | tuple[str, Sequence[int], str]],
    metadata: Mapping[str, Any],
    *,
    has_imatrix: bool = False,
) -> dict[str, str]:
    """Each tensor's type under llama-quantize's file type `ftype_name` (no overrides, no
    `--pure`): `{name: type name}`.

    `tensors` are `(name, shape)` with the row-major shape (last axis = GGUF `ne[0]`), optionally
    with the stored type as a third item: tensors llama-quantize does not quantize (1-D, norms,
    position embeddings, …) keep it ("f32" when not given). `has_imatrix` is whether
    `--imatrix` is given (a few rules depend on it). Raises ValueError as llama-quantize stops:
    unknown file type, a MoE tensor without a valid `blk.N.`, a row length without fallback."""
    ftype = normalize_ftype(ftype_name)
    names = [t[0] for t in tensors]
    model = _model(metadata, names)
    state = State(
        n_attention_wv=sum(category(n) in ("attn_v", "attn_qkv", "attn_kv_b") for n in names),
        n_layer=model.n_layer,
        tied=not any(category(n) == "output" for n in names),
        has_imatrix=has_imatrix,
    )
    default = ggml_type(FTYPES[ftype])
    result: dict[str, str] = {}
    for item in sorted(tensors, key=lambda t: (_layer(t[0]), t[0])):
        name, shape = item[0], tuple(int(s) for s in item[1])
        stored = item[2] if len(item) > 2 else "f32"
        if not _allows_quantization(name, shape, model.arch):
            result[name] = ggml_type(stored).name
        elif not default.quantized:
            result[name] = default.name
        else:
            chosen = tensor_type(state, model, ftype, default.name, name, shape)
            result[name] = fallback_type(chosen, shape[-1] if shape else 1).type.name
    return {n: result[n] for n in names}


def _layer(name: str) -> int:
    """sscanf(name, "blk.%d.") as llama.cpp's tensor order uses it (-1 when not a block)."""
    m = re.match(r"blk\.([+-]?\d+)", name)
    return int(m.group(1)) if m else -1


def _first(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0:
        return int(value[0]) if len(value) else None
    return int(value)


def _model(metadata: Mapping[str, Any], names: Sequence[str]) -> Model:
    arch = str(metadata.get("general.architecture", ""))
    n_layer = _first(metadata.get(f"{arch}.block_count"))
    if n_layer is None:
        n_layer = 1 + max((_layer(n) for n in names), default=-1)
    n_head = _first(metadata.get(f"{arch}.attention.head_count")) or 0
    n_head_kv = _first(metadata.get(f"{arch}.attention.head_count_kv"))
    n_head_kv = n_head if n_head_kv is None else n_head_kv
    n_expert = _first(metadata.get(f"{arch}.expert_count")) or 0
    n_gqa = n_head // n_head_kv if n_head_kv else 0
    is_70b = (arch in ("qwen2", "olmo", "deci") and n_layer == 80) or (
        arch == "jais2" and n_layer == 68
    )
    is_70b |= arch == "llama" and n_expert != 8 and n_layer == 80 and n_head != n_head_kv
    return Model(arch, n_layer, n_gqa, n_expert, is_70b)


_NOT_QUANTIZED = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
    "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
    "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
    "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
    "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
    "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd",
    "sam.neck.", "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook",
    "mm.a.code_embd",
)  # fmt: skip
_NOT_QUANTIZED_GLM5 = (
    "hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate",
    "indexer_compressor_ape", "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight",
    "ssm_g_b.weight", "ssm_beta.weight", "attn_kv_a_mqa.weight", "attn_k_b.weight",
    "attn_v_b.weight",
)  # fmt: skip


def _allows_quantization(name: str, shape: tuple[int, ...], arch: str) -> bool:
    """tensor_allows_quantization: 2-D/3-D `…weight` tensors, minus norms, routers and the
    small or special tensors llama.cpp keeps as they are."""
    ne = shape[::-1] or (1,)
    n_dims = max((i + 1 for i, n in enumerate(ne) if n > 1), default=1)
    if n_dims < 2 or not name.endswith("weight"):
        return False
    if name in ("position_embd.weight", "token_types.weight"):
        return False
    if any(part in name for part in _NOT_QUANTIZED):
        return False
    return not (arch == "glm5-next" and any(part in name for part in _NOT_QUANTIZED_GLM5))
