"""Synthetic weight-like models for the benchmarks: BERT-like shapes, normal values ±20 % noise.

Written with the project's own safetensors layout code-free (header + raw buffer), so the
benchmark needs nothing beyond numpy and ml_dtypes.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["bert_shapes", "llm_shapes", "weight_like", "write_safetensors"]


def bert_shapes(
    layers: int = 12, hidden: int = 768, vocab: int = 30522
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(name, shape) of a BERT-base-like encoder: 110M parameters and 199 tensors at defaults."""
    ffn = 4 * hidden
    yield "embeddings.word_embeddings.weight", (vocab, hidden)
    yield "embeddings.position_embeddings.weight", (512, hidden)
    yield "embeddings.token_type_embeddings.weight", (2, hidden)
    yield "embeddings.LayerNorm.weight", (hidden,)
    yield "embeddings.LayerNorm.bias", (hidden,)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            yield p + part + ".weight", (hidden, hidden)
            yield p + part + ".bias", (hidden,)
        yield p + "attention.output.LayerNorm.weight", (hidden,)
        yield p + "attention.output.LayerNorm.bias", (hidden,)
        yield p + "intermediate.dense.weight", (ffn, hidden)
        yield p + "intermediate.dense.bias", (ffn,)
        yield p + "output.dense.weight", (hidden, ffn)
        yield p + "output.dense.bias", (hidden,)
        yield p + "output.LayerNorm.weight", (hidden,)
        yield p + "output.LayerNorm.bias", (hidden,)
    yield "pooler.dense.weight", (hidden, hidden)
    yield "pooler.dense.bias", (hidden,)


def llm_shapes(
    layers: int = 32, hidden: int = 4096, ffn: int = 11008, vocab: int = 32000
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(name, shape) of a LLaMA-7B-like decoder: 6.7B parameters."""
    yield "model.embed_tokens.weight", (vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        for part in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{part}.weight", (hidden, hidden)
        yield p + "mlp.gate_proj.weight", (ffn, hidden)
        yield p + "mlp.up_proj.weight", (ffn, hidden)
        yield p + "mlp.down_proj.weight", (hidden, ffn)
        yield p + "input_layernorm.weight", (hidden,)
        yield p + "post_attention_layernorm.weight", (hidden,)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab, hidden)


def weight_like(shape: tuple[int, ...], seed: int, dtype: str = "float32") -> np.ndarray:
    """Normal values with a per-tensor scale and ±20 % multiplicative noise, like trained
    weights; 1-d tensors (biases, norms) are small offsets around 0 or 1."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    std = 0.02 * (1 + seed % 7 / 7)
    out = np.empty(n, dtype=np.float32)
    step = 1 << 22
    for s in range(0, n, step):
        k = min(step, n - s)
        v = rng.standard_normal(k, dtype=np.float32) * np.float32(std)
        v *= 1 + np.float32(0.2) * rng.standard_normal(k, dtype=np.float32)
        out[s : s + k] = v
    if len(shape) == 1 and seed % 2:
        out += 1
    if dtype == "bfloat16":
        import ml_dtypes

        return out.astype(ml_dtypes.bfloat16).reshape(shape)
    return out.reshape(shape)


_ST = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


def write_safetensors(
    path: Path, shapes: list[tuple[str, tuple[int, ...]]], dtype: str = "float32"
) -> int:
    """Write a safetensors file tensor by tensor (bounded memory); returns its size in bytes."""
    item = 4 if dtype == "float32" else 2
    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * item
        header[name] = {
            "dtype": _ST[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + n],
        }
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for i, (_, shape) in enumerate(shapes):
            fh.write(weight_like(shape, i, dtype).tobytes())
    return 8 + len(text) + offset
