"""Decoders of ggml's 32/64/128-value block types (q4_0 … q8_0, q1_0, q2_0, mxfp4, nvfp4,
iq4_nl), as `dequantize_row_*` in ggml-quants.c computes them.

Every kernel takes the blocks as `(n_blocks, type_size)` uint8 and writes `(n_blocks,
block_size)` float32; the float operations and their order are C's (see `_jit`).
"""

from __future__ import annotations

import numpy as np

from ._jit import F, f16_value, inline, jit

__all__ = [
    "KERNELS",
    "dq_iq4_nl",
    "dq_mxfp4",
    "dq_nvfp4",
    "dq_q1_0",
    "dq_q2_0",
    "dq_q4_0",
    "dq_q4_1",
    "dq_q5_0",
    "dq_q5_1",
    "dq_q8_0",
    "e8m0_half_table",
    "ue4m3_table",
]


@inline
def half(raw, b, off):
    return f16_value(np.int64(raw[b, off]) | (np.int64(raw[b, off + 1]) << 8))


@inline
def word32(raw, b, off):
    w = np.int64(raw[b, off]) | (np.int64(raw[b, off + 1]) << 8)
    return w | (np.int64(raw[b, off + 2]) << 16) | (np.int64(raw[b, off + 3]) << 24)


@jit
def dq_q4_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for j in range(16):
            q = raw[b, 2 + j]
            out[b, j] = F(np.int64(q & 0x0F) - 8) * d
            out[b, j + 16] = F(np.int64(q >> 4) - 8) * d


@jit
def dq_q4_1(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        m = half(raw, b, 2)
        for j in range(16):
            q = raw[b, 4 + j]
            out[b, j] = F(q & 0x0F) * d + m
            out[b, j + 16] = F(q >> 4) * d + m


@jit
def dq_q5_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        qh = word32(raw, b, 2)
        for j in range(16):
            q = np.int64(raw[b, 6 + j])
            h0 = ((qh >> j) << 4) & 0x10
            h1 = (qh >> (j + 12)) & 0x10
            out[b, j] = F(((q & 0x0F) | h0) - 16) * d
            out[b, j + 16] = F(((q >> 4) | h1) - 16) * d


@jit
def dq_q5_1(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        m = half(raw, b, 2)
        qh = word32(raw, b, 4)
        for j in range(16):
            q = np.int64(raw[b, 8 + j])
            h0 = ((qh >> j) << 4) & 0x10
            h1 = (qh >> (j + 12)) & 0x10
            out[b, j] = F((q & 0x0F) | h0) * d + m
            out[b, j + 16] = F((q >> 4) | h1) * d + m


@jit
def dq_q8_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for j in range(32):
            out[b, j] = F(np.int8(raw[b, 2 + j])) * d


@jit
def dq_q1_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for j in range(128):
            out[b, j] = d if (raw[b, 2 + j // 8] >> (j % 8)) & 1 else -d


@jit
def dq_q2_0(raw, out):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for j in range(64):
            q = (np.int64(raw[b, 2 + j // 4]) >> ((j % 4) * 2)) & 3
            out[b, j] = F(q - 1) * d


@jit
def dq_mxfp4(raw, out, kvalues, scale_of):
    for b in range(raw.shape[0]):
        d = scale_of[raw[b, 0]]
        for j in range(16):
            q = raw[b, 1 + j]
            out[b, j] = F(kvalues[q & 0x0F]) * d
            out[b, j + 16] = F(kvalues[q >> 4]) * d


@jit
def dq_nvfp4(raw, out, kvalues, scale_of):
    for b in range(raw.shape[0]):
        for s in range(4):
            d = scale_of[raw[b, s]]
            for j in range(8):
                q = raw[b, 4 + s * 8 + j]
                out[b, s * 16 + j] = F(kvalues[q & 0x0F]) * d
                out[b, s * 16 + j + 8] = F(kvalues[q >> 4]) * d


@jit
def dq_iq4_nl(raw, out, kvalues):
    for b in range(raw.shape[0]):
        d = half(raw, b, 0)
        for j in range(16):
            q = raw[b, 2 + j]
            out[b, j] = d * F(kvalues[q & 0x0F])
            out[b, j + 16] = d * F(kvalues[q >> 4])


def e8m0_half_table() -> np.ndarray:
    """ggml_e8m0_to_fp32_half for all 256 exponents: 2^(e-128) (subnormal for e < 2)."""
    bits = np.where(
        np.arange(256) < 2, 0x00200000 << np.arange(256).clip(0, 1), (np.arange(256) - 1) << 23
    )
    return bits.astype(np.uint32).view(np.float32)


def ue4m3_table() -> np.ndarray:
    """ggml_ue4m3_to_fp32 for all 256 codes (already halved, as ggml stores it)."""
    x = np.arange(256)
    exp = (x >> 3) & 0xF
    man = x & 7
    raw = np.where(exp == 0, np.ldexp(man, -9), np.ldexp(1.0 + man / 8.0, exp - 7))
    raw = np.where((x == 0) | (x == 0x7F), 0.0, raw)
    return (raw * 0.5).astype(np.float32)


KERNELS = {
    "q4_0": dq_q4_0,
    "q4_1": dq_q4_1,
    "q5_0": dq_q5_0,
    "q5_1": dq_q5_1,
    "q8_0": dq_q8_0,
    "q1_0": dq_q1_0,
    "q2_0": dq_q2_0,
}
