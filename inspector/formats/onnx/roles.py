"""Which float tensors of an ONNX graph are weights, judged by how the graph consumes them.

A weight is a tensor a compute op multiplies activations by, at a weight input position:
Conv/ConvTranspose/DeformConv W, Gemm A or B, MatMul/FusedMatMul either operand, LSTM/GRU/RNN W
and R, the rows of an embedding `Gather` (axis 0, rank ≥ 2), an Einsum operand, and the
com.microsoft Attention/EmbedLayerNormalization weights (`WEIGHTS`). Every other float tensor
is kept as it is by a plan's default and rules, with a reason the preview shows:

- precision-only (`overridable`): biases (Conv/Gemm/RNN B; an Add right after a Conv, MatMul or
  Gemm, as Paddle2ONNX and tf2onnx write biases), normalization parameters, elementwise
  arithmetic constants (Mul/Add/Sub/Div, PRelu slope, Where values), graph outputs, unused
  tensors. Quantizing them changes precision only, so a per-tensor override is honoured. QDQ
  tools keep biases float (or int32 at input·weight scale, which needs activation scales a
  weight-only export does not have), so the default does too.
- structural: sizes, scales, indices, bounds, thresholds, exponents, comparison operands and
  quantization parameters (Resize/Upsample scales and roi, Reshape/Slice/Pad/Range/Tile/Expand/
  ConstantOfShape/TopK operands, Clip bounds, Equal/Less/… operands, QuantizeLinear scales, a
  Cast to an integer type, …). Quantizing them changes shapes, control flow or other tensors'
  meaning, so nothing quantizes them.

Ops not in the tables are judged by their ONNX schema: an input typed like one of the op's
outputs is data (precision-only), any other input is a parameter (structural). Ops of unknown
domains are structural: their inputs cannot be told apart.

A value is followed through Identity, Cast to a float type, Transpose, Reshape, Flatten,
Squeeze/Unsqueeze, Split, Slice and Concat of constants to the positions it reaches (each value
once, at most 32 ops deep: beyond, the tensor is kept), and a weight's channel axis is mapped
back through them; Shape/Size and the …Like ops read no values and do not count as uses. A
tensor used in several ways takes the strictest role: it is a weight only when every use is a
weight position.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from inspector.formats.onnx.op_tables import (
    BIAS_PRODUCERS,
    BIASES,
    FLOAT_TYPES,
    FOLLOW,
    NEUTRAL,
    NORMS,
    STRUCTURAL_INPUTS,
    WEIGHTS,
    fixed_axis,
    prefix_map,
    reshape_dims,
    squeezed,
    unsqueezed,
)
from inspector.formats.onnx.proto import (
    iter_graphs,
    node_attr,
    require_onnx,
    tensor_values,
    typed_attr,
)

__all__ = ["Role", "RoleFinder"]

_MAX_DEPTH = 32

WEIGHT, PRECISION, STRUCTURAL = 0, 1, 2


@dataclass(frozen=True)
class Role:
    """How a tensor is used: the first consumer as `layer` ("<node> (<Op>)"), the output
    channel axis of a weight, and for non-weights the reason (`kept`) and whether a
    per-tensor override may still quantize it."""

    layer: str
    channel_axis: int | None = None
    kept: str | None = None
    overridable: bool = False


@dataclass(frozen=True)
class _Use:
    kind: int
    layer: str
    axis: int | None = None
    reason: str = ""


@lru_cache(maxsize=4096)
def _schema_io(
    op: str, domain: str, version: int
) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]] | None:
    """(input names, input type strings, output type strings) of an op's schema, or None."""
    onnx = require_onnx()
    try:
        schema = onnx.defs.get_schema(op, max(version, 1), domain)
    except Exception:
        return None
    names = tuple(i.name for i in schema.inputs)
    types = tuple(i.type_str for i in schema.inputs)
    return names, types, frozenset(o.type_str for o in schema.outputs)


def _label(node: Any) -> str:
    name = node.name or (node.output[0] if node.output else node.op_type)
    return f"{name} ({node.op_type})"


_Next = tuple[str, tuple[int, ...] | None, Callable[[int | None], int | None]]


def _same(axis: int | None) -> int | None:
    return axis


def _none(axis: int | None) -> int | None:
    return None


def _unknown(shape: tuple[int, ...] | None, axis: int | None) -> tuple[int, ...] | None:
    """`shape` with the length of `axis` (every length when None) unknown (-1)."""
    if shape is None or not shape:
        return shape
    if axis is None:
        return (-1,) * len(shape)
    out = list(shape)
    out[axis % len(shape)] = -1
    return tuple(out)


class RoleFinder:
    """Roles of the float tensors of one ModelProto (all graphs; names are global as the reader
    treats them). `constants` maps constant value names (initializers, Constant outputs) to
    their TensorProto, read for Reshape/Squeeze/Unsqueeze shapes when mapping axes."""

    def __init__(self, model: Any, path: Path) -> None:
        self.path = path
        self.opsets = {op.domain or "": int(op.version) for op in model.opset_import}
        self.opsets.setdefault("ai.onnx", self.opsets.get("", 1))
        self.uses: dict[str, list[tuple[Any, int]]] = {}
        self.producer: dict[str, Any] = {}
        self.constants: dict[str, Any] = {}
        self.outputs: set[str] = set()
        self._trees: dict[str, bool] = {}
        for _, g in iter_graphs(model.graph):
            self.constants.update((t.name, t) for t in g.initializer)
            self.outputs.update(v.name for v in g.output)
            for node in g.node:
                for i, name in enumerate(node.input):
                    if name:
                        self.uses.setdefault(name, []).append((node, i))
                for out in node.output:
                    self.producer.setdefault(out, node)
                if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                    t = next((a.t for a in node.attribute if a.name == "value"), None)
                    if t is not None:
                        self.constants.setdefault(node.output[0], t)

    def role(self, value: str, shape: tuple[int, ...]) -> Role:
        """The role of the float tensor read under `value` (shape as stored)."""
        uses = self._uses(value, shape, set(), _MAX_DEPTH)
        first = self.uses.get(value)
        layer = _label(first[0][0]) if first else "(unused)"
        if not uses:
            return Role(layer, None, "unused by the graph: not a weight", True)
        worst = max(u.kind for u in uses)
        if worst == WEIGHT:
            return Role(uses[0].layer, uses[0].axis)
        reasons = list(dict.fromkeys(u.reason for u in uses if u.kind == worst))
        reason = reasons[0] + (f" (and {len(reasons) - 1} other uses)" if len(reasons) > 1 else "")
        if any(u.kind == WEIGHT for u in uses):
            reason = f"used as a weight and as {reason}"
        return Role(layer, None, reason, worst == PRECISION)

    def _uses(
        self, value: str, shape: tuple[int, ...] | None, seen: set[str], depth: int
    ) -> list[_Use]:
        """Every use `value` reaches; each value is visited once per `role` call (`seen`), so
        diamonds, cycles and fan-out cost one pass over what the value reaches."""
        out: list[_Use] = []
        if value in seen:
            return out
        seen.add(value)
        if value in self.outputs:
            out.append(_Use(PRECISION, "", reason="a graph output: not a weight"))
        if depth <= 0:
            out.append(_Use(PRECISION, "", reason="read through too many layout ops: kept"))
            return out
        for node, index in self.uses.get(value, ()):
            if (node.op_type, index) in NEUTRAL:
                continue  # reads only the shape or the type
            followed = self._follow(node, index, shape)
            if followed is None:
                out.append(self._use(node, index, shape))
                continue
            for name, out_shape, back in followed:
                for use in self._uses(name, out_shape, seen, depth - 1):
                    out.append(_Use(use.kind, use.layer, back(use.axis), use.reason))
        return out

    def _opset(self, node: Any) -> int:
        return self.opsets.get(node.domain or "", self.opsets.get("ai.onnx", 1))

    def _input_name(self, node: Any, index: int) -> str:
        """The schema's name of the input ("scales", "min"), "operand" for the one-letter names
        of elementwise ops (A, B, X, Y), "exponent" for Pow's."""
        if node.op_type == "Pow" and index == 1:
            return "exponent"
        io = _schema_io(node.op_type, node.domain or "", self._opset(node))
        if io is None or not io[0]:
            return f"input {index}"
        name = io[0][min(index, len(io[0]) - 1)]
        return "operand" if len(name) == 1 else name

    def _use(self, node: Any, index: int, shape: tuple[int, ...] | None) -> _Use:
        key = (node.domain if node.domain not in ("", "ai.onnx") else "", node.op_type)
        layer = _label(node)
        ndim = len(shape) if shape is not None else 0
        axis_fn = WEIGHTS.get(key, {}).get(index)
        if key == ("", "Einsum"):
            axis_fn = fixed_axis(None)
        elif key == ("", "Gather") and (typed_attr(node, "axis", "INT", 0) != 0 or ndim < 2):
            axis_fn = None  # a lookup table, not rows of embeddings
        if axis_fn is not None:
            return _Use(WEIGHT, layer, axis_fn(node, ndim) if shape is not None else None)
        what = f"{node.op_type} {self._input_name(node, index)}"
        if index in BIASES.get(key, ()):
            return _Use(PRECISION, layer, reason=f"{node.op_type} bias: not a weight")
        biased = self._bias_of(node, index)
        if biased is not None:
            return _Use(PRECISION, layer, reason=f"bias added to a {biased} output: not a weight")
        if node.op_type in NORMS and index > 0:
            return _Use(PRECISION, layer, reason=f"{what}: normalization, not a weight")
        if key in STRUCTURAL_INPUTS:
            kind = STRUCTURAL if index in STRUCTURAL_INPUTS[key] else PRECISION
        elif node.op_type == "Cast":
            kind = STRUCTURAL  # a Cast to an integer type (float Casts are followed)
        else:
            kind = self._schema_kind(node, index)
        return _Use(kind, layer, reason=f"{what}: not a weight")

    def _schema_kind(self, node: Any, index: int) -> int:
        """Typed like an output: data (precision-only); any other type: a parameter."""
        if node.domain not in ("", "ai.onnx"):
            return STRUCTURAL
        io = _schema_io(node.op_type, "", self._opset(node))
        if io is None or not io[1]:
            return STRUCTURAL
        type_str = io[1][min(index, len(io[1]) - 1)]
        return PRECISION if type_str in io[2] else STRUCTURAL

    def _bias_of(self, node: Any, index: int) -> str | None:
        """The op type whose output this Add adds a constant to, when it computes one."""
        if node.op_type != "Add" or len(node.input) != 2:
            return None
        producer = self.producer.get(node.input[1 - index])
        if producer is None or producer.op_type not in BIAS_PRODUCERS:
            return None
        return str(producer.op_type)

    def _follow(self, node: Any, index: int, shape: tuple[int, ...] | None) -> list[_Next] | None:
        """(output name, output shape, output axis → input axis) of each output `node` passes
        the value on to unchanged but for layout, float type or slicing; None when `node` is a
        real consumer. Unknown lengths are -1 (the rank is what the weight positions need)."""
        op, outs = node.op_type, list(node.output)
        if node.domain not in ("", "ai.onnx") or op not in FOLLOW or not outs:
            return None
        same: Callable[[int | None], int | None] = _same
        if op in ("Identity", "CastLike") or (
            op == "Cast" and typed_attr(node, "to", "INT", 0) in FLOAT_TYPES
        ):
            return [(outs[0], shape, same)] if index == 0 else None
        if op == "Concat":
            if not all(self._constant_tree(n) for n in node.input if n):
                return None
            axis = typed_attr(node, "axis", "INT", 0)
            return None if axis is None else [(outs[0], _unknown(shape, axis), same)]
        if index != 0 or op == "Cast":
            return None
        if op in ("Split", "Slice"):
            axis = typed_attr(node, "axis", "INT", 0) if op == "Split" else -1
            if axis is None:
                return None
            return [(o, _unknown(shape, None if op == "Slice" else axis), same) for o in outs if o]
        if op == "Transpose":
            perm = typed_attr(node, "perm", "INTS", [])
            if perm is None:
                return None
            if shape is None:
                return [(outs[0], None, _none)]
            perm = list(perm) if perm else list(range(len(shape)))[::-1]
            if len(perm) != len(shape) or sorted(perm) != list(range(len(shape))):
                return None
            moved = tuple(shape[p] for p in perm)
            return [(outs[0], moved, lambda a: None if a is None else perm[a])]
        out_shape = self._reshaped(node, shape)
        return [(outs[0], out_shape, prefix_map(shape, out_shape))]

    def _constant_tree(self, name: str, depth: int = 8) -> bool:
        """True when `name` is computed from constants only through layout ops (a Concat of
        weights); memoized, so a wide tree of Concats is walked once."""
        if name in self.constants:
            return True
        if name in self._trees:
            return self._trees[name]
        self._trees[name] = False  # a cycle or the depth limit: not a constant
        node = self.producer.get(name)
        if node is None or depth <= 0 or node.op_type not in FOLLOW:
            return False
        self._trees[name] = all(self._constant_tree(n, depth - 1) for n in node.input if n)
        return self._trees[name]

    def _reshaped(self, node: Any, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The output shape of a Reshape/Flatten/Squeeze/Unsqueeze of a `shape` input (None
        when it cannot be told from constants), computed without allocating anything."""
        if shape is None or any(d < 0 for d in shape):
            return None
        op = node.op_type
        if op == "Flatten":
            axis = typed_attr(node, "axis", "INT", 1)
            if axis is None:
                return None
            axis %= len(shape) + 1
            return (math.prod(shape[:axis]), math.prod(shape[axis:]))
        arg = self._ints(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if op == "Reshape":
            zero_copies = not node_attr(node, "allowzero", 0)
            return None if arg is None else reshape_dims(shape, arg, zero_copies)
        axes = arg if arg is not None else typed_attr(node, "axes", "INTS", None)
        if op == "Squeeze":
            return squeezed(shape, list(axes) if axes else None)
        return unsqueezed(shape, list(axes)) if axes else None

    def _ints(self, name: str) -> list[int] | None:
        t = self.constants.get(name)
        if t is None:
            return None
        try:
            values = tensor_values(t, self.path.parent, self.path, name)
        except Exception:
            return None
        if values.dtype.kind not in "iu" or values.size > 64:
            return None
        return [int(v) for v in values.reshape(-1)]
