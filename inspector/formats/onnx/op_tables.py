"""Tables of ONNX operators for roles.py: weight input positions with their output-channel axis,
bias and normalization inputs, inputs that are structural although typed like data, the ops a
weight passes through unchanged, and shape arithmetic for Reshape/Squeeze/Unsqueeze that never
allocates (a hostile dims list costs nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from inspector.formats.onnx.proto import node_attr

__all__ = [
    "ALL_INPUTS",
    "BIASES",
    "BIAS_PRODUCERS",
    "FLOAT_TYPES",
    "FOLLOW",
    "MS",
    "NEUTRAL",
    "NORMS",
    "STRUCTURAL_INPUTS",
    "WEIGHTS",
    "AxisFn",
    "fixed_axis",
    "prefix_map",
    "reshape_dims",
    "squeezed",
    "unsqueezed",
]

FLOAT_TYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
MS = "com.microsoft"

AxisFn = Callable[[Any, int], int | None]


def gemm_axis(index: int) -> AxisFn:
    """Gemm's output channels: rows of A (M) for A, columns of B (N) for B."""
    if index == 0:
        return lambda n, nd: (1 if node_attr(n, "transA", 0) else 0) if nd == 2 else None
    return lambda n, nd: (0 if node_attr(n, "transB", 0) else 1) if nd == 2 else None


def matmul_axis(index: int, flag: str = "") -> AxisFn:
    """MatMul's output channels: A's rows (…, M, K), B's columns (…, K, N); FusedMatMul's
    transA/transB swap the last two axes."""

    def axis(node: Any, ndim: int) -> int | None:
        if ndim < 2:
            return None
        last = ndim - 1 if index == 1 else ndim - 2
        swapped = bool(flag and node_attr(node, flag, 0))
        return (2 * ndim - 3 - last) if swapped else last

    return axis


def fixed_axis(axis: int | None) -> AxisFn:
    return lambda n, nd: axis if axis is None or nd > axis else None


def gather_axis(node: Any, ndim: int) -> int | None:
    return 0 if ndim >= 2 else None


WEIGHTS: dict[tuple[str, str], dict[int, AxisFn]] = {
    ("", "Conv"): {1: fixed_axis(0)},
    ("", "ConvTranspose"): {1: fixed_axis(1)},
    ("", "DeformConv"): {1: fixed_axis(0)},
    ("", "Gemm"): {0: gemm_axis(0), 1: gemm_axis(1)},
    ("", "MatMul"): {0: matmul_axis(0), 1: matmul_axis(1)},
    ("", "Gather"): {0: gather_axis},
    ("", "LSTM"): {1: fixed_axis(1), 2: fixed_axis(1)},
    ("", "GRU"): {1: fixed_axis(1), 2: fixed_axis(1)},
    ("", "RNN"): {1: fixed_axis(1), 2: fixed_axis(1)},
    (MS, "FusedConv"): {1: fixed_axis(0)},
    (MS, "FusedGemm"): {0: gemm_axis(0), 1: gemm_axis(1)},
    (MS, "FusedMatMul"): {0: matmul_axis(0, "transA"), 1: matmul_axis(1, "transB")},
    (MS, "Attention"): {1: fixed_axis(1)},
    (MS, "EmbedLayerNormalization"): {2: fixed_axis(0), 3: fixed_axis(0), 4: fixed_axis(0)},
}
BIASES: dict[tuple[str, str], frozenset[int]] = {
    ("", "Conv"): frozenset({2}),
    ("", "ConvTranspose"): frozenset({2}),
    ("", "DeformConv"): frozenset({3}),
    ("", "Gemm"): frozenset({2}),
    ("", "LSTM"): frozenset({3}),
    ("", "GRU"): frozenset({3}),
    ("", "RNN"): frozenset({3}),
    (MS, "FusedConv"): frozenset({2}),
    (MS, "FusedGemm"): frozenset({2}),
    (MS, "Attention"): frozenset({2}),
    (MS, "BiasGelu"): frozenset({1}),
    (MS, "BiasAdd"): frozenset({1}),
}
ALL_INPUTS = frozenset(range(64))
# Structural inputs the schema rule would call data (typed like the output) or that need a name.
STRUCTURAL_INPUTS: dict[tuple[str, str], frozenset[int]] = {
    ("", "Clip"): frozenset({1, 2}),
    ("", "Pad"): frozenset({1, 2, 3}),
    ("", "Range"): frozenset({0, 1, 2}),
    ("", "Equal"): ALL_INPUTS,
    ("", "Less"): ALL_INPUTS,
    ("", "LessOrEqual"): ALL_INPUTS,
    ("", "Greater"): ALL_INPUTS,
    ("", "GreaterOrEqual"): ALL_INPUTS,
    ("", "Max"): ALL_INPUTS,
    ("", "Min"): ALL_INPUTS,
    ("", "Mod"): frozenset({1}),
    ("", "OneHot"): ALL_INPUTS,
    ("", "ConstantOfShape"): ALL_INPUTS,
    ("", "Loop"): frozenset({0, 1}),
    ("", "If"): frozenset({0}),
    ("", "QuantizeLinear"): frozenset({1, 2}),
    ("", "DequantizeLinear"): frozenset({1, 2}),
}
NORMS = frozenset(
    {
        "BatchNormalization",
        "LayerNormalization",
        "InstanceNormalization",
        "GroupNormalization",
        "RMSNormalization",
        "SimplifiedLayerNormalization",
        "SkipLayerNormalization",
        "SkipSimplifiedLayerNormalization",
        "EmbedLayerNormalization",
    }
)
BIAS_PRODUCERS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "FusedConv", "FusedMatMul"})
FOLLOW = frozenset(
    {
        "Identity",
        "Cast",
        "CastLike",
        "Transpose",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Split",
        "Slice",
    }
)
NEUTRAL = frozenset(
    {
        ("Shape", 0),
        ("Size", 0),
        ("CastLike", 1),
        ("EyeLike", 0),
        ("RandomNormalLike", 0),
        ("RandomUniformLike", 0),
    }
)
"""(op, input) pairs that read only a tensor's shape or element type: no use at all."""


def prefix_map(
    shape: tuple[int, ...] | None, out_shape: tuple[int, ...] | None
) -> Callable[[int | None], int | None]:
    """Output axis → input axis for a reshape: the input axis of the same length that starts
    at the same flat stride (so inserted/removed unit axes and merged neighbours map back)."""
    if shape is None or out_shape is None:
        return lambda a: None

    def back(axis: int | None) -> int | None:
        if axis is None or not 0 <= axis < len(out_shape):
            return None
        before = math.prod(out_shape[:axis])
        for i, d in enumerate(shape):
            if d == out_shape[axis] and math.prod(shape[:i]) == before:
                return i
        return None

    return back


def reshape_dims(
    shape: tuple[int, ...], dims: list[int], zero_copies: bool
) -> tuple[int, ...] | None:
    """ONNX Reshape's output shape: 0 copies the input dimension (unless allowzero), one -1 is
    inferred; None when the element counts cannot match."""
    out = [shape[i] if d == 0 and zero_copies and i < len(shape) else d for i, d in enumerate(dims)]
    total = math.prod(shape)
    if out.count(-1) > 1 or any(d < -1 for d in out):
        return None
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            return None
        out[out.index(-1)] = total // known
    return tuple(out) if math.prod(out) == total else None


def squeezed(shape: tuple[int, ...], axes: list[int] | None) -> tuple[int, ...] | None:
    rank = len(shape)
    if axes is None:
        return tuple(d for d in shape if d != 1)
    if any(not -rank <= a < rank for a in axes):
        return None
    drop = {a % rank for a in axes}
    if any(shape[a] != 1 for a in drop):
        return None
    return tuple(d for i, d in enumerate(shape) if i not in drop)


def unsqueezed(shape: tuple[int, ...], axes: list[int]) -> tuple[int, ...] | None:
    rank = len(shape) + len(axes)
    if any(not -rank <= a < rank for a in axes):
        return None
    new = {a % rank for a in axes}
    if len(new) != len(axes):
        return None
    rest = iter(shape)
    return tuple(1 if i in new else next(rest) for i in range(rank))
