"""A minimal scheme family for llama.cpp's block types, for the GGUF writer's tests only.

The product's family (`q8_0`, `q4_k`, … with llama-quantize's fallbacks) is built elsewhere; the
writer stores any scheme named after a ggml type natively, its `Encoded` bytes being the ggml
rows. This stand-in wraps `core.ggml.quant.quantize` / `dequant.dequantize` with exactly that
contract, so the writer's native path is tested before the real family lands (and not
registered once it has).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from inspector.core.errors import SchemeError
from inspector.core.ggml.dequant import dequantize
from inspector.core.ggml.quant import quantize
from inspector.core.ggml.types import ggml_type, row_nbytes
from inspector.core.schemes import Encoded, Family, Scheme, StoredArray, register_family
from inspector.core.schemes.base import family_of

NAMES = ("q8_0", "q4_0", "q4_k", "q6_k")


class StubGGMLFamily(Family):
    id = "ggml-stub"

    def names(self) -> tuple[str, ...]:
        return NAMES

    def bits(self, name: str) -> int:
        return round(ggml_type(name).bits_per_weight)

    def fit(
        self, scheme: Scheme, x: np.ndarray, axis: Any, value_range: Any, tensor: str = ""
    ) -> tuple[dict, None]:
        return {}, None

    def quantize(
        self, scheme: Scheme, x: np.ndarray, params: Mapping[str, Any], axis: Any, state: Any = None
    ) -> tuple[np.ndarray, int]:
        ne0 = x.shape[-1] if x.ndim else 1
        return quantize(x.reshape(-1, ne0), scheme.name), 0

    def dequantize(self, scheme: Scheme, codes: np.ndarray, params: Mapping[str, Any]) -> Any:
        t = ggml_type(scheme.name)
        ne0 = codes.shape[-1] // t.type_size * t.block_size
        return dequantize(codes, t, (codes.shape[0], ne0))

    def stored_arrays(self, scheme: Scheme, shape: tuple[int, ...], axis: Any):
        ne0 = shape[-1] if shape else 1
        n = row_nbytes(scheme.name, ne0) * math.prod(shape[:-1])
        return (StoredArray("blocks", "uint8", (n,), n),)

    def array_data(self, enc: Encoded) -> list:
        return [np.ascontiguousarray(enc.codes).reshape(-1)]

    def byte_views(self, enc: Encoded) -> list:
        return self.array_data(enc)

    def dry_params(self, scheme: Scheme, shape: tuple[int, ...], axis: Any) -> dict:
        return {}


def ensure_registered() -> None:
    try:
        family_of("q8_0")
    except SchemeError:
        register_family(StubGGMLFamily())
