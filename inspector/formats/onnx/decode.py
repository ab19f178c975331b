"""Graph pieces that turn a tensor's stored codes back into its values, in the model's own opset.

The export never converts a model's opset (a converter rewrites nodes the user did not ask us to
touch, and refuses some real graphs). Each stored encoding is decoded with the operators the
model's default-domain opset has, natively where a `DequantizeLinear` or `Cast` expresses it:

| stored | native (opset) | below: every opset ≥ 7 |
|---|---|---|
| float16 | Cast (7) | — |
| bfloat16 | Cast (13) | uint16 bits → exponent tables |
| int8 per tensor | DequantizeLinear (10) | int8 → Cast → Mul |
| int8 per channel | DequantizeLinear axis (13) | int8 → Cast → Mul by (…,C,…) |
| int4 blocks | int4 DequantizeLinear block_size (21) | nibbles in uint8 → unpack → Mul |
| uint8 / affine8 | DequantizeLinear + Add (10) | Cast → Sub zp → Mul → Add |
| affine4 | uint4 DequantizeLinear + Add (21) | nibbles in uint8 → same |
| uint16 / affine16 | uint16 DequantizeLinear + Add (21) | Cast → Sub zp → Mul → Add |

The stored arrays have the same sizes either way (codes, scales, offset), but for the affine
fallback's float32 zero point: the fallback stores int4/uint4 codes as packed nibbles (int4 as
q + 8, low nibble first) in a uint8 tensor and bfloat16 as its uint16 bits; helper constants
(scalars, shapes, the 4 KiB of bfloat16 tables) are shared by all tensors of the model.
Values equal the preview's: int8/int4 are one float32 product `q · scale` as the preview
computes; float16/bfloat16 are exact; affine values are `(q − zp) · scale + offset` in float32,
within a float32 rounding of the preview's float64 `q · scale + min`.
Every graph's structure depends on shapes, schemes and the opset only — never on values — so a
build from zero-valued payloads (the size prediction) has exactly the written file's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inspector.core.errors import FormatError
from inspector.core.model import TensorInfo
from inspector.core.schemes import Encoded, Scheme
from inspector.core.schemes.affine import AFFINE
from inspector.core.schemes.floats import FLOATS
from inspector.core.schemes.symmetric import SYMMETRIC
from inspector.formats.onnx.edit import NameAllocator, Replacement
from inspector.formats.onnx.proto import require_onnx

__all__ = ["Decoder", "np_dtype", "onnx_form", "proto_type"]

_AFFINE_DQ_OPSET = {8: 10, 4: 21, 16: 21}


def onnx_form(scheme: Scheme) -> str | None:
    """How ONNX expresses `scheme` — "cast" (a float initializer + Cast), "int8" (per-channel
    DequantizeLinear), "int4" (blocked DequantizeLinear), "affine" (codes, scale, zero point +
    Add), each with its fallback below the opset — or None when it must be baked. The one place
    families map to ONNX."""
    family = scheme.family
    if family is FLOATS and scheme.name in ("float32", "float16", "bfloat16"):
        return "cast"
    if family is SYMMETRIC and scheme.name in ("int8", "int4"):
        return scheme.name
    if family is AFFINE and scheme.bits in _AFFINE_DQ_OPSET:
        return "affine"
    return None


def np_dtype(name: str) -> np.dtype:
    """numpy dtype of a dtype name (`bfloat16` from ml_dtypes)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def proto_type(dtype: str) -> int:
    """ONNX TensorProto element type of a dtype name."""
    onnx = require_onnx()
    if dtype == "bfloat16":
        return onnx.TensorProto.BFLOAT16
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _contiguous(arr: np.ndarray) -> np.ndarray:
    """C-contiguous with the same shape (np.ascontiguousarray makes a 0-d array 1-d)."""
    return np.ascontiguousarray(arr).reshape(np.shape(arr))


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """4-bit codes (0…15) two per byte, element 0 in the low nibble (ONNX's int4 order)."""
    flat = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1) & 0x0F
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def _bf16_tables() -> tuple[np.ndarray, np.ndarray]:
    """For the high 9 bits h = sign·256 + exponent of a bfloat16: value = T[h]·m + U[h] with m
    the 7 fraction bits; T = ±2^(e−134) (2^−133 for subnormals), U = 128·T (0 for subnormals).
    Every product and sum is exact in float32."""
    h = np.arange(512)
    sign = np.where(h >= 256, -1.0, 1.0)
    e = h % 256
    t = np.where(e == 255, 0.0, sign * np.ldexp(1.0, np.where(e == 0, 1, e) - 134))
    u = np.where(e == 0, 0.0, 128.0 * t)  # exponent 255 (Inf/NaN) never reaches an export
    return t.astype(np.float32), u.astype(np.float32)


class Decoder:
    """Builds one `Replacement` per tensor for a model whose default-domain opset is `opset`.

    Helper constants shared by several tensors (scalars, the bfloat16 tables) are collected in
    `shared` for the main graph (subgraphs see its initializers); `fallbacks` names the
    decodings that needed the opset fallback (for the export's notes).
    """

    def __init__(self, names: NameAllocator, opset: int) -> None:
        self.onnx = require_onnx()
        self.names = names
        self.opset = opset
        self.shared: list[Any] = []
        self._shared_names: dict[str, str] = {}
        self.fallbacks: set[str] = set()
        self.packed_4bit = False

    # ---------------------------------------------------------------- graph pieces

    def _init(self, rep: Replacement, base: str, arr: np.ndarray, ptype: int | None = None) -> str:
        """A tensor's own stored array (`ptype` INT4/UINT4: packed two codes per byte)."""
        name = self.names.fresh(base)
        arr = _contiguous(arr)
        if ptype is None:
            t = self.onnx.numpy_helper.from_array(arr, name)
        else:
            self.packed_4bit = True
            raw = pack_nibbles(arr).tobytes()
            t = self.onnx.helper.make_tensor(name, ptype, arr.shape, raw, raw=True)
        rep.initializers.append(t)
        return name

    def _const(self, key: str, arr: np.ndarray) -> str:
        """A helper constant shared across tensors (one main-graph initializer per key)."""
        if key not in self._shared_names:
            name = self.names.fresh(f"qc_{key}")
            self.shared.append(self.onnx.numpy_helper.from_array(np.asarray(arr), name))
            self._shared_names[key] = name
        return self._shared_names[key]

    def _scalar(self, value: float) -> str:
        key = f"{value:g}".replace(".", "p").replace("-", "m")
        return self._const(key, np.asarray(value, np.float32))

    def _ints(self, values: Any) -> str:
        values = [int(v) for v in values]
        key = "i" + "x".join(str(v).replace("-", "m") for v in values)
        return self._const(key, np.asarray(values, np.int64))

    def _node(self, rep: Replacement, op: str, inputs: list[str], tag: str, **attrs: Any) -> str:
        """One decode node. Intermediate values get short names (`qi_N`) and nodes none (both
        optional bytes, repeated in every node); the stored arrays keep the tensor's name."""
        out = self.names.fresh("qi")
        rep.nodes.append(self.onnx.helper.make_node(op, inputs, [out], **attrs))
        return out

    def _reshape(self, rep: Replacement, x: str, shape: tuple[int, ...]) -> str:
        return self._node(rep, "Reshape", [x, self._ints(shape)], "r")

    def _cut(self, rep: Replacement, x: str, axis: int, end: int) -> str:
        """x[…, :end, …] along `axis` (Slice takes inputs from opset 10, attributes before)."""
        if self.opset >= 10:
            args = [self._ints([0]), self._ints([end]), self._ints([axis])]
            return self._node(rep, "Slice", [x, *args], "cut")
        return self._node(rep, "Slice", [x], "cut", starts=[0], ends=[end], axes=[axis])

    def _pad(self, rep: Replacement, x: str, ndim: int, axis: int, extra: int) -> str:
        """x padded with `extra` zeros at the end of `axis` (Pad takes inputs from opset 11)."""
        pads = [0] * (2 * ndim)
        pads[ndim + axis] = extra
        if self.opset >= 11:
            return self._node(rep, "Pad", [x, self._ints(pads)], "pad")
        return self._node(rep, "Pad", [x], "pad", pads=pads)

    def _cast(self, rep: Replacement, x: str, to: int | None = None) -> str:
        to = self.onnx.TensorProto.FLOAT if to is None else to
        return self._node(rep, "Cast", [x], "f", to=to)

    def _finish(self, rep: Replacement, info: TensorInfo) -> None:
        """The last node (float32) now produces the value name, Cast to the tensor's dtype."""
        value = rep.source.value
        if info.dtype == "float32":
            rep.nodes[-1].output[0] = value
            return
        produced = rep.nodes[-1].output[0]
        rep.nodes.append(
            self.onnx.helper.make_node("Cast", [produced], [value], to=proto_type(info.dtype))
        )

    def _unpack(self, rep: Replacement, packed: str, count: int, shape: tuple[int, ...]) -> str:
        """float32 nibbles (0…15) of a packed uint8 tensor, in order, shaped `shape`.

        Byte b as a column [b, b] scaled by [1, 1/16] and floored is [b, hi]; modulo 16
        (fmod; below opset 10, minus 16 × floor(·/16)) it is [lo, hi]: the byte's two codes in
        order. All exact in float32.
        """
        nbytes = (count + 1) // 2
        f = self._reshape(rep, self._cast(rep, packed), (nbytes, 1))
        halves = self._const("nibble_scale", np.asarray([[1.0, 1 / 16]], np.float32))
        both = self._node(rep, "Floor", [self._node(rep, "Mul", [f, halves], "m")], "fl")
        if self.opset >= 10:
            codes = self._node(rep, "Mod", [both, self._scalar(16)], "nib", fmod=1)
        else:
            high = self._node(
                rep, "Floor", [self._node(rep, "Mul", [both, self._scalar(1 / 16)], "m")], "fl"
            )
            sixteens = self._node(rep, "Mul", [high, self._scalar(16)], "m")
            codes = self._node(rep, "Sub", [both, sixteens], "nib")
        if count % 2:
            codes = self._cut(rep, self._reshape(rep, codes, (2 * nbytes,)), 0, count)
        return self._reshape(rep, codes, shape)

    # ---------------------------------------------------------------- per family

    def plain(self, rep: Replacement, arr: np.ndarray, info: TensorInfo) -> None:
        """Plain values, Cast to the tensor's dtype when stored in another float type."""
        v = rep.source.value
        if arr.dtype.name == info.dtype:
            rep.initializers.append(self.onnx.numpy_helper.from_array(_contiguous(arr), v))
            return
        if arr.dtype.name == "bfloat16" and self.opset < 13:
            self._bfloat16_bits(rep, arr)
        else:
            self._cast(rep, self._init(rep, f"{v}_{arr.dtype.name}", arr))
        self._finish(rep, info)

    def _bfloat16_bits(self, rep: Replacement, arr: np.ndarray) -> None:
        """bfloat16 below opset 13 (no Cast from bfloat16): the bits as uint16, decoded exactly
        through two 512-entry exponent tables shared by all such tensors (`_bf16_tables`)."""
        self.fallbacks.add("bfloat16 decoded from uint16 bits (Cast from bfloat16: opset 13)")
        v = rep.source.value
        t_table, u_table = _bf16_tables()
        bits = self._cast(rep, self._init(rep, f"{v}_bits", arr.view(np.uint16)))
        scaled = self._node(rep, "Mul", [bits, self._scalar(1 / 128)], "m")
        high = self._node(rep, "Floor", [scaled], "hi")
        frac = self._node(
            rep, "Sub", [bits, self._node(rep, "Mul", [high, self._scalar(128)], "m")], "frac"
        )
        index = self._cast(rep, high, self.onnx.TensorProto.INT64)
        t = self._node(rep, "Gather", [self._const("bf16_step", t_table), index], "step")
        u = self._node(rep, "Gather", [self._const("bf16_lead", u_table), index], "lead")
        self._node(rep, "Add", [self._node(rep, "Mul", [t, frac], "m"), u], "bf16")

    def int8(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        v, axis = rep.source.value, enc.params["axis"]
        scales = np.asarray(enc.params["scales"], np.float32).reshape(
            -1 if axis is not None else ()
        )
        q = self._init(rep, f"{v}_quantized", np.asarray(enc.codes, np.int8))
        if self.opset >= (13 if axis is not None else 10):
            s = self._init(rep, f"{v}_scale", scales)
            attrs = {"axis": axis} if axis is not None else {}
            self._node(rep, "DequantizeLinear", [q, s], "dq", **attrs)
        else:
            why = "per channel: opset 13" if axis is not None else "per tensor: opset 10"
            self.fallbacks.add(f"int8 decoded by Cast and Mul (DequantizeLinear {why})")
            shape = [1] * len(enc.shape)
            if axis is not None:
                shape[axis] = -1
            s = self._init(rep, f"{v}_scale", scales.reshape(shape) if axis is not None else scales)
            self._node(rep, "Mul", [self._cast(rep, q), s], "dq")
        self._finish(rep, info)

    def int4(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        """Codes laid out (C, M) for a leading channel axis, else (M, C), blocks of `group`
        along M; then Reshape/Transpose back to the tensor's layout."""
        from inspector.core.schemes.symmetric_math import as_rows

        v, shape, axis = rep.source.value, enc.shape, enc.params["axis"]
        rows = as_rows(np.asarray(enc.codes, np.int8), axis)  # (M, C)
        scales = np.asarray(enc.params["scales"], np.float16)  # (C, groups)
        front = axis == 0
        codes, s16 = (rows.T, scales) if front else (rows, scales.T)
        if self.opset >= 21:
            q = self._init(rep, f"{v}_quantized", codes, self.onnx.TensorProto.INT4)
            s = self._cast(rep, self._init(rep, f"{v}_scale", s16))
            group = enc.params["group"]
            out = self._node(
                rep, "DequantizeLinear", [q, s], "dq", axis=int(front), block_size=group
            )
            coded = tuple(codes.shape)
        else:
            self.fallbacks.add("int4 decoded from uint8 nibbles (DequantizeLinear int4: opset 21)")
            out, coded = self._int4_nibbles(rep, codes, s16, front, enc.params["group"])
        self._restore_layout(rep, out, coded, shape, axis, front)
        self._finish(rep, info)

    def _int4_nibbles(
        self, rep: Replacement, codes: np.ndarray, s16: np.ndarray, front: bool, group: int
    ) -> tuple[str, tuple[int, ...]]:
        """int4 below opset 21: codes + 8 as nibbles, multiplied block by block by their scale
        as (C, groups, group) · (C, groups, 1) [or (groups, group, C) · (groups, 1, C)]; rows
        padded to whole blocks and cut back after; one block per channel broadcasts as (C, M) ·
        (C, 1). Returns the value and its shape."""
        v = rep.source.value
        c, m = codes.shape if front else codes.shape[::-1]
        groups = -(-m // group)
        blocks: tuple[int, ...]
        scale_shape: tuple[int, ...]
        if groups <= 1:
            blocks, scale_shape = tuple(codes.shape), ((c, 1) if front else (1, c))
        else:
            blocks = (c, groups, group) if front else (groups, group, c)
            scale_shape = (c, groups, 1) if front else (groups, 1, c)
        whole = groups <= 1 or m % group == 0
        packed = self._init(rep, f"{v}_packed", pack_nibbles(codes.astype(np.int16) + 8))
        q = self._unpack(rep, packed, codes.size, blocks if whole else tuple(codes.shape))
        if not whole:
            q = self._reshape(rep, self._pad(rep, q, 2, int(front), groups * group - m), blocks)
        q = self._node(rep, "Sub", [q, self._scalar(8)], "q")
        s = self._cast(rep, self._init(rep, f"{v}_scale", s16.reshape(scale_shape)))
        out = self._node(rep, "Mul", [q, s], "dq")
        if whole:
            return out, blocks
        flat = self._reshape(rep, out, (c, groups * group) if front else (groups * group, c))
        return self._cut(rep, flat, int(front), m), tuple(codes.shape)

    def _restore_layout(
        self,
        rep: Replacement,
        out: str,
        coded: tuple[int, ...],
        shape: tuple[int, ...],
        axis: int | None,
        front: bool,
    ) -> None:
        moved = shape if front or axis is None else (*shape[:axis], *shape[axis + 1 :], shape[axis])
        if coded != tuple(moved):
            out = self._reshape(rep, out, tuple(moved))
        if not front and axis is not None and axis != len(shape) - 1:
            perm = [*range(axis), len(shape) - 1, *range(axis, len(shape) - 1)]
            self._node(rep, "Transpose", [out], "t", perm=perm)

    def affine(self, rep: Replacement, enc: Encoded, info: TensorInfo) -> None:
        v, bits = rep.source.value, enc.scheme.bits
        mn, scale = float(enc.params["min"]), float(enc.params["scale"])
        qmax = (1 << bits) - 1
        zp = int(min(max(round(-mn / scale), 0), qmax)) if scale > 0 else 0
        code_np = np.uint16 if bits == 16 else np.uint8
        codes = np.asarray(enc.codes, code_np)
        s = self._init(rep, f"{v}_scale", np.asarray(scale, np.float32))
        offset = self._init(rep, f"{v}_offset", np.asarray(mn + zp * scale, np.float32))
        if self.opset >= _AFFINE_DQ_OPSET[bits]:
            ptype = self.onnx.TensorProto.UINT4 if bits == 4 else None
            q = self._init(rep, f"{v}_quantized", codes, ptype)
            z = self._init(rep, f"{v}_zero_point", np.asarray(zp, code_np), ptype)
            dq = self._node(rep, "DequantizeLinear", [q, s, z], "dq")
        else:
            need = _AFFINE_DQ_OPSET[bits]
            self.fallbacks.add(
                f"uint{bits} decoded by Cast, Sub, Mul (DequantizeLinear uint{bits}: opset {need})"
            )
            if bits == 4:
                packed = self._init(rep, f"{v}_packed", pack_nibbles(codes))
                q = self._unpack(rep, packed, codes.size, tuple(codes.shape))
            else:
                q = self._cast(rep, self._init(rep, f"{v}_quantized", codes))
            z = self._init(rep, f"{v}_zero_point", np.asarray(zp, np.float32))
            dq = self._node(rep, "Mul", [self._node(rep, "Sub", [q, z], "c"), s], "dq")
        self._node(rep, "Add", [dq, offset], "affine")
        self._finish(rep, info)

    def replacement(
        self, src: Any, info: TensorInfo, enc: Encoded | None, values: np.ndarray
    ) -> Replacement:
        """The new producers of `src.value`: `enc` stored, or `values` as plain floats."""
        rep = Replacement(src)
        form = onnx_form(enc.scheme) if enc is not None else None
        if enc is None:
            self.plain(rep, np.asarray(values).astype(np_dtype(info.dtype)), info)
        elif form == "cast":
            self.plain(rep, np.asarray(enc.codes), info)
        elif form == "int8":
            self.int8(rep, enc, info)
        elif form == "int4":
            self.int4(rep, enc, info)
        elif form == "affine":
            self.affine(rep, enc, info)
        else:
            raise FormatError("onnx", f"{enc.scheme.name} has no ONNX form", info.name)
        return rep
