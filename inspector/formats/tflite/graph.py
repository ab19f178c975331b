"""The decoded TF-Lite model tree: index checks, operator names, consumers, buffer locations.

`flatbuf.py` checks that the bytes form valid tables; this module checks that the tables form
a valid model — every index (operator code, tensor, buffer, subgraph) in range, every constant
tensor's buffer exactly as large as its shape and type say, buffers stored past the flatbuffer
(`offset`/`size`, models over 2 GB) inside the file — so later code can index without checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.formats.tflite.flatbuf import Blob, FlatError
from inspector.formats.tflite.schema import BUILTIN_OPERATORS, TENSOR_TYPES

__all__ = [
    "ITEMSIZE",
    "NUMPY_TYPES",
    "Graph",
    "buffer_blob",
    "check_model",
    "op_name",
    "stored_nbytes",
]

NUMPY_TYPES: dict[str, str] = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT32": "int32",
    "UINT8": "uint8",
    "INT64": "int64",
    "BOOL": "bool",
    "INT16": "int16",
    "COMPLEX64": "complex64",
    "INT8": "int8",
    "UINT64": "uint64",
    "UINT32": "uint32",
    "UINT16": "uint16",
    "BFLOAT16": "bfloat16",
    "INT4": "int4",
}
ITEMSIZE = {"int4": 0.5, "bfloat16": 2}
_MAX_DIMS = 16


def op_name(model: dict[str, Any], opcode_index: int) -> str:
    """Builtin operator name of an operator code (the larger of `deprecated_builtin_code` and
    `builtin_code`, TF-Lite's rule for files written before and after code 127), or
    `CUSTOM:<custom_code>`."""
    code = model["operator_codes"][opcode_index]
    builtin = max(int(code.get("deprecated_builtin_code", 0)), int(code.get("builtin_code", 0)))
    if builtin == 32:
        return f"CUSTOM:{code.get('custom_code', '')}"
    return BUILTIN_OPERATORS.get(builtin, f"BUILTIN_{builtin}")


def tensor_type(t: dict[str, Any]) -> str:
    return TENSOR_TYPES.get(int(t.get("type", 0)), f"TYPE_{t.get('type')}")


def stored_nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    """Bytes TF-Lite stores for a dense tensor (int4: two values per byte, rounded up)."""
    n = math.prod(shape)
    if dtype == "int4":
        return (n + 1) // 2
    return n * int(ITEMSIZE.get(dtype, 0) or np.dtype(dtype).itemsize)


def buffer_blob(buf: dict[str, Any], file_size: int) -> Blob | None:
    """Where a buffer's bytes are: inline `data`, or `offset`/`size` past the flatbuffer (an
    offset > 1 marks it); None for an empty buffer."""
    offset = int(buf.get("offset", 0))
    if offset > 1:
        size = int(buf.get("size", 0))
        if offset + size > file_size:
            raise FlatError(f"buffer of {size} bytes at offset {offset} runs past the file")
        return Blob(offset, size) if size else None
    data = buf.get("data")
    return data if isinstance(data, Blob) and data.length else None


@dataclass
class Graph:
    """One subgraph's wiring: producer and consumers of every tensor, operator names."""

    index: int
    tree: dict[str, Any]
    ops: list[str]
    producer: dict[int, int]
    consumers: dict[int, list[tuple[int, int]]]

    @property
    def tensors(self) -> list[dict[str, Any]]:
        return self.tree.get("tensors", [])

    @property
    def operators(self) -> list[dict[str, Any]]:
        return self.tree.get("operators", [])


def _ints(value: Any) -> list[int]:
    return [] if value is None else [int(v) for v in value]


def graphs(model: dict[str, Any]) -> Iterator[Graph]:
    """Every subgraph's `Graph`, indices already checked by `check_model`."""
    for s, sg in enumerate(model.get("subgraphs", [])):
        producer: dict[int, int] = {}
        consumers: dict[int, list[tuple[int, int]]] = {}
        names = []
        for k, op in enumerate(sg.get("operators", [])):
            names.append(op_name(model, int(op.get("opcode_index", 0))))
            for pos, t in enumerate(_ints(op.get("inputs"))):
                if t >= 0:
                    consumers.setdefault(t, []).append((k, pos))
            for t in _ints(op.get("outputs")):
                producer.setdefault(t, k)
        yield Graph(s, sg, names, producer, consumers)


def check_model(model: dict[str, Any], file_size: int) -> None:
    """Raise FlatError for any out-of-range index or inconsistent constant tensor."""
    codes = model.get("operator_codes", [])
    buffers = model.get("buffers", [])
    subgraphs = model.get("subgraphs", [])
    if not subgraphs:
        raise FlatError("the model has no subgraph")
    for s, sg in enumerate(subgraphs):
        n = len(sg.get("tensors", []))
        for name in ("inputs", "outputs"):
            _in_range(_ints(sg.get(name)), n, f"subgraph {s} {name}")
        for k, op in enumerate(sg.get("operators", [])):
            if not 0 <= int(op.get("opcode_index", 0)) < len(codes):
                raise FlatError(f"subgraph {s} operator {k}: operator code out of range")
            for name in ("inputs", "outputs", "intermediates"):
                _in_range(_ints(op.get(name)), n, f"subgraph {s} operator {k} {name}", -1)
        for i, t in enumerate(sg.get("tensors", [])):
            _check_tensor(t, i, s, buffers, file_size)
    for sig in model.get("signature_defs", []):
        s = int(sig.get("subgraph_index", 0))
        if not 0 <= s < len(subgraphs):
            raise FlatError(f"signature {sig.get('signature_key')!r}: subgraph out of range")
        n = len(subgraphs[s].get("tensors", []))
        for m in (*sig.get("inputs", []), *sig.get("outputs", [])):
            _in_range([int(m.get("tensor_index", 0))], n, f"signature tensor {m.get('name')!r}")
    for md in model.get("metadata", []):
        _in_range([int(md.get("buffer", 0))], len(buffers), f"metadata {md.get('name')!r}")


def _in_range(values: list[int], n: int, what: str, low: int = 0) -> None:
    bad = [v for v in values if not low <= v < n]
    if bad:
        raise FlatError(f"{what}: index {bad[0]} out of range (0…{n - 1})")


def _check_tensor(t: dict[str, Any], i: int, s: int, buffers: list[Any], size: int) -> None:
    where = str(t.get("name") or f"subgraph {s} tensor {i}")
    shape = _ints(t.get("shape"))
    if len(shape) > _MAX_DIMS:
        raise FlatError(f"{len(shape)} dimensions", where)
    b = int(t.get("buffer", 0))
    if not 0 <= b < len(buffers):
        raise FlatError(f"buffer index {b} out of range (0…{len(buffers) - 1})", where)
    try:
        blob = buffer_blob(buffers[b], size) if b else None
    except FlatError as exc:
        raise FlatError(exc.reason, where) from None
    if blob is None:
        return
    dtype = NUMPY_TYPES.get(tensor_type(t))
    if dtype is None:
        return  # strings, resources: not weights, bytes not interpreted
    if any(d < 0 for d in shape):
        raise FlatError(f"constant with a negative dimension {shape}", where)
    want = stored_nbytes(dtype, tuple(shape))
    if "sparsity" not in t and want != blob.length:
        raise FlatError(
            f"shape {shape} of {dtype} needs {want} bytes, its buffer holds {blob.length}", where
        )
