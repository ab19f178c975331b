"""Pieces every writer shares: the plan record, float32 re-storage, stream helpers.

A writer's container bytes (headers, manifests) must be predictable from the preview rows alone
so the preview counts them exactly (`Target.overhead_bytes`). The plan a file records is
therefore the *resolved* plan — every tensor's requested scheme as an override — which the
rows know and which applies identically with `Plan.from_json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

from inspector.core.model import TensorInfo
from inspector.core.preview import QuantizedTensor
from inspector.core.schemes import Scheme, parse_scheme
from inspector.core.target import Storage

__all__ = [
    "FLOAT32",
    "PLAN_KEY",
    "dequantized_storage",
    "dry_params",
    "plain_dtype",
    "plain_values",
    "resolved_plan",
    "resolved_plan_json",
]

FLOAT32 = parse_scheme("float32")
PLAN_KEY = "__quant_inspector_plan__"


def resolved_plan(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Plan JSON (`Plan.from_json` reads it) with one override per (tensor, requested spec)
    whose spec is not float32."""
    overrides = {name: spec for name, spec in pairs if spec != "float32"}
    return {"version": 1, "default": "float32", "rules": [], "overrides": overrides}


def resolved_plan_json(pairs: Iterable[tuple[str, str]]) -> str:
    """`resolved_plan` as compact JSON (ASCII, so its byte length is its character count)."""
    return json.dumps(resolved_plan(pairs), separators=(",", ":"))


def dequantized_storage(info: TensorInfo, scheme: Scheme) -> Storage:
    """Formats holding plain values (Keras, npz): the scheme's decoded values re-stored as
    float32 (exact: decode returns float32); values that float16 holds exactly stay float16
    (every format holding plain values has float16; bfloat16 it rarely has)."""
    if scheme.is_identity:
        return Storage(())
    if scheme.exact_dtype == "float16":
        return Storage((scheme,))
    return Storage((scheme, FLOAT32), "")


def dry_params(info: TensorInfo, scheme: Scheme) -> dict[str, Any]:
    """Zero-valued `Encoded.params` of `scheme` for `info`, with the real keys, types and shapes
    (layout-only predictions of container bytes: the values do not change their size)."""
    axis = scheme.resolve_axis(info.shape, info.channel_axis)
    return scheme.family.dry_params(scheme, info.shape, axis)


def plain_values(q: QuantizedTensor) -> np.ndarray:
    """What a format holding plain arrays (Keras, npz) stores for one quantized tensor: the
    input's own values when kept, else the decoded values — float16 when that holds them
    exactly, float32 otherwise."""
    if q.encoded is None:
        return np.asarray(q.original)
    return np.asarray(q.decoded, dtype=plain_dtype(q.encoded.scheme)).reshape(q.info.shape)


def plain_dtype(stored: Scheme) -> np.dtype:
    """The dtype `plain_values` uses for a tensor stored as `stored`."""
    return np.dtype("float16" if stored.exact_dtype == "float16" else "float32")
