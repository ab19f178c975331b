"""Shared readers of the golden files made by data/make_golden.py with llama.cpp's tools."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

DATA = Path(__file__).resolve().parent / "data"


@cache
def manifest() -> dict:
    return json.loads((DATA / "golden.json").read_text())


@cache
def mixtures() -> dict:
    return json.loads((DATA / "mixtures.json").read_text())


@cache
def read_gguf(name: str) -> dict[str, tuple[str, tuple[int, ...], np.ndarray]]:
    """{tensor: (type name, row-major shape, raw bytes)} of a GGUF file in data/."""
    reader = gguf.GGUFReader(str(DATA / name))
    out = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        raw = np.ascontiguousarray(t.data).reshape(-1).view(np.uint8)
        out[t.name] = (t.tensor_type.name.lower(), shape, raw)
    return out


def input_values(src: str, name: str) -> np.ndarray:
    """A golden input tensor as float32 rows (rows, ne0), converted as llama-quantize does."""
    type_name, shape, raw = read_gguf(src)[name]
    values = raw.view({"f32": "<f4", "f16": "<f2"}[type_name]).astype(np.float32)
    return values.reshape(-1, shape[-1])
