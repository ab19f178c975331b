"""DequantizeLinear weights: the shape rules a stored quantization must obey, its numpy decoding,
and the layout steps after it — all checked on declared shapes before anything is allocated.

ONNX's rules (opsets 10–23): `x_scale` is a scalar or 1-element tensor (per tensor), a 1-D tensor
as long as x's `axis` (per axis), or, with `block_size` B > 0, a tensor of x's rank whose `axis`
length is ceil(x[axis] / B) and whose other lengths equal x's (blocked); `x_zero_point`, when
given, has the scale's shape. `axis` is an INT in [-rank, rank). A file breaking any of these
is refused with a `FormatError` naming the file and the tensor: decoding it would raise deep in
numpy, or, for an absurd `block_size`, try to allocate terabytes.

The nodes the writer puts after a DequantizeLinear to restore a layout (Reshape, Transpose) are
applied to the declared shape first (`reshape_step`, `transpose_step`), so a Reshape to the wrong
element count or a Transpose with a bad `perm` is refused at open, and the tensor's shape is
known without building an array.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import StoredQuantization
from inspector.formats.onnx.op_tables import reshape_dims
from inspector.formats.onnx.proto import MAX_RANK, int_attr, tensor_dtype_name

__all__ = [
    "Step",
    "cast_target",
    "check_dq",
    "dequantize",
    "reshape_step",
    "stored_quantization",
    "transpose_step",
]

_FLOATS = frozenset({"float32", "float16", "bfloat16", "float64"})
_BITS = {"int8": 8, "uint8": 8, "int4": 4, "uint4": 4, "int16": 16, "uint16": 16}

Source = str | os.PathLike[str]


@dataclass(frozen=True)
class Step:
    """One numpy step after a DequantizeLinear, the shape it produces and the dtype (None:
    the input's)."""

    apply: Callable[[np.ndarray], np.ndarray]
    shape: tuple[int, ...]
    dtype: np.dtype | None = None


def check_dq(
    source: Source,
    tensor: str,
    q_shape: tuple[int, ...],
    scale_shape: tuple[int, ...],
    zp_shape: tuple[int, ...] | None,
    axis: int,
    block: int,
) -> tuple[int, int]:
    """The (axis, block size) to decode with, normalized (axis ≥ 0; a block longer than the
    axis is the axis' length, which decodes the same), after checking ONNX's shape rules."""
    rank = len(q_shape)
    where = f"DequantizeLinear of shape {list(q_shape)}"
    if zp_shape is not None and zp_shape != scale_shape:
        raise FormatError(
            source,
            f"{where}: zero point shape {list(zp_shape)} differs from scale shape "
            f"{list(scale_shape)}",
            tensor,
        )
    if block < 0:
        raise FormatError(source, f"{where}: negative block_size {block}", tensor)
    if math.prod(scale_shape) == 1 and block == 0:
        return axis, 0  # per tensor: ONNX ignores the axis
    if not -rank <= axis < rank:
        raise FormatError(source, f"{where}: axis {axis} is out of range", tensor)
    axis %= rank
    length = q_shape[axis]
    if block == 0:
        if scale_shape != (length,):
            raise FormatError(
                source,
                f"{where}: scale shape {list(scale_shape)} is neither per tensor nor "
                f"[{length}] along axis {axis}",
                tensor,
            )
        return axis, 0
    want = tuple(-(-length // block) if i == axis else d for i, d in enumerate(q_shape))
    if scale_shape != want:
        raise FormatError(
            source,
            f"{where}: scale shape {list(scale_shape)} does not fit block_size {block} "
            f"along axis {axis} (expected {list(want)})",
            tensor,
        )
    return axis, min(block, max(length, 1))


def dequantize(
    q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, block: int
) -> np.ndarray:
    """DequantizeLinear as ONNX Runtime computes it: float32((q − zp)) · scale, in the scale's
    dtype. Per tensor (scalar scale), per axis (1-D scale along `axis`) or blocked (`block` > 0,
    scale shaped like q with `axis` divided by the block size, rounded up). Shapes must have
    passed `check_dq`."""
    zp = np.zeros((), np.int32) if zero_point is None else zero_point.astype(np.int32)
    diff = q.astype(np.int32) - _expand(zp, q, axis, block)
    y = diff.astype(np.float32) * _expand(scale.astype(np.float32), q, axis, block)
    return y.astype(scale.dtype if scale.dtype.name in _FLOATS else np.float32)


def _expand(p: np.ndarray, q: np.ndarray, axis: int, block: int) -> np.ndarray:
    if p.ndim == 0 or (p.size == 1 and block <= 0):
        return p.reshape(())
    if block > 0:
        return np.repeat(p, block, axis=axis).take(range(q.shape[axis]), axis=axis)
    shape = [1] * q.ndim
    shape[axis] = -1
    return p.reshape(shape)


def reshape_step(
    source: Source, tensor: str, shape: tuple[int, ...], dims: np.ndarray, allowzero: int
) -> Step:
    """A Reshape of a `shape` value to `dims` (ONNX rules: 0 copies, one -1 is inferred)."""
    if dims.dtype.kind not in "iu" or dims.ndim != 1 or dims.size > MAX_RANK:
        raise FormatError(
            source, f"Reshape shape must be a short list of integers, got {dims!r:.80}", tensor
        )
    wanted = [int(d) for d in dims]
    out = reshape_dims(shape, wanted, zero_copies=not allowzero)
    if out is None:
        raise FormatError(
            source, f"Reshape to {wanted} cannot apply to the weight's shape {list(shape)}", tensor
        )
    return Step(functools.partial(_reshape, dims=out), out)


def transpose_step(source: Source, tensor: str, shape: tuple[int, ...], perm: Any) -> Step:
    """A Transpose of a `shape` value (`perm` None: axes reversed, as ONNX's default)."""
    axes = list(range(len(shape)))[::-1] if perm is None else perm
    if (
        not isinstance(axes, list | tuple)
        or len(axes) != len(shape)
        or sorted(axes) != list(range(len(shape)))
    ):
        raise FormatError(
            source,
            f"Transpose perm {axes!r:.80} is not a permutation of the weight's {len(shape)} axes",
            tensor,
        )
    axes = [int(a) for a in axes]
    return Step(functools.partial(np.transpose, axes=axes), tuple(shape[a] for a in axes))


def _reshape(a: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
    return a.reshape(dims)


def _json_values(a: np.ndarray) -> Any:
    return a.reshape(()).item() if a.size == 1 else a.tolist()


def stored_quantization(
    qdtype: str, scale: np.ndarray, zp: np.ndarray | None, axis: int, block: int
) -> StoredQuantization:
    """The scheme spec (DESIGN §3 names) of a DequantizeLinear's storage, plus its parameters."""
    per_tensor = scale.size == 1 and block <= 0
    symmetric = zp is None or not np.any(zp)
    bits = _BITS[qdtype]
    if qdtype in ("int8", "int4") and symmetric:
        spec = qdtype
    else:
        spec = "uint8" if qdtype == "uint8" and per_tensor else f"affine{bits}"
    opts = [] if per_tensor else [f"axis={axis}"]
    if block > 0:
        opts.append(f"group={block}")
    if opts and spec != "uint8":
        spec = f"{spec}:{','.join(opts)}"
    params: dict[str, Any] = {"dtype": qdtype, "scale": _json_values(scale)}
    params["zero_point"] = 0 if zp is None else _json_values(zp)
    params["axis"] = None if per_tensor else axis
    if block > 0:
        params["block_size"] = block
    return StoredQuantization(spec, params)


def cast_target(node: Any, source: Source, tensor: str) -> str:
    """The numpy dtype name a Cast node converts to ("onnx:N" for a type numpy lacks)."""
    return tensor_dtype_name(int_attr(node, "to", 0, source, tensor))
