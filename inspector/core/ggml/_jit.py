"""numba helpers shared by the ggml kernels: C float32 semantics, bit for bit.

ggml-quants.c is compiled without -ffast-math and, for x86-64 without -march, without FMA, so
every `a*b + c` rounds twice and every sum runs in source order. numba without `fastmath`
emits plain IEEE float32 operations in source order and never contracts to FMA, so the kernels
reproduce C exactly as long as every temporary is float32: numba (like numpy) promotes
`int * float32` and Python float literals to float64, so the kernels convert ints with `F(...)`
and write constants as `F(0.1)`. tests/core/ggml/test_jit_ir.py checks the compiled kernels
contain no float64 arithmetic.

`nearest_int` is ggml's magic-number rounding (add 1.5·2^23, keep the low mantissa bits),
emulated on the bits so values beyond ±2^22 give C's (garbage) result too; `to_i32` is C's
float→int cast on x86 (`cvttss2si`: truncation, 0x80000000 for NaN and out-of-range values).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

__all__ = [
    "F",
    "bf16_bits",
    "bits_f32",
    "f16_bits",
    "f16_value",
    "f32_bits",
    "jit",
    "nearest_int",
    "table",
    "to_i32",
    "wrap8",
]

F = np.float32
_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def jit(fn: _Fn) -> _Fn:
    """Compile `fn` lazily (on first call), cached on disk, releasing the GIL; float division
    by zero gives inf/nan as in C instead of raising."""
    return cast(_Fn, nb.njit(cache=True, nogil=True, error_model="numpy")(fn))


def inline(fn: _Fn) -> _Fn:
    """`jit` for small helpers that numba inlines into their callers."""
    return cast(_Fn, nb.njit(cache=True, inline="always", error_model="numpy")(fn))


def _f32_bits(typingctx: Any, x: Any) -> Any:
    """The IEEE bits of a float32 as an int32 (C's memcpy to int)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(32))

    return nb.int32(nb.float32), codegen


def _bits_f32(typingctx: Any, u: Any) -> Any:
    """The float32 whose IEEE bits are the int32 `u`."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.FloatType())

    return nb.float32(nb.int32), codegen


f32_bits: Any = intrinsic(_f32_bits)
bits_f32: Any = intrinsic(_bits_f32)


@inline
def nearest_int(fval):
    val = fval + F(12582912.0)
    return (np.int64(f32_bits(val)) & 0x007FFFFF) - 0x00400000


@inline
def to_i32(f):
    if f != f or f >= F(2147483648.0) or f < F(-2147483648.0):
        return np.int64(-2147483648)
    return np.int64(f)


@inline
def wrap8(v):
    """C's conversion of an int to int8_t (two's complement wrap)."""
    v = v & 0xFF
    return v - 256 if v > 127 else v


@inline
def u32(x):
    return np.int64(x) & 0xFFFFFFFF


@inline
def f16_bits(f):
    """ggml_compute_fp32_to_fp16: round to nearest even, NaN -> 0x7E00 with the sign."""
    base = (abs(f) * F(5.192296858534828e33)) * F(7.703719777548943e-34)
    w = u32(f32_bits(f))
    shl1_w = (w + w) & 0xFFFFFFFF
    sign = w & 0x80000000
    bias = shl1_w & 0xFF000000
    if bias < 0x71000000:
        bias = 0x71000000
    base = bits_f32(np.int32((bias >> 1) + 0x07800000)) + base
    bits = u32(f32_bits(base))
    nonsign = ((bits >> 13) & 0x00007C00) + (bits & 0x00000FFF)
    if shl1_w > 0xFF000000:
        nonsign = 0x7E00
    return ((sign >> 16) | nonsign) & 0xFFFF


@inline
def f16_value(h):
    """The float32 of half bits `h` (exact; NaN payloads kept as numpy keeps them)."""
    sign = (h & 0x8000) << 16
    exp = (h >> 10) & 0x1F
    man = h & 0x3FF
    if exp == 0:
        v = F(man) * F(5.960464477539063e-08)
        return -v if sign else v
    if exp == 31:
        return bits_f32(np.int32(np.int64(sign | 0x7F800000 | (man << 13)) - (sign << 1)))
    return bits_f32(np.int32(np.int64(sign | ((exp + 112) << 23) | (man << 13)) - (sign << 1)))


@inline
def bf16_bits(f):
    """ggml_compute_fp32_to_bf16: round to nearest even, NaN forced quiet."""
    u = u32(f32_bits(f))
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return ((u >> 16) | 64) & 0xFFFF
    return ((u + (0x7FFF + ((u >> 16) & 1))) >> 16) & 0xFFFF


@functools.cache
def table(name: str) -> np.ndarray:
    """A lookup table of ggml-common.h (iq grids, kvalues) as a read-only numpy array."""
    import base64
    import zlib

    from ._tables import PACKED

    dtype, count, blob = PACKED[name]
    raw = zlib.decompress(base64.b64decode(blob))
    arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    if arr.size != count:
        raise RuntimeError(f"ggml table {name} is corrupt ({arr.size} != {count})")
    arr.flags.writeable = False
    return arr
