"""TF-Lite reader: every constant tensor of every subgraph as a lazy `Tensor`.

What becomes a tensor (`metadata["tflite_sources"][name]` is its `TfliteSource`):
- a constant tensor (one whose buffer holds data), values decoded as TF-Lite decodes them:
  quantized integers (int8/uint8/int16/int32/int4 with scales) as float32
  `(q − zero_point) · scale` per channel of `quantized_dimension`, with `stored` their scheme;
  unquantized ones as they are (float32, float16, int32 shapes, …);
- a FLOAT16/INT8/… constant whose only reader is a `DEQUANTIZE` (how the converter's float16
  and weight-only int8 modes store weights): ONE float32 tensor named by the DEQUANTIZE output,
  the tensor its consumers read, with `stored` the constant's storage.

Names are tensor names made unique in file order (`name`, `name#2`, …; the converter repeats
`arith.constant`, `tfl.pseudo_qconst`); an unnamed tensor is `subgraph<s>/tensor<i>`. `layer` is
`"<OP> <output>"` of the first operator reading the value; `channel_axis` is the output-channel
axis of that operator's weight layout (CONV_2D OHWI → 0, DEPTHWISE_CONV_2D 1HWC → 3,
FULLY_CONNECTED (out, in) → 0, TRANSPOSE_CONV → 0, CONV_3D DHWIO → 4, BATCH_MATMUL rhs → last,
EMBEDDING_LOOKUP / GATHER tables → 0). Sparse tensors are refused with their name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import Model, StoredQuantization, Tensor, TensorInfo
from inspector.formats.tflite.flatbuf import Blob, FileSource, FlatError, FlatReader
from inspector.formats.tflite.graph import (
    NUMPY_TYPES,
    Graph,
    buffer_blob,
    check_model,
    graphs,
    tensor_type,
)

Quant = dict[str, Any]
"""A tensor's `QuantizationParameters` table as the flatbuffer reader returns it."""

__all__ = ["TfliteSource", "decode", "looks_like_tflite", "read_tflite"]

IDENTIFIER = b"TFL3"
_QUANT_DTYPES = frozenset({"int8", "uint8", "int16", "int32", "int64", "int4"})
_INTEGER_WEIGHT = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
_WEIGHT_AXIS = {
    ("CONV_2D", 1): 0,
    ("DEPTHWISE_CONV_2D", 1): 3,
    ("FULLY_CONNECTED", 1): 0,
    ("TRANSPOSE_CONV", 1): 0,
    ("CONV_3D", 1): 4,
    ("CONV_3D_TRANSPOSE", 1): 3,
    ("BATCH_MATMUL", 1): -1,
    ("EMBEDDING_LOOKUP", 1): 0,
    ("GATHER", 0): 0,
}


@dataclass(frozen=True)
class TfliteSource:
    """Where a listed tensor lives: `tensor` holds the data, `value` is what operators read
    (the same tensor, or the output of the DEQUANTIZE operator `dequantize`). `kernel` is how
    the readers of the stored data compute: "float", "hybrid" (float activations, integer
    weights) or "integer" (quantized activations: the weights must stay integers)."""

    subgraph: int
    tensor: int
    value: int
    dequantize: int | None = None
    kernel: str = "float"


def looks_like_tflite(path: str | os.PathLike[str]) -> bool:
    """True when the file carries the TF-Lite identifier `TFL3` at bytes 4–8."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == IDENTIFIER


def _quant(t: dict[str, Any]) -> dict[str, Any] | None:
    q = t.get("quantization") or {}
    scale = q.get("scale")
    return q if scale is not None and len(scale) else None


def decode(raw: np.ndarray, dtype: str, shape: tuple[int, ...], q: Quant | None) -> np.ndarray:
    """Values of a stored tensor: quantized integers as float32 `(q − zp) · scale` per channel
    (TF-Lite's Dequantize: the difference converted to float32, times the float32 scale);
    anything else as stored."""
    values = _unpack(raw, dtype, shape)
    if q is None or dtype not in _QUANT_DTYPES:
        return values
    scale = np.asarray(q["scale"], np.float32)
    zps = np.asarray(q.get("zero_point", [0]), np.int64)
    bshape = [1] * len(shape)
    if scale.size > 1:
        bshape[int(q.get("quantized_dimension", 0))] = -1
    zp = zps.reshape(bshape) if zps.size > 1 else zps.reshape(-1)[:1].sum()
    diff = (values.astype(np.int64) - zp).astype(np.float32)
    return diff * scale.reshape(bshape if scale.size > 1 else ())


def _unpack(raw: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "int4":
        low = (raw.astype(np.int8) << 4) >> 4
        high = raw.astype(np.int8) >> 4
        both = np.stack([low, high], axis=-1).reshape(-1)
        return both[: int(np.prod(shape))].reshape(shape)
    if dtype == "bfloat16":
        import ml_dtypes

        return raw.view(ml_dtypes.bfloat16).reshape(shape)
    return raw.view(np.dtype(dtype).newbyteorder("<")).reshape(shape)


def _check_quant(q: Quant, shape: tuple[int, ...]) -> None:
    n, axis = len(q["scale"]), int(q.get("quantized_dimension", 0))
    zps = len(q.get("zero_point", []))
    if n > 1 and not (0 <= axis < len(shape) and shape[axis] == n):
        raise FlatError(f"{n} scales do not match dimension {axis} of shape {list(shape)}")
    if zps not in (0, 1, n):
        raise FlatError(f"{zps} zero points for {n} scales")
    if not np.all(np.isfinite(np.asarray(q["scale"], np.float32))):
        raise FlatError("quantization scales are not finite")


def _stored(dtype: str, q: Quant | None, kernel: str) -> StoredQuantization | None:
    """The stored scheme in DESIGN §3 names (informational), with the stored parameters."""
    if dtype in ("float16", "bfloat16"):
        return StoredQuantization(dtype)
    if q is None:
        return None
    scale, zp = np.asarray(q["scale"]), np.asarray(q.get("zero_point", [0]))
    per_channel = scale.size > 1
    axis = int(q.get("quantized_dimension", 0)) if per_channel else None
    bits = {"int4": 4, "int8": 8, "uint8": 8, "int16": 16}.get(dtype)
    if dtype in ("int8", "int4") and not np.any(zp):
        spec = dtype
    elif bits is not None:
        spec = "uint8" if dtype == "uint8" and not per_channel else f"affine{bits}"
    else:
        spec = dtype
    if per_channel and spec != "uint8":
        spec += f":axis={axis}"
    params = {
        "dtype": dtype,
        "scale": scale.tolist(),
        "zero_point": zp.tolist(),
        "axis": axis,
        "kernel": kernel,
    }
    return StoredQuantization(spec, params)


@dataclass
class _Listing:
    path: Path
    src: FileSource
    tree: dict[str, Any]
    tensors: list[Tensor]
    sources: dict[str, TfliteSource]
    used: set[str]

    def unique(self, name: str) -> str:
        candidate, k = name, 1
        while candidate in self.used:
            k += 1
            candidate = f"{name}#{k}"
        self.used.add(candidate)
        return candidate

    def graph(self, g: Graph) -> None:
        for i, t in enumerate(g.tensors):
            blob = self._blob(t)
            if blob is None:
                continue
            name = str(t.get("name") or f"subgraph{g.index}/tensor{i}")
            if "sparsity" in t:
                raise FormatError(
                    self.path, "sparse tensor (TF-Lite sparsity parameters): not supported", name
                )
            self._add(g, i, t, blob, name)

    def _blob(self, t: dict[str, Any]) -> Blob | None:
        b = int(t.get("buffer", 0))
        if not b or tensor_type(t) not in NUMPY_TYPES:
            return None
        return buffer_blob(self.tree["buffers"][b], self.src.size)

    def _add(self, g: Graph, i: int, t: dict[str, Any], blob: Blob, name: str) -> None:
        dtype = NUMPY_TYPES[tensor_type(t)]
        shape = tuple(int(d) for d in t.get("shape", []))
        q = _quant(t) if dtype in _QUANT_DTYPES else None
        if q is not None:
            try:
                _check_quant(q, shape)
            except FlatError as exc:
                raise FormatError(self.path, exc.reason, name) from None
        value, dq = self._dequantized_by(g, i)
        kernel = "float" if dq is not None else self._kernel(g, i, q)
        logical = dtype
        if q is not None or dq is not None:
            logical = "float32"
        if dq is not None:
            out = g.tensors[value]
            name = str(out.get("name") or name)
        unique = self.unique(name)
        layer, axis = self._consumer(g, value, len(shape))
        info = TensorInfo(
            name=unique,
            shape=shape,
            dtype=logical,
            layer=layer,
            stored=_stored(dtype, q, self._restorable(g, i, kernel, dtype, q)),
            channel_axis=axis,
        )
        self.tensors.append(Tensor(info, self._loader(blob, dtype, shape, q, logical, unique)))
        self.sources[unique] = TfliteSource(g.index, i, value, dq, kernel)

    def _dequantized_by(self, g: Graph, i: int) -> tuple[int, int | None]:
        uses = g.consumers.get(i, [])
        if len(uses) != 1 or uses[0][1] != 0 or g.ops[uses[0][0]] != "DEQUANTIZE":
            return i, None
        op = uses[0][0]
        outs = [int(o) for o in g.operators[op].get("outputs", [])]
        if len(outs) != 1 or tensor_type(g.tensors[outs[0]]) != "FLOAT32":
            return i, None
        return outs[0], op

    def _kernel(self, g: Graph, i: int, q: Quant | None) -> str:
        if q is None:
            return "float"
        for op, _ in g.consumers.get(i, []):
            outs = [int(o) for o in g.operators[op].get("outputs", [])]
            if not outs or tensor_type(g.tensors[outs[0]]) != "FLOAT32":
                return "integer"
        return "hybrid"

    def _restorable(self, g: Graph, i: int, kernel: str, dtype: str, q: Quant | None) -> str:
        """ "integer-int8" for symmetric int8 weights of integer CONV_2D / DEPTHWISE_CONV_2D /
        FULLY_CONNECTED kernels (the writer can re-store them as int8 per channel), else the
        kernel kind."""
        if kernel != "integer" or dtype != "int8" or q is None or np.any(q.get("zero_point", [])):
            return kernel
        scales = len(q["scale"])
        axis = int(q.get("quantized_dimension", 0))
        for op, pos in g.consumers.get(i, []):
            want = _INTEGER_WEIGHT.get(g.ops[op])
            if pos != 1 or want is None or (scales > 1 and axis != want):
                return kernel
        return "integer-int8"

    def _consumer(self, g: Graph, value: int, ndim: int) -> tuple[str, int | None]:
        uses = g.consumers.get(value)
        if not uses:
            return "(unused)", None
        op, pos = uses[0]
        outs = [int(o) for o in g.operators[op].get("outputs", [])]
        out = str(g.tensors[outs[0]].get("name", "")) if outs else ""
        label = f"{g.ops[op]} {out.split(';')[0]}".strip()
        if g.index:
            label = f"subgraph{g.index}/{label}"
        axis = _WEIGHT_AXIS.get((g.ops[op], pos))
        if axis is None or ndim < 2:
            return label, None
        return label, axis % ndim

    def _loader(
        self,
        blob: Blob,
        dtype: str,
        shape: tuple[int, ...],
        q: Quant | None,
        logical: str,
        name: str,
    ) -> Callable[[], np.ndarray]:
        src, path = self.src, self.path

        def load() -> np.ndarray:
            raw = np.empty(blob.length, np.uint8)
            try:
                src.read_into(blob.offset, raw)
            except (FlatError, ValueError) as exc:
                raise FormatError(path, f"cannot read values: {exc}", name) from None
            values = decode(raw, dtype, shape, q)
            return values.astype(np.float32) if logical == "float32" else values

        return load


def _parse(path: Path, src: FileSource) -> dict[str, Any]:
    if src.size < 8 or src.read(4, 4) != IDENTIFIER:
        raise FormatError(path, "not a TF-Lite model (no TFL3 identifier at bytes 4-8)")
    try:
        tree = FlatReader(src).root("Model")
        check_model(tree, src.size)
    except FlatError as exc:
        raise FormatError(path, f"damaged TF-Lite flatbuffer: {exc.reason}", exc.tensor) from None
    except RecursionError:
        raise FormatError(path, "damaged TF-Lite flatbuffer: nested too deeply") from None
    return tree


def read_tflite(path: str | os.PathLike[str]) -> Model:
    """Open a `.tflite` model: the flatbuffer's tables are parsed and checked, tensor bytes are
    read on `load()`.

    metadata: `tflite_tree` (the decoded model tables; do not mutate), `tflite_sources`
    (name → `TfliteSource`), `tflite_source` (the open `FileSource`, for writers),
    `tflite_version` (schema version), `tflite_description`.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "no such file")
    if not path.is_file():  # a folder, a FIFO, a device: reading could block or never end
        raise FormatError(path, "not a regular file")
    src = FileSource(path)
    try:
        tree = _parse(path, src)
        listing = _Listing(path, src, tree, [], {}, set())
        for g in graphs(tree):
            listing.graph(g)
    except BaseException:
        src.close()
        raise
    metadata = {
        "tflite_tree": tree,
        "tflite_sources": listing.sources,
        "tflite_source": src,
        "tflite_version": int(tree.get("version", 0)),
        "tflite_description": str(tree.get("description", "")),
    }
    return Model(path, "tflite", listing.tensors, metadata, [src.close])
